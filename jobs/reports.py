"""The weekly digest and the monthly retro: when each is due, and queuing it once.

Each report is one outbox row keyed by its period (`digest:2026-W47`,
`retro:2026-11`), rendered when sent from the data as of the instant it was due,
so two schedulers, a re-run, or a restart post it once, with the same numbers.
After downtime the latest report that fell due is queued when the app is back.
What goes in them is read by models/reports.py when the outbox sends them (docs/jobs.md).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy.orm import Session

from models.clock import BusinessClock
from models.kpi import Period, month, period_containing
from models.outbox import Kind, enqueue

DIGEST_AT = time(9, 0)   # Monday
RETRO_AT = time(10, 0)   # first business day of the month


@dataclass(frozen=True)
class Due:
    period: Period
    at: datetime  # when it fell due: the report's as-of instant


def _local(d: date, t: time, clock: BusinessClock) -> datetime:
    return datetime.combine(d, t, tzinfo=clock.tz).astimezone(UTC)


def digest_due(now: datetime, clock: BusinessClock) -> Due:
    """The latest weekly digest whose time (Monday 09:00) has come at `now`."""
    this_week = period_containing("week", now, clock.tz)
    monday = this_week.start.astimezone(clock.tz).date()
    at = _local(monday, DIGEST_AT, clock)
    if now < at:
        at = _local(monday - timedelta(days=7), DIGEST_AT, clock)
    return Due(period_containing("week", at - timedelta(days=1), clock.tz), at)


def first_business_day(year: int, number: int, clock: BusinessClock) -> date:
    d = date(year, number, 1)
    while not clock.is_business_day(d):
        d += timedelta(days=1)
    return d


def retro_due(now: datetime, clock: BusinessClock) -> Due:
    """The latest monthly retro whose time (first business day, 10:00) has come at `now`."""
    local = now.astimezone(clock.tz).date()
    y, m = local.year, local.month
    at = _local(first_business_day(y, m, clock), RETRO_AT, clock)
    if now < at:
        y, m = (y - 1, 12) if m == 1 else (y, m - 1)
        at = _local(first_business_day(y, m, clock), RETRO_AT, clock)
    reviewed = month(y - 1, 12, clock.tz) if m == 1 else month(y, m - 1, clock.tz)
    return Due(reviewed, at)


def queue_digest(session: Session, due: Due, channel: str, now: datetime) -> bool:
    payload = {"label": due.period.label, "as_of": due.at.isoformat()}
    queued = enqueue(session, kind=Kind.DIGEST, dedupe_key=f"digest:{due.period.label}", now=now,
                     channel=channel, payload=payload)
    enqueue(session, kind=Kind.CHART, dedupe_key=f"chart:{due.period.label}", now=now, channel=channel,
            payload=payload)
    return queued


def queue_retro(session: Session, due: Due, channel: str, now: datetime) -> bool:
    return enqueue(session, kind=Kind.RETRO, dedupe_key=f"retro:{due.period.label}", now=now, channel=channel,
                   payload={"label": due.period.label, "as_of": due.at.isoformat()})
