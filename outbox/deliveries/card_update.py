"""The card re-rendered in place (chat.update) from the lead as it stands when the row is sent."""
from __future__ import annotations

from blocks import card as card_blocks
from models.outbox import Kind
from outbox.deliveries.base import Context, Delivery, Message, NoPayload, Outcome


def deliver(ctx: Context, msg: Message[NoPayload]) -> Outcome:
    lead = msg.lead
    if lead is None:
        return Outcome("sent", error="skipped: lead gone")
    if not lead.card_ts:
        if msg.card_wait is not None:
            return Outcome("defer", delay=msg.card_wait, error="waiting for the card to be posted")
        return Outcome("sent", error="skipped: the lead has no card")
    text, blocks = card_blocks.card(lead, ctx.lang, ctx.clock, ctx.team_name(lead.team),
                                    ctx.team_name(lead.handed_to))
    resp = ctx.client.chat_update(channel=lead.card_channel, ts=lead.card_ts, text=text, blocks=blocks)
    if lead.handed_card_ts:  # handed to the next team: its card shows the same lead (docs/routing.md)
        text, blocks = card_blocks.handover_card(lead, ctx.lang, ctx.clock, ctx.team_name(lead.team),
                                                 ctx.team_name(lead.handed_to))
        ctx.client.chat_update(channel=lead.handed_card_channel, ts=lead.handed_card_ts, text=text, blocks=blocks)
    return Outcome("sent", ts=resp.get("ts"))


DELIVERY = Delivery(kind=Kind.CARD_UPDATE, payload=NoPayload, deliver=deliver, waits_for_card=lambda p: True)
