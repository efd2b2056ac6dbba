"""HubSpot write-back: 10,000 lead updates of contacts already found, against HubSpot's rate limit.

    python -m bench.hubspot [LEADS]        (SQLite; BENCH_POSTGRES_URL adds PostgreSQL)

The HubSpot stand-in holds 10,000 contacts whose emails are those of the leads, with Handoff's properties
created as `bot.py hubspot-setup` does, and enforces a private app's 100 requests per rolling 10 s.

1. *MQL phase*: 10,000 MQL leads posted to /hooks/leads (batches of 500, four clients); it ends when every
   contact shows handoff_status=mql and nothing is left to write (each contact found by a batch read by
   email, then written).
2. *Measured phase*, right after: every lead claimed by a signed Slack click (50 keep-alive clients), with
   three 429s injected at its start; it ends when every contact shows handoff_status=claimed. The floor is
   what the limit allows for the writes it needs: 10,000 / 100 per batch = 100 requests at 100 per 10 s =
   10 s (a claim moves no lifecycle stage, so no stage is read first).

Slack cards are paced at the default 1 per second per channel, as in production, so Slack's sender stays out
of the way; a card posted meanwhile adds its link to its contact's next write.
"""
from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import shutil
import sys
import tempfile
import time
import urllib.request
from datetime import UTC
from pathlib import Path

from sqlalchemy import create_engine, func, select

from bench.common import HANDOFF, SECRET, Server, fresh_postgres, fresh_sqlite, run_clients
from bench.events import new_secret, post_batches
from models.tables import Lead
from outbox.hubspot import make_client, setup
from settings import normalize_database_url
from standin import slack_requests
from standin.hubspot import HubSpotStandIn

LEADS = 10_000
BATCH = 500
CLIENTS = 4
CLICKERS = 50
PER_REQUEST, LIMIT_REQUESTS, LIMIT_SECONDS = 100, 100, 10.0
INJECTED_429 = 3
ORDER = {"": 0, "mql": 1, "claimed": 2}  # handoff_status may only move forward in this benchmark


def lead_bodies(n: int, batch: int = BATCH) -> list[bytes]:
    return [json.dumps({"leads": [{"email": f"hs{i}@bench.example", "score": 80, "external_id": f"h-{i}",
                                   "company": f"Company {i}", "source": ("webinar", "ads", "organic")[i % 3]}
                                  for i in range(b, min(b + batch, n))]}).encode()
            for b in range(0, n, batch)]


def wait_status(hs: HubSpotStandIn, contacts: list[str], status: str, timeout: float) -> list[str]:
    """Wait until every contact shows handoff_status=`status`; the ones that do not (empty when all do)."""
    left = list(contacts)
    deadline = time.monotonic() + timeout
    while left and time.monotonic() < deadline:
        left = [c for c in left if hs.contact(c).get("handoff_status") != status]
        if left:
            time.sleep(0.05)
    return left


def healthz(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as resp:
        return json.loads(resp.read())


def most_in_window(times: list[float], seconds: float) -> int:
    times, best, first = sorted(times), 0, 0
    for last, at in enumerate(times):
        while times[first] <= at - seconds:
            first += 1
        best = max(best, last - first + 1)
    return best


def measure(db_url: str, slack_url: str, n: int = LEADS) -> dict:
    with HubSpotStandIn() as hs:
        setup(make_client(hs.token, hs.url))
        hs.limit(LIMIT_REQUESTS, LIMIT_SECONDS)  # a fresh window: setup's calls do not count against the app
        contacts = [hs.add_contact(f"hs{i}@bench.example") for i in range(n)]
        # Cards paced at the default 1 per second per channel, as in production: Slack's sender stays out of
        # the way, and a card posted meanwhile adds its link to its contact's next write.
        server = Server(db_url, slack_url, HUBSPOT_TOKEN=hs.token, HUBSPOT_API_URL=hs.url, HUBSPOT_MATCH="email")
        engine = create_engine(normalize_database_url(db_url))
        try:
            # 1. MQL phase: contacts found and written once.
            calls0 = len(hs.calls)
            t0 = time.monotonic()
            answered, statuses = post_batches(server.port, lead_bodies(n), CLIENTS)
            assert all(s in (200, 201) for s in statuses) and len(answered) == n, set(statuses)
            ingest_s = time.monotonic() - t0
            jobs = []  # the clicks of phase 2, signed now so that signing is not timed
            for i, lead_id in enumerate(sorted(answered)):
                body = slack_requests.block_action("lead_claim", str(lead_id), f"UREP{i % 50:03d}", HANDOFF)
                jobs.append(("/slack/events", body.encode(), slack_requests.signed_headers(SECRET, body)))
            not_mql = wait_status(hs, contacts, "mql", 120)
            deadline = time.monotonic() + 60
            while healthz(server.port).get("hubspot_pending") and time.monotonic() < deadline:
                time.sleep(0.05)
            mql_s = time.monotonic() - t0
            mql_calls = hs.calls[calls0:]

            # 2. Measured phase, right after phase 1 (whose last requests are still in the rate limit's window):
            # a claim of every lead, with 429s injected.
            calls1 = len(hs.calls)
            hs.inject_429(INJECTED_429)
            t1, wall1 = time.monotonic(), time.time()
            clicks = [status for _, status in run_clients(server.port, jobs, CLICKERS)]
            clicks_s = time.monotonic() - t1
            assert all(s == 200 for s in clicks), set(clicks)
            not_claimed = wait_status(hs, contacts, "claimed", 240)
            with engine.connect() as conn:  # when the last claim was made (its transaction's clock)
                claims, last_claim = conn.execute(select(func.count(Lead.claimed_at), func.max(Lead.claimed_at))).one()
            if last_claim is not None and last_claim.tzinfo is None:
                last_claim = last_claim.replace(tzinfo=UTC)
            claimed_s = last_claim.timestamp() - wall1 if last_claim is not None else float("nan")
            phase = hs.calls[calls1:]
            writes = [c for c in phase if c.path.endswith("/batch/update") and c.status in (200, 207)]
            done_at = max((c.at for c in writes), default=time.monotonic())
            seconds = done_at - t1
            floor = math.ceil(n / PER_REQUEST) * LIMIT_SECONDS / LIMIT_REQUESTS
            backwards = sum(1 for c in contacts if not monotone(hs.history(c, "handoff_status")))
            refused = sum(c.status == 429 for c in phase)
            return {
                "leads": n, "ingest_s": ingest_s, "mql_phase_s": mql_s, "mql_requests": len(mql_calls),
                "mql_lookups": sum(c.path.endswith("/batch/read") for c in mql_calls),
                "mql_429": sum(c.status == 429 for c in mql_calls), "mql_not_written": len(not_mql),
                "clicks_s": clicks_s, "claims": claims, "claims_applied_s": claimed_s,
                "after_last_claim_s": seconds - claimed_s, "seconds": seconds, "floor_s": floor,
                "ratio": seconds / floor, "requests": len(phase), "writes": len(writes),
                "reads": sum(c.path.endswith("/batch/read") for c in phase),
                "updates_per_write": sum(len(c.body["inputs"]) for c in writes) / max(1, len(writes)),
                "answered_429": refused, "injected_429": INJECTED_429,
                "max_in_10s": most_in_window([c.at for c in hs.calls[calls0:] if c.status], LIMIT_SECONDS),
                "lost": len(not_claimed), "older_over_newer": backwards,
            }
        finally:
            server.stop()
            engine.dispose()


def monotone(history: list[str]) -> bool:
    ranks = [ORDER.get(v, -1) for v in history]
    return all(a <= b for a, b in itertools.pairwise(ranks)) and -1 not in ranks


def section(results: list[tuple[str, dict]]) -> list[str]:
    """The "HubSpot write-back" section of BENCHMARKS.md."""
    first = [f"| {label} | {r['ingest_s']:.1f} | {r['mql_phase_s']:.1f} | {r['mql_requests']} | {r['mql_lookups']} | "
             f"{r['mql_429']} | {r['mql_not_written']} |" for label, r in results]
    rows = [f"| {label} | {r['clicks_s']:.1f} | {r['claims_applied_s']:.1f} | {r['seconds']:.1f} | "
            f"{r['after_last_claim_s']:.2f} | {r['floor_s']:g} | {r['ratio']:.2f} | {r['requests']} | "
            f"{r['updates_per_write']:.0f} | {r['answered_429']} ({r['injected_429']} injected) | {r['max_in_10s']} | "
            f"{r['lost']} | {r['older_over_newer']} |" for label, r in results]
    n = results[0][1]["leads"]
    return ["## HubSpot write-back",
            f"The HubSpot stand-in holds {n:,} contacts with the leads' emails and enforces a private app's "
            f"{LIMIT_REQUESTS} requests per rolling {LIMIT_SECONDS:.0f} s (a 429 beyond it). *MQL phase*: {n:,} MQL "
            f"leads posted in batches of {BATCH} by {CLIENTS} clients, until every contact shows `handoff_status=mql` and "
            "nothing is left to write (each contact found by a batch read by email, then written). *Measured phase*, "
            f"right after: every lead claimed by a signed Slack click ({CLICKERS} keep-alive clients) with "
            f"{INJECTED_429} 429s injected, until every contact shows `claimed`. *Floor*: the writes needed "
            f"({n:,} / {PER_REQUEST} per batch) at {LIMIT_REQUESTS} per {LIMIT_SECONDS:.0f} s; a claim moves no "
            "lifecycle stage, so nothing is read first. *Clicks* is the time to the last click's answer, *claims* to the "
            "last claim's commit, *written* to the last write; *older over newer* counts contacts whose "
            "`handoff_status` history ever went back. Slack cards are paced at the default 1 per second per channel, "
            "as in production. Aim: within 1.2× the floor, 0 lost, 0 older over newer.\n",
            "| database | ingest s | MQL phase s | requests | of them lookups | 429s | not written |",
            "|---|---|---|---|---|---|---|", *first, "",
            "| database | clicks s | claims s | written s | written after the last claim s | floor s | written / floor | "
            "requests | updates per write | 429s answered | most requests in 10 s | lost | older over newer |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|", *rows, ""]


@contextlib.contextmanager
def events_and_hubspot(emails: list[str]):
    """A verifying webhook receiver and a HubSpot stand-in (properties created, a contact for each email);
    yields the settings that turn both on, for `Server(...)`."""
    from standin.receiver import WebhookReceiver

    secret = new_secret()
    with WebhookReceiver(secret) as receiver, HubSpotStandIn() as hs:
        setup(make_client(hs.token, hs.url))
        hs.limit(LIMIT_REQUESTS, LIMIT_SECONDS)
        for email in emails:
            hs.add_contact(email)
        yield {"EVENT_WEBHOOK_URLS": receiver.url, "EVENT_WEBHOOK_SECRET": secret, "HUBSPOT_TOKEN": hs.token,
               "HUBSPOT_API_URL": hs.url}


def main(argv: list[str]) -> int:
    from standin.server import SlackStandIn

    n = int(argv[0]) if argv else LEADS
    tmp = Path(tempfile.mkdtemp(prefix="handoff-bench-hubspot-"))
    runs = [("SQLite", lambda: fresh_sqlite(tmp, "hubspot.db"))]
    pg = os.environ.get("BENCH_POSTGRES_URL")
    if pg:
        runs.append(("PostgreSQL", lambda: fresh_postgres(pg)))
    results = []
    with SlackStandIn() as slack:
        for label, fresh in runs:
            t0 = time.monotonic()
            result = measure(fresh(), slack.url, n)
            results.append((label, result))
            print(f"[{label}] {result}  ({time.monotonic() - t0:.0f} s)", flush=True)
    print("\n".join(section(results)))
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
