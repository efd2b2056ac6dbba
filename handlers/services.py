"""What every entry point shares: settings, the database, the clock, the outbox sender."""
from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from models.leads import Policy
from models.requests import first_time

log = logging.getLogger("handoff.slack")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Services:
    settings: object
    db: object
    now: Callable[[], datetime] = utcnow
    sender: object | None = None
    policy: Policy = field(init=False)

    def __post_init__(self):
        self.policy = Policy.from_settings(self.settings)

    @contextlib.contextmanager
    def once(self, context):
        """A transaction for one Slack request; yields None when this request was already handled."""
        with self.db.begin() as session:
            if not first_time(session, context["request_key"], self.now()):
                log.info("dropping a repeated Slack request")
                yield None
                return
            yield session

    def notify(self) -> None:
        """Wake the sender after a commit that queued messages."""
        if self.sender is not None:
            self.sender.notify()
