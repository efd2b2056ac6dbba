"""An SLA message: a reminder, an escalation, an offer; sent only while it still has a reason to be sent."""
from __future__ import annotations

from pydantic import ConfigDict

from blocks import reminders as reminder_blocks
from models.outbox import Kind
from outbox.deliveries.base import Context, Delivery, Message, Outcome, Payload


class Reminder(Payload):
    model_config = ConfigDict(extra="allow", frozen=True)  # what one action adds: managers, was, by, …

    action: str  # claim_remind, claim_due, claim_escalate, contact_remind, …, offered, assigned, quality
    step: str | None = None
    user: str | None = None  # whom it is about or for
    repeat: bool = False
    thread: bool = False  # a reply in the card's thread


def deliver(ctx: Context, msg: Message[Reminder]) -> Outcome:
    lead, p = msg.lead, msg.payload
    fields = p.model_dump()
    if lead is None or not reminder_blocks.still_relevant(p.action, lead, fields):
        return Outcome("sent", error="skipped: no longer relevant")
    channel, thread_ts = msg.channel, None
    if p.thread and fields.get("handed"):  # in the thread of the card the next team got (unthreaded before it)
        channel, thread_ts = lead.handed_card_channel or channel, lead.handed_card_ts
    elif p.thread:
        if not lead.card_ts and msg.card_wait is not None:
            return Outcome("defer", delay=msg.card_wait, error="waiting for the card to be posted")
        channel, thread_ts = lead.card_channel or channel, lead.card_ts
    text, blocks = reminder_blocks.message(p.action, lead, fields, ctx.now(), ctx.lang, ctx.clock)
    resp = ctx.post(channel, text, blocks, thread_ts=thread_ts)
    return Outcome("sent", ts=resp.get("ts"), channel=resp.get("channel"))


DELIVERY = Delivery(kind=Kind.REMINDER, payload=Reminder, deliver=deliver, lane="channel",
                    waits_for_card=lambda p: p.thread and not (p.model_extra or {}).get("handed"))
