"""A clock the tests and the demo set by hand: `now` moves only when told.

After `run()` it goes on from the instant it was set to in real time, so
retries and backoff in the outbox still come due.
"""
from __future__ import annotations

import time
from datetime import datetime, timedelta


class FakeClock:
    def __init__(self, at: datetime):
        self.at, self._since = at, None

    def __call__(self) -> datetime:
        if self._since is None:
            return self.at
        return self.at + timedelta(seconds=time.monotonic() - self._since)

    def set(self, at: datetime) -> datetime:
        self.at, self._since = at, None
        return at

    def run(self) -> None:
        self._since = time.monotonic()
