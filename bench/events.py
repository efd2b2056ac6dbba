"""Events out, end to end: MQL leads posted over HTTP, their `lead.mql` events at a verifying receiver.

    python -m bench.events [EVENTS]        (SQLite; BENCH_POSTGRES_URL adds PostgreSQL)

Two endpoints in EVENT_WEBHOOK_URLS: one a local Standard Webhooks receiver, the other a port that refuses
connections for the whole run. 10,000 MQL leads are posted by four keep-alive clients, offered steadily (60
every 0.1 s: 600 leads/s) or as a burst (batches of 500, as fast as they are answered).
*Events/s* is 10,000 over the time from the first request sent to the last distinct event received at the
endpoint that is up; an event's *lag* is its arrival at the receiver minus the moment the webhook request
that created its lead was answered (both on this process's monotonic clock).
"""
from __future__ import annotations

import base64
import http.client
import json
import os
import queue
import shutil
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from standardwebhooks import Webhook

from bench.common import HOOK, Server, fresh_postgres, fresh_sqlite, pct
from standin.receiver import WebhookReceiver

EVENTS = 10_000
BATCH = 500
CLIENTS = 4
STEADY_RATE, STEADY_BATCH = 600, 60  # above the aim of 500/s, offered as a batch every 0.1 s


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


def mql_jobs(n: int, batch: int = BATCH, start: int = 0) -> list[bytes]:
    """Bodies of /hooks/leads batches: `n` new leads, every one an MQL (score 80)."""
    return [json.dumps({"leads": [{"email": f"evt{i}@bench.example", "score": 80, "external_id": f"e-{i}",
                                   "company": f"Company {i}", "source": ("webinar", "ads", "organic")[i % 3]}
                                  for i in range(b, min(b + batch, start + n))]}).encode()
            for b in range(start, start + n, batch)]


def post_batches(port: int, bodies: list[bytes], concurrency: int,
                 every: float | None = None) -> tuple[dict[int, float], list[int]]:
    """POST each body to /hooks/leads with `concurrency` keep-alive clients: as fast as they are answered, or,
    with `every`, one body every `every` seconds (a steady offered rate; a late answer does not slow it).

    Returns {lead id: monotonic time its request was answered} and the statuses."""
    work: queue.Queue = queue.Queue()
    if every is None:
        for body in bodies:
            work.put(body)
        for _ in range(concurrency):
            work.put(None)
    else:
        def pace():
            start = time.monotonic()
            for i, body in enumerate(bodies):
                time.sleep(max(0.0, start + i * every - time.monotonic()))
                work.put(body)
            for _ in range(concurrency):
                work.put(None)
        threading.Thread(target=pace, daemon=True).start()
    answered: dict[int, float] = {}
    statuses: list[int] = []
    lock = threading.Lock()
    headers = {"Authorization": f"Bearer {HOOK}", "Content-Type": "application/json"}

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while (body := work.get()) is not None:
            conn.request("POST", "/hooks/leads", body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            at = time.monotonic()
            ids = [x["id"] for x in json.loads(data)["leads"]] if resp.status in (200, 201) else []
            with lock:
                statuses.append(resp.status)
                answered.update((i, at) for i in ids)
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return answered, statuses


def cpu_seconds(pid: int) -> dict[int, float]:
    """User + system CPU seconds so far of a process and of each of its children (`serve` and its delivery
    process), by pid (Linux; empty where /proc is not there)."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry.name) == pid or int(fields[1]) == pid:
            out[int(entry.name)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def cpu_used(before: dict[int, float], after: dict[int, float]) -> dict[int, float]:
    return {p: after[p] - before.get(p, 0.0) for p in after}


def healthz(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as resp:
        return json.loads(resp.read())


def receiver_ceiling(n: int = 3000, workers: int = 8) -> float:
    """Signed events/s the receiver alone takes from `workers` keep-alive clients (as the lane sends)."""
    import requests

    secret = new_secret()
    signer = Webhook(secret)
    with WebhookReceiver(secret) as receiver:
        work: queue.Queue = queue.Queue()
        for i in range(n):
            work.put(i)

        def client():
            session = requests.Session()
            while True:
                try:
                    i = work.get_nowait()
                except queue.Empty:
                    break
                msg_id, now = f"evt_ceiling{i}", datetime.now(UTC).replace(microsecond=0)
                body = json.dumps({"type": "lead.mql", "timestamp": now.isoformat(),
                                   "data": {"lead": {"id": i}}}).encode()
                session.post(receiver.url, data=body, timeout=10, headers={
                    "Content-Type": "application/json", "webhook-id": msg_id,
                    "webhook-timestamp": str(int(now.timestamp())),
                    "webhook-signature": signer.sign(msg_id, now, body)}).close()
            session.close()

        t0 = time.perf_counter()
        threads = [threading.Thread(target=client) for _ in range(workers)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        elapsed = time.perf_counter() - t0
        assert len(receiver.ids()) == n, len(receiver.ids())
    return n / elapsed


def measure(db_url: str, slack_url: str, n: int = EVENTS, rate: float | None = None) -> dict:
    """One run on a fresh database: `n` leads as a burst (BATCH per request, as fast as answered) or, with
    `rate`, offered steadily at `rate` leads/s (STEADY_BATCH per request)."""
    ceiling = receiver_ceiling()
    secret = new_secret()
    with WebhookReceiver(secret) as up, WebhookReceiver(secret) as down:
        down.close_port()  # refused connections for the whole run
        # Cards paced at the default 1 per second per channel, as in production (and as Slack allows).
        server = Server(db_url, slack_url, EVENT_WEBHOOK_URLS=f"{up.url},{down.url}", EVENT_WEBHOOK_SECRET=secret)
        try:
            bodies = mql_jobs(n, BATCH if rate is None else STEADY_BATCH)
            cpu0 = cpu_seconds(server.proc.pid)
            t0 = time.monotonic()
            answered, statuses = post_batches(server.port, bodies, CLIENTS,
                                              None if rate is None else STEADY_BATCH / rate)
            ingest_s = time.monotonic() - t0
            assert all(s in (200, 201) for s in statuses), set(statuses)
            assert len(answered) == n, len(answered)
            complete = len(up.wait_count(n, timeout=120)) >= n
            cpu = cpu_used(cpu0, cpu_seconds(server.proc.pid))
            web_cpu = cpu.pop(server.proc.pid, 0.0)
            delivery_cpu = sum(cpu.values())
            time.sleep(1.0)  # anything sent twice would arrive now
            first = up.events()
            last_at = max((d.at for d in first), default=t0)
            lags = [d.at - answered[d.body["data"]["lead"]["id"]] for d in first
                    if d.body["data"]["lead"]["id"] in answered]
            leads = {d.body["data"]["lead"]["id"] for d in first if d.type == "lead.mql"}
            health = healthz(server.port)
            seconds = last_at - t0
            during = sum(d.at - t0 <= ingest_s for d in first)  # delivered before the last lead was answered
            return {
                "offered": "burst" if rate is None else f"{rate:,.0f} leads/s",
                "events": n, "delivered": len(first), "complete": complete,
                "missing": len(set(answered) - leads), "duplicates": len(up.deliveries) - len(first),
                "rejected": len(up.rejected), "seconds": seconds, "events_per_s": len(first) / seconds,
                "ingest_s": ingest_s, "ingest_per_s": n / ingest_s, "delivered_during_ingest": during,
                "drain_per_s": (len(first) - during) / max(seconds - ingest_s, 1e-3),
                "lag_p50_s": pct(lags, 50), "lag_p99_s": pct(lags, 99), "lag_max_s": max(lags, default=0.0),
                "down_pending": health["events_pending"], "down_failed": health["events_failed"],
                "web_cpu_pct": 100 * web_cpu / seconds, "delivery_cpu_pct": 100 * delivery_cpu / seconds,
                "receiver_alone_per_s": ceiling,
            }
        finally:
            server.stop()


def section(results: list[tuple[str, dict]]) -> list[str]:
    """The "Events out" section of BENCHMARKS.md."""
    rows = [f"| {label} | {r['offered']} | {r['events_per_s']:,.0f} | {r['seconds']:.1f} | {r['lag_p50_s']:.1f} | {r['lag_p99_s']:.1f} | "
            f"{r['lag_max_s']:.1f} | {r['delivered']:,} | {r['duplicates']} | {r['rejected']} | {r['down_pending']:,} | "
            f"{r['ingest_per_s']:,.0f} | {r['delivered_during_ingest']:,} | {r['drain_per_s']:,.0f} | "
            f"{r['web_cpu_pct']:.0f} % | {r['delivery_cpu_pct']:.0f} % |" for label, r in results]
    alone = ", ".join(f"{r['receiver_alone_per_s']:,.0f}" for _, r in results)
    n = results[0][1]["events"]
    return ["## Events out",
            f"{n:,} MQL leads posted to `/hooks/leads` by {CLIENTS} keep-alive clients, either offered steadily "
            f"({STEADY_BATCH} every {STEADY_BATCH / STEADY_RATE:g} s: {STEADY_RATE} leads/s, above the aim) or as a "
            f"burst (batches of {BATCH}, each sent as soon as a client is free), each one "
            "`lead.mql` event, signed and sent to the two endpoints of `EVENT_WEBHOOK_URLS`: a local receiver verifying "
            "every request with `standardwebhooks`, and a port refusing connections for the whole run. *Events/s* is "
            f"{n:,} over the time from the first request sent to the last distinct event received; an event's *lag* is "
            "its arrival minus the moment the request that created its lead was answered. *Ingest* is the leads/s of "
            "the posting alone; *while ingesting* the events received before the last request was answered; *after* "
            "the rate at which the rest arrived; *web CPU* and *delivery CPU* the CPU time of `serve`'s two processes "
            "over the run (100 % is one core). The receiver alone, sent signed requests by 8 keep-alive clients in "
            f"the same process, takes {alone} events/s (a floor for its speed: they share one interpreter). Aim: ≥ 500 events/s, lag p99 under 2 s, with one endpoint down.\n",
            "| database | offered | events/s | seconds | lag p50 s | lag p99 s | lag max s | delivered | duplicates | rejected | "
            "pending for the endpoint down | ingest leads/s | delivered while ingesting | events/s after | web CPU | "
            "delivery CPU |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|", *rows, ""]


def targets(tmp: Path) -> list[tuple[str, object]]:
    """(label, a function giving a fresh database URL) for each database benchmarked."""
    out = [("SQLite", lambda: fresh_sqlite(tmp, f"events-{time.monotonic_ns()}.db"))]
    pg = os.environ.get("BENCH_POSTGRES_URL")
    if pg:
        out.append(("PostgreSQL", lambda: fresh_postgres(pg)))
    return out


def main(argv: list[str]) -> int:
    from standin.server import SlackStandIn

    n = int(argv[0]) if argv else EVENTS
    tmp = Path(tempfile.mkdtemp(prefix="handoff-bench-events-"))
    results = []
    with SlackStandIn() as slack:
        for label, fresh in targets(tmp):
            for rate in (STEADY_RATE, None):
                t0 = time.monotonic()
                result = measure(fresh(), slack.url, n, rate)
                results.append((label, result))
                print(f"[{label}] {result}  ({time.monotonic() - t0:.0f} s)", flush=True)
    print("\n".join(section(results)))
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
