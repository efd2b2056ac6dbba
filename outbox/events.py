"""Events leave here: one lane per endpoint, signed as Standard Webhooks, retried on a schedule.

The rows are written by models/events.py with the change that caused them; this module only sends them.
docs/events.md is the contract; in short:

- One lane (a thread) per endpoint of EVENT_WEBHOOK_URLS: an endpoint that is down or slow holds up only
  itself, never another endpoint, and never Slack, which has its own sender (outbox/sender.py).
- Per lead and endpoint, events arrive in the order they happened: a pass takes at most one delivery per lead,
  and never one while an earlier delivery of that lead is still pending at that endpoint. Deliveries of
  different leads go out side by side, a few at a time over kept-alive connections.
- Every request is `POST` with `Content-Type: application/json` and the headers `webhook-id` (the event's id,
  the same on every retry and at every endpoint), `webhook-timestamp` (this attempt, Unix seconds of the wall
  clock, which is what receivers compare with their own) and `webhook-signature` (`v1,` and the base64
  HMAC-SHA256 of `{id}.{timestamp}.{body}` under EVENT_WEBHOOK_SECRET), signed with the `standardwebhooks`
  package.
- A 2xx is delivered. 408, 425, 429, 5xx, a timeout (10 s) or no connection is tried again after 5 s, 5 min,
  30 min, 2 h, 5 h, 10 h and then every 10 h (or after the answer's `Retry-After`), until the delivery is 72
  hours old; then it is failed for good. Any other answer (other 4xx, a redirect) fails it for good at once.
  When the endpoint cannot be reached at all, the rest of that pass waits with it instead of each timing out.

Several processes may run lanes for the same endpoint: a delivery is leased before it is sent.
"""
from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import urllib3
from standardwebhooks import Webhook

from models import events
from models.db import Database

log = logging.getLogger("handoff.events")

TIMEOUT = 10.0  # seconds an endpoint has to answer one request
RETRY_STATUSES = {408, 425, 429}
BATCH = 200  # deliveries taken per pass
WORKERS = 8  # requests in flight at once per endpoint
MAX_ERROR = 500


def wall_clock() -> datetime:
    return datetime.now(UTC)


def retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds the endpoint asked us to wait (`Retry-After`: seconds or an HTTP date), if it said."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - now).total_seconds())
    except (TypeError, ValueError, IndexError):
        return None


class EventLane:
    """The deliveries to one endpoint."""

    def __init__(self, db: Database, destination_id: int, url: str, secret: str,
                 now: Callable[[], datetime], signing_clock: Callable[[], datetime] = wall_clock,
                 timeout: float = TIMEOUT, workers: int = WORKERS):
        self.db, self.destination_id, self.url = db, destination_id, url
        self.now, self.signing_clock, self.timeout = now, signing_clock, timeout
        self.webhook = Webhook(secret)
        # How logs name the endpoint: its host only, as a URL's path often carries the receiver's secret token.
        self.label = f"#{destination_id} ({urlsplit(url).hostname})"
        self.wake = threading.Event()
        self.paused_until: float = 0.0  # monotonic: the endpoint could not be reached; wait before the next pass
        self._http = connection_pool(url, workers, timeout)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"events-{destination_id}")
        self._workers = workers
        self._pass_lock = threading.Lock()
        self.thread: threading.Thread | None = None

    # Running ----------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                wait = self.run_pass()
            except Exception:  # the database may be away for a moment; the lane must not die
                log.exception("events to endpoint %s: pass failed; trying again", self.label)
                wait = 5.0
            if wait > 0:
                self.wake.wait(wait)
            self.wake.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def start(self, stop: threading.Event) -> threading.Thread:
        self.thread = threading.Thread(target=self.run, args=(stop,), name=f"events-{self.destination_id}",
                                       daemon=True)
        self.thread.start()
        return self.thread

    def run_pass(self) -> float:
        """Send what is due now; return how long to wait before the next pass."""
        with self._pass_lock:
            return self._run_pass()

    def _run_pass(self) -> float:
        paused = self.paused_until - time.monotonic()
        if paused > 0:
            return paused
        with self.db.begin() as s:
            due = events.take_due(s, self.destination_id, self.now(), limit=BATCH)
        if due:
            self._send_all(due)
            if len(due) >= BATCH or self.paused_until <= time.monotonic():
                return 0.0  # more may be due at once: a lead's next event, or the rest of a backlog
        with self.db.begin() as s:
            upcoming = events.next_due(s, self.destination_id)
        if upcoming is None:
            return 5.0
        return min(5.0, max(0.0, (upcoming - self.now()).total_seconds()),
                   max(0.0, self.paused_until - time.monotonic()) or 5.0)

    # Sending ----------------------------------------------------------------------
    def _send_all(self, due: list[events.Due]) -> None:
        """Every delivery of the pass, `workers` at a time; once the endpoint cannot be reached, the ones not
        yet tried wait with the one that failed instead of each meeting the same refusal or timeout."""
        down: list[events.Result] = []  # the first attempt that found the endpoint unreachable, if any
        lock = threading.Lock()

        def attempt(d: events.Due) -> events.Result:
            with lock:
                failed = down[0] if down else None
            if failed is not None:
                return events.Result(d.id, "retry", error=failed.error, retry_at=failed.retry_at, counted=False)
            result, reached = self._attempt(d)
            if not reached and result.state == "retry":
                with lock:
                    if not down:
                        down.append(result)
            return result

        results = list(self._pool.map(attempt, due))
        unreachable = down[0] if down else None
        if unreachable is not None:
            self.paused_until = time.monotonic() + max(0.0, (unreachable.retry_at - self.now()).total_seconds())
            log.warning("endpoint %s unreachable (%s); its deliveries wait until %s", self.label,
                        unreachable.error, unreachable.retry_at.isoformat(timespec="seconds"))
        with self.db.begin() as s:
            events.settle(s, results, self.now())

    def _attempt(self, d: events.Due) -> tuple[events.Result, bool]:
        """One request; the result, and whether the endpoint answered at all."""
        body = json.dumps(d.body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
        signed_at = self.signing_clock().replace(microsecond=0)
        headers = {"Content-Type": "application/json", "User-Agent": "Handoff-Webhooks/1",
                   "webhook-id": d.event_id, "webhook-timestamp": str(int(signed_at.timestamp())),
                   "webhook-signature": self.webhook.sign(d.event_id, signed_at, body)}
        try:
            resp = self._http.request("POST", self.url, body=body, headers=headers, retries=False, redirect=False)
        except urllib3.exceptions.HTTPError as exc:
            # (a refused connection is a NewConnectionError, which urllib3 also makes a kind of timeout)
            timed_out = isinstance(exc, urllib3.exceptions.TimeoutError) and \
                not isinstance(exc, urllib3.exceptions.NewConnectionError)
            kind = "timeout" if timed_out else "connection"
            return self._retry(d, None, f"{kind}: {_one_line(exc)}"), False
        status = resp.status
        if 200 <= status < 300:
            return events.Result(d.id, "sent", status=status), True
        if status in RETRY_STATUSES or status >= 500:
            wait = retry_after(resp.headers.get("Retry-After"), self.now())
            return self._retry(d, status, f"HTTP {status}", wait), True
        log.error("event %s (%s) refused for good by endpoint %s: HTTP %s", d.event_id, d.type, self.label, status)
        return events.Result(d.id, "failed", status=status, error=f"HTTP {status}: refused"), True

    def _retry(self, d: events.Due, status: int | None, error: str, wait: float | None = None) -> events.Result:
        now = self.now()
        if now - d.created_at >= events.RETRY_FOR:
            log.error("event %s (%s) to endpoint %s failed for good after %d attempts over 72 hours: %s",
                      d.event_id, d.type, self.label, d.attempts + 1, error)
            return events.Result(d.id, "failed", status=status, error=f"{error} (gave up after 72 hours)")
        delay = events.retry_delay(d.attempts + 1) if wait is None else min(max(wait, 1.0), events.MAX_RETRY_AFTER)
        if status is not None:  # (no answer at all is logged once for the whole pass, by _send_all)
            log.warning("event %s (%s) to endpoint %s: %s; trying again in %.0f s", d.event_id, d.type, self.label,
                        error, delay)
        return events.Result(d.id, "retry", status=status, error=error[:MAX_ERROR],
                             retry_at=now + timedelta(seconds=delay))


def connection_pool(url: str, size: int, timeout: float) -> urllib3.PoolManager:
    """Kept-alive connections to one endpoint (through the proxy the environment names for it, if any): no
    retries or redirects of its own, as the lane decides those, and `timeout` to connect and to answer."""
    options = dict(num_pools=2, maxsize=size, block=True, timeout=urllib3.Timeout(connect=timeout, read=timeout))
    host = urlsplit(url).hostname or ""
    proxy = urllib.request.getproxies().get(urlsplit(url).scheme)
    if proxy and not urllib.request.proxy_bypass(host):
        return urllib3.ProxyManager(proxy, **options)
    return urllib3.PoolManager(**options)


class EventSender:
    """Every endpoint's lane, started and woken together."""

    def __init__(self, db: Database, destinations: dict[str, int], secret: str | None,
                 now: Callable[[], datetime], signing_clock: Callable[[], datetime] = wall_clock,
                 timeout: float = TIMEOUT):
        self.db, self.now = db, now
        self.lanes = [EventLane(db, dest_id, url, secret, now, signing_clock, timeout)
                      for url, dest_id in destinations.items()] if secret else []
        self.threads: list[threading.Thread] = []

    def notify(self) -> None:
        for lane in self.lanes:
            lane.wake.set()

    def start(self, stop: threading.Event) -> None:
        self.threads = [lane.start(stop) for lane in self.lanes]

    def join(self, timeout: float) -> None:
        for thread in self.threads:
            thread.join(timeout)

    def drain(self, until: datetime, timeout: float) -> int:
        """Pass every lane until nothing due by `until` is pending (delivered, failed for good, or waiting
        for a retry later than `until`) or `timeout` seconds passed. Returns what is still due."""
        deadline = time.monotonic() + timeout
        while True:
            for lane in self.lanes:
                lane.paused_until = 0.0  # `run-job outbox` tries every endpoint, even one just found down
                lane.run_pass()
            with self.db.begin() as s:
                left = events.pending_due_by(s, until)
            if left == 0 or time.monotonic() >= deadline:
                return left
            time.sleep(0.02)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:MAX_ERROR]
