"""A person's App Home, published (views.publish) from the data as it is when the row is sent."""
from __future__ import annotations

from blocks import home as home_blocks
from models import home as home_data
from models.outbox import Kind
from outbox.deliveries.base import Context, Delivery, Message, Outcome, Payload


class Home(Payload):
    user: str


def deliver(ctx: Context, msg: Message[Home]) -> Outcome:
    user = msg.payload.user
    with ctx.db.begin() as s:
        data = home_data.load(s, user, ctx.settings.is_manager(user), ctx.now())
    ctx.client.views_publish(user_id=user, view=home_blocks.view(data, ctx.now(), ctx.lang, ctx.clock))
    return Outcome("sent")


DELIVERY = Delivery(kind=Kind.HOME, payload=Home, deliver=deliver)
