"""The monthly retro agenda, computed as of the first business day's 10:00 when it fell due."""
from __future__ import annotations

from blocks import digest as digest_blocks
from models import reports
from models.outbox import Kind
from models.teams import Teams
from outbox.deliveries.base import Context, Delivery, Message, Outcome, PeriodPayload


def deliver(ctx: Context, msg: Message[PeriodPayload]) -> Outcome:
    p = msg.payload
    with ctx.db.begin() as s:
        data = reports.retro_data(s, p.label, p.as_of, ctx.clock, Teams.from_settings(ctx.settings))
    advice = reports.threshold_advice(data["report"], ctx.settings.MQL_SCORE_THRESHOLD)
    well = reports.went_well(data["report"], data["previous"])
    text, blocks = digest_blocks.retro(data, advice, well, ctx.lang, "MQL_SCORE_THRESHOLD")
    return Outcome("sent", ts=ctx.post(msg.channel, text, blocks).get("ts"))


DELIVERY = Delivery(kind=Kind.RETRO, payload=PeriodPayload, deliver=deliver, lane="channel")
