"""A private answer to one person: ephemeral in the channel they clicked in, or a DM (App Home has no channel)."""
from __future__ import annotations

from pydantic import Field

from blocks.format import render_params
from blocks.texts import t
from models.outbox import Kind
from outbox.deliveries.base import Context, Delivery, Message, Outcome, Payload


class Notice(Payload):
    user: str
    key: str  # a text catalog key
    params: dict = Field(default_factory=dict)  # its placeholders; instants stored as tagged strings (blocks/format.py)
    dm: bool = False


def deliver(ctx: Context, msg: Message[Notice]) -> Outcome:
    p = msg.payload
    text = t(p.key, ctx.lang, **render_params(p.params, ctx.clock.tz, ctx.lang))
    if p.dm:
        ctx.client.chat_postMessage(channel=p.user, text=text)
    else:
        ctx.client.chat_postEphemeral(channel=msg.channel, user=p.user, text=text)
    return Outcome("sent")


DELIVERY = Delivery(kind=Kind.NOTICE, payload=Notice, deliver=deliver)
