"""Outcomes and the loop back to marketing, end to end with signed requests."""
from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import func, select

from blocks.ids import ActionId, BlockId, CallbackId
from models.tables import AuditEvent, Lead, SlaTimer
from standin import slack_requests
from tests.conftest import HANDOFF, MANAGER, MARKETING, FakeClock, jst, wait_until

REP, REP2 = "UREP1", "UREP2"


def setup(make_app, slack, **settings):
    clock = FakeClock(jst(2026, 11, 30, 10, 0))
    app = make_app(now=clock, **settings)
    status, body = app.post_leads({"email": "o@example.com", "score": 88, "company": "Acme <Labs>",
                                   "name": "Aya", "source": "webinar"})
    assert status == 201
    app.drain()
    return app, clock, body["id"]


def lead(db, lead_id) -> Lead:
    with db.begin() as s:
        return s.get(Lead, lead_id)


def audits(db, action, lead_id=None) -> int:
    with db.begin() as s:
        q = select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action)
        if lead_id is not None:
            q = q.where(AuditEvent.lead_id == lead_id)
        return s.scalar(q)


def click(app, action_id, lead_id, user, **headers):
    status, _ = app.slack_post(slack_requests.block_action(action_id, str(lead_id), user, HANDOFF), headers=headers)
    assert status == 200


def claimed(app, clock, db, lead_id, user=REP):
    clock.set(clock.at + timedelta(minutes=10))
    click(app, ActionId.CLAIM, lead_id, user)
    assert wait_until(lambda: lead(db, lead_id).claimed_by == user)


def ephemerals(slack, n):
    return [c.params["text"] for c in slack.wait_calls("chat.postEphemeral", n)]


def submit(app, callback, lead_id, user, reason="budget", note=None):
    values = {}
    if reason:
        values.update(slack_requests.select_value(BlockId.REASON, "value", reason))
    values.update(slack_requests.text_value(BlockId.NOTE, "value", note))
    return app.slack_post(slack_requests.view_submission(callback, str(lead_id), user, values))


def last_card(slack):
    return json.dumps(slack.calls_to("chat.update")[-1].params["blocks"], ensure_ascii=False)


def test_sql_then_won_records_the_stamps_and_asks_about_quality(make_app, slack, db):
    app, clock, lead_id = setup(make_app, slack)
    claimed(app, clock, db, lead_id)
    clock.set(jst(2026, 11, 30, 11, 0))
    click(app, ActionId.SQL, lead_id, REP)
    assert wait_until(lambda: lead(db, lead_id).sql_at == jst(2026, 11, 30, 11, 0))
    row = lead(db, lead_id)
    assert row.contacted_at == row.sql_at  # an SQL implies the contact
    app.drain()
    assert "SQL since" in last_card(slack)
    with db.begin() as s:  # an SQL is the outcome the reminders wait for: none left
        assert s.scalar(select(func.count()).select_from(SlaTimer).where(SlaTimer.lead_id == lead_id)) == 0

    click(app, ActionId.SQL, lead_id, REP)  # a double click
    assert "already recorded" in ephemerals(slack, 2)[-1]
    click(app, ActionId.SQL, lead_id, REP, **{"X-Slack-Retry-Num": "1"})
    clock.set(jst(2026, 12, 3, 15, 0))
    click(app, ActionId.WON, lead_id, REP)
    assert wait_until(lambda: lead(db, lead_id).won_at == jst(2026, 12, 3, 15, 0))
    assert audits(db, "sql") == 1 and audits(db, "won") == 1
    app.drain()
    assert ":trophy: Won" in last_card(slack) and ActionId.UNDO in last_card(slack)

    ask = [c for c in slack.calls_to("chat.postMessage") if c.params["channel"] == REP]
    assert len(ask) == 1 and "sales-ready" in ask[0].params["text"]  # asked once, after the first outcome
    ids = [e["action_id"] for b in ask[0].params["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert ids == [ActionId.QUALITY_GOOD, ActionId.QUALITY_BAD]
    click(app, ActionId.QUALITY_BAD, lead_id, REP)
    assert wait_until(lambda: lead(db, lead_id).quality == "bad")
    click(app, ActionId.QUALITY_GOOD, lead_id, REP)  # a change of mind is kept, and audited
    assert wait_until(lambda: lead(db, lead_id).quality == "good") and audits(db, "quality") == 2


def test_won_straight_from_claim_records_sql_too(make_app, slack, db):
    app, clock, lead_id = setup(make_app, slack)
    claimed(app, clock, db, lead_id)
    click(app, ActionId.WON, lead_id, REP)
    assert wait_until(lambda: lead(db, lead_id).won_at is not None)
    row = lead(db, lead_id)
    assert row.sql_at == row.won_at == row.contacted_at
    with db.begin() as s:
        won = s.scalars(select(AuditEvent).where(AuditEvent.action == "won")).one()
        assert won.detail["implied"] == ["contacted", "sql"]


def test_only_the_owner_or_a_manager_records_outcomes(make_app, slack, db):
    app, clock, lead_id = setup(make_app, slack)
    click(app, ActionId.WON, lead_id, REP)  # not claimed yet
    assert "claim it first" in ephemerals(slack, 1)[0]
    claimed(app, clock, db, lead_id)
    for action in (ActionId.SQL, ActionId.WON, ActionId.LOST, ActionId.UNDO, ActionId.QUALITY_GOOD):
        click(app, action, lead_id, REP2)
    texts = ephemerals(slack, 6)
    assert sum("Only the lead's owner (<@UREP1>)" in x for x in texts) == 5
    row = lead(db, lead_id)
    assert (row.sql_at, row.won_at, row.lost_at, row.quality) == (None, None, None, None)
    assert slack.calls_to("views.open") == []
    click(app, ActionId.SQL, lead_id, MANAGER)  # a manager may
    assert wait_until(lambda: lead(db, lead_id).sql_at is not None)


def test_lost_modal_feedback_to_marketing_and_the_card(make_app, slack, db):
    app, clock, lead_id = setup(make_app, slack, LOST_REASONS="budget,timing,price_too_high,other")
    claimed(app, clock, db, lead_id)
    click(app, ActionId.LOST, lead_id, REP)
    view = slack.wait_calls("views.open", 1)[0].params["view"]
    assert view["callback_id"] == CallbackId.LOST and view["private_metadata"] == str(lead_id)
    options = [o["value"] for o in view["blocks"][1]["element"]["options"]]
    assert options == ["budget", "timing", "price_too_high", "other"]

    status, body = submit(app, CallbackId.LOST, lead_id, REP, reason=None)
    assert status == 200 and body["response_action"] == "errors" and BlockId.REASON in body["errors"]
    status, body = submit(app, CallbackId.LOST, lead_id, REP, reason="not-in-the-list")
    assert body["response_action"] == "errors" and lead(db, lead_id).lost_at is None

    clock.set(jst(2026, 12, 1, 16, 0))
    status, body = submit(app, CallbackId.LOST, lead_id, REP, reason="budget",
                          note="<!here> they froze spending until <https://x.test|April>")
    assert status == 200 and not body
    row = lead(db, lead_id)
    assert row.lost_at == jst(2026, 12, 1, 16, 0) and row.lost_reason == "budget"
    app.drain()
    posts = [c for c in slack.calls_to("chat.postMessage") if c.params["channel"] == MARKETING]
    assert len(posts) == 1
    text = json.dumps(posts[0].params["blocks"], ensure_ascii=False)
    assert "No budget" in text and "webinar" in text and "88" in text and "<@UREP1>" in text
    assert "Acme &lt;Labs&gt;" in text and "Open the card" in text
    note = [b for b in posts[0].params["blocks"] if b["type"] == "section" and b["text"]["type"] == "plain_text"]
    assert "<!here> they froze spending" in note[0]["text"]["text"]  # plain_text: shown literally, never a mention
    assert "<!here>" not in posts[0].params["text"]
    assert ":x: Lost" in last_card(slack)
    with db.begin() as s:
        assert s.scalar(select(func.count()).select_from(SlaTimer).where(SlaTimer.lead_id == lead_id)) == 0


def test_a_modal_submitted_after_someone_else_closed_the_lead(make_app, slack, db):
    app, clock, lead_id = setup(make_app, slack)
    claimed(app, clock, db, lead_id)
    click(app, ActionId.LOST, lead_id, REP)  # the owner opens Lost…
    click(app, ActionId.DISQUALIFY, lead_id, MANAGER)  # the manager opens Not a fit…
    slack.wait_calls("views.open", 2)
    assert submit(app, CallbackId.DISQUALIFY, lead_id, MANAGER, reason="duplicate")[0] == 200
    _status, body = submit(app, CallbackId.LOST, lead_id, REP, reason="timing")
    assert body["response_action"] == "errors"
    assert "<@UMANAGER1> already closed this lead (not a fit)" in body["errors"][BlockId.REASON]
    row = lead(db, lead_id)
    assert row.lost_at is None and row.disqualify_reason == "duplicate"
    app.drain()
    assert len([c for c in slack.calls_to("chat.postMessage") if c.params["channel"] == MARKETING]) == 1


def test_a_double_submission_takes_effect_once(make_app, slack, db):
    app, clock, lead_id = setup(make_app, slack)
    claimed(app, clock, db, lead_id)
    values = {**slack_requests.select_value(BlockId.REASON, "value", "timing"),
              **slack_requests.text_value(BlockId.NOTE, "value", None)}
    body = slack_requests.view_submission(CallbackId.LOST, str(lead_id), REP, values)
    assert app.slack_post(body)[0] == 200
    assert app.slack_post(body, headers={"X-Slack-Retry-Num": "1"})[0] == 200
    app.drain()
    assert audits(db, "lost") == 1
    assert len([c for c in slack.calls_to("chat.postMessage") if c.params["channel"] == MARKETING]) == 1


def test_undo_a_mistaken_outcome(make_app, slack, db):
    app, clock, lead_id = setup(make_app, slack)
    claimed(app, clock, db, lead_id)
    submit(app, CallbackId.LOST, lead_id, REP, reason="budget")
    app.drain()
    clock.set(jst(2026, 11, 30, 11, 0))
    click(app, ActionId.UNDO, lead_id, REP)
    assert wait_until(lambda: lead(db, lead_id).lost_at is None)
    assert lead(db, lead_id).lost_reason is None
    with db.begin() as s:
        kinds = set(s.scalars(select(SlaTimer.kind).where(SlaTimer.lead_id == lead_id)))
        trail = [e.action for e in s.scalars(select(AuditEvent).where(AuditEvent.lead_id == lead_id)
                                            .order_by(AuditEvent.id))]
        undone = s.scalars(select(AuditEvent).where(AuditEvent.action == "outcome_undone")).one()
    assert kinds == {"contact"}  # back to waiting for first contact
    assert trail[-2:] == ["lost", "outcome_undone"] and undone.detail["lost_reason"] == "budget"
    app.drain()
    marketing = [c.params["text"] for c in slack.calls_to("chat.postMessage") if c.params["channel"] == MARKETING]
    assert len(marketing) == 2 and "Correction" in marketing[1]
    assert ActionId.LOST in last_card(slack)  # the controls are back
    # and it can be recorded again, with feedback again
    clock.set(jst(2026, 11, 30, 11, 5))
    submit(app, CallbackId.LOST, lead_id, REP, reason="timing")
    app.drain()
    assert lead(db, lead_id).lost_reason == "timing"
    assert len([c for c in slack.calls_to("chat.postMessage") if c.params["channel"] == MARKETING]) == 3
    click(app, ActionId.UNDO, lead_id, REP2)
    assert "Only the lead's owner" in ephemerals(slack, 2)[-1]


def test_app_home_for_a_rep_and_a_manager(make_app, slack, db):
    app, clock, first = setup(make_app, slack)
    _, second = app.post_leads({"email": "two@example.com", "score": 70, "company": "Beta"})
    _, third = app.post_leads({"email": "three@example.com", "score": 75, "company": "Gamma"})
    app.drain()
    claimed(app, clock, db, first)
    click(app, ActionId.CLAIM, third["id"], REP2)
    assert wait_until(lambda: lead(db, third["id"]).claimed_by == REP2)
    clock.set(jst(2026, 12, 2, 10, 0))  # first contact is overdue for both claimed leads now

    for user in (REP, MANAGER):
        body = slack_requests.app_home_opened(user)
        headers = {**slack_requests.signed_headers("test-signing-secret", body), "Content-Type": "application/json"}
        assert app.request("/slack/events", body, headers)[0] == 200
    assert wait_until(lambda: REP in slack.homes and MANAGER in slack.homes)
    rep_home = json.dumps(slack.homes[REP], ensure_ascii=False)
    assert "Your open leads (1)" in rep_home and "Acme &lt;Labs&gt;" in rep_home and "Beta" not in rep_home
    assert "first contact was due" in rep_home and ActionId.CONTACTED in rep_home
    assert "Team: unclaimed" not in rep_home
    mgr_home = json.dumps(slack.homes[MANAGER], ensure_ascii=False)
    assert "Team: unclaimed (1)" in mgr_home and "Beta" in mgr_home
    assert "Team: contact overdue (2)" in mgr_home and "Gamma" in mgr_home
    assert "MQL quality by source" in mgr_home

    # a click in App Home: the answer comes by DM (no channel there) and the Home is published again
    published = len(slack.calls_to("views.publish"))
    app.slack_post(slack_requests.home_action(ActionId.CONTACTED, str(first), REP))
    assert wait_until(lambda: lead(db, first).contacted_at is not None)
    assert wait_until(lambda: len(slack.calls_to("views.publish")) > published)
    assert wait_until(lambda: any("First contact logged" in c.params["text"] for c in
                                  slack.calls_to("chat.postMessage") if c.params["channel"] == REP))
    app.slack_post(slack_requests.home_action(ActionId.WON, str(second["id"]), REP))
    assert wait_until(lambda: any("claim it first" in c.params["text"] for c in slack.calls_to("chat.postMessage")
                                  if c.params["channel"] == REP))


def test_outcome_stamps_are_the_kpi_columns(make_app, slack, db):
    """The columns the KPIs read (docs/kpi.md): mql_at, claimed_at, contacted_at, sql_at, won_at, lost_at, reasons."""
    app, clock, lead_id = setup(make_app, slack)
    clock.set(jst(2026, 11, 30, 10, 30))
    click(app, ActionId.CLAIM, lead_id, REP)
    assert wait_until(lambda: lead(db, lead_id).claimed_at is not None)
    clock.set(jst(2026, 11, 30, 11, 0))
    click(app, ActionId.CONTACTED, lead_id, REP)
    assert wait_until(lambda: lead(db, lead_id).contacted_at is not None)
    clock.set(jst(2026, 12, 1, 9, 30))
    click(app, ActionId.SQL, lead_id, REP)
    assert wait_until(lambda: lead(db, lead_id).sql_at is not None)
    row = lead(db, lead_id)
    assert (row.mql_at, row.claimed_at, row.contacted_at, row.sql_at) == (
        jst(2026, 11, 30, 10, 0), jst(2026, 11, 30, 10, 30), jst(2026, 11, 30, 11, 0), jst(2026, 12, 1, 9, 30))
    assert row.claimed_at <= row.claim_due and row.contacted_at <= row.contact_due
