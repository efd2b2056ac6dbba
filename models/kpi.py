"""The KPI report (docs/kpi.md): periods, the as-of rule, and every formula.

The counting happens in SQL, over the period's cohort (leads with `mql_at` in
the period, read through the `mql_at` index), so the cost follows the size of
the period, not of the table. Only the claimed leads' (mql_at, claimed_at)
pairs come back to Python, for the business-time medians, measured with the
clock's prefix sums.
"""
from __future__ import annotations

import math
import re
import statistics
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from sqlalchemy import String, and_, bindparam, case, func, or_, select, text, type_coerce
from sqlalchemy.orm import Session

from models.clock import BusinessClock
from models.tables import Lead, UTCDateTime

KEYS = ("leads", "mqls", "claimed", "claimed_in_sla", "claim_sla_rate", "median_claim_minutes", "contacted",
        "contacted_in_sla", "contact_sla_rate", "sqls", "mql_to_sql_rate", "won", "sql_to_won_rate",
        "overdue_unclaimed", "lost_reasons", "disqualify_reasons", "by_source", "by_rep", "score_bands")
UNSPECIFIED = "unspecified"


class PeriodError(ValueError):
    """A period that cannot be read; the message names it."""


@dataclass(frozen=True)
class Period:
    kind: str    # week | month
    label: str   # 2026-W47 | 2026-11
    start: datetime
    end: datetime

    def previous(self, tz: ZoneInfo) -> Period:
        return period_containing(self.kind, self.start - timedelta(seconds=1), tz)

    def next(self, tz: ZoneInfo) -> Period:
        return period_containing(self.kind, self.end, tz)


def _local_midnight(d: date, tz: ZoneInfo) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=tz).astimezone(UTC)


def week(year: int, number: int, tz: ZoneInfo) -> Period:
    try:
        monday = date.fromisocalendar(year, number, 1)
    except ValueError:
        raise PeriodError(f"{year}-W{number:02d}") from None
    return Period("week", f"{year}-W{number:02d}", _local_midnight(monday, tz),
                  _local_midnight(monday + timedelta(days=7), tz))


def month(year: int, number: int, tz: ZoneInfo) -> Period:
    if not 1 <= number <= 12 or not 1 <= year <= 9998:
        raise PeriodError(f"{year}-{number:02d}")
    first = date(year, number, 1)
    following = date(year + (number == 12), number % 12 + 1, 1)
    return Period("month", f"{year}-{number:02d}", _local_midnight(first, tz), _local_midnight(following, tz))


def period_containing(kind: str, at: datetime, tz: ZoneInfo) -> Period:
    local = at.astimezone(tz).date()
    if kind == "week":
        y, w, _ = local.isocalendar()
        return week(y, w, tz)
    return month(local.year, local.month, tz)


def parse_period(kind: str, text: str | None, at: datetime, tz: ZoneInfo) -> Period:
    """`2026-W47` for a week, `2026-11` for a month; None: the period containing `at`.

    Years outside 1900–9998 are refused: their period, or the one before or after it that a report
    compares with, would fall outside what a datetime can hold."""
    if kind not in ("week", "month"):
        raise PeriodError(kind)
    if not text:
        return period_containing(kind, at, tz)
    text = text.strip()
    m = (re.fullmatch(r"(\d{4})-W(\d{1,2})", text, re.I | re.A) if kind == "week"
         else re.fullmatch(r"(\d{4})-(\d{1,2})", text, re.A))
    if not m or not 1900 <= int(m.group(1)) <= 9998:
        raise PeriodError(text)
    y, n = int(m.group(1)), int(m.group(2))
    return week(y, n, tz) if kind == "week" else month(y, n, tz)


# The formulas -------------------------------------------------------------------
def rate(num: int, den: int) -> float | None:
    return None if not den else round(num / den, 4)


def band_of(score: int) -> str:
    low = min(score // 10 * 10, 90)
    return f"{low}-{low + 9}"


def _by(col, at: datetime):
    """Stamped, and not after the as-of instant."""
    return and_(col.is_not(None), col <= at)


def _n(cond):
    return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)


def compute(session: Session, period: Period, as_of: datetime, clock: BusinessClock, team: str | None = None,
            teams: tuple[str, ...] = (), receives: bool = False) -> dict:
    """The report for `period` as of `as_of`: exactly the keys of docs/kpi.md, plus the period's.

    With a routing file (docs/routing.md): `team` reports on the leads routed to that team only, and adds
    `team`, and the `handed_in*` keys when the team receives SQLs from another (`receives`); without a team,
    `teams` (every team id) adds `by_team`."""
    A = as_of.astimezone(UTC)
    start, end = period.start, period.end
    # A team's leads, tested as an expression rather than on the column: SQLite, without statistics, would
    # otherwise read the team's index (half the table for two teams) instead of the period's mql_at range.
    ours = (func.coalesce(Lead.team, "") == team) if team is not None else None
    cohort = and_(Lead.mql_at >= start, Lead.mql_at < end, Lead.mql_at <= A, *([ours] if ours is not None else []))
    claimed = _by(Lead.claimed_at, A)
    in_sla = and_(claimed, Lead.claimed_at <= Lead.claim_due)
    contacted = _by(Lead.contacted_at, A)
    contact_in_sla = and_(contacted, Lead.contacted_at <= Lead.contact_due)
    sql = _by(Lead.sql_at, A)

    # One pass over the cohort: every count, grouped by source, rep (if claimed by A) and score band.
    # The grouped result is small (sources × reps × bands); pandas adds it up each way.
    rep = case((claimed, func.coalesce(Lead.claimed_by, "")), else_=None)
    band = case((Lead.score >= 90, 90), else_=(Lead.score // 10) * 10)
    columns = ["source", "rep", "band", "mqls", "claimed", "in_sla", "claim_den", "contacted", "contact_sla",
               "contact_den", "sqls", "won"]
    rows = session.execute(select(
        Lead.source, rep, band, func.count(), _n(claimed), _n(in_sla), _n(or_(claimed, Lead.claim_due <= A)),
        _n(contacted), _n(contact_in_sla), _n(or_(contacted, Lead.contact_due <= A)), _n(sql),
        _n(_by(Lead.won_at, A))).where(cohort).group_by(Lead.source, rep, band)).all()
    g = pd.DataFrame([tuple(r) for r in rows], columns=columns)
    numbers = columns[3:]
    g[numbers] = g[numbers].astype("int64")
    total = g[numbers].sum() if len(g) else pd.Series(0, index=numbers)
    mqls, n_claimed, n_in_sla, claim_den = (int(total[k]) for k in ("mqls", "claimed", "in_sla", "claim_den"))
    n_contacted, n_contact_sla, contact_den = (int(total[k]) for k in ("contacted", "contact_sla", "contact_den"))
    sqls, won = int(total["sqls"]), int(total["won"])

    leads = session.scalar(select(func.count()).select_from(Lead).where(
        Lead.created_at >= start, Lead.created_at < end, Lead.created_at <= A, *([ours] if ours is not None else [])))

    # Business minutes to claim, for the medians: prefix sums of business time, vectorised over the cohort.
    # Read as stored (no datetime object per value): the clock parses the whole column at once.
    raw = (lambda col: type_coerce(col, String)) if session.bind.dialect.name == "sqlite" else (lambda col: col)
    pairs = session.execute(select(Lead.claimed_by, raw(Lead.mql_at), raw(Lead.claimed_at)).where(cohort, claimed)).all()
    owners = [p[0] or UNSPECIFIED for p in pairs]
    minutes = np.maximum(0.0, clock.cumulative_many([p[2] for p in pairs]) - clock.cumulative_many([p[1] for p in pairs]))
    every = minutes.tolist()
    medians = pd.Series(minutes, index=owners, dtype=float).groupby(level=0).median() if pairs else pd.Series(dtype=float)

    by_rep = {}
    for who, v in g[g["rep"].notna()].groupby("rep")[["claimed", "in_sla"]].sum().iterrows():
        key = who or UNSPECIFIED
        by_rep[key] = {"claimed": int(v["claimed"]), "claimed_in_sla": int(v["in_sla"]),
                       "median_claim_minutes": round(float(medians[key]), 1) if key in medians.index else None}
    by_source = {src: {"mqls": int(v["mqls"]), "sqls": int(v["sqls"]), "mql_to_sql_rate": rate(int(v["sqls"]),
                                                                                                int(v["mqls"]))}
                 for src, v in g.groupby("source")[["mqls", "sqls"]].sum().iterrows()}
    score_bands = {f"{int(low)}-{int(low) + 9}": {"mqls": int(v["mqls"]), "sqls": int(v["sqls"]),
                                                  "mql_to_sql_rate": rate(int(v["sqls"]), int(v["mqls"]))}
                   for low, v in g.groupby("band")[["mqls", "sqls"]].sum().sort_index().iterrows()}

    report = {
        "period": period.label,
        "start": period.start.astimezone(clock.tz).isoformat(),
        "end": period.end.astimezone(clock.tz).isoformat(),
        "as_of": A.astimezone(clock.tz).isoformat(),
        **({"team": team} if team is not None else {}),
        "leads": int(leads or 0),
        "mqls": mqls,
        "claimed": n_claimed,
        "claimed_in_sla": n_in_sla,
        "claim_sla_rate": rate(n_in_sla, claim_den),
        "median_claim_minutes": _median(every),
        "contacted": n_contacted,
        "contacted_in_sla": n_contact_sla,
        "contact_sla_rate": rate(n_contact_sla, contact_den),
        "sqls": sqls,
        "mql_to_sql_rate": rate(sqls, mqls),
        "won": won,
        "sql_to_won_rate": rate(won, sqls),
        "overdue_unclaimed": overdue_unclaimed(session, A, team),
        "lost_reasons": _reasons(session, Lead.lost_at, Lead.lost_reason, start, end, A, ours),
        "disqualify_reasons": _reasons(session, Lead.disqualified_at, Lead.disqualify_reason, start, end, A, ours),
        "by_source": dict(sorted(by_source.items())),
        "by_rep": dict(sorted(by_rep.items())),
        "score_bands": score_bands,
    }
    if team is not None and receives:
        report.update(handed_in(session, period, A, clock, team))
    if team is None and teams:
        report["by_team"] = by_team(session, period, A, teams)
    return report


def by_team(session: Session, period: Period, A: datetime, teams: tuple[str, ...]) -> dict:
    """{team: {mqls, claimed, claimed_in_sla, claim_sla_rate, sqls}} over the cohort, one grouped pass; every
    team of the file appears, with zeros when it had no MQL."""
    claimed = _by(Lead.claimed_at, A)
    rows = session.execute(select(
        Lead.team, func.count(), _n(claimed), _n(and_(claimed, Lead.claimed_at <= Lead.claim_due)),
        _n(or_(claimed, Lead.claim_due <= A)), _n(_by(Lead.sql_at, A)))
        .where(Lead.mql_at >= period.start, Lead.mql_at < period.end, Lead.mql_at <= A, Lead.team.is_not(None))
        .group_by(Lead.team)).all()
    found = {row[0]: tuple(int(v) for v in row[1:]) for row in rows}
    out = {}
    for team in sorted({*teams, *found}):
        mqls, n_claimed, in_sla, den, sqls = found.get(team, (0, 0, 0, 0, 0))
        out[team] = {"mqls": mqls, "claimed": n_claimed, "claimed_in_sla": in_sla,
                     "claim_sla_rate": rate(in_sla, den), "sqls": sqls}
    return out


HANDED_IN_KEYS = ("handed_in", "handed_in_claimed", "handed_in_claimed_in_sla", "handed_in_claim_sla_rate",
                  "median_handed_in_claim_minutes")


def handed_in(session: Session, period: Period, A: datetime, clock: BusinessClock, team: str) -> dict:
    """The second handoff, for a team that receives SQLs: the leads handed to it with `sql_at` in the period,
    their claim by that team (`handed_claimed_at`) against its deadline (`handed_claim_due`), and the median
    business minutes from `sql_at` to that claim: defined like the claim keys."""
    cohort = and_(Lead.handed_to == team, Lead.sql_at >= period.start, Lead.sql_at < period.end, Lead.sql_at <= A)
    claimed = _by(Lead.handed_claimed_at, A)
    n, n_claimed, in_sla, den = (int(v) for v in session.execute(select(
        func.count(), _n(claimed), _n(and_(claimed, Lead.handed_claimed_at <= Lead.handed_claim_due)),
        _n(or_(claimed, Lead.handed_claim_due <= A))).where(cohort)).one())
    raw = (lambda col: type_coerce(col, String)) if session.bind.dialect.name == "sqlite" else (lambda col: col)
    pairs = session.execute(select(raw(Lead.sql_at), raw(Lead.handed_claimed_at)).where(cohort, claimed)).all()
    minutes = np.maximum(0.0, clock.cumulative_many([p[1] for p in pairs]) - clock.cumulative_many([p[0] for p in pairs]))
    return {"handed_in": n, "handed_in_claimed": n_claimed, "handed_in_claimed_in_sla": in_sla,
            "handed_in_claim_sla_rate": rate(in_sla, den), "median_handed_in_claim_minutes": _median(minutes.tolist())}


def compute_with_previous(session: Session, period: Period, as_of: datetime, clock: BusinessClock,
                          **team) -> tuple[dict, dict]:
    """The report and the one for the period before it (the "vs previous" column), as of the same instant;
    `team`: compute's team, teams and receives."""
    return (compute(session, period, as_of, clock, **team),
            compute(session, period.previous(clock.tz), as_of, clock, **team))


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def _reasons(session: Session, at_col, reason_col, start: datetime, end: datetime, A: datetime,
             ours=None) -> dict[str, int]:
    rows = session.execute(select(reason_col, func.count()).where(at_col >= start, at_col < end, at_col <= A,
                                                                  *([ours] if ours is not None else []))
                           .group_by(reason_col))
    out: dict[str, int] = {}
    for reason, n in rows:
        out[reason or UNSPECIFIED] = out.get(reason or UNSPECIFIED, 0) + int(n)
    return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))


def overdue_unclaimed(session: Session, A: datetime, team: str | None = None) -> int:
    """Any cohort: handed off by A, not claimed by A, not lost or disqualified by A, claim_due ≤ A (of `team`'s
    leads only, when given).

    Two index reads (never claimed: the partial index ix_leads_unclaimed_due; claimed only after A:
    ix_leads_claimed_at) instead of a scan of every MQL.
    """
    still_open = and_(Lead.mql_at <= A, Lead.claim_due <= A,
                      or_(Lead.lost_at.is_(None), Lead.lost_at > A),
                      or_(Lead.disqualified_at.is_(None), Lead.disqualified_at > A),
                      *([func.coalesce(Lead.team, "") == team] if team is not None else []))
    if session.bind.dialect.name == "sqlite":
        # SQLite's planner, without statistics, prefers the mql_at range; name the index it should read.
        query = NEVER_CLAIMED_SQLITE if team is None else NEVER_CLAIMED_SQLITE_TEAM
        never = session.execute(query, {"a": A, **({"team": team} if team is not None else {})}).scalar()
    else:
        never = session.scalar(select(func.count()).select_from(Lead).where(
            Lead.claimed_at.is_(None), Lead.mql_at.is_not(None), still_open))
    later = session.scalar(select(func.count()).select_from(Lead).where(Lead.claimed_at > A, still_open))
    return int(never or 0) + int(later or 0)


NEVER_CLAIMED_SQLITE = text(
    "SELECT count(*) FROM leads INDEXED BY ix_leads_unclaimed_due "
    "WHERE claimed_at IS NULL AND mql_at IS NOT NULL AND claim_due <= :a AND mql_at <= :a "
    "AND (lost_at IS NULL OR lost_at > :a) AND (disqualified_at IS NULL OR disqualified_at > :a)"
).bindparams(bindparam("a", type_=UTCDateTime()))
NEVER_CLAIMED_SQLITE_TEAM = text(str(NEVER_CLAIMED_SQLITE.text) + " AND team = :team").bindparams(
    bindparam("a", type_=UTCDateTime()))


def change(now: float | int | None, before: float | int | None) -> float | None:
    """Relative change for the report's "vs previous" column; None when it has no meaning."""
    if now is None or before is None or before == 0:
        return None
    value = (now - before) / before
    return None if math.isinf(value) else value
