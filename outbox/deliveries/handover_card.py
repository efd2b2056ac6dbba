"""The card of an SQL handed to the next team (models/handover.py), posted into that team's channel; its ts is
kept on the lead, so that card updates and the second claim's reminders find it."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from blocks import card as card_blocks
from models.outbox import Kind
from models.tables import Lead, OutboxMessage
from outbox.deliveries.base import Context, Delivery, Message, NoPayload, Outcome


def deliver(ctx: Context, msg: Message[NoPayload]) -> Outcome:
    lead = msg.lead
    if lead is None:
        return Outcome("failed", error=f"lead {msg.lead_id} is gone")
    text, blocks = card_blocks.handover_card(lead, ctx.lang, ctx.clock, ctx.team_name(lead.team),
                                             ctx.team_name(lead.handed_to))
    resp = ctx.post(msg.channel, text, blocks)
    return Outcome("sent", ts=resp["ts"], channel=resp["channel"])


def remember_card(session: Session, row: OutboxMessage, outcome: Outcome, now: datetime) -> None:
    lead = session.get(Lead, row.lead_id) if outcome.ts else None
    if lead is not None:
        lead.handed_card_channel, lead.handed_card_ts = outcome.channel, outcome.ts


DELIVERY = Delivery(kind=Kind.HANDOVER_CARD, payload=NoPayload, deliver=deliver, lane="channel",
                    on_sent=remember_card)
