"""The delivery registry: every stored kind has one delivery, and a new kind plugs in by registering alone."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from models import outbox as queue
from models.outbox import Kind
from models.tables import OutboxMessage
from outbox.deliveries import REGISTRY
from outbox.deliveries.base import Context, Delivery, Message, Outcome, Payload
from outbox.deliveries.notice import Notice
from outbox.deliveries.reminder import Reminder
from tests.conftest import HANDOFF

NOW = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)


def test_every_kind_the_models_queue_has_exactly_one_delivery():
    assert set(REGISTRY) == {str(k) for k in Kind}
    for kind, delivery in REGISTRY.items():
        assert delivery.kind == kind and issubclass(delivery.payload, Payload)
        assert delivery.lane in ("channel", "method")


def test_posts_into_a_channel_share_the_channel_lane_and_the_rest_a_lane_per_kind():
    lanes = {kind: d.lane_of("C1") for kind, d in REGISTRY.items()}
    assert lanes[Kind.CARD_POST] == lanes[Kind.REMINDER] == lanes[Kind.DIGEST] == lanes[Kind.CHART] == "post:C1"
    assert lanes[Kind.CARD_UPDATE] == "method:card_update" and lanes[Kind.NOTICE] == "method:notice"


def test_payloads_are_typed_and_a_broken_one_is_refused():
    notice = REGISTRY[Kind.NOTICE].read({"user": "U1", "key": "k", "params": {"a": 1}, "added_later": True})
    assert isinstance(notice, Notice) and notice.dm is False and notice.params == {"a": 1}
    with pytest.raises(ValidationError):
        REGISTRY[Kind.NOTICE].read({"key": "k"})  # whom to tell is missing
    reminder = REGISTRY[Kind.REMINDER].read({"action": "claim_due", "managers": ["UM"], "thread": True})
    assert isinstance(reminder, Reminder) and reminder.model_dump()["managers"] == ["UM"]
    assert REGISTRY[Kind.REMINDER].waits_for_card(reminder)
    assert REGISTRY[Kind.CARD_UPDATE].waits_for_card(REGISTRY[Kind.CARD_UPDATE].read({}))
    assert not REGISTRY[Kind.NOTICE].waits_for_card(notice)


class Probe(Payload):
    word: str


def test_a_new_kind_is_one_delivery_and_one_registration(app, db, monkeypatch):
    """What issue-sized destinations (an event endpoint, a CRM) rely on: nothing else in the sender changes."""
    seen: list[tuple[str, str | None, str]] = []

    def deliver(ctx: Context, msg: Message[Probe]) -> Outcome:
        ctx.take()
        seen.append((msg.kind, msg.channel, msg.payload.word))
        return Outcome("sent", ts="probe-1")

    def on_sent(session, row, outcome, now):
        row.last_error = f"noted {outcome.ts}"

    monkeypatch.setitem(REGISTRY, "probe", Delivery(kind="probe", payload=Probe, deliver=deliver, lane="channel",
                                                    on_sent=on_sent))
    with db.begin() as s:
        queue.enqueue(s, kind="probe", dedupe_key="probe:1", now=NOW, channel=HANDOFF, payload={"word": "hello"})
        queue.enqueue(s, kind="probe", dedupe_key="probe:2", now=NOW, channel=HANDOFF, payload={"wrong": 1})
    app.drain()
    assert seen == [("probe", HANDOFF, "hello")]
    with db.begin() as s:
        good, bad = s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
        assert (good.status, good.result_ts, good.last_error) == ("sent", "probe-1", "noted probe-1")
        assert bad.status in ("pending", "failed") and bad.last_error.startswith("render: ValidationError")


def test_a_long_queue_in_one_channel_neither_hides_another_channel_nor_spins(db, slack, monkeypatch):
    """More rows than a pass reads wait in a channel whose bucket is empty: the next pass leaves them out of
    its read, so another channel's row behind them goes at once, and the pass asks to sleep instead of
    reading the same held page again."""
    from outbox.sender import PAGE, Sender
    from tests.conftest import make_settings

    seen: list[str | None] = []

    def deliver(ctx: Context, msg: Message[Probe]) -> Outcome:
        ctx.take()
        seen.append(msg.channel)
        return Outcome("sent", ts=f"probe-{len(seen)}")

    monkeypatch.setitem(REGISTRY, "probe", Delivery(kind="probe", payload=Probe, deliver=deliver, lane="channel"))
    with db.begin() as s:
        queue.enqueue_many(s, "probe", [dict(dedupe_key=f"probe:a{i}", channel="CBUSY", payload={"word": "a"})
                                        for i in range(PAGE + 20)], NOW)
        queue.enqueue(s, kind="probe", dedupe_key="probe:b", now=NOW, channel="CQUIET", payload={"word": "b"})
    clock = [1000.0]
    sender = Sender(db, make_settings(db.url, slack.url, OUTBOX_CHANNEL_RATE=1.0, OUTBOX_CHANNEL_BURST=2),
                    now=lambda: NOW, monotonic=lambda: clock[0])
    assert sender.run_pass() == 0.0  # a full page was read: more may be due behind it
    assert seen == ["CBUSY"]
    wait = sender.run_pass()
    assert seen == ["CBUSY", "CQUIET"]  # not hidden behind the busy channel's queue
    assert wait == pytest.approx(1.0)  # the busy channel's next token, not a busy loop
    clock[0] += 1.0
    sender.run_pass()
    assert seen == ["CBUSY", "CQUIET", "CBUSY"]
