"""The click queue: each card button click is written down once, under its request's name, and applied once.

Why (docs/http.md, "Clicks"): what a claim does (lock the lead, the audit row, the card update, the SLA
timers, the events and the CRM write) is several statements. Done on the web process's threads, that work
competed with the answers Slack waits for, and on PostgreSQL 50 clicks at once took three to four times as
long to answer as an app that does one UPDATE (BENCHMARKS.md). So, by the database:

- **PostgreSQL: written down, then answered.** The answer waits for one INSERT only, like that minimal app, and
  the work runs where the deliveries run: in `serve`'s delivery process at a lower CPU priority
  (outbox/process.py), woken through its pipe, a batch of clicks to a transaction. Nothing acknowledged is
  lost: a crash after the answer finds the click in the table, applied by the next process to start; the
  database away at the click: the answer still goes within Slack's 3 s, the recording keeps trying for
  CLICK_RETRY_SECONDS, and if it never gets in the clicker is told privately that nothing was recorded
  (handlers/errors.py).
- **SQLite: answered, then written down and applied** in one transaction, in the web process. SQLite has one
  writer at a time, and an answer that waited for its lock waited for every delivery (`_answer_then_apply`).

Either way:
- **Once.** The request's key is unique in the table: a retried delivery of the same click records nothing.
- **The same rules.** Each click runs the same domain code the listener ran, in a savepoint of its
  transaction, at the instant it was clicked (`received_at`): a refusal ("already claimed") becomes the private
  notice it always was, queued in that transaction; an App Home click republishes the Home.
- **In order per lead**: a batch takes the oldest clicks and applies them lead by lead, each lead's in the order
  they came (which also makes two processes applying at once lock leads in the same order).
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor
from datetime import datetime

from sqlalchemy.orm import Session

from handlers.actions import lead_id_of
from handlers.errors import domain_params, explain, queue_private_reply
from handlers.home import from_home
from models import clicks
from models.db import is_race, is_transient, writes, wrote_nothing_since
from models.leads import LeadError
from models.outbox import queue_home
from ops import logs

log = logging.getLogger("handoff.slack")

# What a click's work is given: the transaction, the (slimmed) request body, its action, the instant it came.
# It returns the private confirmation to send (a catalog key and its parameters), or None.
Work = Callable[[Session, dict, dict, datetime], "tuple[str, dict] | None"]
BATCH = 100  # clicks applied in one transaction
ANSWER_WITHIN = 1.5  # seconds the answer to Slack waits for the database to take the click, at most
RACE_TRIES = 3  # a click's work that loses a race (a unique insert, a deadlock) is run again this often
POLL = 5.0  # seconds between looks at the table when nobody woke the queue (clicks another host recorded)
# A woken queue waits for the clicks to pause before applying them: until none came for QUIET seconds, or
# GATHER_AT_MOST after the first. While clicks keep coming, Slack waits for their answers, and applying them
# meanwhile (statements in the database, a core) slowed those answers (BENCHMARKS.md); applied after the
# burst, its clicks share a few transactions. A rep's card changes QUIET later after a lone click, and at
# most GATHER_AT_MOST later in a burst, within the second Slack users expect.
QUIET = 0.15
GATHER_AT_MOST = 1.0
# Of a block_actions body, what applying the click and answering the clicker read. Not the message the button
# sat in, nor the view's blocks and state: those carry the lead's personal data and are not needed.
KEEP_KEYS = ("type", "user", "channel", "container", "trigger_id", "response_url", "api_app_id", "team")


def slim(body: dict) -> dict:
    """The part of a click's body worth keeping (KEEP_KEYS, the one action, and the kind of view it came from)."""
    kept = {k: body[k] for k in KEEP_KEYS if k in body}
    kept["actions"] = (body.get("actions") or [{}])[:1]
    view = body.get("view")
    if isinstance(view, dict):
        kept["view"] = {k: view[k] for k in ("id", "type") if k in view}
    user = kept.get("user")
    if isinstance(user, dict):
        kept["user"] = {"id": user.get("id")}
    return kept


class ClickQueue:
    """Records clicks (the web side, on Bolt's ack) and applies them (a thread where the senders run)."""

    def __init__(self, services, work: dict[str, Work], batch: int = BATCH):
        """`services`: handlers/services.py's Services, whose database, clock and senders the queue uses."""
        self.services, self.work, self.batch = services, work, batch

        self.wake = threading.Event()
        self.thread: threading.Thread | None = None
        self._pass_lock = threading.Lock()

    # The web side -------------------------------------------------------------------------
    def ack_listener(self, recorder: Executor):
        """Bolt's listener for a queued action, by the database (see the module's docstring)."""
        if self.services.db.is_sqlite:
            return self._answer_then_apply(recorder)
        return self._record_then_answer(recorder)

    def _record_then_answer(self, recorder: Executor):
        """PostgreSQL: write the click down, then answer Slack; the delivery process applies it. The write
        waits at most ANSWER_WITHIN for the database (Database.quick); if it cannot get in by then, Slack is
        answered anyway and the write keeps trying on `recorder`'s threads for CLICK_RETRY_SECONDS."""
        services = self.services
        quick = services.db.quick(ANSWER_WITHIN)

        def record_click(ack, body, action, context):
            click = self._click(body, action, context)

            def write(db):
                with db.autocommit() as conn:
                    fresh = clicks.record(conn, **click)
                if fresh:
                    services.notify_clicks()
                else:
                    log.info("dropping a repeated Slack request")

            try:
                write(quick)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                log.warning("the database did not take a click at once (%s); answering Slack now and still "
                            "trying", type(exc).__name__)
                recorder.submit(self._patiently, lambda: write(services.db), body)
            ack()

        return record_click

    def _answer_then_apply(self, recorder: Executor):
        """SQLite: answer Slack, then write the click down and apply it in one transaction on `recorder`'s
        threads, in this process. SQLite has one writer at a time: an answer that waited for the write lock
        waited for every delivery and every other click being written, which made a claim's answer three
        times as slow as the one-UPDATE app of BENCHMARKS.md. What this gives up is a click answered
        milliseconds before the process is killed: as before the click queue, it is not recorded and the
        card does not change, so the rep clicks again."""
        services = self.services

        def apply_click(ack, body, action, context):
            ack()
            click = self._click(body, action, context)

            def write_and_apply():
                with services.db.begin() as session:
                    if not clicks.record(session, **click, applied=True):
                        log.info("dropping a repeated Slack request")
                        return
                    self._apply(session, clicks.Pending(0, click["action_id"], click["user_id"], click["body"],
                                                        click["request_id"], click["now"]))
                services.notify()

            recorder.submit(self._patiently, write_and_apply, body)

        return apply_click

    def _click(self, body: dict, action: dict, context: dict) -> dict:
        """What `clicks.record` keeps of a click, read on the request's thread."""
        return {"request_key": context["request_key"], "action_id": action["action_id"],
                "user_id": body["user"]["id"], "body": slim(body), "request_id": logs.current_request_id(),
                "now": self.services.now()}

    def _patiently(self, write: Callable[[], None], body: dict) -> None:
        """`write()`, run again while the database is away (CLICK_RETRY_SECONDS); if it never gets in, the
        clicker hears privately that nothing was recorded (handlers/errors.py)."""
        try:
            self.services.patiently(write)
        except Exception as exc:
            explain(self.services, exc, body)

    # The applying side ---------------------------------------------------------------------
    def notify(self) -> None:
        self.wake.set()

    def start(self, stop: threading.Event) -> threading.Thread:
        self.thread = threading.Thread(target=self.run, args=(stop,), name="clicks", daemon=True)
        self.thread.start()
        return self.thread

    def join(self, timeout: float) -> None:
        if self.thread is not None:
            self.wake.set()
            self.thread.join(timeout)

    def run(self, stop: threading.Event) -> None:
        pause = 0.1
        while not stop.is_set():
            self.wake.clear()
            try:
                applied = self.run_pass()
                pause = 0.1
            except Exception as exc:  # the database away: the clicks wait in the table, tried again shortly
                if is_transient(exc):
                    log.warning("clicks not applied yet: the database is unavailable (%s); trying again in "
                                "%.1f s", type(exc).__name__, pause)
                else:
                    log.exception("clicks not applied yet; trying again in %.1f s", pause)
                self.wake.wait(pause)
                pause = min(pause * 2, 5.0)
                continue
            if applied < self.batch and self.wake.wait(POLL) and not stop.is_set():
                self.gather(stop)

    def gather(self, stop: threading.Event) -> None:
        """Woken by a click: wait while more keep coming (QUIET, GATHER_AT_MOST), to apply them together."""
        until = time.monotonic() + GATHER_AT_MOST
        while not stop.is_set():
            self.wake.clear()
            left = until - time.monotonic()
            if left <= 0 or not self.wake.wait(min(QUIET, left)):
                return

    def run_pass(self) -> int:
        """Apply the oldest clicks not yet applied (up to `batch`) in one transaction; how many."""
        with self._pass_lock:
            services = self.services
            with services.db.begin() as session:
                taken = clicks.take(session, self.batch)
                if not taken:
                    return 0
                for click in sorted(taken, key=lambda c: (lead_order(c), c.id)):
                    self._apply(session, click)
                clicks.done(session, [c.id for c in taken], services.now())
            services.notify()
            return len(taken)

    def drain(self, timeout: float) -> bool:
        """Apply every click waiting (the demo, a deploy's last moments, `run-job outbox`); False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.run_pass() == 0:
                return True
        return False

    def _apply(self, session: Session, click: clicks.Pending) -> None:
        services, body = self.services, click.body
        action = (body.get("actions") or [{}])[0]
        work = self.work.get(click.action_id)
        started = time.perf_counter()
        in_request = logs.REQUEST_ID.set(click.request_id)
        try:
            notice = self._attempt(session, work, body, action, click.received_at)
            if notice is not None:
                queue_private_reply(session, body, *notice, now=services.now())
            if from_home(body):
                after = action.get("action_ts") or body.get("trigger_id") or str(click.id)
                queue_home(session, click.user_id, services.now(), f"after:{after}")
            ms, name = round((time.perf_counter() - started) * 1000, 1), getattr(work, "__name__", click.action_id)
            log.info("slack work %s finished in %.1f ms", name, ms, extra={"work": name, "duration_ms": ms})
        finally:
            logs.REQUEST_ID.reset(in_request)

    def _attempt(self, session: Session, work: Work | None, body: dict, action: dict, at: datetime):
        """The click's work in a savepoint: its notice, or the notice of what stopped it (nothing changed)."""
        lang = self.services.settings.LANGUAGE
        for attempt in range(1, RACE_TRIES + 1):
            try:
                with session.begin_nested():
                    if work is None:  # recorded by a version that had this button; this one has not
                        raise LookupError("no work for this action")
                    before = writes(session)
                    try:
                        return work(session, body, action, at)
                    except LeadError as refused:
                        # Refused before writing anything ("already claimed"): keep the savepoint. Rolling
                        # back to it would change nothing here, but makes psycopg forget the connection's
                        # prepared statements: half a burst's clicks are refusals (models/db.py count_writes).
                        if wrote_nothing_since(session, before):
                            return refused.key, domain_params(refused.params, lang)
                        raise
            except LeadError as refused:
                return refused.key, domain_params(refused.params, lang)
            except Exception as exc:
                if is_race(exc) and attempt < RACE_TRIES:
                    continue
                if is_transient(exc) and not is_race(exc):
                    raise  # the database went away: the whole batch is applied again later
                log.error("a click could not be applied", exc_info=exc)
                return "notice.error", {}
        return "notice.error", {}


def lead_order(click: clicks.Pending) -> int:
    """The lead a click is about, to apply a batch lead by lead (0 when its control names no lead)."""
    try:
        return lead_id_of((click.body.get("actions") or [{}])[0])
    except LeadError:
        return 0
