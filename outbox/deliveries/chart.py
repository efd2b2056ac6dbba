"""The weekly digest's chart, uploaded into the digest's channel (files_upload_v2)."""
from __future__ import annotations

from blocks.chart import weekly_chart
from blocks.texts import t
from models import reports
from models.outbox import Kind
from outbox.deliveries.base import Context, Delivery, Message, Outcome, PeriodPayload


def deliver(ctx: Context, msg: Message[PeriodPayload]) -> Outcome:
    p = msg.payload
    with ctx.db.begin() as s:
        series = reports.chart_series(s, p.label, p.as_of, ctx.clock)
    png, filename = weekly_chart(series, ctx.lang), f"handoff-{p.label}.png"
    ctx.take()
    resp = ctx.client.files_upload_v2(channel=msg.channel, file=png, filename=filename, title=filename,
                                      initial_comment=t("chart.comment", ctx.lang, period=p.label))
    return Outcome("sent", ts=(resp.get("file") or {}).get("id"))


DELIVERY = Delivery(kind=Kind.CHART, payload=PeriodPayload, deliver=deliver, lane="channel")
