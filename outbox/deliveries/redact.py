"""A message Handoff posted about a lead whose person was since erased (a reminder, an escalation, a DM, the post
to marketing), edited in place to show no personal data (docs/privacy.md); a weekly digest that named the lead is
rendered again as it was, the lead by its number only. Its cards are re-rendered by card_update, which shows an
erased lead as such."""
from __future__ import annotations

from datetime import datetime

from blocks.privacy import erased_message
from models.outbox import Kind
from outbox.deliveries.base import Context, Delivery, Message, Outcome, Payload, PeriodPayload
from outbox.deliveries.digest import rerender


class Redact(Payload):
    channel: str  # the conversation the message is in (a DM's D… channel)
    ts: str
    of: str  # the kind of row that posted it
    # a digest: its week and instant, and what it showed (outbox.result_detail), to render it again as it was
    label: str | None = None
    as_of: datetime | None = None
    shown: dict | None = None


def deliver(ctx: Context, msg: Message[Redact]) -> Outcome:
    p = msg.payload
    if p.of == Kind.DIGEST and p.label and p.as_of and p.shown:
        text, blocks = rerender(ctx, PeriodPayload(label=p.label, as_of=p.as_of), p.shown)
    else:
        text, blocks = erased_message(msg.lead_id or 0, ctx.lang)
    resp = ctx.client.chat_update(channel=p.channel, ts=p.ts, text=text, blocks=blocks)
    return Outcome("sent", ts=resp.get("ts"), channel=resp.get("channel"))


DELIVERY = Delivery(kind=Kind.REDACT, payload=Redact, deliver=deliver)
