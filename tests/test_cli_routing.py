"""`bot.py routing check` and a routing file read at start (docs/routing.md): a file with mistakes names each
with its line and stops every command before it does anything; a good one is listed team by team."""
from __future__ import annotations

from tests.models.test_routing_file import EXAMPLE
from tests.test_cli import run_bot

BAD = "teams:\n  A: {channel: X}\nrules:\n  - when: {score: 1}\n    team: b\n"


def test_check_lists_the_teams_and_rules_of_a_good_file(tmp_path):
    path = tmp_path / "routing.yml"
    path.write_text(EXAMPLE, encoding="utf-8")
    res = run_bot("routing", "check", str(path), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == f"{path}: no mistakes; 2 teams, 3 rules"
    assert any(line.startswith("  inside-sales (インサイドセールス): channel C0ISALES") and
               line.endswith("SQLs handed to field-sales") for line in lines)
    assert "  1 (line 18): score >=90, attributes.employees >=1000 → field-sales (field-sales)" in lines
    assert "  3 (line 22): every lead → inside-sales (インサイドセールス)" in lines
    ja = run_bot("routing", "check", str(path), cwd=tmp_path, env_extra={"LANGUAGE": "ja"})
    assert ja.returncode == 0 and "  3(22 行目): すべてのリード → inside-sales(インサイドセールス)" in ja.stdout


def test_check_names_every_mistake_with_its_line(tmp_path):
    path = tmp_path / "routing.yml"
    path.write_text(BAD, encoding="utf-8")
    res = run_bot("routing", "check", str(path), cwd=tmp_path)
    assert res.returncode == 2 and res.stdout == ""
    assert f"{path}:2: team id `A` must be lower-case letters" in res.stderr
    assert f"{path}:2: channel `X` of team `A` does not look like a Slack channel id" in res.stderr
    assert f"{path}:4: no rule matches every lead" in res.stderr
    assert f"{path}:5: rule 1 names a team that does not exist: `b`" in res.stderr
    assert "Traceback" not in res.stderr


def test_a_routing_file_with_mistakes_stops_every_command_at_start(db, tmp_path):
    path = tmp_path / "routing.yml"
    path.write_text(BAD, encoding="utf-8")
    env = {"DATABASE_URL": db.url, "ROUTING_FILE": str(path)}
    for command in (["kpi", "week"], ["migrate"], ["run-job", "sla-sweep"]):
        res = run_bot(*command, env_extra=env, cwd=tmp_path)
        assert res.returncode == 2, command
        assert res.stderr.startswith(f"error: ROUTING_FILE {path} has 4 mistake(s); nothing was started:\n")
        assert f"{path}:5: rule 1 names a team" in res.stderr
    missing = run_bot("kpi", "week", env_extra={**env, "ROUTING_FILE": str(tmp_path / "nope.yml")}, cwd=tmp_path)
    assert missing.returncode == 2
    assert missing.stderr == f"error: ROUTING_FILE {tmp_path / 'nope.yml'} cannot be read: No such file or directory\n"


def test_check_without_a_file_says_how_to_give_one(tmp_path):
    res = run_bot("routing", "check", cwd=tmp_path)
    assert res.returncode == 2 and "routing check FILE" in res.stderr
    assert run_bot("routing", cwd=tmp_path).stderr == "error: usage: bot.py routing check [FILE] | routing explain 'LEAD-JSON'\n"


def explain(db, tmp_path, lead: dict, **env):
    import json

    path = tmp_path / "routing.yml"
    path.write_text(EXAMPLE, encoding="utf-8")
    res = run_bot("routing", "explain", json.dumps(lead), cwd=tmp_path,
                  env_extra={"DATABASE_URL": db.url, "ROUTING_FILE": str(path), **env})
    assert res.returncode == 0, res.stderr
    return res.stdout.splitlines()


def test_explain_names_the_rule_team_sla_and_who_gets_it_first(db, tmp_path):
    assert explain(db, tmp_path, {"email": "cio@big.example", "score": 95, "attributes": {"employees": 5000}}) == [
        "rule: 1", "team: field-sales", "sla_claim_minutes: 480", "offered_first: anyone",
        "why: rule 1 (line 18) is the first that matches: score >=90, attributes.employees >=1000"]
    lines = explain(db, tmp_path, {"email": "a@small.example", "score": 70, "source": "Seminar"})
    assert lines[:4] == ["rule: 2", "team: inside-sales", "sla_claim_minutes: 60", "offered_first: U0REP1"]
    below = explain(db, tmp_path, {"email": "a@small.example", "score": 10})
    assert below[0] == "rule: 3" and "below MQL_SCORE_THRESHOLD 60" in below[-1]


def test_explain_follows_the_account_owner_and_stores_nothing(db, tmp_path):
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import func, select

    from models.tables import AuditEvent, Lead, OutOfOffice
    from tests.conftest import add_lead

    yesterday = datetime.now(UTC) - timedelta(days=1)
    add_lead(db, mql=yesterday, email="cfo@acme.co.jp", email_norm="cfo@acme.co.jp", team="field-sales",
             claimed_at=yesterday, claimed_by="U0REP8")
    lines = explain(db, tmp_path, {"email": "new@acme.co.jp", "score": 70, "source": "webinar"})
    assert lines[:4] == ["rule: 2", "team: field-sales", "sla_claim_minutes: 480", "offered_first: U0REP8"]
    assert lines[4] == ("why: U0REP8 claimed a lead from acme.co.jp within the last 180 days: the lead goes to "
                        "their team (field-sales) and is offered to them first")
    with db.begin() as s:
        s.add(OutOfOffice(user_id="U0REP8", until=datetime.now(UTC).date() + timedelta(days=3), set_by="U0REP8",
                          set_at=yesterday))
    away = explain(db, tmp_path, {"email": "new@acme.co.jp", "score": 70, "source": "webinar"})
    assert away[3] == "offered_first: anyone" and away[4].endswith("so the team's own assignment applies")
    with db.begin() as s:
        assert s.scalar(select(func.count()).select_from(Lead)) == 1
        assert s.scalar(select(func.count()).select_from(AuditEvent)) == 0


def test_explain_refuses_what_the_webhook_refuses(db, tmp_path):
    path = tmp_path / "routing.yml"
    path.write_text(EXAMPLE, encoding="utf-8")
    env = {"DATABASE_URL": db.url, "ROUTING_FILE": str(path)}
    res = run_bot("routing", "explain", '{"email": "nope", "score": 400}', cwd=tmp_path, env_extra=env)
    assert res.returncode == 2 and res.stderr.startswith("error: email: ") and "score: " in res.stderr
    res = run_bot("routing", "explain", "{x", cwd=tmp_path, env_extra=env)
    assert res.returncode == 2 and res.stderr.startswith("error: LEAD-JSON is not JSON")
    res = run_bot("routing", "explain", "{}", cwd=tmp_path, env_extra={"DATABASE_URL": db.url})
    assert res.returncode == 2 and "ROUTING_FILE is not set" in res.stderr


def test_an_import_routes_each_mql_row_by_the_rules_or_its_team_column(db, slack, tmp_path):
    from datetime import UTC, datetime

    import pytest
    from sqlalchemy import select

    from models.importer import ImportFailed, import_csv
    from models.leads import Policy
    from models.tables import Lead
    from tests.conftest import make_settings

    path = tmp_path / "routing.yml"
    path.write_text(EXAMPLE, encoding="utf-8")
    settings = make_settings(db.url, slack.url, ROUTING_FILE=str(path))
    policy = Policy.from_settings(settings, post_cards=False)
    now = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
    csv = tmp_path / "leads.csv"
    csv.write_text("email,score,source,mql_at,team\n"
                   "a@one.example,80,webinar,2026-11-30T10:00:00,\n"
                   "b@two.example,80,webinar,2026-11-30T10:00:00,field-sales\n"
                   "c@three.example,20,ads,,\n", encoding="utf-8")
    assert import_csv(db, csv, policy, settings.tz, now) == (3, 0)
    with db.begin() as s:
        leads = {lead.email: lead for lead in s.scalars(select(Lead))}
    assert (leads["a@one.example"].team, leads["a@one.example"].routed_by) == ("inside-sales", "rule:2")
    assert (leads["b@two.example"].team, leads["b@two.example"].routed_by) == ("field-sales", "import")
    assert leads["c@three.example"].team is None
    # each team's SLA from the MQL: inside sales 60 business minutes, field sales 480 (Monday 10:00 Tokyo)
    assert leads["a@one.example"].claim_due.isoformat() == "2026-11-30T02:00:00+00:00"
    assert leads["b@two.example"].claim_due.isoformat() == "2026-11-30T09:00:00+00:00"

    csv.write_text("email,score,mql_at,team\nd@four.example,80,2026-11-30T10:00:00,nobody\n"
                   "e@five.example,80,,inside-sales\n", encoding="utf-8")
    with pytest.raises(ImportFailed) as failed:
        import_csv(db, csv, policy, settings.tz, now)
    assert [(line, name, key) for line, name, key, _ in failed.value.problems] == \
        [(2, "team", "field.team"), (3, "team", "field.team_needs_mql")]
    no_routing = Policy.from_settings(make_settings(db.url, slack.url), post_cards=False)
    csv.write_text("email,score,mql_at,team\nd@four.example,80,2026-11-30T10:00:00,field-sales\n", encoding="utf-8")
    with pytest.raises(ImportFailed) as failed:
        import_csv(db, csv, no_routing, settings.tz, now)
    assert [(line, key) for line, _, key, _ in failed.value.problems] == [(2, "field.team_no_routing")]
