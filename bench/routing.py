"""Routing benchmark: what a routing file adds to a batch of MQLs (docs/routing.md).

    python -m bench.routing [TOTAL]      (SQLite; BENCH_POSTGRES_URL adds PostgreSQL)

TOTAL stored leads (default 1,000,000) from 50,000 companies, most claimed over two years, each routed to one
of the file's teams. Then batches of 500 new MQLs go through the same ingest the webhook calls, in one
transaction each, alternately with and without a routing file of 50 rules and `account_owner_days: 180`
(half the batch writes from a company someone owns, so the account owner is looked up and found).

Two measures per batch. *Routing* is the time spent in what a routing file adds to ingest, timed inside the real
ingest: the account owners' query (`account_owners_of`) and choosing each MQL's team (`Policy.route`); without a
file these run too and do almost nothing. *Total* is the whole transaction. Totals of 500 inserts swing by a
second between batches (the commit's disk work), so their pairwise difference only bounds routing's cost at the
median; the routing time is what the aim reads.
"""
from __future__ import annotations

import os
import random
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import models.intake as intake
from bench.common import filled_database, fresh_postgres, fresh_sqlite, pct
from models.db import Database
from models.intake import ingest
from models.leads import LeadIn, Policy
from models.tables import Lead
from runtime import quiet_garbage_collector
from settings import load_settings

NOW = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)  # Monday 11:00 in Tokyo
COMPANIES = 50_000
BATCH = 500
PAIRS = 20
CHUNK = 20_000
TEAMS = ("inside-sales", "field-sales", "enterprise", "partners")
SOURCES = ("webinar", "seminar", "ads", "organic", "event", "partner", "referral", "content")


def routing_file(path: Path) -> Path:
    """Four teams and 50 rules: 49 with conditions of every kind, then the catch-all."""
    rng = random.Random(5)
    lines = ["teams:"]
    for n, team in enumerate(TEAMS):
        lines += [f"  {team}:", f"    channel: C0TEAM{n}", f"    managers: [U0MGR{n}]", f"    reps: [U0REP{n}A, U0REP{n}B]",
                  "    assignment: round-robin", f"    sla_claim_minutes: {60 * (n + 1)}"]
    lines += ["account_owner_days: 180", "rules:"]
    for n in range(49):
        kind = n % 4
        if kind == 0:
            when = f'{{score: ">={rng.randint(90, 99)}", attributes.employees: ">={rng.choice([500, 1000, 5000])}"}}'
        elif kind == 1:
            when = f"{{source: [{rng.choice(SOURCES)}, {rng.choice(SOURCES)}-{n}]}}"
        elif kind == 2:
            when = f"{{email_domain: [c{rng.randint(0, COMPANIES)}.example.jp, c{rng.randint(0, COMPANIES)}.example.jp]}}"
        else:
            when = f"{{attributes.region: region-{n}, title: [CEO, CTO, CIO-{n}]}}"
        lines += [f"  - when: {when}", f"    team: {TEAMS[n % len(TEAMS)]}"]
    lines += ["  - team: inside-sales"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def fill(db: Database, total: int) -> None:
    rng = random.Random(7)
    start = NOW - timedelta(days=730)
    table = Lead.__table__
    empty = dict.fromkeys(("mql_at", "claim_due", "contact_due", "claimed_at", "claimed_by", "team"))
    with db.engine.begin() as conn:
        for first in range(0, total, CHUNK):
            rows = []
            for i in range(first, min(total, first + CHUNK)):
                created = start + timedelta(seconds=rng.random() * 730 * 86400)
                email = f"p{i}@c{i % COMPANIES}.example.jp"
                row = dict(empty, email=email, email_norm=email, score=rng.randint(30, 100), attributes={},
                           source=rng.choice(SOURCES), created_at=created, updated_at=created)
                if row["score"] >= 60:
                    row.update(mql_at=created, claim_due=created + timedelta(hours=4),
                               contact_due=created + timedelta(hours=9), team=rng.choice(TEAMS))
                    if rng.random() < 0.85:
                        row.update(claimed_at=created + timedelta(minutes=30), claimed_by=f"U0REP{rng.randint(0, 3)}A")
                rows.append(row)
            conn.execute(table.insert(), rows)
    if db.engine.dialect.name == "postgresql":
        # As autovacuum leaves a table after a bulk load (PostgreSQL vacuums after inserts too): statistics, and
        # the visibility map that lets the account owners' lookup read its covering index alone.
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE leads")


def batch(n: int, rng: random.Random) -> list[LeadIn]:
    """500 new MQLs; half from companies stored leads came from (their account owners are looked up)."""
    items = []
    for k in range(BATCH):
        company = rng.randrange(COMPANIES) if k % 2 else COMPANIES + n * BATCH + k  # a known or a new company
        items.append(LeadIn(email=f"new{n}-{k}@c{company}.example.jp", score=90, source=rng.choice(SOURCES),
                            attributes={"employees": str(rng.choice([50, 300, 2000])), "region": "kanto"}))
    return items


@contextmanager
def routing_timed(spent: list[float]):
    """Time, into spent[0], the calls ingest makes for routing: the account owners' query and Policy.route."""
    owners_of, route = intake.account_owners_of, Policy.route

    def timing(function):
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent[0] += time.perf_counter() - started
        return timed

    intake.account_owners_of, Policy.route = timing(owners_of), timing(route)
    try:
        yield
    finally:
        intake.account_owners_of, Policy.route = owners_of, route


def measure(db_url: str, total: int, tmp: Path) -> dict:
    db, fill_s = filled_database(db_url, total, fill)
    base = dict(_env_file=None, DATABASE_URL=db_url, HANDOFF_CHANNEL="C0HANDOFF", MANAGER_IDS="U0MGR",
                ASSIGNMENT="round-robin", SALES_REP_IDS="U0REPXA,U0REPXB")
    policies = {"without": Policy.from_settings(load_settings(**base)),
                "with": Policy.from_settings(load_settings(**base, ROUTING_FILE=str(routing_file(tmp / "routing.yml"))))}
    rng = random.Random(11)
    quiet_garbage_collector()  # as `serve` leaves the process whose ingest the webhook calls (runtime.py)
    times: dict[str, list[float]] = {"without": [], "with": []}
    routing: dict[str, list[float]] = {"without": [], "with": []}
    spent = [0.0]
    n = 0
    with routing_timed(spent):
        for pair in range(PAIRS + 2):  # the first two pairs warm the caches and are not counted
            for name in (("without", "with") if pair % 2 else ("with", "without")):
                items = batch(n, rng)
                n += 1
                spent[0] = 0.0
                started = time.perf_counter()
                with db.begin() as session:
                    ingest(session, items, NOW, policies[name])
                if pair >= 2:
                    times[name].append((time.perf_counter() - started) * 1000)
                    routing[name].append(spent[0] * 1000)
    db.dispose()
    added = [w - o for w, o in zip(routing["with"], routing["without"], strict=True)]
    total_added = [w - o for w, o in zip(times["with"], times["without"], strict=True)]
    return {"total": total, "fill_s": fill_s, "pairs": PAIRS,
            "without_p50": statistics.median(times["without"]), "with_p50": statistics.median(times["with"]),
            "total_added_p50": statistics.median(total_added),
            "routing_p50": statistics.median(routing["with"]), "routing_p99": pct(routing["with"], 99),
            "added_p50": statistics.median(added), "added_p99": pct(added, 99)}


def section(results: list[tuple[str, dict]]) -> list[str]:
    """BENCHMARKS.md's routing section."""
    rows = [f"| {label} | {r['total']:,} | {r['pairs']} | {r['routing_p50']:.1f} | {r['routing_p99']:.1f} | "
            f"{r['added_p50']:.1f} | {r['added_p99']:.1f} | {'yes' if r['added_p99'] < 20 else 'no'} | "
            f"{r['without_p50']:.0f} | {r['with_p50']:.0f} | {r['total_added_p50']:.0f} |" for label, r in results]
    return ["## Routing a batch of MQLs",
            f"Batches of {BATCH} new MQLs through the webhook's ingest (one transaction each) on a table of stored leads "
            f"from {COMPANIES:,} companies, most claimed over two years, alternately without a routing file and with "
            "one of 50 rules and `account_owner_days: 180`; half of each batch writes from a company someone owns, "
            "so the account owner is looked up (one statement per batch, one index probe per company) and found. Both ways offer each MQL in "
            "turn (round-robin), in a process whose collector is quieted after start as `serve`'s is "
            "(`runtime.py` `quiet_garbage_collector`). *Routing ms* is the time a batch spent, inside the real ingest, in what a routing "
            "file adds: the account owners' query and choosing each MQL's team (timed around those calls); "
            "*added* is that time with the file minus without it, pair by pair, after two warm-up pairs. *Total* "
            "is the whole transaction: totals of 500 inserts swing by a second from one batch to the next (the "
            "commit's disk work), so their pairwise difference is shown at the median only, as a check that "
            "nothing else grew (bench/routing.py). Aim: under 20 ms added at p99.\n",
            "| database | stored leads | pairs | routing p50 ms | routing p99 ms | added p50 ms | added p99 ms | "
            "under 20 ms | total without p50 ms | total with p50 ms | total added p50 ms |",
            "|---|---|---|---|---|---|---|---|---|---|---|", *rows, ""]


def main(argv: list[str]) -> int:
    total = int(argv[0]) if argv else 1_000_000
    tmp = Path(tempfile.mkdtemp(prefix="handoff-routing-"))
    print(measure(fresh_sqlite(tmp, "routing.db"), total, tmp), flush=True)
    if os.environ.get("BENCH_POSTGRES_URL"):
        print(measure(fresh_postgres(os.environ["BENCH_POSTGRES_URL"]), total, tmp), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
