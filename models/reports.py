"""What the weekly digest and the monthly retro say: the data behind them, read as of one instant.

The jobs (jobs/reports.py) decide when a report is due and queue it; the outbox renders it from these
functions when it is sent, so a retry shows the very same numbers. The formulas are in docs/kpi.md.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from models.clock import BusinessClock
from models.kpi import compute, compute_with_previous, handed_in, parse_period
from models.planning import targets
from models.tables import ActionItem, Lead

CHART_WEEKS = 8  # weeks on the digest's chart


def overdue_now(session: Session, A: datetime, limit: int = 10) -> dict:
    """Unclaimed past the claim deadline, and claimed without contact past the contact deadline."""
    open_ = and_(Lead.mql_at <= A, Lead.lost_at.is_(None), Lead.won_at.is_(None), Lead.disqualified_at.is_(None))
    unclaimed = and_(open_, Lead.claimed_at.is_(None), Lead.claim_due <= A)
    no_contact = and_(open_, Lead.claimed_at.is_not(None), Lead.contacted_at.is_(None), Lead.contact_due <= A)
    out = {}
    for name, cond, order in (("unclaimed", unclaimed, Lead.claim_due), ("no_contact", no_contact, Lead.contact_due)):
        rows = session.execute(select(Lead.id, Lead.company, Lead.claimed_by, order).where(cond).order_by(order)
                               .limit(limit)).all()
        total = session.scalar(select(func.count()).select_from(Lead).where(cond))
        out[name] = {"total": int(total or 0), "leads": [tuple(r) for r in rows]}
    return out


def without_outcome(session: Session, A: datetime, clock: BusinessClock, days: int) -> dict[str, int]:
    """Reps with contacted leads left without any outcome for more than `days` business days at A."""
    if days <= 0:
        return {}
    hours = clock.hours
    per_day = 24 * 60 if hours is None else (hours[1].hour * 60 + hours[1].minute) - (hours[0].hour * 60 + hours[0].minute)
    # contacted_at + days business days <= A  ⇔  contacted_at <= A - (that span), measured backwards:
    # the cut-off is found by stepping the business clock back, so nights and holidays do not count.
    cutoff = _business_back(A, days * per_day, clock)
    rows = session.execute(select(Lead.claimed_by, func.count()).where(
        Lead.contacted_at <= cutoff, Lead.sql_at.is_(None), Lead.won_at.is_(None), Lead.lost_at.is_(None),
        Lead.disqualified_at.is_(None), Lead.claimed_by.is_not(None)).group_by(Lead.claimed_by))
    return dict(sorted(((rep, int(n)) for rep, n in rows), key=lambda kv: -kv[1]))


def _business_back(at: datetime, minutes: float, clock: BusinessClock) -> datetime:
    """The latest instant x with minutes_between(x, at) >= minutes (binary search on the clock)."""
    target = clock.cumulative(at) - minutes
    lo, hi = at - timedelta(days=max(7, int(minutes / 60) + 60)), at
    for _ in range(60):
        mid = lo + (hi - lo) / 2
        if clock.cumulative(mid) <= target:
            lo = mid
        else:
            hi = mid
    return lo


def chart_series(session: Session, label: str, as_of: datetime, clock: BusinessClock) -> list[dict]:
    """The last CHART_WEEKS weeks up to `label`: MQLs, SQLs and the claim-SLA rate of each."""
    period = parse_period("week", label, as_of, clock.tz)
    weeks = [period]
    for _ in range(CHART_WEEKS - 1):
        weeks.insert(0, weeks[0].previous(clock.tz))
    out = []
    for w in weeks:
        r = compute(session, w, as_of, clock)
        out.append({"label": w.label, "mqls": r["mqls"], "sqls": r["sqls"], "claim_sla_rate": r["claim_sla_rate"]})
    return out


def retro_data(session: Session, label: str, as_of: datetime, clock: BusinessClock, teams=None) -> dict:
    """The month's report and the one before, targets and last month's action items; with a routing file
    (`teams`, models/teams.py), every team's numbers and, for each team that receives SQLs, the second
    handoff's (`handed_in*`) beside them."""
    period = parse_period("month", label, as_of, clock.tz)
    scope = teams.kpi_scope(None) if teams is not None else {}
    report, previous = compute_with_previous(session, period, as_of, clock, **scope)
    items = list(session.scalars(select(ActionItem).where(ActionItem.retro_month == previous["period"])
                                 .order_by(ActionItem.id)))
    receiving = [team.id for team in (teams or ()) if team.id is not None and teams.kpi_scope(team.id)["receives"]]
    return {"report": report, "previous": previous, "targets": targets(session, label),
            "last_items": [(i.text, i.added_by) for i in items],
            "handoffs": {team: handed_in(session, period, as_of, clock, team) for team in receiving}}


def threshold_advice(report: dict, threshold: int, min_mqls: int = 10) -> dict | None:
    """Whether the lowest MQL band converts far worse (raise the bar) or as well (it could come down)."""
    overall = report["mql_to_sql_rate"]
    bands = report["score_bands"]
    if overall is None or not bands:
        return None
    low = f"{min(threshold // 10 * 10, 90)}-{min(threshold // 10 * 10, 90) + 9}"
    band = bands.get(low)
    if band is None or band["mqls"] < min_mqls or band["mql_to_sql_rate"] is None:
        return {"advice": "keep", "band": low, "band_rate": band and band["mql_to_sql_rate"], "overall": overall,
                "mqls": band["mqls"] if band else 0, "threshold": threshold}
    if band["mql_to_sql_rate"] < overall / 2:
        advice, to = "raise", min(100, threshold // 10 * 10 + 10)
    elif band["mql_to_sql_rate"] >= overall and threshold >= 10:
        advice, to = "lower", threshold - 10
    else:
        advice, to = "keep", threshold
    return {"advice": advice, "band": low, "band_rate": band["mql_to_sql_rate"], "overall": overall,
            "mqls": band["mqls"], "threshold": threshold, "to": to}


def went_well(report: dict, previous: dict, min_mqls: int = 5) -> dict:
    """What the data says went well and what did not: sources, SLA misses by rep, the biggest changes."""
    sources = [(s, v) for s, v in report["by_source"].items() if v["mqls"] >= min_mqls
               and v["mql_to_sql_rate"] is not None]
    sources.sort(key=lambda kv: kv[1]["mql_to_sql_rate"])
    misses = sorted(((rep, v["claimed"] - v["claimed_in_sla"]) for rep, v in report["by_rep"].items()
                     if v["claimed"] > v["claimed_in_sla"]), key=lambda kv: -kv[1])[:3]
    changes = []
    for key in ("mqls", "sqls", "won", "claim_sla_rate", "contact_sla_rate", "mql_to_sql_rate"):
        now, before = report[key], previous[key]
        if now is None or before is None or now == before:
            continue
        changes.append((key, before, now, (now - before) / before if before else None))
    changes.sort(key=lambda c: -abs(c[3]) if c[3] is not None else 0)
    return {"best_source": sources[-1] if sources else None,
            "worst_source": sources[0] if len(sources) > 1 else None,
            "sla_misses": misses, "changes": changes[:4]}
