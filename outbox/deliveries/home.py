"""A person's App Home, published (views.publish) from the data as it is when the row is sent."""
from __future__ import annotations

from blocks import home as home_blocks
from models import home as home_data
from models.outbox import Kind
from models.teams import Teams
from outbox.deliveries.base import Context, Delivery, Message, Outcome, Payload


class Home(Payload):
    user: str


def deliver(ctx: Context, msg: Message[Home]) -> Outcome:
    user = msg.payload.user
    teams = Teams.from_settings(ctx.settings)
    managed = teams.managed_by(user)  # every team (None), some, or none ([])
    with ctx.db.begin() as s:
        data = home_data.load(s, user, managed != [], ctx.now(), teams=managed, routed=teams.routing is not None)
    routing = teams.routing if managed != [] else None  # managers see the teams and rules
    ctx.client.views_publish(user_id=user, view=home_blocks.view(data, ctx.now(), ctx.lang, ctx.clock, routing))
    return Outcome("sent")


DELIVERY = Delivery(kind=Kind.HOME, payload=Home, deliver=deliver)
