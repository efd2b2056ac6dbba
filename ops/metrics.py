"""What Handoff tells Prometheus at `GET /metrics` (docs/operating.md#metrics).

Two kinds of numbers, each made correct across processes in its own way:

- What processes *count* (Slack calls, request and job durations, SLA breaches) is counted where it happens:
  the web process, its delivery process, a clock. `serve` runs prometheus_client's multiprocess mode: it
  makes a fresh directory at start (`own_directory`), hands it to its children in `PROMETHEUS_MULTIPROC_DIR`
  (so the delivery process, and any worker it forks, write their counts there), does the library's
  bookkeeping when a child dies (`process_gone`), and removes the directory when it stops. A scrape of any of
  its web processes adds up the files of all of them. Without that variable (the tests, the demo, a `clock`)
  a process counts in memory and shows its own numbers.
- What is a *state* (the queues: outbox rows waiting, the oldest wait, event deliveries waiting) is read from
  the database at scrape time (`StateCollector`), so it is the same whichever process answers, and whatever
  number of processes fill and empty the queues.

Label values come from fixed sets (the app's routes, the scheduler's jobs, Slack's method names and error
codes), never from what a client sends, so a scanner cannot make new series.

prometheus_client chooses between counting in memory and in files when it is first imported: nothing here
imports it before `own_directory` had its chance.
"""
from __future__ import annotations

import errno
import hmac
import json
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import wraps
from pathlib import Path

log = logging.getLogger("handoff.metrics")

ENV = "PROMETHEUS_MULTIPROC_DIR"
PREFIX = "handoff-metrics-"  # serve's own directories: handoff-metrics-<its pid>-<random>
JOBS = ("sla-sweep", "weekly-digest", "monthly-retro", "prune-requests")  # the scheduler's jobs
BREACHES = ("claim", "contact")  # the SLA ladders whose deadline can be missed
# Slack answers a click within 3 s or shows an error: the buckets are finest below that.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0)
JOB_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)


# The directory of serve's processes ---------------------------------------------------------------------
@dataclass(frozen=True)
class Directory:
    path: Path
    owned: bool  # made here (removed at the end), or named by the operator (emptied at start, kept)

    def release(self) -> None:
        """At the end of `serve`: remove the directory if it was made for this run."""
        if self.owned:
            shutil.rmtree(self.path, ignore_errors=True)


def own_directory() -> Directory:
    """`serve`, before anything counts: a fresh multiprocess directory, in the environment its children inherit.

    `PROMETHEUS_MULTIPROC_DIR` set by the operator is used (and emptied: the counts of an earlier run must not
    be added to this one's, as the library requires); else a new directory under the system's temporary one."""
    if "prometheus_client" in sys.modules:
        raise RuntimeError("prometheus_client was imported before the metrics directory was chosen")
    given = os.environ.get(ENV, "").strip()
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for leftover in path.glob("*.db"):
            leftover.unlink()
        directory = Directory(path, owned=False)
    else:
        _remove_orphans(Path(tempfile.gettempdir()))
        directory = Directory(Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-")), owned=True)
    os.environ[ENV] = str(directory.path)
    return directory


def _remove_orphans(parent: Path) -> None:
    """The directories of earlier `serve`s on this machine that were killed (no chance to remove their own)."""
    for path in parent.glob(f"{PREFIX}*-*"):
        pid = path.name.removeprefix(PREFIX).split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def multiprocess() -> bool:
    return bool(os.environ.get(ENV))


def process_gone(pid: int) -> None:
    """A child of `serve` exited: the library's bookkeeping for its files. What it counted stays counted."""
    if multiprocess():
        from prometheus_client import multiprocess as mp

        mp.mark_process_dead(pid)


# The families counted in processes ------------------------------------------------------------------------
class _Families:
    def __init__(self):
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry(auto_describe=True)  # this process's own, when not multiprocess
        self.slack_calls = Counter(
            "handoff_slack_calls_total", "Slack Web API calls, by method and outcome (ok, Slack's error code, "
            "ratelimited, http_5xx, http_4xx, connection).", ["method", "outcome"], registry=self.registry)
        self.request_seconds = Histogram(
            "handoff_http_request_seconds", "Time to answer an HTTP request, by route (other: any path the app "
            "does not serve).", ["route"], buckets=REQUEST_BUCKETS, registry=self.registry)
        self.job_seconds = Histogram(
            "handoff_job_seconds", "Time a scheduled job ran, by job.", ["job"], buckets=JOB_BUCKETS,
            registry=self.registry)
        self.sla_breaches = Counter(
            "handoff_sla_breaches_total", "Leads that missed an SLA deadline, by kind (claim, contact), counted "
            "by the SLA sweep when it first acts past the deadline.", ["kind"], registry=self.registry)
        # Known label values start at 0, so a series exists (and a rate can be taken) before the first event.
        for job in JOBS:
            self.job_seconds.labels(job)
        for kind in BREACHES:
            self.sla_breaches.labels(kind)


_families: _Families | None = None
_families_lock = threading.Lock()


def families() -> _Families:
    global _families
    if _families is None:
        with _families_lock:
            if _families is None:
                _families = _Families()
    return _families


def slack_call(method: str, outcome: str) -> None:
    families().slack_calls.labels(method, outcome).inc()


def observe_request(route: str, seconds: float) -> None:
    families().request_seconds.labels(route).observe(seconds)


def known_routes(routes: Iterable[str]) -> None:
    """Start each route's histogram at 0 (the app's paths, and `other`)."""
    for route in routes:
        families().request_seconds.labels(route)


def sla_breach(kind: str) -> None:
    families().sla_breaches.labels(kind).inc()


def timed_job(job: str, fn: Callable) -> Callable:
    """`fn`, timed into `handoff_job_seconds{job}` whether it returns or raises."""
    @wraps(fn)
    def run(*args, **kwargs):
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            families().job_seconds.labels(job).observe(time.perf_counter() - started)
    return run


# The states read from the database --------------------------------------------------------------------
class StateCollector:
    """The queues as the database has them at scrape time; `handoff_database_up` 0 when it cannot say."""

    def __init__(self, db, now: Callable[[], datetime]):
        self.db, self.now = db, now

    def describe(self):
        return []  # nothing to check at registration: the database is read only when scraped

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        from models import clicks, events
        from models import outbox as queue

        try:
            with self.db.begin() as session:
                outbox = queue.health(session, self.now())
                deliveries = events.health(session)
                waiting_clicks, oldest_click = clicks.pending(session)
        except Exception as exc:  # the database is away: say so, and the rest of the scrape still answers
            log.warning("metrics: the database could not be read: %s", type(exc).__name__)
            yield GaugeMetricFamily("handoff_database_up", "1 when the database answered this scrape.", value=0)
            return
        yield GaugeMetricFamily("handoff_database_up", "1 when the database answered this scrape.", value=1)
        yield GaugeMetricFamily("handoff_outbox_pending", "Slack messages waiting to be sent (retries included).",
                                value=outbox["pending"])
        yield GaugeMetricFamily("handoff_outbox_oldest_seconds", "How long the oldest waiting Slack message has "
                                "waited, in seconds (0 when none waits).", value=outbox["oldest_pending_seconds"] or 0)
        yield GaugeMetricFamily("handoff_outbox_failed", "Slack messages failed for good (bot.py outbox list "
                                "--failed).", value=outbox["failed"])
        yield GaugeMetricFamily("handoff_events_pending", "Event deliveries waiting to be sent (retries included).",
                                value=deliveries["events_pending"])
        yield GaugeMetricFamily("handoff_events_failed", "Event deliveries failed for good (bot.py events list "
                                "--failed).", value=deliveries["events_failed"])
        yield GaugeMetricFamily("handoff_clicks_pending", "Card clicks answered and written down, waiting to be "
                                "applied (docs/http.md#clicks).", value=waiting_clicks)
        age = (self.now() - oldest_click).total_seconds() if oldest_click is not None else 0
        yield GaugeMetricFamily("handoff_clicks_oldest_seconds", "How long the oldest click waiting to be applied "
                                "has waited, in seconds (0 when none waits).", value=max(0.0, age))


# The scrape --------------------------------------------------------------------------------------------
def exposition(db, now: Callable[[], datetime]) -> tuple[bytes, str]:
    """The body and content type of `GET /metrics`: every process's counts, and the database's states."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    if multiprocess():
        from prometheus_client import multiprocess as mp

        families()  # this process's known series exist in the directory too
        registry.register(_ProcessFiles(mp))
    else:
        own = families()
        for family in (own.slack_calls, own.request_seconds, own.job_seconds, own.sla_breaches):
            registry.register(family)
    registry.register(StateCollector(db, now))
    return generate_latest(registry), CONTENT_TYPE_LATEST


class _ProcessFiles:
    """prometheus_client's multiprocess merge of the directory's files, without the files still being made.

    The library creates a process's file and only then sizes it, so a scrape that lands in between (a child
    counting its first Slack call) finds a file of 0 bytes, and the library's reader fails on it, taking the
    whole scrape down with it. Such a file holds nothing yet: it is left out of this scrape, and the next one
    reads it. A file removed between the listing and its size being read is left out too."""

    def __init__(self, mp):
        self.mp = mp
        self.path = os.environ[ENV]

    def collect(self):
        return self.mp.MultiProcessCollector.merge(readable_files(Path(self.path)), accumulate=True)


def readable_files(directory: Path) -> list[str]:
    """The `*.db` files of `directory` that hold at least their header (the 0-byte ones are being created)."""
    files = []
    for path in directory.glob("*.db"):
        try:
            if path.stat().st_size > 0:
                files.append(str(path))
        except FileNotFoundError:
            continue
    return files


def authorized(header: str | None, token: str | None) -> bool:
    """Whether `Authorization: header` may read the metrics: always without METRICS_TOKEN, else only
    `Bearer <token>`, compared in constant time."""
    if not token:
        return True
    return hmac.compare_digest((header or "").encode(), f"Bearer {token}".encode())


def serve_alone(settings, db, now: Callable[[], datetime], port: int):
    """`clock` with METRICS_PORT: `GET /metrics` alone on that port, for what this process counts (its jobs,
    its Slack calls, the SLA breaches its sweep records) and the queues. Returns the running server."""
    from waitress.server import create_server

    from blocks.texts import t
    from ops.logs import OTHER, RequestLog

    def app(environ, start_response):
        if environ.get("PATH_INFO") != "/metrics" or environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return _answer(start_response, "404 Not Found", b"", "text/plain")
        if not authorized(environ.get("HTTP_AUTHORIZATION"), settings.METRICS_TOKEN):
            body = json.dumps({"error": t("api.unauthorized", settings.LANGUAGE)}, ensure_ascii=False).encode()
            return _answer(start_response, "401 Unauthorized", body, "application/json",
                           [("WWW-Authenticate", 'Bearer realm="metrics"')])
        body, content_type = exposition(db, now)
        return _answer(start_response, "200 OK", body, content_type)

    known_routes(["/metrics", OTHER])
    server = create_server(RequestLog(app, ["/metrics"], observe=observe_request), host="0.0.0.0", port=port,
                           threads=2, ident="handoff", channel_timeout=30, clear_untrusted_proxy_headers=True,
                           connection_limit=50, max_request_body_size=1024, max_request_header_size=32 * 1024)

    def run():
        try:
            server.run()
        except OSError as exc:  # server.close() from another thread ends the loop this way
            if exc.errno != errno.EBADF:
                raise
    threading.Thread(target=run, name="metrics", daemon=True).start()
    return server


def _answer(start_response, status: str, body: bytes, content_type: str, headers: list | None = None):
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body))), *(headers or [])])
    return [body]
