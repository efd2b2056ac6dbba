"""The handoff card of an MQL, posted into the team's channel; its ts is kept on the lead for every update."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from blocks import card as card_blocks
from models import crm_sync
from models.outbox import Kind
from models.tables import Lead, OutboxMessage
from outbox.deliveries.base import Context, Delivery, Message, NoPayload, Outcome


def deliver(ctx: Context, msg: Message[NoPayload]) -> Outcome:
    if msg.lead is None:
        return Outcome("failed", error=f"lead {msg.lead_id} is gone")
    text, blocks = card_blocks.card(msg.lead, ctx.lang, ctx.clock, ctx.team_name(msg.lead.team))
    resp = ctx.post(msg.channel, text, blocks)
    return Outcome("sent", ts=resp["ts"], channel=resp["channel"], permalink=ctx.permalink(resp["channel"], resp["ts"]))


def remember_card(session: Session, row: OutboxMessage, outcome: Outcome, now: datetime) -> None:
    """The card's channel, ts and link, stored with the row marked sent: updates and threaded replies find it,
    and events and the CRM link to it."""
    lead = session.get(Lead, row.lead_id) if outcome.ts else None
    if lead is not None:
        lead.card_channel, lead.card_ts, lead.card_url = outcome.channel, outcome.ts, outcome.permalink
        if outcome.permalink:  # the CRM shows the card's link as soon as there is one
            crm_sync.bump(session, lead_id=lead.id, now=now)


DELIVERY = Delivery(kind=Kind.CARD_POST, payload=NoPayload, deliver=deliver, lane="channel", on_sent=remember_card)
