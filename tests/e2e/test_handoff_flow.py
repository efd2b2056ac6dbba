"""End to end: webhook lead → card in the channel → signed click → card updated in place."""
from __future__ import annotations

import time

from sqlalchemy import func, select

from blocks.ids import ActionId
from models.tables import AuditEvent, Lead
from tests.conftest import HANDOFF, wait_until


def card_ts(db, lead_id):
    with db.begin() as s:
        return s.get(Lead, lead_id).card_ts


def buttons(call):
    return [e for b in call.params["blocks"] if b["type"] == "actions" for e in b["elements"]]


def test_mql_gets_one_card_and_claim_updates_it(app, slack, db):
    status, body = app.post_leads({"email": "aiko@example.jp", "score": 80, "name": "Aiko Sato",
                                   "company": "Sato Kogyo", "title": "CTO", "source": "webinar",
                                   "attributes": {"visited": "pricing page x3"}})
    assert status == 201 and body["status"] == "mql" and body["created"] is True
    posts = slack.wait_calls("chat.postMessage", 1)
    assert len(posts) == 1 and posts[0].params["channel"] == HANDOFF
    ids = [b["action_id"] for b in buttons(posts[0])]
    assert ActionId.CLAIM in ids and ActionId.DISQUALIFY in ids
    assert "pricing page x3" in str(posts[0].params["blocks"])
    assert wait_until(lambda: card_ts(db, body["id"]))

    started = time.monotonic()
    status, _ = app.click(ActionId.CLAIM, body["id"], "UREP1", posts[0].params.get("ts", "1.0"))
    assert status == 200 and time.monotonic() - started < 3
    updates = slack.wait_calls("chat.update", 1)
    assert len(updates) == 1
    assert "<@UREP1>" in str(updates[0].params["blocks"])
    # the claim button is gone; the owner's controls took its place
    controls = [e["action_id"] for b in updates[0].params["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert ActionId.CLAIM not in controls and ActionId.CONTACTED in controls and ActionId.LOST in controls
    time.sleep(0.3)  # nothing else should follow
    assert len(slack.calls_to("chat.update")) == 1
    assert len(slack.calls_to("chat.postMessage")) == 1


def test_lead_under_threshold_waits_for_a_score_update(app, slack, db):
    status, body = app.post_leads({"email": "low@example.com", "score": 30, "external_id": "crm-1"})
    assert status == 201 and body["status"] == "new"
    app.drain()
    assert slack.calls_to("chat.postMessage") == []
    status, body2 = app.post_leads({"email": "low@example.com", "score": 75, "external_id": "crm-1"})
    assert status == 200 and body2 == {"id": body["id"], "status": "mql", "created": False}
    assert len(slack.wait_calls("chat.postMessage", 1)) == 1
    # further updates never hand it off again
    app.post_leads({"email": "LOW@example.com", "score": 90})
    app.drain()
    time.sleep(0.2)
    assert len(slack.calls_to("chat.postMessage")) == 1


def test_second_claimer_is_told_privately(app, slack, db):
    _, body = app.post_leads({"email": "a@example.com", "score": 99})
    slack.wait_calls("chat.postMessage", 1)
    app.click(ActionId.CLAIM, body["id"], "UREP1")
    slack.wait_calls("chat.update", 1)
    app.click(ActionId.CLAIM, body["id"], "UREP2")
    eph = slack.wait_calls("chat.postEphemeral", 1)
    assert eph[0].params["user"] == "UREP2" and "<@UREP1>" in eph[0].params["text"]
    with db.begin() as s:
        assert s.get(Lead, body["id"]).claimed_by == "UREP1"
        n = s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "claimed"))
        assert n == 1
