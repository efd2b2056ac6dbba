"""SLA sweep benchmark: the selection and the whole sweep with 1,000 due among 100k or 1M open leads.

    python -m bench.sweep [TOTAL ...]        (SQLite; BENCH_POSTGRES_URL adds PostgreSQL)

The table is filled with core bulk inserts (not the webhook: that is measured
elsewhere); every lead has an open claim timer, 1,000 of them due at `NOW`,
the rest spread over the next 30 days.
"""
from __future__ import annotations

import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.common import filled_database, fresh_postgres
from jobs import sla_sweep
from models import sla
from models.db import Database
from models.tables import Lead, SlaTimer
from settings import load_settings

NOW = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)  # Monday 12:00 in Tokyo
DUE = 1_000
CHUNK = 20_000


def fill(db: Database, total: int, due: int = DUE) -> None:
    rng = random.Random(7)
    lead_t, timer_t = Lead.__table__, SlaTimer.__table__
    with db.engine.begin() as conn:
        for start in range(0, total, CHUNK):
            leads, timers = [], []
            for i in range(start, min(total, start + CHUNK)):
                is_due = i % (total // due) == 0 and i // (total // due) < due
                mql = NOW - timedelta(hours=2) if is_due else NOW - timedelta(minutes=rng.randint(1, 60))
                leads.append(dict(id=i + 1, email=f"b{i}@example.com", email_norm=f"b{i}@example.com",
                                  source="bench", score=80, attributes={}, created_at=mql, updated_at=mql,
                                  mql_at=mql, claim_due=mql + timedelta(hours=4), contact_due=mql + timedelta(hours=9)))
                due_at = mql + timedelta(hours=2) if is_due else NOW + timedelta(minutes=rng.randint(1, 43_200))
                timers.append(dict(lead_id=i + 1, kind="claim", step=0, due_at=due_at, snoozes=0))
            conn.execute(lead_t.insert(), leads)
            conn.execute(timer_t.insert(), timers)
    if db.engine.dialect.name == "postgresql":
        with db.engine.begin() as conn:  # committed: statistics analysed in a rolled-back transaction are lost
            conn.exec_driver_sql("ANALYZE leads")
            conn.exec_driver_sql("ANALYZE sla_timers")
            conn.exec_driver_sql("SELECT setval(pg_get_serial_sequence('leads', 'id'), (SELECT max(id) FROM leads))")


def measure(db_url: str, total: int) -> dict:
    db, fill_s = filled_database(db_url, total, fill)
    selections = []
    for _ in range(7):
        with db.begin() as s:
            t = time.perf_counter()
            ids = sla.select_due(s, NOW, DUE)
            selections.append((time.perf_counter() - t) * 1000)
    assert len(ids) == DUE, len(ids)
    settings = load_settings(_env_file=None, DATABASE_URL=db_url, HANDOFF_CHANNEL="C0BENCH",
                             MARKETING_CHANNEL="C0BENCH", MANAGER_IDS="UMANAGER1")
    t = time.perf_counter()
    res = sla_sweep.run(db, NOW, sla.SlaPolicy.from_settings(settings), sla_sweep.Targets.from_settings(settings))
    sweep_ms = (time.perf_counter() - t) * 1000
    with db.begin() as s:
        t = time.perf_counter()
        left = sla.select_due(s, NOW, DUE)
        after_ms = (time.perf_counter() - t) * 1000
    db.dispose()
    return {"total": total, "due": DUE, "fill_s": fill_s, "select_ms": statistics.median(selections),
            "select_max_ms": max(selections), "sweep_ms": sweep_ms, "queued": res.sent, "errors": res.errors,
            "left_due": len(left), "select_after_ms": after_ms}


def main(argv: list[str]) -> int:
    sizes = [int(a) for a in argv] or [100_000, 1_000_000]
    tmp = Path(tempfile.mkdtemp(prefix="handoff-sweep-"))
    for total in sizes:
        print(measure(f"sqlite:///{tmp / f'sweep{total}.db'}", total))
        if os.environ.get("BENCH_POSTGRES_URL"):
            print(measure(fresh_postgres(os.environ["BENCH_POSTGRES_URL"]), total))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
