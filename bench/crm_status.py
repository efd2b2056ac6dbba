"""Status updates from the CRM: `POST /hooks/status` (docs/crm-status.md) against a served app.

    python -m bench.crm_status        (SQLite; BENCH_POSTGRES_URL adds PostgreSQL)

`bot.py serve` runs as a real process against the Slack stand-in on a fresh database. 10,000 MQLs (score 90,
each with an external id) are posted to /hooks/leads in batches of 500 and their cards sent, so every lead has a
card. Then 10,000 status updates, one for each lead, go to /hooks/status in 20 requests of 500 from four
keep-alive clients (bench/common.py `run_clients`, as the ingest benchmark posts leads): 40 % contacted (`by` a
Slack user), 30 % SQL, 15 % lost (reason codes, some free text) and 15 % not a fit, each moving an unclaimed
lead forward, so every one is applied (its claim implied at the same instant).

*Updates/s* is 10,000 over the whole send, from the first request sent to the last answer. Every answer must be
200 and every update applied: the answers' bodies are not kept by `run_clients`, so this is read back from the
database, where a lead's `crm_marked` ends with the status of its update only when that update was applied. The
card updates queued are the outbox's `card_update` rows of those leads, committed with each update.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, func, select

from bench.common import HOOK, Server, fresh_postgres, fresh_sqlite, pct, run_clients
from models.outbox import Kind
from models.tables import Lead, OutboxMessage
from standin.server import SlackStandIn

UPDATES = 10_000
BATCH = 500
CLIENTS = 4
AIM = 1_000  # updates/s on SQLite: the figure leads reach today (BENCHMARKS.md, webhook ingest)
HEADERS = {"Authorization": f"Bearer {HOOK}", "Content-Type": "application/json"}
LOST_CODES = ("budget", "timing", "no_authority", "no_need", "competitor", "no_response")
LOST_TEXTS = ("went with a cheaper vendor", "project frozen until next fiscal year", "chose to build it in house")
DISQUALIFY_CODES = ("student_personal", "duplicate", "out_of_segment", "spam", "bad_contact_data")


def external_id(i: int) -> str:
    return f"crm-{i}"


def lead_bodies(n: int) -> list[tuple[str, bytes, dict]]:
    """Batches of `BATCH` new MQLs for /hooks/leads, lead i with external id crm-i."""
    return [("/hooks/leads", json.dumps({"leads": [
        {"email": f"crm{i}@c{i % 997}.bench.example", "score": 90, "external_id": external_id(i),
         "company": f"Company {i % 997}", "source": ("webinar", "ads", "organic")[i % 3]}
        for i in range(b, min(b + BATCH, n))]}).encode(), HEADERS) for b in range(0, n, BATCH)]


def update_of(i: int, at: str) -> dict:
    """Lead i's update: of every 20, 8 contacted, 6 SQL, 3 lost, 3 not a fit."""
    k = i % 20
    rep = f"UREP{i % 50:03d}"
    update = {"external_id": external_id(i), "at": at}
    if k < 8:
        update.update(status="contacted", by=rep)
        if k % 4 == 0:
            update["note"] = "left a voicemail, follow-up booked"
    elif k < 14:
        update.update(status="sql", by=rep)
        if k % 2:
            update["note"] = "budget confirmed, demo next week"
    elif k < 17:
        update["status"] = "lost"
        if k == 16:  # a reason the CRM wrote out: counted as `other`, its text kept in the note
            update["reason"] = LOST_TEXTS[i % len(LOST_TEXTS)]
        else:
            update.update(reason=LOST_CODES[i % len(LOST_CODES)], by=rep)
    else:
        update.update(status="disqualified", reason=DISQUALIFY_CODES[i % len(DISQUALIFY_CODES)])
    return update


def status_bodies(n: int, at: str) -> tuple[list[tuple[str, bytes, dict]], Counter]:
    """Requests of `BATCH` updates for /hooks/status, one update per lead; and how many of each status."""
    updates = [update_of(i, at) for i in range(n)]
    jobs = [("/hooks/status", json.dumps({"updates": updates[b:b + BATCH]}).encode(), HEADERS)
            for b in range(0, n, BATCH)]
    return jobs, Counter(u["status"] for u in updates)


def sent_all(port: int, timeout: float = 120) -> None:
    """Wait until the app has sent everything it queued (its /healthz says nothing is pending)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
            if json.loads(resp.read())["outbox_pending"] == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"the cards were not all sent within {timeout:.0f} s")


def read_back(db_url: str, n: int) -> tuple[dict[str, str], int, int]:
    """Each bench lead's `crm_marked`, by external id; the card updates queued for them, and the leads those
    name."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            marked = dict(conn.execute(select(Lead.external_id, Lead.crm_marked)
                                       .where(Lead.external_id.like("crm-%"))).all())
            cards = select(OutboxMessage.lead_id).join(Lead, Lead.id == OutboxMessage.lead_id).where(
                OutboxMessage.kind == str(Kind.CARD_UPDATE), Lead.external_id.like("crm-%"))
            queued = conn.scalar(select(func.count()).select_from(cards.subquery()))
            leads = conn.scalar(select(func.count(func.distinct(cards.subquery().c.lead_id))))
    finally:
        engine.dispose()
    assert len(marked) == n, f"{len(marked):,} of {n:,} leads stored"
    return marked, queued, leads


def measure(db_url: str, slack_url: str, n: int = UPDATES) -> dict:
    server = Server(db_url, slack_url, OUTBOX_CHANNEL_RATE=1000, OUTBOX_CHANNEL_BURST=1000)
    try:
        res = run_clients(server.port, lead_bodies(n), CLIENTS)
        assert all(status in (200, 201) for _, status in res), {s for _, s in res}
        sent_all(server.port)  # every lead has its card: the updates re-render cards that exist
        jobs, mix = status_bodies(n, datetime.now(UTC).isoformat())
        t0 = time.perf_counter()
        res = run_clients(server.port, jobs, CLIENTS)
        elapsed = time.perf_counter() - t0
        assert len(res) == len(jobs) and all(status == 200 for _, status in res), Counter(s for _, s in res)
    finally:
        server.stop()
    marked, queued, carded = read_back(db_url, n)
    expected = {external_id(i): update_of(i, "")["status"] for i in range(n)}
    not_applied = [e for e, status in expected.items() if (marked.get(e) or "").split(",")[-1] != status]
    assert not not_applied, f"{len(not_applied):,} updates not applied, e.g. {not_applied[:5]}"
    assert queued >= n and carded == n, f"{queued:,} card updates queued for {carded:,} leads"
    times = [t * 1000 for t, _ in res]
    return {"updates": n, "batch": BATCH, "clients": CLIENTS, "requests": len(res), "seconds": elapsed,
            "updates_per_s": n / elapsed, "p50_ms": pct(times, 50), "p99_ms": pct(times, 99), "max_ms": max(times),
            "applied": n - len(not_applied), "card_updates": queued, "leads_with_card_update": carded,
            "mix": dict(mix)}


def section(results: list[tuple[str, dict]]) -> list[str]:
    """BENCHMARKS.md's section on status updates from the CRM."""
    rows = [f"| {label} | {r['updates']:,} | {r['batch']} | {r['clients']} | {r['updates_per_s']:,.0f} | "
            f"{r['p50_ms']:,.0f} | {r['p99_ms']:,.0f} | {r['card_updates']:,} | "
            f"{'yes' if r['updates_per_s'] >= AIM else 'no'} |" for label, r in results]
    n = results[0][1]["updates"] if results else UPDATES
    requests = n // BATCH
    return ["## Status updates from the CRM",
            f"`bot.py serve` on a fresh database with {n:,} MQLs (posted to `/hooks/leads` in batches of {BATCH}, "
            f"their cards sent before the measure), then {n:,} status updates, one for each lead, posted to "
            f"`/hooks/status` in {requests} requests of {BATCH} by {CLIENTS} keep-alive clients: 40 % contacted "
            "(`by` a Slack user), 30 % SQL, 15 % lost (reason codes, one in three a reason written out, counted as "
            "`other` with its text kept), 15 % not a fit. Each moves an unclaimed lead forward, so each implies a "
            "claim too and is applied, in one transaction per request, before the answer. *Updates/s* is "
            f"{n:,} over the whole send, from the first request sent to the last answer; *p50* and *p99* are of the "
            f"{requests} requests' times (of so few, p99 is the slowest). Every answer was 200 and every update "
            "applied (read back from the database: a lead's `crm_marked` ends with its update's status); *card "
            "updates queued* are the outbox's `card_update` rows of those leads (one a lead: a status and the claim "
            "it implies change the card once), committed with the updates and sent by the delivery process "
            "meanwhile (bench/crm_status.py). Aim: ≥ 1,000 updates/s on SQLite, the figure leads reach today, with "
            "their card updates queued.\n",
            "| database | updates | batch | clients | updates/s | p50 ms | p99 ms | card updates queued | ≥ 1,000/s |",
            "|---|---|---|---|---|---|---|---|---|", *rows, ""]


def main(argv: list[str]) -> int:
    n = int(argv[0]) if argv else UPDATES
    tmp = Path(tempfile.mkdtemp(prefix="handoff-crm-status-"))
    with SlackStandIn() as slack:
        print(measure(fresh_sqlite(tmp, "crm-status.db"), slack.url, n), flush=True)
        if os.environ.get("BENCH_POSTGRES_URL"):
            print(measure(fresh_postgres(os.environ["BENCH_POSTGRES_URL"]), slack.url, n), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
