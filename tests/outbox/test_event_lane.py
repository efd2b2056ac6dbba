"""One endpoint's lane (outbox/events.py) on its own: timeouts, dropped connections, redirects, the signature."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from standardwebhooks import Webhook

from models import events
from models.tables import EventDelivery, Lead
from outbox.events import EventLane
from tests.conftest import EVENT_SECRET, add_lead, jst

AT = jst(2026, 11, 30, 10)


def lane_for(db, receiver, timeout=0.3) -> EventLane:
    add_lead(db, mql=AT)
    with db.begin() as s:
        dest = events.configure(s, (receiver.url,), AT)[receiver.url]
        events.emit(s, lead_id=s.scalar(select(Lead.id)), type=events.Type.MQL, now=AT)
    return EventLane(db, dest, receiver.url, EVENT_SECRET, now=lambda: AT, timeout=timeout)


def delivery(db) -> EventDelivery:
    with db.begin() as s:
        return s.scalars(select(EventDelivery)).one()


def test_an_endpoint_slower_than_the_timeout_is_tried_again_later(db, receivers):
    receiver, _ = receivers
    receiver.slow_down(1.0)
    lane = lane_for(db, receiver)
    assert lane.run_pass() > 0  # the lane waits instead of trying again at once
    d = delivery(db)
    assert d.status == "pending" and d.attempts == 1 and d.last_error.startswith("timeout")
    assert d.next_attempt_at == AT + timedelta(seconds=5)


def test_a_connection_closed_without_an_answer_is_tried_again(db, receivers):
    receiver, _ = receivers
    receiver.down()
    lane = lane_for(db, receiver)
    lane.run_pass()
    d = delivery(db)
    assert d.status == "pending" and d.last_error.startswith("connection") and d.last_status is None


def test_a_redirect_is_not_followed_and_fails_for_good(db, receivers):
    receiver, _ = receivers
    receiver.answer_always(308)
    lane = lane_for(db, receiver)
    lane.run_pass()
    d = delivery(db)
    assert d.status == "failed" and d.last_status == 308 and len(receiver.attempts) == 1  # not followed


def test_what_is_signed_is_exactly_the_body_sent(db, receivers):
    receiver, _ = receivers
    lane = lane_for(db, receiver)
    lane.run_pass()
    got = receiver.wait_count(1)[0]
    Webhook(EVENT_SECRET).verify(got.raw, got.headers)  # raises if not
    assert got.headers["webhook-id"].startswith("evt_") and "." not in got.headers["webhook-id"]
    assert delivery(db).status == "sent"
