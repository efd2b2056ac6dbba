"""A CRM update and Slack clicks on one lead at the same moment (docs/crm-status.md): both record the same
transitions through the lead's row lock, so whichever comes first wins and the rest change nothing: one state,
one event per change, one card update per change, one post to marketing. On SQLite and PostgreSQL."""
from __future__ import annotations

from collections import Counter

from sqlalchemy import select

from blocks.ids import ActionId, CallbackId
from models.tables import Event, Lead, OutboxMessage
from tests.conftest import MARKETING, FakeClock, jst, wait_until
from tests.e2e.test_outcomes import submit
from tests.hostile.test_identity_race import race

REP = "UREP1"


def mql(make_app):
    clock = FakeClock(jst(2026, 11, 30, 10, 0))
    app = make_app(now=clock)
    status, body = app.post_leads({"email": "race@acme.co.jp", "external_id": "crm-race", "score": 90})
    assert status == 201
    app.drain()
    clock.set(jst(2026, 11, 30, 10, 20))
    return app, body["id"]


def counts(db, lead_id):
    with db.begin() as s:
        events = Counter(s.scalars(select(Event.type).where(Event.lead_id == lead_id)))
        outbox = Counter(s.scalars(select(OutboxMessage.kind).where(OutboxMessage.lead_id == lead_id)))
        return s.get(Lead, lead_id), events, outbox


def test_a_crm_loss_and_a_lost_form_at_once_close_the_lead_once(make_app, slack, db):
    app, lead_id = mql(make_app)
    app.click(ActionId.CLAIM, lead_id, REP)
    assert wait_until(lambda: counts(db, lead_id)[0].claimed_by == REP)
    crm = (lambda: app.post_status({"external_id": "crm-race", "status": "lost", "reason": "budget"}),)
    slack_form = (lambda: submit(app, CallbackId.LOST, lead_id, REP, reason="budget"),)
    answers = race(lambda f: f(), [crm, slack_form] * 6)
    assert all(status == 200 for status, _ in answers), answers
    assert wait_until(lambda: counts(db, lead_id)[0].lost_at is not None)
    app.drain()
    row, events, outbox = counts(db, lead_id)
    applied = [r for status, body in answers if isinstance(body, dict) and "results" in body
               for r in body["results"] if r["applied"]]
    assert events["lead.lost"] == 1 and outbox["feedback"] == 1, (events, outbox)
    assert len(applied) <= 1  # the CRM won the race at most once; else a form did, and every update was "not newer"
    assert row.lost_reason == "budget" and row.claimed_by == REP
    marketing = [c for c in slack.calls_to("chat.postMessage") if c.params.get("channel") == MARKETING]
    assert len(marketing) == 1


def test_crm_updates_and_clicks_on_one_unclaimed_lead_give_one_owner_and_one_of_each_event(make_app, slack, db):
    app, lead_id = mql(make_app)
    jobs = []
    for i in range(8):
        jobs.append((lambda: app.post_status({"email": "race@acme.co.jp", "status": "contacted", "by": "UCRM1"}),))
        jobs.append((lambda i=i: app.click(ActionId.CLAIM, lead_id, f"UREP{i}"),))
        jobs.append((lambda i=i: app.click(ActionId.CONTACTED, lead_id, f"UREP{i}"),))
    answers = race(lambda f: f(), jobs)
    assert all(status == 200 for status, _ in answers)
    assert wait_until(lambda: counts(db, lead_id)[0].contacted_at is not None)
    app.drain()
    row, events, _ = counts(db, lead_id)
    assert events["lead.claimed"] == 1 and events["lead.contacted"] == 1, events
    assert row.claimed_by is not None and row.claimed_at <= row.contacted_at
