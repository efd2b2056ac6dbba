"""Bulk import benchmark: `import_csv` of 200,000 CSV rows while `bot.py serve` answers webhooks.

    python -m bench.import_leads [ROWS]      (SQLite; BENCH_POSTGRES_URL adds PostgreSQL)

Writes its section of BENCHMARKS.md (replacing the one there); `make bench` includes it too.

The served app and the import share one database file, as with `bot.py import-leads` next to
`bot.py serve`. Four clients post single leads to the webhook the whole time. On SQLite a probe
thread tries to take the write lock every 5 ms without waiting: the longest run of refusals is the
longest time any writer held it.
"""
from __future__ import annotations

import csv
import http.client
import json
import logging
import os
import random
import sqlite3
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from bench.common import HOOK, Server, fresh_postgres, machine, pct, put_section
from models.db import Database
from models.importer import import_csv
from models.leads import Policy
from models.tables import Lead
from settings import load_settings

ROWS = 200_000
HEADER = ("external_id", "email", "name", "company", "title", "source", "score", "created_at", "mql_at",
          "claimed_at", "claimed_by", "contacted_at", "lost_at", "lost_reason")


def write_csv(path: Path, rows: int, domain: str = "import.example", seed: int = 7) -> Path:
    """A lead history export: three in four rows with a CRM id, about 40 % MQLs, most of those claimed,
    some contacted or lost."""
    rng = random.Random(seed)
    start = datetime(2025, 1, 6, 9, 0)
    with open(path, "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(HEADER)
        for i in range(rows):
            created = start + timedelta(minutes=rng.randint(0, 600_000))
            score = rng.randint(0, 100)
            row = [f"crm-{domain}-{i}" if i % 4 else "", f"Lead{i}@{domain}", f"Name {i}", f"Company {i % 5000}",
                   "CTO" if i % 7 == 0 else "", ("webinar", "ads", "organic", "event")[i % 4], score,
                   created.isoformat(), "", "", "", "", "", ""]
            if score >= 60:
                mql = created + timedelta(minutes=rng.randint(1, 600))
                row[8] = mql.isoformat()
                if i % 3:
                    row[9], row[10] = (mql + timedelta(minutes=rng.randint(1, 900))).isoformat(), f"UREP{i % 40:03d}"
                    if i % 2:
                        row[11] = (mql + timedelta(minutes=rng.randint(900, 3000))).isoformat()
                elif i % 5 == 0:
                    row[12], row[13] = (mql + timedelta(days=3)).isoformat(), "budget"
            out.writerow(row)
    return path


class LockProbe:
    """Tries BEGIN IMMEDIATE every `every` s and gives it back at once; `longest` is the longest run of
    "database is locked", i.e. the longest time some writer held SQLite's write lock."""

    def __init__(self, path: str, every: float = 0.005):
        self.path, self.every = path, every
        self.longest = 0.0
        self._since: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        conn = sqlite3.connect(self.path, timeout=0, isolation_level=None)
        while not self._stop.is_set():
            now = time.perf_counter()
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("ROLLBACK")
                if self._since is not None:
                    self.longest, self._since = max(self.longest, now - self._since), None
            except sqlite3.OperationalError:
                if self._since is None:
                    self._since = now
            time.sleep(self.every)
        conn.close()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        if self._since is not None:
            self.longest = max(self.longest, time.perf_counter() - self._since)


class Webhooks:
    """`clients` threads posting one new lead each, one after the other, until stopped."""

    def __init__(self, port: int, token: str, clients: int = 4, pause: float = 0.02):
        self.port, self.token, self.pause = port, token, pause
        self.answers: list[tuple[float, float, int, bool]] = []  # (sent at, seconds, status, Retry-After given)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._client, args=(k,), daemon=True) for k in range(clients)]

    def _client(self, k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        i = 0
        while not self._stop.is_set():
            body = json.dumps({"email": f"live{k}-{i}@webhook.example", "score": 80 if i % 3 == 0 else 30})
            sent = time.perf_counter()
            try:
                conn.request("POST", "/hooks/leads", body=body, headers=headers)
                resp = conn.getresponse()
                resp.read()
                status, retry_after = resp.status, resp.getheader("Retry-After") is not None
            except OSError:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                status, retry_after = 0, False
            with self._lock:
                self.answers.append((sent, time.perf_counter() - sent, status, retry_after))
            i += 1
            time.sleep(self.pause)
        conn.close()

    def __enter__(self):
        for th in self._threads:
            th.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for th in self._threads:
            th.join()

    def between(self, start: float, end: float) -> list[tuple[float, float, int, bool]]:
        with self._lock:
            return [a for a in self.answers if start <= a[0] <= end]


def measure(db_url: str, slack_url: str, rows: int = ROWS, tmp: Path | None = None) -> dict:
    tmp = tmp or Path(tempfile.mkdtemp(prefix="handoff-import-"))
    path = write_csv(tmp / "leads.csv", rows)
    db = Database(db_url)
    db.migrate()
    settings = load_settings(_env_file=None, DATABASE_URL=db_url, HANDOFF_CHANNEL="C0BENCH",
                             MARKETING_CHANNEL="C0BENCH")
    server = Server(db_url, slack_url, OUTBOX_CHANNEL_RATE=1000, OUTBOX_CHANNEL_BURST=1000)
    sqlite_path = db.engine.url.database if db.is_sqlite else None
    written: list[float] = []

    class Written(logging.Handler):  # the importer's own account of its write transaction
        def emit(self, record):
            if "one transaction" in record.msg:
                written.append(record.args[-1])

    handler = Written()
    logging.getLogger("handoff.import").addHandler(handler)
    logging.getLogger("handoff.import").setLevel(logging.INFO)
    try:
        with Webhooks(server.port, HOOK) as hooks:
            time.sleep(2)  # the webhooks' pace before the import
            before = time.perf_counter()
            probe = LockProbe(sqlite_path) if sqlite_path else None
            if probe:
                probe.__enter__()
            try:
                started = time.perf_counter()
                created, updated = import_csv(db, path, Policy.from_settings(settings, post_cards=False),
                                              settings.tz, datetime.now(UTC))
                seconds = time.perf_counter() - started
            finally:
                if probe:
                    probe.__exit__()
            time.sleep(1)
        baseline = [a[1] for a in hooks.between(0, before)]
        during = hooks.between(started, started + seconds)
    finally:
        logging.getLogger("handoff.import").removeHandler(handler)
        server.stop()
    with db.begin() as s:
        stored = s.scalar(select(func.count()).select_from(Lead).where(Lead.email_norm.like("%@import.example")))
    db.dispose()
    latencies = [a[1] * 1000 for a in during]
    statuses = sorted({a[2] for a in during})
    return {"rows": rows, "created": created, "updated": updated, "stored": stored, "seconds": seconds,
            "rows_per_s": rows / seconds, "write_s": written[-1] if written else None,
            "lock_s": probe.longest if probe else None, "webhooks": len(during), "statuses": statuses,
            "non_2xx": sum(not 200 <= a[2] < 300 for a in during),
            "503_without_retry_after": sum(a[2] == 503 and not a[3] for a in during),
            "baseline_p50_ms": pct([b * 1000 for b in baseline], 50), "p50_ms": pct(latencies, 50),
            "p99_ms": pct(latencies, 99), "max_ms": max(latencies, default=0.0)}


def section(results: list[tuple[str, dict]], machine: str, date: str) -> list[str]:
    rows = []
    for label, r in results:
        lock = f"{r['lock_s']:.2f}" if r["lock_s"] is not None else "– (row locks)"
        rows.append(f"| {label} | {r['rows']:,} | {r['seconds']:.1f} | {r['rows_per_s']:,.0f} | {r['write_s']:.2f} | "
                    f"{lock} | {r['webhooks']:,} | {r['non_2xx']} | {r['baseline_p50_ms']:.0f} | {r['p50_ms']:.0f} | "
                    f"{r['max_ms']:,.0f} |")
    return ["## Bulk import while serving",
            f"`import_csv` of a {results[0][1]['rows']:,}-row CSV of lead history (three in four with a CRM id, about "
            "40 % MQLs, most claimed) into a fresh database, while `bot.py serve` on the same database answers four "
            "clients posting single leads to the webhook. *Write s* is the import's one write transaction; *lock "
            "held* the longest time any writer held SQLite's write lock, seen by a probe trying every 5 ms; "
            "webhook latencies are those of the webhooks sent while the import ran (*before* is the median just "
            "before it). Aim: every webhook 2xx (a webhook waits for the lock up to the database's wait, then "
            "503), the lock held for a few seconds at most. "
            f"Measured {date} on {machine} (`python -m bench.import_leads`).\n",
            "| database | rows | import s | rows/s | write s | lock held s | webhooks | non-2xx | p50 ms before | "
            "p50 ms | max ms |", "|---|---|---|---|---|---|---|---|---|---|---|", *rows, ""]


def main(argv: list[str]) -> int:
    from standin.server import SlackStandIn

    rows = int(argv[0]) if argv else ROWS
    tmp = Path(tempfile.mkdtemp(prefix="handoff-import-"))
    targets = [("SQLite", f"sqlite:///{tmp / 'import.db'}")]
    if os.environ.get("BENCH_POSTGRES_URL"):
        targets.append(("PostgreSQL", fresh_postgres(os.environ["BENCH_POSTGRES_URL"])))
    results = []
    with SlackStandIn() as slack:
        for label, url in targets:
            print(f"[{label}] import of {rows:,} rows while serving webhooks …", flush=True)
            r = measure(url, slack.url, rows, tmp)
            print(f"  {r}", flush=True)
            results.append((label, r))
    lines = section(results, machine(), f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    put_section(lines)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
