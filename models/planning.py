"""Targets per month and reverse planning from a revenue goal (`/kpi target`, `/kpi plan`)."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.clock import BusinessClock
from models.kpi import Period, compute
from models.tables import KpiTarget

TARGET_METRICS = {  # metric: (is a rate, what a "good" value looks like)
    "mqls": False, "sqls": False, "won": False, "claim_sla_rate": True, "contact_sla_rate": True,
    "mql_to_sql_rate": True, "sql_to_won_rate": True,
}


# What a person can mean by an amount or a rate; anything outside is a typo or an attack, and would make
# the plan's arithmetic overflow (a 400-digit revenue is `inf`, and ⌈inf⌉ raises).
MIN_AMOUNT, MAX_AMOUNT = 1.0, 1e15
MIN_RATE = 0.0001  # 0.01 %


class PlanError(ValueError):
    """`key` names the catalog message; params fill it."""

    def __init__(self, key: str, **params):
        super().__init__(key)
        self.key, self.params = key, params


def parse_amount(text: str) -> float:
    """1200000, 1,200,000, 1.2m, 300k, 5000万 (man) → a number from MIN_AMOUNT to MAX_AMOUNT."""
    raw = text.strip().lower().replace(",", "").replace("_", "").replace("¥", "").replace("$", "")
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(k|m|万|億)?", raw, re.A)
    if not m:
        raise PlanError("kpi.plan.bad_number", text=text)
    value = float(m.group(1)) * {"k": 1e3, "m": 1e6, "万": 1e4, "億": 1e8}.get(m.group(2) or "", 1)
    if not MIN_AMOUNT <= value <= MAX_AMOUNT:  # also inf, from more digits than a float holds
        raise PlanError("kpi.plan.amount_range", text=text, min=f"{MIN_AMOUNT:,.0f}", max=f"{MAX_AMOUNT:,.0f}")
    return value


def parse_rate(text: str) -> float:
    """0.25 or 25% → 0.25, in [MIN_RATE, 1]."""
    raw = text.strip()
    if not re.fullmatch(r"\d+(?:\.\d+)?%?|\.\d+%?", raw, re.A):  # no signs, exponents, inf or nan
        raise PlanError("kpi.plan.bad_rate", text=text)
    value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    if value > 1 and not raw.endswith("%"):
        value /= 100  # "25" means 25 %
    if not 0 < value <= 1:
        raise PlanError("kpi.plan.bad_rate", text=text)
    if value < MIN_RATE:
        raise PlanError("kpi.plan.rate_range", text=text, min=f"{MIN_RATE:.2%}")
    return value


@dataclass(frozen=True)
class Plan:
    revenue: float
    deal_size: float
    win_rate: float
    mql_to_sql_rate: float
    win_from_actuals: bool
    mql_from_actuals: bool
    deals: int
    sqls: int
    mqls: int


def actual_rates(session: Session, now: datetime, clock: BusinessClock) -> tuple[float | None, float | None]:
    """SQL→won and MQL→SQL over the MQLs of the last 90 days."""
    r = compute(session, Period("custom", "last-90-days", now - timedelta(days=90), now), now, clock)
    return r["sql_to_won_rate"], r["mql_to_sql_rate"]


def plan(session: Session, words: list[str], now: datetime, clock: BusinessClock) -> Plan:
    """deals = ⌈revenue ÷ deal size⌉, SQLs = ⌈deals ÷ win rate⌉, MQLs = ⌈SQLs ÷ MQL→SQL rate⌉."""
    if len(words) < 2 or len(words) > 4:
        raise PlanError("kpi.plan.usage")
    revenue, deal = parse_amount(words[0]), parse_amount(words[1])
    win = parse_rate(words[2]) if len(words) > 2 else None
    m2s = parse_rate(words[3]) if len(words) > 3 else None
    win_actual = mql_actual = False
    if win is None or m2s is None:
        actual_win, actual_m2s = actual_rates(session, now, clock)
        if win is None:
            if not actual_win:
                raise PlanError("kpi.plan.no_actuals", what="win rate")
            win, win_actual = actual_win, True
        if m2s is None:
            if not actual_m2s:
                raise PlanError("kpi.plan.no_actuals", what="MQL→SQL rate")
            m2s, mql_actual = actual_m2s, True
    deals = math.ceil(revenue / deal - 1e-9)
    sqls = math.ceil(deals / win - 1e-9)
    mqls = math.ceil(sqls / m2s - 1e-9)
    return Plan(revenue, deal, win, m2s, win_actual, mql_actual, deals, sqls, mqls)


def set_target(session: Session, *, month: str, metric: str, value_text: str, user: str, now: datetime) -> float:
    if metric not in TARGET_METRICS:
        raise PlanError("kpi.target.bad_metric", metric=metric, metrics=", ".join(TARGET_METRICS))
    value = parse_rate(value_text) if TARGET_METRICS[metric] else parse_amount(value_text)
    row = session.get(KpiTarget, (month, metric), with_for_update=True)
    if row is None:
        session.add(KpiTarget(month=month, metric=metric, value=value, set_by=user, set_at=now))
    else:
        row.value, row.set_by, row.set_at = value, user, now
    return value


def targets(session: Session, month: str) -> dict[str, float]:
    return {r.metric: r.value for r in session.scalars(select(KpiTarget).where(KpiTarget.month == month))}
