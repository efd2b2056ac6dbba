"""Personal data end to end (docs/privacy.md): `privacy export` gives everything Handoff holds about a person,
read from what the app stored while it worked (a lead from the webhook, its card in the Slack stand-in, a claim
and an outcome clicked in Slack, events delivered to a verifying receiver)."""
from __future__ import annotations

import json

from blocks.ids import ActionId
from tests.conftest import EVENT_SECRET, HANDOFF, wait_until
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
    click(app, ActionId.CLAIM, lead_id)
    app.drain()
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
