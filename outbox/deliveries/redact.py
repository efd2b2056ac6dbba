"""A message Handoff posted about a lead whose person was since erased (a reminder, an escalation, a DM, the post
to marketing), edited in place to show no personal data (docs/privacy.md). Its cards are re-rendered by
card_update, which shows an erased lead as such."""
from __future__ import annotations

from blocks.privacy import erased_message
from models.outbox import Kind
from outbox.deliveries.base import Context, Delivery, Message, Outcome, Payload


class Redact(Payload):
    channel: str  # the conversation the message is in (a DM's D… channel)
    ts: str
    of: str  # the kind of row that posted it


def deliver(ctx: Context, msg: Message[Redact]) -> Outcome:
    p = msg.payload
    text, blocks = erased_message(msg.lead_id or 0, ctx.lang)
    resp = ctx.client.chat_update(channel=p.channel, ts=p.ts, text=text, blocks=blocks)
    return Outcome("sent", ts=resp.get("ts"), channel=resp.get("channel"))


DELIVERY = Delivery(kind=Kind.REDACT, payload=Redact, deliver=deliver)
