"""A /kpi report someone shared into a channel, computed as of the instant they asked for it."""
from __future__ import annotations

from blocks import kpi as kpi_blocks
from blocks.texts import t
from models.kpi import compute_with_previous, parse_period
from models.outbox import Kind
from models.teams import Teams
from outbox.deliveries.base import Context, Delivery, Message, Outcome, PeriodPayload


class SharedReport(PeriodPayload):
    kind: str  # week or month
    user: str  # who shared it
    team: str | None = None  # one team's report (docs/routing.md)


def deliver(ctx: Context, msg: Message[SharedReport]) -> Outcome:
    p, clock = msg.payload, ctx.clock
    with ctx.db.begin() as s:
        scope = Teams.from_settings(ctx.settings).kpi_scope(p.team)
        report, previous = compute_with_previous(s, parse_period(p.kind, p.label, p.as_of, clock.tz), p.as_of, clock,
                                                 **scope)
    text, blocks = kpi_blocks.blocks(report, previous, ctx.lang)
    blocks.append({"type": "context", "elements": [
        {"type": "mrkdwn", "text": t("kpi.shared_by", ctx.lang, user=p.user)}]})
    return Outcome("sent", ts=ctx.post(msg.channel, text, blocks).get("ts"))


DELIVERY = Delivery(kind=Kind.REPORT, payload=SharedReport, deliver=deliver, lane="channel")
