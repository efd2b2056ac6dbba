"""What a delivery kind is: a typed payload, the one function that delivers it, and how it is paced.

The sender (outbox/sender.py) owns the queue: leasing, pacing, retrying and settling rows. A delivery owns
one kind of row: it reads the row's payload into its own type and makes the one call that delivers it. Every
kind is registered once, in outbox/deliveries/__init__.py; docs/operating.md lists them.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict
from slack_sdk import WebClient
from slack_sdk.web import SlackResponse
from sqlalchemy.orm import Session

from models.clock import BusinessClock
from models.db import Database
from models.tables import Lead, OutboxMessage

if TYPE_CHECKING:
    from settings import Settings


class Payload(BaseModel):
    """The stored payload of one kind of row, read when the row is sent. Unknown keys are ignored, so a row
    queued by an older version still goes out; a missing or mistyped key fails the row (docs/failures.md)."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class NoPayload(Payload):
    """For kinds that need nothing but the lead (a card is rendered from the lead as it stands)."""


P = TypeVar("P", bound=Payload)


@dataclass
class Outcome:
    """What happened to one row: sent, defer (not an attempt), retry, setup (retry slowly, then give up),
    render (the message could not be built: retry a few times, then give up) or failed."""

    state: str
    ts: str | None = None
    channel: str | None = None
    delay: float = 0.0
    error: str | None = None
    exc: BaseException | None = None  # for `render`: what was raised, logged once when the row gives up
    permalink: str | None = None  # a posted message's link, where the row keeps it (the card)
    detail: dict | None = None  # kept with the sent row: what an erasure may have to edit (models/privacy.py)


@dataclass(frozen=True)
class Message(Generic[P]):
    """One outbox row as its delivery sees it, read in one transaction just before it is sent."""

    id: int
    kind: str
    channel: str | None
    lead_id: int | None
    lead: Lead | None  # the lead as it stands now (detached), None if the row has none or it is gone
    payload: P
    created_at: datetime
    card_wait: float | None  # the lead's card post is still pending: wait at most this long; None: not pending


@dataclass(frozen=True)
class Context:
    """What a delivery may use: Slack's Web API, the settings, the database, the clock, and its lane's pace."""

    client: WebClient
    settings: Settings
    db: Database
    now: Callable[[], datetime]
    take: Callable[[], None]  # spend one message of this lane's pace; call right before the Slack call
    workspace_url: Callable[[], str | None] = lambda: None  # https://team.slack.com/, read once by auth.test

    @property
    def lang(self) -> str:
        return self.settings.LANGUAGE

    @property
    def clock(self) -> BusinessClock:
        return self.settings.clock

    def team_name(self, team_id: str | None) -> str | None:
        """A team's name in the routing file (docs/routing.md); None for no team or one since removed."""
        routing = self.settings.routing if team_id is not None else None
        team = routing.teams.get(team_id) if routing is not None else None
        return team.name if team is not None else None

    def permalink(self, channel: str, ts: str) -> str | None:
        """A message's permalink, built the way Slack builds them (no call per message)."""
        base = self.workspace_url()
        return f"{base.rstrip('/')}/archives/{channel}/p{ts.replace('.', '')}" if base and ts else None

    def post(self, channel: str | None, text: str, blocks: list[dict],
             thread_ts: str | None = None) -> SlackResponse:
        """A paced chat.postMessage without link previews."""
        self.take()
        return self.client.chat_postMessage(channel=channel, text=text, blocks=blocks, thread_ts=thread_ts,
                                            unfurl_links=False, unfurl_media=False)


class PeriodPayload(Payload):
    """A report of one period (`2026-W48`, `2026-11`), read as of the instant it fell due or was asked for."""

    label: str
    as_of: datetime


def never(payload: Payload) -> bool:
    return False


@dataclass(frozen=True)
class Delivery(Generic[P]):
    """One kind of outbox row.

    lane: "channel" rows are posts into a channel, paced per channel (OUTBOX_CHANNEL_RATE) and kept in order
    there; "method" rows (updates, ephemerals, App Home) share one lane per kind, paced only by Slack's 429s.
    waits_for_card: whether this row must wait for the lead's card post (an update of it, a threaded reply).
    on_sent: what the row being sent changes in the database, in the transaction that marks it sent (with
    the instant it was sent).
    """

    kind: str
    payload: type[P]
    deliver: Callable[[Context, Message[P]], Outcome]
    lane: Literal["channel", "method"] = "method"
    waits_for_card: Callable[[P], bool] = never
    on_sent: Callable[[Session, OutboxMessage, Outcome, datetime], None] | None = None

    def lane_of(self, channel: str | None) -> str:
        return f"post:{channel}" if self.lane == "channel" else f"method:{self.kind}"

    def read(self, stored: dict | None) -> P:
        return self.payload.model_validate(stored or {})
