"""The post to marketing when an MQL is lost, found not a fit, or such an outcome is undone."""
from __future__ import annotations

from blocks import outcome as outcome_blocks
from models.outbox import Kind
from models.outcomes import outcome_of
from outbox.deliveries.base import Context, Delivery, Message, Outcome, Payload


class Feedback(Payload):
    outcome: str | None = None  # lost, disqualified or undone; None was written by early versions: disqualified
    user: str | None = None  # who recorded it
    note: str | None = None
    was: str | None = None  # for undone: the outcome taken back
    crm: bool = False  # recorded in the CRM (docs/crm-status.md)


def deliver(ctx: Context, msg: Message[Feedback]) -> Outcome:
    lead, p = msg.lead, msg.payload
    if lead is None:
        return Outcome("failed", error=f"lead {msg.lead_id} is gone")
    if lead.erased_at is not None:
        return Outcome("sent", error="skipped: the person was erased before it was sent")
    outcome = p.outcome or "disqualified"
    if outcome in ("lost", "disqualified") and outcome_of(lead) != outcome:
        return Outcome("sent", error="skipped: the outcome was undone before it was sent")
    permalink = None
    if lead.card_ts:
        permalink = ctx.client.chat_getPermalink(channel=lead.card_channel, message_ts=lead.card_ts).get("permalink")
    text, blocks = outcome_blocks.feedback(lead, outcome=outcome, user=p.user, note=p.note, was=p.was,
                                           when=msg.created_at, tz=ctx.clock.tz, lang=ctx.lang,
                                           permalink=permalink, crm=p.crm)
    resp = ctx.post(msg.channel, text, blocks)
    return Outcome("sent", ts=resp["ts"], channel=resp.get("channel"))


DELIVERY = Delivery(kind=Kind.FEEDBACK, payload=Feedback, deliver=deliver, lane="channel")
