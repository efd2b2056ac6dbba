"""Rendering the report messages the outbox sends: a shared /kpi report, the digest, its chart, the retro.

Each is computed when sent, from the data as of the instant stored in the row, so a
retry or a second sender renders the very same numbers.
"""
from __future__ import annotations

from datetime import datetime

from blocks import digest as digest_blocks
from blocks import kpi as kpi_blocks
from blocks.chart import weekly_chart
from blocks.texts import t
from models import reports
from models.kpi import compute_with_previous, parse_period
from models.outbox import Kind


def render(kind: str, payload: dict, db, settings) -> tuple[str, list[dict]]:
    lang, clock = settings.LANGUAGE, settings.clock
    as_of = datetime.fromisoformat(payload["as_of"])
    with db.begin() as session:
        if kind == Kind.REPORT:
            report, previous = compute_with_previous(session, parse_period(payload["kind"], payload["label"], as_of, clock.tz), as_of, clock)
            text, blocks = kpi_blocks.blocks(report, previous, lang)
            blocks.append({"type": "context", "elements": [
                {"type": "mrkdwn", "text": t("kpi.shared_by", lang, user=payload["user"])}]})
            return text, blocks
        if kind == Kind.DIGEST:
            report, previous = compute_with_previous(session, parse_period("week", payload["label"], as_of, clock.tz), as_of, clock)
            overdue = reports.overdue_now(session, as_of)
            lagging = reports.without_outcome(session, as_of, clock, settings.OUTCOME_REMINDER_DAYS)
            return digest_blocks.digest(report, previous, overdue, lagging, lang)
        if kind == Kind.RETRO:
            data = reports.retro_data(session, payload["label"], as_of, clock)
            advice = reports.threshold_advice(data["report"], settings.MQL_SCORE_THRESHOLD)
            well = reports.went_well(data["report"], data["previous"])
            return digest_blocks.retro(data, advice, well, lang, "MQL_SCORE_THRESHOLD")
    raise ValueError(f"not a report: {kind}")


def chart(payload: dict, db, settings) -> tuple[bytes, str, str]:
    """The digest chart's PNG, file name and comment."""
    as_of = datetime.fromisoformat(payload["as_of"])
    with db.begin() as session:
        series = reports.chart_series(session, payload["label"], as_of, settings.clock)
    png = weekly_chart(series, settings.LANGUAGE)
    return png, f"handoff-{payload['label']}.png", t("chart.comment", settings.LANGUAGE, period=payload["label"])
