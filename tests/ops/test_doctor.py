"""`python bot.py doctor` (issue 11): one line per check, ✓ or ✗ with the fix, exit 1 if any ✗, never a traceback.

Against the Slack stand-in (which answers about scopes, channels and people as Slack does), the HubSpot
stand-in, a local event receiver, and real databases.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
from alembic import command
from alembic.script import ScriptDirectory

import doctor
from bot import main
from models.db import alembic_config
from models.hubspot import PROPERTIES
from tests.conftest import EVENT_SECRET, HANDOFF, MANAGER, MARKETING, ROOT

LATEST = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()  # migrations/versions' head

GOOD_TOKEN = "k" * 40
REPS = ("UREP1", "UREP2")
ENV_NAMES = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "SLACK_API_URL", "DATABASE_URL",
             "HANDOFF_CHANNEL", "DIGEST_CHANNEL", "MARKETING_CHANNEL", "MANAGER_IDS", "SALES_REP_IDS",
             "LEAD_WEBHOOK_TOKEN", "LANGUAGE", "HUBSPOT_TOKEN", "HUBSPOT_API_URL", "EVENT_WEBHOOK_URLS",
             "EVENT_WEBHOOK_SECRET", "ROUTING_FILE", "SALESFORCE_LOGIN_URL", "SALESFORCE_CLIENT_ID",
             "SALESFORCE_CLIENT_SECRET", "SALESFORCE_STATUS_MAP", "SALESFORCE_MATCH", "SALESFORCE_API_BUDGET")


@pytest.fixture
def env(monkeypatch, slack, db):
    """A healthy installation: the workspace has the channels and people the settings name."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    values = dict(SLACK_BOT_TOKEN="xoxb-test", SLACK_SIGNING_SECRET="s", SLACK_API_URL=slack.url,
                  DATABASE_URL=db.url, HANDOFF_CHANNEL=HANDOFF, MARKETING_CHANNEL=MARKETING, MANAGER_IDS=MANAGER,
                  SALES_REP_IDS=",".join(REPS), LEAD_WEBHOOK_TOKEN=GOOD_TOKEN)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    slack.add_channel(HANDOFF, name="sales-handoff")
    slack.add_channel(MARKETING, name="marketing")
    slack.add_user(MANAGER, name="mika")
    slack.add_user("UREP1", name="aiko")
    slack.add_user("UREP2", name="ken")

    def set_env(**changes):
        for name, value in changes.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)

    return set_env


def run_doctor(capsys, *argv) -> tuple[int, list[str], str]:
    code = main(["doctor", *argv])
    out = capsys.readouterr()
    return code, out.out.splitlines(), out.err


def failed(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("✗")]


def line_with(lines: list[str], text: str) -> str:
    found = [line for line in lines if text in line]
    assert len(found) == 1, (text, lines)
    return found[0]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_healthy_installation_is_all_ticks_and_exits_0(env, capsys):
    code, lines, err = run_doctor(capsys)
    assert code == 0 and failed(lines) == [] and err == ""
    assert all(line.startswith("✓ ") for line in lines)
    assert line_with(lines, "Slack token works: @handoff in Handoff Demo")
    scopes_line = line_with(lines, "scopes:")
    assert "all 8 the app uses" in scopes_line and "channels:join" in scopes_line and "users:read" in scopes_line
    assert "HANDOFF_CHANNEL, DIGEST_CHANNEL #sales-handoff (C0HANDOFF): Handoff is a member" in "\n".join(lines)
    assert line_with(lines, "MARKETING_CHANNEL #marketing")
    assert line_with(lines, "MANAGER_IDS: every id is an active person (1: @mika)")
    assert line_with(lines, "SALES_REP_IDS: every id is an active person (2: @aiko, @ken)")
    assert line_with(lines, f"is at the latest migration ({LATEST})")
    assert line_with(lines, "LEAD_WEBHOOK_TOKEN is set (40 characters)")
    assert not any("HubSpot" in line or "event endpoint" in line for line in lines)  # neither is set


def test_a_missing_scope_is_named_with_what_needs_it(env, slack, capsys):
    slack.set_scopes(slack.default_scopes - {"files:write"} | {"im:write"})
    code, lines, _ = run_doctor(capsys)
    assert code == 1
    scope_line = line_with(lines, "scopes:")
    assert scope_line.startswith("✗ scopes: the token lacks files:write (files.completeUploadExternal, "
                                 "files.getUploadURLExternal)")
    assert "reinstall the app" in scope_line
    marketing = line_with(lines, "MARKETING_CHANNEL")
    assert marketing.startswith("✗") and "cannot upload there without the files:write scope" in marketing


def test_unused_granted_scopes_are_named_as_removable(env, slack, capsys):
    slack.set_scopes(slack.default_scopes | {"im:write", "chat:write.public"})
    code, lines, _ = run_doctor(capsys)
    assert code == 0
    assert "granted but unused, so they can be removed: chat:write.public, im:write" in line_with(lines, "scopes:")


def test_an_archived_channel(env, slack, capsys):
    slack.archive_channel(MARKETING)
    code, lines, _ = run_doctor(capsys)
    assert code == 1
    assert failed(lines) == [("✗ MARKETING_CHANNEL #marketing (C0MARKETING) is archived: unarchive it, or set "
                             "MARKETING_CHANNEL to a channel in use")]


def test_a_private_channel_handoff_is_not_in_names_the_invite(env, slack, capsys):
    slack.add_channel("GDEALS1", name="deals", private=True, member=False)
    slack.add_channel("C0SECRET", name="secret", private=True, member=False)
    env(HANDOFF_CHANNEL="GDEALS1", MARKETING_CHANNEL="C0SECRET")
    code, lines, _ = run_doctor(capsys)
    assert code == 1
    handoff = line_with(lines, "GDEALS1")
    assert handoff.startswith("✗ HANDOFF_CHANNEL, DIGEST_CHANNEL GDEALS1: Slack does not show this private channel")
    assert "type `/invite @Handoff` in it" in handoff
    marketing = line_with(lines, "C0SECRET")
    assert marketing.startswith("✗ MARKETING_CHANNEL C0SECRET: not found") and "`/invite @Handoff`" in marketing
    slack.add_channel("GDEALS1", private=True, member=True)  # invited
    slack.add_channel("C0SECRET", private=True, member=True)
    code, lines, _ = run_doctor(capsys)
    assert code == 0 and "Handoff is a member" in line_with(lines, "#deals")


def test_a_public_channel_handoff_is_not_in_is_fine_when_it_can_join(env, slack, capsys):
    slack.add_channel("C0DIGEST", name="weekly", member=False)
    env(DIGEST_CHANNEL="C0DIGEST")
    code, lines, _ = run_doctor(capsys)
    assert code == 0
    assert "✓ DIGEST_CHANNEL #weekly (C0DIGEST): a public channel Handoff is not in yet; it will join it" in \
        line_with(lines, "C0DIGEST")
    slack.set_scopes(slack.default_scopes - {"channels:join"})
    code, lines, _ = run_doctor(capsys)
    assert code == 1
    assert "cannot join it without the channels:join scope: type `/invite @Handoff` in #weekly" in \
        line_with(lines, "C0DIGEST")


def test_a_deleted_or_unknown_channel_and_a_name_instead_of_an_id(env, slack, capsys):
    slack.delete_channel(MARKETING)
    env(DIGEST_CHANNEL="#sales")
    code, lines, _ = run_doctor(capsys)
    assert code == 1
    assert line_with(lines, "C0MARKETING").startswith("✗ MARKETING_CHANNEL C0MARKETING: not found: the id is wrong "
                                                      "or the channel was deleted")
    assert line_with(lines, "'#sales'").startswith("✗ DIGEST_CHANNEL = '#sales' is not a channel id")
    env(MARKETING_CHANNEL=None)
    code, lines, _ = run_doctor(capsys)
    assert line_with(lines, "MARKETING_CHANNEL").startswith("✗ MARKETING_CHANNEL is not set")


def test_a_deactivated_person_an_unknown_id_and_a_bot(env, slack, capsys):
    slack.deactivate_user("UREP2")
    env(SALES_REP_IDS="UREP1,UREP2,UNOBODY1", MANAGER_IDS=f"{MANAGER},U0HANDOFF")
    code, lines, _ = run_doctor(capsys)
    assert code == 1
    assert failed(lines) == [
        "✗ MANAGER_IDS: U0HANDOFF (@handoff) is a bot, not a person: remove the id from MANAGER_IDS",
        "✗ SALES_REP_IDS: UREP2 (@ken) is deactivated: remove the id from SALES_REP_IDS",
        ("✗ SALES_REP_IDS: UNOBODY1 is not a user of this workspace: check the id (their profile → ⋮ → Copy "
        "member ID)"),
    ]


def test_the_webhook_token_must_be_set_and_long(env, capsys):
    env(LEAD_WEBHOOK_TOKEN="short-token")
    code, lines, _ = run_doctor(capsys)
    assert code == 1
    assert failed(lines) == [
        ("✗ LEAD_WEBHOOK_TOKEN has 11 characters, fewer than 32: use a long random one, e.g. from "
        "`python -c \"import secrets; print(secrets.token_urlsafe(32))\"`, and give it to the tools that send leads")]
    env(LEAD_WEBHOOK_TOKEN=None)
    code, lines, _ = run_doctor(capsys)
    assert code == 1 and failed(lines)[0].startswith("✗ LEAD_WEBHOOK_TOKEN is not set: POST /hooks/leads answers 503")


def test_a_database_behind_the_latest_migration(env, tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    command.upgrade(alembic_config(url), "0007")
    env(DATABASE_URL=url)
    code, lines, _ = run_doctor(capsys)
    assert code == 1
    assert failed(lines) == [f"✗ database {url} is at migration 0007, the latest is {LATEST}: run `python bot.py migrate`"]
    assert main(["migrate"]) == 0
    capsys.readouterr()
    code, lines, _ = run_doctor(capsys)
    assert code == 0 and line_with(lines, f"latest migration ({LATEST})")


def test_a_database_that_is_missing_or_down(env, tmp_path, capsys):
    missing = tmp_path / "nothing-here.db"
    env(DATABASE_URL=f"sqlite:///{missing}")
    code, lines, _ = run_doctor(capsys)
    assert code == 1 and failed(lines) == [(f"✗ database sqlite:///{missing}: the file does not exist yet: run "
                                           "`python bot.py migrate`")]
    assert not missing.exists()  # the doctor reads; it creates nothing
    env(DATABASE_URL=f"postgresql://handoff:secret@127.0.0.1:{closed_port()}/handoff")
    code, lines, _ = run_doctor(capsys)
    (line,) = failed(lines)
    assert line.startswith("✗ cannot reach the database at postgresql+psycopg://handoff:***@127.0.0.1:")
    assert "secret" not in line


@pytest.fixture
def bare_hubspot(_hubspot):
    """The HubSpot stand-in before `bot.py hubspot-setup`: none of Handoff's properties."""
    _hubspot.reset()
    yield _hubspot
    _hubspot.reset()


def test_hubspot_properties_missing_then_created(env, bare_hubspot, capsys):
    env(HUBSPOT_TOKEN=bare_hubspot.token, HUBSPOT_API_URL=bare_hubspot.url)
    code, lines, _ = run_doctor(capsys)
    assert code == 1
    (line,) = failed(lines)
    assert line.startswith(f"✗ HubSpot: {len(PROPERTIES)} handoff_* contact properties are missing (handoff_status, ")
    assert line.endswith("run `python bot.py hubspot-setup`")
    assert main(["hubspot-setup"]) == 0
    capsys.readouterr()
    code, lines, _ = run_doctor(capsys)
    assert code == 0 and line_with(lines, f"✓ HubSpot token works and all {len(PROPERTIES)} handoff_* contact "
                                          "properties exist")


def test_a_refused_or_unreachable_hubspot(env, bare_hubspot, capsys):
    env(HUBSPOT_TOKEN="pat-na1-wrong", HUBSPOT_API_URL=bare_hubspot.url)
    code, lines, _ = run_doctor(capsys)
    assert code == 1 and failed(lines)[0].startswith("✗ HubSpot refused HUBSPOT_TOKEN (HTTP 401)")
    env(HUBSPOT_TOKEN=bare_hubspot.token, HUBSPOT_API_URL=f"http://127.0.0.1:{closed_port()}")
    code, lines, _ = run_doctor(capsys)
    assert code == 1 and failed(lines)[0].startswith("✗ cannot reach HubSpot at http://127.0.0.1:")


def test_event_endpoints_reachable_or_not_named_by_host_only(env, receivers, capsys):
    unreachable = f"http://127.0.0.1:{closed_port()}/hooks/catch/123/s3cr3t-path"
    env(EVENT_WEBHOOK_URLS=f"{receivers[0].url},{unreachable}", EVENT_WEBHOOK_SECRET=EVENT_SECRET)
    code, lines, _ = run_doctor(capsys)
    assert code == 1
    assert line_with(lines, "event endpoint 1").startswith("✓ event endpoint 1 (127.0.0.1) answers (HTTP ")
    assert failed(lines) == [("✗ event endpoint 2 (127.0.0.1) is unreachable: the connection was refused or has no "
                             "route: check its URL in EVENT_WEBHOOK_URLS and that the receiver is up")]
    assert "s3cr3t" not in "\n".join(lines)
    assert receivers[0].deliveries == [] and receivers[0].rejected == []  # HEAD: taken for no event


def test_slack_unreachable_is_a_line_per_check_and_the_rest_is_still_checked(env, capsys):
    env(SLACK_API_URL=f"http://127.0.0.1:{closed_port()}/api/")
    code, lines, err = run_doctor(capsys)
    assert code == 1 and "Traceback" not in err
    assert line_with(lines, "(auth.test)").startswith("✗ cannot reach Slack at http://127.0.0.1:")
    assert line_with(lines, "scopes:") == "✗ scopes: not checked, since the token did not work (see above)"
    assert line_with(lines, "HANDOFF_CHANNEL").startswith("✗ HANDOFF_CHANNEL, DIGEST_CHANNEL C0HANDOFF: cannot "
                                                          "reach Slack at http://127.0.0.1:")
    assert "(conversations.info)" in line_with(lines, "MARKETING_CHANNEL")
    assert line_with(lines, "MANAGER_IDS").startswith("✗ MANAGER_IDS: cannot reach Slack")
    unreachable = [line for line in lines if "cannot reach Slack" in line]
    assert len(unreachable) == 1 + 2 + 2  # the token, two channels, two lists of people (once each)
    assert line_with(lines, "latest migration").startswith("✓") and line_with(lines, "LEAD_WEBHOOK_TOKEN").startswith("✓")


def test_a_refused_token(env, slack, capsys):
    slack.fail_next(1, 200, method="auth.test", error="invalid_auth")
    code, lines, _ = run_doctor(capsys)
    assert code == 1
    assert line_with(lines, "invalid_auth").startswith("✗ Slack refused SLACK_BOT_TOKEN (invalid_auth): copy the "
                                                       "Bot User OAuth Token")


def test_no_slack_token_says_what_to_set(env, capsys):
    env(SLACK_BOT_TOKEN=None)
    code, lines, _ = run_doctor(capsys)
    assert code == 1
    assert lines[0].startswith("✗ SLACK_BOT_TOKEN is not set") and "`make demo`" in lines[0]
    assert line_with(lines, "HANDOFF_CHANNEL") == \
        "✗ HANDOFF_CHANNEL, DIGEST_CHANNEL C0HANDOFF: not checked without SLACK_BOT_TOKEN"


def test_invalid_settings_are_a_line_not_a_traceback(env, capsys):
    env(MANAGER_IDS="not-an-id")
    code, lines, err = run_doctor(capsys)
    assert code == 1 and err == ""
    assert lines == [("✗ settings: MANAGER_IDS is invalid: 'not-an-id' is not a Slack user id (use comma-separated "
                     "Slack user ids such as U012AB3CD,U045EF6GH)")]


def test_in_japanese(env, slack, capsys):
    slack.archive_channel(MARKETING)
    env(LANGUAGE="ja")
    code, lines, _ = run_doctor(capsys)
    assert code == 1
    assert "スコープ: アプリが使う 8 個すべてがトークンにあります" in line_with(lines, "スコープ")
    assert failed(lines) == [("✗ MARKETING_CHANNEL #marketing(C0MARKETING)はアーカイブされています。アーカイブを"
                             "解除するか、MARKETING_CHANNEL を使用中のチャンネルにしてください")]


# `make run`: migrate, the doctor, serve ---------------------------------------------------------------------
def test_before_serve_shows_what_fails_but_lets_serve_start(env, slack, capsys):
    slack.archive_channel(MARKETING)
    code, lines, _ = run_doctor(capsys, "--before-serve")
    assert code == 0
    assert lines[-1] == ("1 check(s) failed (✗ above); serving anyway: fix them, then run `python bot.py doctor` "
                         "again")
    slack.reset()
    env(SLACK_BOT_TOKEN=None)  # without Slack, serve says what to set and points to `make demo`, as before
    code, lines, _ = run_doctor(capsys, "--before-serve")
    assert (code, lines) == (0, [])
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert "SLACK_BOT_TOKEN is not set" in err and "make demo" in err


def test_make_run_runs_the_doctor_between_migrate_and_serve():
    lines = (ROOT / "Makefile").read_text().split("\nrun: ", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    assert [line.strip() for line in lines] == ["$(PY) bot.py migrate", "$(PY) bot.py doctor --before-serve",
                                                "$(PY) bot.py serve"]


def test_the_command_in_a_process_exits_1_without_a_traceback(db):
    env = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
    env.update(SLACK_BOT_TOKEN="xoxb-test", SLACK_API_URL=f"http://127.0.0.1:{closed_port()}/api/",
               DATABASE_URL=db.url, HANDOFF_CHANNEL=HANDOFF, MARKETING_CHANNEL=MARKETING,
               LEAD_WEBHOOK_TOKEN=GOOD_TOKEN)
    done = subprocess.run([sys.executable, "bot.py", "doctor"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1 and "Traceback" not in done.stderr + done.stdout
    assert done.stdout.startswith("✗ cannot reach Slack at http://127.0.0.1:")


def test_checks_run_at_once_within_short_timeouts(env, slack):
    """A Slack that answers slowly costs about one timeout in all, not one per call."""
    import time

    from settings import load_settings

    slack.slow_down("users.info", 1.5)
    slack.slow_down("conversations.info", 1.5)
    started = time.monotonic()
    checks = doctor.run(load_settings(), timeout=1.0)
    assert time.monotonic() - started < 6
    assert checks[0].ok  # auth.test answers at once
    assert sum("cannot reach Slack" in c.text("en") for c in checks) == 4  # two channels, two lists of people


def test_a_routing_files_teams_are_checked_like_the_settings(env, slack, capsys, tmp_path):
    path = tmp_path / "routing.yml"
    path.write_text("teams:\n  inside-sales:\n    channel: C0ISALES\n    managers: [U0MGR1]\n    reps: [UREP1]\n"
                    "  field-sales:\n    channel: C0FSALES\n    reps: [UREP2, UGONE1]\nrules:\n  - team: inside-sales\n",
                    encoding="utf-8")
    env(ROUTING_FILE=str(path))
    slack.add_channel("C0ISALES", name="inside-sales")
    slack.add_channel("C0FSALES", name="field-sales")
    slack.archive_channel("C0FSALES")
    slack.add_user("U0MGR1", name="sato")
    code, lines, _ = run_doctor(capsys)
    assert code == 1
    assert line_with(lines, "ROUTING_FILE " + str(path)) == f"✓ ROUTING_FILE {path}: 2 teams, 1 rules, no mistakes"
    assert line_with(lines, "inside-sales (C0ISALES)").startswith("✓ ROUTING_FILE inside-sales #inside-sales")
    assert line_with(lines, "ROUTING_FILE inside-sales managers") == \
        "✓ ROUTING_FILE inside-sales managers: every id is an active person (1: @sato)"
    assert failed(lines) == [
        ("✗ ROUTING_FILE field-sales #field-sales (C0FSALES) is archived: unarchive it, or set ROUTING_FILE "
         "field-sales to a channel in use"),
        ("✗ ROUTING_FILE field-sales reps: UGONE1 is not a user of this workspace: check the id (their profile → ⋮ "
         "→ Copy member ID)"),
    ]


def test_a_routing_file_with_mistakes_is_one_line_pointing_to_routing_check(env, capsys, tmp_path):
    path = tmp_path / "routing.yml"
    path.write_text("teams:\n  A: {channel: X}\nrules:\n  - team: b\n", encoding="utf-8")
    env(ROUTING_FILE=str(path))
    code, lines, err = run_doctor(capsys)
    assert code == 1 and "Traceback" not in err
    assert failed(lines) == [(f"✗ ROUTING_FILE {path} has 3 mistake(s) (line(s) 2, 4): `python bot.py routing "
                             "check` names each; nothing starts until they are fixed")]


# Salesforce (docs/salesforce.md) -------------------------------------------------------------------------------
@pytest.fixture
def bare_salesforce(_salesforce, monkeypatch):
    """The Salesforce stand-in before `bot.py salesforce-setup`: none of Handoff's fields, no grant."""
    _salesforce.reset()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", _salesforce.ca_file)
    yield _salesforce
    _salesforce.reset()


def salesforce_env(env, sf, **extra):
    env(**{"SALESFORCE_LOGIN_URL": sf.url, "SALESFORCE_CLIENT_ID": sf.client_id,
           "SALESFORCE_CLIENT_SECRET": sf.client_secret, **extra})


def test_salesforce_setup_creates_the_fields_and_grants_them_once(env, bare_salesforce, capsys):
    from models import salesforce as mapping

    salesforce_env(env, bare_salesforce)
    code, lines, _ = run_doctor(capsys)
    assert code == 1
    assert line_with(lines, "Salesforce gives a token").startswith("✓ Salesforce gives a token at https://127.0.0.1:")
    (line,) = failed(lines)
    n = len(mapping.FIELDS) * 2 + 1
    assert line.startswith(f"✗ Salesforce: {n} Handoff fields are missing or hidden from the integration user "
                           "(Lead.Handoff_Status__c, ")
    assert "run `python bot.py salesforce-setup`" in line

    assert main(["salesforce-setup"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "created Lead.Handoff_Status__c" in out and "created Activity.Handoff_Event_Id__c" in out
    assert "created Handoff_Integration" in out
    assert "created Handoff_Integration: Task.Handoff_Event_Id__c" in out
    assert out[-1] == f"created Handoff_Integration → {bare_salesforce.integration_user_id}"
    created = {f["FullName"] for f in bare_salesforce.custom_fields()}
    assert "Activity.Handoff_Event_Id__c" in created and len(created) == n
    event_id = next(f for f in bare_salesforce.custom_fields() if f["FullName"] == "Activity.Handoff_Event_Id__c")
    assert event_id["Metadata"]["externalId"] is True and event_id["Metadata"]["unique"] is True

    assert main(["salesforce-setup"]) == 0  # again: everything is there, nothing is made twice
    again = capsys.readouterr().out.splitlines()
    assert all(line.endswith("exists already, left as it is") for line in again), again
    assert len(bare_salesforce.custom_fields()) == n

    code, lines, _ = run_doctor(capsys)
    assert code == 0, failed(lines)
    assert line_with(lines, "Handoff fields").startswith(f"✓ Salesforce: all {n} Handoff fields are visible")
    assert line_with(lines, "SALESFORCE_STATUS_MAP value").startswith("✓ Salesforce: every SALESFORCE_STATUS_MAP")
    assert line_with(lines, "API usage").startswith("✓ Salesforce API usage ")


def test_salesforce_doctor_names_a_status_the_org_lacks_and_usage_at_the_budget(env, bare_salesforce, capsys):
    bare_salesforce.grant_all()
    bare_salesforce.set_usage(85_000, 100_000)
    salesforce_env(env, bare_salesforce, SALESFORCE_STATUS_MAP="claimed=Working - Contacted,sql=Qualified")
    code, lines, _ = run_doctor(capsys)
    assert code == 1
    assert failed(lines) == [
        ("✗ Salesforce: SALESFORCE_STATUS_MAP names Qualified, not an active Lead Status of this org (active: "
        "Closed - Converted, Closed - Not Converted, Open - Not Contacted, Working - Contacted): change the map or "
        "the picklist"),
        ("✗ Salesforce API usage 85,003 of 100,000 today (85%) is at SALESFORCE_API_BUDGET (80%): writes wait until "
        "usage falls (look at the other integrations, or raise the budget)")]


def test_salesforce_refused_unreachable_or_unset(env, bare_salesforce, capsys):
    salesforce_env(env, bare_salesforce, SALESFORCE_CLIENT_SECRET="wrong")
    code, lines, _ = run_doctor(capsys)
    assert code == 1 and failed(lines)[0].startswith(f"✗ Salesforce refused Handoff at {bare_salesforce.url}: ")
    assert main(["salesforce-setup"]) == 2
    assert "Salesforce refused the login at" in capsys.readouterr().err
    salesforce_env(env, bare_salesforce, SALESFORCE_LOGIN_URL=f"https://127.0.0.1:{closed_port()}")
    code, lines, _ = run_doctor(capsys)
    assert code == 1 and failed(lines)[0].startswith("✗ cannot reach Salesforce at https://127.0.0.1:")
    salesforce_env(env, bare_salesforce, REQUESTS_CA_BUNDLE=None, SSL_CERT_FILE=None)  # the test CA not trusted
    code, lines, _ = run_doctor(capsys)
    assert code == 1 and failed(lines)[0].startswith(f"✗ Salesforce's certificate at {bare_salesforce.url} is "
                                                     "not trusted: ")
    assert main(["salesforce-setup"]) == 2
    assert "Handoff always verifies it" in capsys.readouterr().err
    env(SALESFORCE_LOGIN_URL=None)
    assert main(["salesforce-setup"]) == 2
    err = capsys.readouterr().err
    assert "SALESFORCE_LOGIN_URL, SALESFORCE_CLIENT_ID and SALESFORCE_CLIENT_SECRET are not set" in err
    assert err.count("\n") == 1  # one line, no traceback
