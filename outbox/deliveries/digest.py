"""The weekly digest, computed as of Monday 09:00 when it fell due (a retry shows the same numbers)."""
from __future__ import annotations

from blocks import digest as digest_blocks
from models import reports
from models.kpi import compute_with_previous, parse_period
from models.outbox import Kind
from models.teams import Teams
from outbox.deliveries.base import Context, Delivery, Message, Outcome, PeriodPayload


def deliver(ctx: Context, msg: Message[PeriodPayload]) -> Outcome:
    p, clock = msg.payload, ctx.clock
    with ctx.db.begin() as s:
        week = parse_period("week", p.label, p.as_of, clock.tz)
        report, previous = compute_with_previous(s, week, p.as_of, clock,
                                                 **Teams.from_settings(ctx.settings).kpi_scope(None))
        overdue = reports.overdue_now(s, p.as_of)
        lagging = reports.without_outcome(s, p.as_of, clock, ctx.settings.OUTCOME_REMINDER_DAYS)
    text, blocks = digest_blocks.digest(report, previous, overdue, lagging, ctx.lang)
    return Outcome("sent", ts=ctx.post(msg.channel, text, blocks).get("ts"))


DELIVERY = Delivery(kind=Kind.DIGEST, payload=PeriodPayload, deliver=deliver, lane="channel")
