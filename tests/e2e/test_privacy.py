"""Personal data end to end (docs/privacy.md): `privacy export` gives everything Handoff holds about a person,
read from what the app stored while it worked (a lead from the webhook, its card in the Slack stand-in, a claim
and an outcome clicked in Slack, events delivered to a verifying receiver)."""
from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from blocks.ids import ActionId
from jobs.scheduler import retention, sla_sweep, weekly_digest
from models.tables import Lead
from standin.server import dm_channel
from tests.conftest import EVENT_SECRET, HANDOFF, MARKETING, FakeClock, wait_until
from tests.e2e.test_events import click, new_mql
from tests.test_cli import run_bot

REP = "UREP1"


def export(db, email: str):
    res = run_bot("privacy", "export", email, env_extra={"DATABASE_URL": db.url})
    return res, (json.loads(res.stdout) if res.returncode == 0 else None)


def test_export_holds_the_lead_its_history_its_messages_and_its_deliveries(make_app, receivers, slack, db):
    app = make_app(EVENT_WEBHOOK_URLS=receivers[0].url, EVENT_WEBHOOK_SECRET=EVENT_SECRET)
    lead_id = new_mql(app, email="Taro.Yamada@Example.co.jp", name="山田 太郎", company="Acme",
                      title="部長", attributes={"industry": "製造"})
    claim(app, db, lead_id)
    assert receivers[0].wait_count(2)

    res, doc = export(db, "taro.yamada@example.CO.JP")  # in any case form
    assert res.returncode == 0, res.stderr
    assert doc["email"] == "taro.yamada@example.CO.JP" and doc["exported_at"]
    [lead] = doc["leads"]
    fields = lead["fields"]
    assert (fields["id"], fields["email"], fields["name"], fields["company"], fields["title"]) == \
        (lead_id, "Taro.Yamada@Example.co.jp", "山田 太郎", "Acme", "部長")
    assert fields["attributes"] == {"industry": "製造"} and fields["claimed_by"] == REP
    assert all(h["at"] and h["actor"] for h in lead["history"])
    assert any(h["action"] == "claimed" and h["actor"] == REP for h in lead["history"])
    [card] = [m for m in lead["slack_messages"] if m["kind"] == "card"]
    assert card["channel"] == HANDOFF and card["ts"]
    assert wait_until(lambda: {d["type"] for d in export(db, "taro.yamada@example.co.jp")[1]["leads"][0]
                               ["event_deliveries"] if d["status"] == "sent"} >= {"lead.mql", "lead.claimed"})
    delivered = export(db, "taro.yamada@example.co.jp")[1]["leads"][0]["event_deliveries"]
    assert {d["url"] for d in delivered} == {receivers[0].url}
    assert all(d["body"]["data"]["lead"]["id"] == lead_id for d in delivered)
    # The document is UTF-8 JSON as written, Japanese kept as it is.
    assert "山田 太郎" in res.stdout


def test_export_of_someone_not_held_is_empty_and_a_bad_address_is_one_line(db):
    res, doc = export(db, "nobody@example.com")
    assert res.returncode == 0, res.stderr
    assert doc["leads"] == [] and doc["email"] == "nobody@example.com"

    res, _ = export(db, "not-an-email")
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0 and "not an email address" in res.stderr
    assert "Traceback" not in res.stderr and res.stdout == ""


# Erasure ----------------------------------------------------------------------------------------------------------
PRIVACY_TOKEN = "privacy-" + "p" * 40
PERSON = {"email": "Hanako.Sato@Example.co.jp", "name": "佐藤 花子", "company": "Sato Kogyo", "title": "Director",
          "external_id": "crm-778", "attributes": {"industry": "Precision Optics", "phone": "+81-3-5555-0101"}}
NOTE = "She said the budget is frozen until April"
NEEDLES = ["hanako.sato@example.co.jp", "佐藤 花子", "sato kogyo", "director", "precision optics", "+81-3-5555-0101",
           "budget is frozen"]


def claim(app, db, lead_id: int) -> None:
    """Click Claim as REP and wait until it is applied (on PostgreSQL the click queue applies it just after)."""
    click(app, ActionId.CLAIM, lead_id)

    def claimed():
        with db.begin() as s:
            return s.get(Lead, lead_id).claimed_by == REP
    assert wait_until(claimed)
    app.drain()


def erase_over_http(app, body: dict, token: str = PRIVACY_TOKEN):
    return app.request("/hooks/privacy", json.dumps(body),
                       {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})


def personal_text_left(db, needles: list[str]) -> list[tuple[str, str]]:
    """Every (table.column, value) in the database whose text holds one of `needles` (any case): each text and
    JSON column of every table, every row."""
    from sqlalchemy import JSON, String, Text, inspect

    from models.tables import Base

    found = []
    with db.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            cols = [c for c in table.columns if isinstance(c.type, (String, Text, JSON))
                    or isinstance(getattr(c.type, "impl", None), (String, Text, JSON))]
            if not cols or not inspect(conn).has_table(table.name):
                continue
            for row in conn.execute(select(*cols)):
                for col, value in zip(cols, row, strict=True):
                    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
                    if value is not None and any(n in text.lower() for n in needles):
                        found.append((f"{table.name}.{col.name}", text[:200]))
    return found


@pytest.fixture
def earlier(slack) -> set:
    """The messages other tests left in the shared Slack stand-in (a card of theirs may name the same company)."""
    return set(slack.messages)


def slack_text_left(slack, needles: list[str], earlier: set) -> list[str]:
    """Every message this test's app put in the Slack stand-in's channels and DMs that shows one of `needles`."""
    out = []
    for (channel, ts), msg in list(slack.messages.items()):
        if (channel, ts) in earlier:
            continue
        text = json.dumps({"text": msg.get("text"), "blocks": msg.get("blocks")}, ensure_ascii=False).lower()
        if any(n in text for n in needles):
            out.append(f"{channel}/{ts}: {text[:200]}")
    return out


def test_erase_over_http_removes_the_person_from_every_table_and_every_slack_message(make_app, receivers, slack,
                                                                                        db, earlier):
    app = make_app(EVENT_WEBHOOK_URLS=receivers[0].url, EVENT_WEBHOOK_SECRET=EVENT_SECRET, PRIVACY_TOKEN=PRIVACY_TOKEN)
    lead_id = new_mql(app, **PERSON)
    other = new_mql(app, email="kept@example.com", name="Kept Person", company="Kept Co")
    claim(app, db, lead_id)
    status, body = app.post_status({"external_id": "crm-778", "status": "lost", "reason": "no_budget", "note": NOTE})
    assert status == 200 and body["results"][0]["applied"], body
    app.drain()
    assert slack.wait_for(lambda calls: any(c.method == "chat.postMessage" and c.params.get("channel") == MARKETING
                                            for c in calls))
    assert slack_text_left(slack, NEEDLES, earlier) and personal_text_left(db, NEEDLES)  # everywhere before
    with db.begin() as s:
        before = s.get(Lead, lead_id)
        kept = {k: getattr(before, k) for k in ("claimed_at", "claimed_by", "lost_at", "lost_reason", "mql_at",
                                                 "claim_due", "score", "source", "created_at")}

    status, body = erase_over_http(app, {"action": "erase", "email": "HANAKO.sato@example.co.jp"})  # any case
    assert (status, body) == (200, {"erased": 1})
    app.drain()
    assert wait_until(lambda: not slack_text_left(slack, NEEDLES, earlier), timeout=15), \
        slack_text_left(slack, NEEDLES, earlier)
    assert personal_text_left(db, NEEDLES) == []
    with db.begin() as s:
        after = s.get(Lead, lead_id)
        assert {k: getattr(after, k) for k in kept} == kept and after.erased_at is not None
        assert s.get(Lead, other).name == "Kept Person"  # nobody else is touched
    # the endpoints hear of it, with nothing but the ids
    assert wait_until(lambda: "lead.erased" in [d.type for d in receivers[0].events()])
    [erased] = [d for d in receivers[0].events() if d.type == "lead.erased"]
    assert erased.body["data"] == {"lead": {"id": lead_id, "external_id": "crm-778"}}

    # its buttons answer privately that it was erased, and change nothing
    ephemerals = len(slack.calls_to("chat.postEphemeral"))
    click(app, ActionId.CLAIM, lead_id, user="UREP9")
    assert slack.wait_for(lambda calls: sum(c.method == "chat.postEphemeral" for c in calls) > ephemerals)
    assert "erased" in slack.calls_to("chat.postEphemeral")[-1].params["text"]
    with db.begin() as s:
        assert s.get(Lead, lead_id).claimed_by == REP

    # twice is harmless; the log proves it without the email
    assert erase_over_http(app, {"action": "erase", "external_id": "crm-778"}) == (200, {"erased": 0})
    res = run_bot("privacy", "log", env_extra={"DATABASE_URL": db.url})
    assert res.returncode == 0 and f"http  1 lead(s): {lead_id}" in res.stdout
    assert "hanako" not in res.stdout.lower()


def test_the_privacy_endpoint_answers_only_its_own_token(make_app, db):
    app = make_app()  # PRIVACY_TOKEN unset: the endpoint is off
    assert erase_over_http(app, {"action": "erase", "email": "a@example.com"})[0] == 404
    app = make_app(PRIVACY_TOKEN=PRIVACY_TOKEN)
    lead_id = new_mql(app, email="keep.me@example.com")
    from tests.conftest import HOOK_TOKEN
    for token in ("wrong-" + "x" * 40, HOOK_TOKEN, ""):
        status, _ = erase_over_http(app, {"action": "erase", "email": "keep.me@example.com"}, token=token)
        assert status == 401
    status, body = erase_over_http(app, {"action": "export", "email": "keep.me@example.com"})
    assert status == 422 and body["errors"][0]["field"] == "action"
    status, body = erase_over_http(app, {"action": "erase", "email": "keep.me@example.com", "external_id": "x"})
    assert status == 422 and body["errors"][0]["field"] == "email"
    with db.begin() as s:
        assert s.get(Lead, lead_id).erased_at is None and s.get(Lead, lead_id).email == "keep.me@example.com"


def test_a_suppressed_email_is_dropped_from_a_batch_and_nothing_of_it_is_kept(make_app, slack, db):
    app = make_app(PRIVACY_TOKEN=PRIVACY_TOKEN)
    new_mql(app, email="gone@example.com", name="Gone Person")
    assert erase_over_http(app, {"action": "erase", "email": "gone@example.com", "suppress": True}) == \
        (200, {"erased": 1})
    app.drain()
    posts = len(slack.calls_to("chat.postMessage"))
    status, body = app.post_leads({"leads": [{"email": "GONE@example.com", "score": 90, "name": "Gone Again"},
                                             {"email": "new@example.com", "score": 90, "name": "New One"},
                                             {"email": "Gone@Example.com", "score": 95}]})  # two case forms
    assert status == 201, body
    assert body["leads"][0] == body["leads"][2] == {"status": "suppressed", "created": False}
    assert body["leads"][1]["created"] and (body["created"], body["updated"], body["suppressed"]) == (1, 0, 2)
    status, body = app.post_leads({"email": "gone@EXAMPLE.com", "score": 90})
    assert (status, body) == (200, {"status": "suppressed", "created": False})
    app.drain()
    assert len(slack.calls_to("chat.postMessage")) == posts + 1  # the new one's card only
    assert personal_text_left(db, ["gone@example.com", "gone person", "gone again"]) == []


# Retention, DMs and hostile cases ---------------------------------------------------------------------------------
T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # Monday 10:00 in Tokyo


def test_retention_erases_each_stale_lead_once_and_logs_it(make_app, db):
    clock = FakeClock(T0)
    app = make_app(now=clock, RETENTION_DAYS=30)
    stale_id = new_mql(app, email="stale@example.com", name="Stale Person", company="Old Co")
    active_id = new_mql(app, email="active@example.com", name="Active Person", company="Busy Co")
    clock.set(T0 + timedelta(days=20))
    assert app.post_leads({"email": "active@example.com", "score": 90})[0] == 200  # a webhook update is activity
    clock.set(T0 + timedelta(days=31))
    assert retention(app.runtime.services) == 1
    with db.begin() as s:
        assert s.get(Lead, stale_id).erased_at is not None and s.get(Lead, active_id).erased_at is None
    assert retention(app.runtime.services) == 0  # once
    clock.set(T0 + timedelta(days=51))
    assert retention(app.runtime.services) == 1
    assert personal_text_left(db, ["stale@example.com", "stale person", "old co", "active person", "busy co"]) == []
    res = run_bot("privacy", "log", env_extra={"DATABASE_URL": db.url})
    lines = res.stdout.strip().splitlines()
    assert [line.split()[1] for line in lines] == ["retention", "retention"]
    assert f"1 lead(s): {active_id}" in lines[0] and f"1 lead(s): {stale_id}" in lines[1]


def test_a_dm_to_the_owner_is_edited_in_its_own_conversation(make_app, slack, db, earlier):
    clock = FakeClock(T0)
    app = make_app(now=clock, PRIVACY_TOKEN=PRIVACY_TOKEN)
    lead_id = new_mql(app, email="dm.me@example.com", name="Direct Person", company="DM Co")
    claim(app, db, lead_id)
    for hours in range(1, 30 * 24, 6):  # until the owner was nagged in a DM about contacting them
        clock.set(T0 + timedelta(hours=hours))
        sla_sweep(app.runtime.services)
        app.drain()
        if any(c.params.get("channel") == REP for c in slack.calls_to("chat.postMessage")):
            break
    assert any(channel == dm_channel(REP) for channel, _ts in slack.messages)
    assert slack_text_left(slack, ["dm co"], earlier)
    assert erase_over_http(app, {"action": "erase", "email": "dm.me@example.com"}) == (200, {"erased": 1})
    app.drain()
    assert wait_until(lambda: not slack_text_left(slack, ["dm co", "direct person", "dm.me@example.com"], earlier))
    assert not [c for c in slack.rejected if c.method == "chat.update"]  # never by the user's id


def test_an_erase_while_slack_is_down_lands_its_edits_once_slack_is_back(make_app, slack, db, earlier):
    app = make_app(PRIVACY_TOKEN=PRIVACY_TOKEN)
    lead_id = new_mql(app, email="outage@example.com", name="Outage Person", company="Outage Co")
    claim(app, db, lead_id)
    slack.fail_next(6, 503)
    assert erase_over_http(app, {"action": "erase", "email": "outage@example.com"}) == (200, {"erased": 1})
    assert personal_text_left(db, ["outage person", "outage co"]) == []  # the database part is done at once
    assert wait_until(lambda: not slack_text_left(slack, ["outage person", "outage co"], earlier), timeout=30)


def test_a_card_still_queued_when_its_lead_is_erased_is_posted_without_the_person(make_app, slack, db, earlier):
    app = make_app(PRIVACY_TOKEN=PRIVACY_TOKEN)
    slack.fail_next(3, 429, method="chat.postMessage", retry_after=1)  # the card is rate limited
    status, body = app.post_leads({"email": "queued@example.com", "score": 90, "name": "Queued Person",
                                   "company": "Queued Co"})
    assert status == 201
    assert erase_over_http(app, {"action": "erase", "email": "queued@example.com"}) == (200, {"erased": 1})
    assert wait_until(lambda: any(c.params.get("channel") == HANDOFF for c in slack.calls_to("chat.postMessage")),
                      timeout=30)
    app.drain()
    assert not slack_text_left(slack, ["queued person", "queued co", "queued@example.com"], earlier)
    [card] = [c for c in slack.calls_to("chat.postMessage") if c.params.get("channel") == HANDOFF]
    assert f"#{body['id']}" in card.params["text"]


def test_two_erasures_at_once_and_a_claim_during_one_end_in_one_erased_lead(make_app, receivers, slack, db, earlier):
    app = make_app(EVENT_WEBHOOK_URLS=receivers[0].url, EVENT_WEBHOOK_SECRET=EVENT_SECRET, PRIVACY_TOKEN=PRIVACY_TOKEN)
    lead_id = new_mql(app, email="race@example.com", name="Race Person", company="Race Co")
    answers = []

    def erasing():
        answers.append(erase_over_http(app, {"action": "erase", "email": "RACE@example.com"}))

    threads = [threading.Thread(target=erasing) for _ in range(3)]
    threads.append(threading.Thread(target=click, args=(app, ActionId.CLAIM, lead_id)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(a[1]["erased"] for a in answers) == [0, 0, 1] and {a[0] for a in answers} == {200}
    app.drain()
    assert wait_until(lambda: "lead.erased" in [d.type for d in receivers[0].events()])
    assert [d.type for d in receivers[0].events()].count("lead.erased") == 1
    assert personal_text_left(db, ["race@example.com", "race person", "race co"]) == []
    assert wait_until(lambda: not slack_text_left(slack, ["race person", "race co"], earlier))
    res = run_bot("privacy", "log", env_extra={"DATABASE_URL": db.url})
    assert len(res.stdout.strip().splitlines()) == 1  # one erasure: the others found nobody left to erase


def test_a_digest_that_named_the_lead_is_edited_to_its_number_and_keeps_the_rest(make_app, slack, db, earlier):
    clock = FakeClock(T0)
    app = make_app(now=clock, PRIVACY_TOKEN=PRIVACY_TOKEN)
    gone = new_mql(app, email="digest.gone@example.com", name="Digest Gone", company="Vanishing KK")
    new_mql(app, email="digest.kept@example.com", name="Digest Kept", company="Staying KK")
    clock.set(T0 + timedelta(days=7, minutes=5))  # the next Monday 09:05 in Tokyo: both are overdue, unclaimed
    assert weekly_digest(app.runtime.services)
    app.drain()

    def digest_text() -> str:
        texts = [json.dumps(m["blocks"], ensure_ascii=False) for (channel, _ts), m in slack.messages.items()
                 if channel == HANDOFF and (m.get("text") or "").startswith("Weekly handoff digest")
                 and "Staying KK" in json.dumps(m["blocks"], ensure_ascii=False)]  # this test's (Slack is shared)
        assert len(texts) <= 1
        return texts[0] if texts else ""
    assert wait_until(lambda: "Vanishing KK" in digest_text() and "Staying KK" in digest_text())
    before = digest_text()
    assert erase_over_http(app, {"action": "erase", "email": "digest.gone@example.com"}) == (200, {"erased": 1})
    app.drain()
    assert wait_until(lambda: "Vanishing KK" not in digest_text())
    after = digest_text()
    assert "Staying KK" in after and f"#{gone}" in after
    assert before.replace("Vanishing KK", "—") == after  # the same digest, that one name taken out
    assert not slack_text_left(slack, ["vanishing kk", "digest gone", "digest.gone@example.com"], earlier)


def test_privacy_erase_on_the_command_line_by_email_or_external_id(make_app, db):
    app = make_app()
    first = new_mql(app, email="cli.one@example.com", name="Cli One", external_id="ma-1")
    second = new_mql(app, email="cli.two@example.com", name="Cli Two", external_id="ma-2")
    env = {"DATABASE_URL": db.url}
    res = run_bot("privacy", "erase", "CLI.ONE@example.com", "--yes", env_extra=env)
    assert res.returncode == 0 and f"erased 1 lead(s): {first}" in res.stdout, res.stderr
    res = run_bot("privacy", "erase", "--external-id", "ma-2", "--suppress", env_extra=env)  # no terminal: no question
    assert res.returncode == 0 and f"erased 1 lead(s): {second}" in res.stdout and "suppressed" in res.stdout
    res = run_bot("privacy", "erase", "cli.one@example.com", "--yes", env_extra=env)
    assert res.returncode == 0 and "erased 0 lead(s)" in res.stdout  # nothing held any more: still 0
    for bad in (["erase"], ["erase", "not-an-email"], ["erase", "--external-id"], ["shred", "a@example.com"]):
        res = run_bot("privacy", *bad, env_extra=env)
        assert res.returncode == 2 and res.stderr.count("\n") == 1 and "Traceback" not in res.stderr, bad
    assert app.post_leads({"email": "cli.two@example.com", "score": 90}) == \
        (200, {"status": "suppressed", "created": False})
    assert app.post_leads({"email": "cli.one@example.com", "score": 90})[1]["created"]  # not suppressed: a new lead
    res = run_bot("privacy", "log", env_extra=env)
    assert res.stdout.count("cli  1 lead(s)") == 2 and "(email suppressed)" in res.stdout
    assert "cli.one" not in res.stdout and "cli.two" not in res.stdout


def test_an_import_leaves_a_suppressed_email_out(make_app, db, tmp_path):
    app = make_app(PRIVACY_TOKEN=PRIVACY_TOKEN)
    new_mql(app, email="never.again@example.com", name="Never Again")
    assert erase_over_http(app, {"action": "erase", "email": "never.again@example.com", "suppress": True}) == \
        (200, {"erased": 1})
    path = tmp_path / "leads.csv"
    path.write_text("email,score,name\nNEVER.AGAIN@example.com,90,Never Again\nfresh@example.com,40,Fresh One\n",
                    encoding="utf-8")
    res = run_bot("import-leads", str(path), env_extra={"DATABASE_URL": db.url}, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "1 row(s) of suppressed emails left out" in res.stderr and "never.again" not in res.stderr.lower()
    assert personal_text_left(db, ["never.again@example.com", "never again"]) == []
    with db.begin() as s:
        assert s.scalar(select(Lead.id).where(Lead.email_norm == "fresh@example.com")) is not None
