"""What a CRM write-back lane is besides its calls (HubSpot: outbox/hubspot.py, Salesforce: outbox/salesforce.py):
a thread of its own that makes a pass whenever woken or due, never dies of an error (the database may be away
for a moment), and can be drained to a moment for `bot.py run-job outbox`."""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from sqlalchemy.orm import Session

from models.db import Database


class CrmLane:
    """Subclasses make a pass (`_run_pass`: seconds until the next is worth making) and count what is due
    (`_due`); they set `db`, `now`, `name`, `label` and `log`, and may keep calls in `_pool`."""

    name, label = "crm", "CRM"  # the thread's name; the CRM's, in log lines
    log = logging.getLogger("handoff.crm")
    db: Database
    now: object

    def __init__(self, pool_threads: int = 0):
        self.wake = threading.Event()
        self.paused_until = 0.0  # monotonic: the whole lane waits until then
        self.thread: threading.Thread | None = None
        self._pass_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(pool_threads, thread_name_prefix=f"{self.name}-write") \
            if pool_threads else None

    def _run_pass(self) -> float:
        raise NotImplementedError

    def _due(self, session: Session, until: datetime) -> int:
        raise NotImplementedError

    def notify(self) -> None:
        self.wake.set()

    def start(self, stop: threading.Event) -> threading.Thread:
        self.thread = threading.Thread(target=self.run, args=(stop,), name=self.name, daemon=True)
        self.thread.start()
        return self.thread

    def join(self, timeout: float) -> None:
        if self.thread is not None:
            self.thread.join(timeout)
        if self._pool is not None:
            self._pool.shutdown(wait=False)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                wait = self.run_pass()
            except Exception:  # the database may be away for a moment; the lane must not die
                self.log.exception("%s pass failed; trying again", self.label)
                wait = 5.0
            if wait > 0:
                self.wake.wait(wait)
            self.wake.clear()

    def run_pass(self) -> float:
        with self._pass_lock:
            return self._run_pass()

    def drain(self, until: datetime, timeout: float) -> int:
        """Write until nothing due by `until` is left (or `timeout` passed); what is still due."""
        deadline = time.monotonic() + timeout
        while True:
            self.paused_until = 0.0
            wait = self.run_pass()
            with self.db.begin() as s:  # what a pass made due (a record just found) counts too
                left = self._due(s, max(until, self.now()))
            if left == 0 or time.monotonic() >= deadline:
                return left
            if wait > 0:  # busy passes go straight on, as the running lane does
                time.sleep(min(wait, 1.0))
