"""What every entry point shares: settings, the database, the clock, the outbox sender."""
from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.db import Database, is_transient
from models.leads import Policy
from models.requests import first_time
from models.tables import Lead
from models.teams import Teams
from outbox.process import WAKE_CLICKS
from settings import Settings

if TYPE_CHECKING:
    from handlers.clicks import ClickQueue
    from outbox.events import EventSender
    from outbox.hubspot import HubSpotWriter
    from outbox.process import DeliveryProcess
    from outbox.salesforce import SalesforceWriter
    from outbox.sender import Sender

log = logging.getLogger("handoff.slack")


def utcnow() -> datetime:
    return datetime.now(UTC)


T = TypeVar("T")


@dataclass
class Services:
    """What a listener or a job needs: the settings, the database, the clock and the sender to wake."""

    settings: Settings
    db: Database
    now: Callable[[], datetime] = utcnow
    sender: Sender | None = None  # None only where nothing is sent (a command-line report)
    events: EventSender | None = None  # the endpoints' lanes (docs/events.md); None where nothing is sent
    hubspot: HubSpotWriter | None = None  # HubSpot write-back (docs/hubspot.md); None without HUBSPOT_TOKEN
    salesforce: SalesforceWriter | None = None  # Salesforce write-back (docs/salesforce.md); None without its URL
    # Set in `serve`'s web process: the senders run in the delivery process (outbox/process.py); wake that.
    delivery: DeliveryProcess | None = None
    clicks: ClickQueue | None = None  # the card buttons' work (handlers/clicks.py); set by build_runtime
    policy: Policy = field(init=False)  # the lead rules, read from the settings once

    def __post_init__(self):
        self.policy = Policy.from_settings(self.settings)

    @property
    def teams(self) -> Teams:
        return self.policy.teams

    def managers_of(self, session: Session, lead_id: int) -> tuple[str, ...]:
        """Who may act as a manager on this lead: its team's managers (and, once handed on, the receiving team's)
        and MANAGER_IDS (models/teams.py). Without a routing file, MANAGER_IDS, without reading the lead."""
        if self.teams.routing is None:
            return tuple(self.settings.MANAGER_IDS)
        row = session.execute(select(Lead.team, Lead.handed_to).where(Lead.id == lead_id)).first()
        if row is None:
            return tuple(self.settings.MANAGER_IDS)
        managers = self.teams.get(row.team).managers
        if row.handed_to is not None:  # the team it was handed to manages it too
            managers = tuple(dict.fromkeys([*managers, *self.teams.get(row.handed_to).managers]))
        return managers

    @contextlib.contextmanager
    def once(self, context: dict) -> Iterator[Session | None]:
        """A transaction for one Slack request; yields None when this request was already handled."""
        with self.db.begin() as session:
            if not first_time(session, context["request_key"], self.now()):
                log.info("dropping a repeated Slack request")
                yield None
                return
            yield session

    def patiently(self, work: Callable[[], T], seconds: float | None = None) -> T:
        """`work()`, run again while the database is away, for up to `seconds` (CLICK_RETRY_SECONDS): an
        acknowledged click is applied once the database is back. Then the last error is raised, for the
        clicker to be told (handlers/errors.py). `work` must be one transaction, so a run again is safe."""
        limit = self.settings.CLICK_RETRY_SECONDS if seconds is None else seconds
        deadline, pause = time.monotonic() + limit, 0.1
        while True:
            try:
                return work()
            except Exception as exc:
                if not is_transient(exc) or time.monotonic() + pause > deadline:
                    raise
                log.warning("database unavailable (%s); trying the request again in %.1f s",
                            type(exc).__name__, pause)
            time.sleep(pause)
            pause = min(pause * 2, 2.0)

    def notify(self) -> None:
        """Wake the senders after a commit that queued messages or events (in the delivery process, if any)."""
        if self.delivery is not None:
            self.delivery.notify()
            return
        if self.sender is not None:
            self.sender.notify()
        for lane in self.lanes:
            lane.notify()

    def notify_clicks(self) -> None:
        """Wake the click queue only: a click was written down, and nothing is to be sent until it is applied
        (handlers/clicks.py)."""
        if self.delivery is not None:
            self.delivery.notify(WAKE_CLICKS)
        elif self.clicks is not None:
            self.clicks.notify()

    def woken(self, burst: bytes) -> None:
        """In the delivery process: bytes came on the wake pipe (outbox/process.py says what each asks for)."""
        if WAKE_CLICKS in burst and self.clicks is not None:
            self.clicks.notify()
        if burst.strip(WAKE_CLICKS):
            self.notify()

    @property
    def lanes(self) -> list[EventSender | HubSpotWriter | SalesforceWriter]:
        """The senders besides Slack's: each runs on its own, so one being down never holds up another."""
        return [lane for lane in (self.events, self.hubspot, self.salesforce) if lane is not None]
