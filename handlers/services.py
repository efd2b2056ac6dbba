"""What every entry point shares: settings, the database, the clock, the outbox sender."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from models.leads import Policy


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
        s = self.settings
        self.policy = Policy(threshold=s.MQL_SCORE_THRESHOLD, clock=s.clock, claim_minutes=s.SLA_CLAIM_MINUTES,
                             contact_minutes=s.SLA_CONTACT_MINUTES, handoff_channel=s.HANDOFF_CHANNEL)

    def notify(self) -> None:
        """Wake the sender after a commit that queued messages."""
        if self.sender is not None:
            self.sender.notify()
