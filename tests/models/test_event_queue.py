"""The per-endpoint delivery queue (models/events.py): one delivery per lead at a time, oldest first."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from models import events
from models.tables import EventDelivery, Lead
from tests.conftest import add_lead, jst

AT = jst(2026, 11, 30, 10)


def test_leads_held_back_by_an_earlier_delivery_do_not_fill_every_page(db):
    for _ in range(2):
        add_lead(db, mql=AT)
    with db.begin() as s:
        dest = events.configure(s, ("http://receiver.invalid/hook",), AT)["http://receiver.invalid/hook"]
        busy, quiet = s.scalars(select(Lead.id).order_by(Lead.id)).all()
        for _ in range(12):  # the busy lead's first delivery is backing off; its eleven later ones are due
            events.emit(s, lead_id=busy, type=events.Type.MQL, now=AT)
        events.emit(s, lead_id=quiet, type=events.Type.MQL, now=AT)
        first = s.scalar(select(EventDelivery.id).where(EventDelivery.lead_id == busy).order_by(EventDelivery.id))
        s.execute(update(EventDelivery).where(EventDelivery.id == first).values(next_attempt_at=AT + timedelta(hours=1)))
    with db.begin() as s:
        due = events.take_due(s, dest, AT, limit=3)  # pages of three, all of the busy lead's but the last
        assert [s.get(EventDelivery, d.id).lead_id for d in due] == [quiet]
    with db.begin() as s:
        assert events.take_due(s, dest, AT, limit=3) == []  # leased, and the busy lead still waits its turn
    with db.begin() as s:  # an hour on: the busy lead's first goes, alone of its own (the quiet one's lease ran out)
        due = events.take_due(s, dest, AT + timedelta(hours=1), limit=3)
        assert sorted((s.get(EventDelivery, d.id).lead_id, d.id) for d in due) == [(busy, first), (quiet, due[-1].id)]
