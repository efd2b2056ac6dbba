"""KPI benchmark: `kpi week` and `kpi month` on 1,000,000 leads over two years, against the naive
approach (the whole table loaded into pandas).

    python -m bench.kpi [TOTAL]      (SQLite; BENCH_POSTGRES_URL adds PostgreSQL)

Time is the median of 5 runs; memory is the peak of Python allocations during one run (tracemalloc),
which is what grows with the rows a computation brings into the process.
"""
from __future__ import annotations

import os
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd

from bench.common import filled_database, fresh_postgres
from models.clock import BusinessClock
from models.db import Database
from models.kpi import compute, parse_period
from models.tables import Lead

TOKYO = ZoneInfo("Asia/Tokyo")
CLOCK = BusinessClock(TOKYO, (dtime(9), dtime(18)), frozenset(range(5)), "JP")
START = datetime(2024, 12, 1, tzinfo=UTC)
AT = datetime(2026, 11, 30, 14, 59, tzinfo=UTC)  # Mon 30 Nov 23:59 in Tokyo
CHUNK = 20_000
EMPTY = dict.fromkeys(("mql_at", "claim_due", "contact_due", "claimed_at", "claimed_by", "contacted_at", "sql_at",
                       "won_at", "lost_at", "lost_reason", "team"))  # every row carries every column (executemany)


TEAMS = ("inside-sales", "field-sales")  # `kpi week --team`: a team's report over its leads only


def fill(db: Database, total: int) -> None:
    rng = random.Random(3)
    teams = random.Random(4)  # its own sequence: the rest of the history is the same with teams or without
    span = (AT - START).total_seconds()
    table = Lead.__table__
    with db.engine.begin() as conn:
        for start in range(0, total, CHUNK):
            rows = []
            for i in range(start, min(total, start + CHUNK)):
                created = START + timedelta(seconds=rng.random() * span)
                score = rng.randint(20, 100)
                row = dict(EMPTY, email=f"k{i}@example.com", email_norm=f"k{i}@example.com", score=score, attributes={},
                           source=rng.choice(["webinar", "ads", "organic", "event", "partner"]), created_at=created,
                           updated_at=created)
                if score >= 60:
                    claim_due, contact_due = created + timedelta(hours=6), created + timedelta(hours=20)
                    row.update(mql_at=created, claim_due=claim_due, contact_due=contact_due,
                               team=teams.choice(TEAMS))
                    if rng.random() < 0.85:
                        claimed = created + timedelta(minutes=rng.expovariate(1 / 240))
                        row.update(claimed_at=claimed, claimed_by=f"U{rng.randint(1, 30):03d}")
                        if rng.random() < 0.7:
                            row["contacted_at"] = claimed + timedelta(minutes=rng.expovariate(1 / 600))
                            if rng.random() < 0.3:
                                row["sql_at"] = row["contacted_at"] + timedelta(days=rng.random() * 7)
                                if rng.random() < 0.3:
                                    row["won_at"] = row["sql_at"] + timedelta(days=rng.random() * 30)
                            elif rng.random() < 0.2:
                                row.update(lost_at=row["contacted_at"] + timedelta(days=2),
                                           lost_reason=rng.choice(["budget", "timing", "no_need"]))
                rows.append(row)
            conn.execute(table.insert(), rows)
    if db.engine.dialect.name == "postgresql":
        with db.engine.begin() as conn:  # committed: statistics analysed in a rolled-back transaction are lost
            conn.exec_driver_sql("ANALYZE leads")


def timed(fn, runs: int = 5) -> tuple[float, float]:
    """(median ms over `runs` runs, peak MB of Python allocations in one more run)."""
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return statistics.median(times), peak


def period_of(kind: str):
    """The last complete week (2026-W48) and the month of AT (November 2026, 30 of 30 days)."""
    return parse_period(kind, "2026-W48" if kind == "week" else "2026-11", AT, TOKYO)


def ours(db: Database, kind: str, team: str | None = None):
    period = period_of(kind)

    def run():
        with db.begin() as s:
            return compute(s, period, AT, CLOCK, team=team)
    return run


def naive(db: Database, kind: str):
    """What a quick script does: read every lead into a DataFrame, then filter and count in pandas."""
    period = period_of(kind)
    start, end = pd.Timestamp(period.start.replace(tzinfo=None)), pd.Timestamp(period.end.replace(tzinfo=None))
    at = pd.Timestamp(AT.replace(tzinfo=None))

    def run():
        with db.engine.connect() as conn:
            df = pd.read_sql_table("leads", conn)
        c = df[(df.mql_at >= start) & (df.mql_at < end) & (df.mql_at <= at)]
        claimed = c[c.claimed_at <= at]
        return {"mqls": len(c), "claimed": len(claimed), "sqls": int((c.sql_at <= at).sum()),
                "by_source": c.groupby("source").size().to_dict()}
    return run


def measure(db_url: str, total: int, with_naive: bool = True) -> list[dict]:
    db, fill_s = filled_database(db_url, total, fill)
    out = []
    for kind in ("week", "month"):
        ms, mb = timed(ours(db, kind))
        with db.begin() as s:
            mqls = compute(s, period_of(kind), AT, CLOCK)["mqls"]
        nms, nmb = timed(naive(db, kind), runs=2) if with_naive else (None, None)
        out.append({"kind": kind, "total": total, "period_mqls": mqls, "ms": ms, "peak_mb": mb, "naive_ms": nms,
                    "naive_peak_mb": nmb, "fill_s": fill_s})
    ms, mb = timed(ours(db, "week", TEAMS[1]))  # /kpi week TEAM
    with db.begin() as s:
        mqls = compute(s, period_of("week"), AT, CLOCK, team=TEAMS[1])["mqls"]
    out.append({"kind": f"week --team {TEAMS[1]}", "total": total, "period_mqls": mqls, "ms": ms, "peak_mb": mb,
                "naive_ms": None, "naive_peak_mb": None, "fill_s": fill_s})
    db.dispose()
    return out


def main(argv: list[str]) -> int:

    total = int(argv[0]) if argv else 1_000_000
    tmp = Path(tempfile.mkdtemp(prefix="handoff-kpi-"))
    for row in measure(f"sqlite:///{tmp / 'kpi.db'}", total):
        print(row)
    if os.environ.get("BENCH_POSTGRES_URL"):
        for row in measure(fresh_postgres(os.environ["BENCH_POSTGRES_URL"]), total):
            print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
