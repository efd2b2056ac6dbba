"""The one way messages leave: a paced, retrying sender over the durable outbox.

The sender owns the queue (leasing, pacing, retrying, settling); what each kind of row says and the one call
that delivers it are in outbox/deliveries/, a module per kind, registered in outbox/deliveries/__init__.py.

- Pacing: chat.postMessage is held to OUTBOX_CHANNEL_RATE per channel (token
  bucket, burst OUTBOX_CHANNEL_BURST), so a burst of MQLs queues instead of
  hammering Slack into 429s.

What happens to a row that does not go through, by the kind of trouble:

- Slack is busy (429 / `ratelimited`): the row waits `Retry-After` and so does
  everything else for that channel (or method); it does not count as an attempt.
- Slack or the way to it is down (HTTP 5xx, `internal_error`, `fatal_error`,
  `service_unavailable`, `request_timeout`, connection errors, the database
  briefly away while the message is built): retried with exponential backoff
  (at most MAX_BACKOFF apart), for ever. Nothing about the row is wrong; every
  row waits for the same outage, and no message is lost to it.
- Handoff is not in the channel (`not_in_channel`): a public channel is joined
  (`conversations.join`, scope channels:join) and the row sent again at once,
  once, so posting and the chart upload work in a channel nobody invited it to.
  A private channel can only be joined by invitation: the row's error and the
  log say so (`/invite @Handoff` in that channel), and it is retried as below.
  Slack answers `channel_not_found` about a private channel Handoff is not in,
  as about one that is deleted: that error names both causes and both fixes.
- The installation is broken (SETUP_ERRORS: `invalid_auth`, `not_authed`,
  `account_inactive`, `token_revoked`, `token_expired`, `missing_scope`,
  `no_permission`, `not_allowed_token_type`, `team_access_not_granted`,
  `ekm_access_denied`, and `not_in_channel` where joining cannot fix it):
  an admin fixes it once for every row, so the row is retried slowly (at most
  15 minutes apart), logged as an error, shown as retrying on `/healthz` and
  by `bot.py outbox list`, and failed for good SETUP_GIVE_UP (48 h) after it
  was queued. A row put back by hand (`bot.py outbox retry`) that meets such an
  error again is failed at once.
- The destination refuses this row for good (PERMANENT_ERRORS, and any other
  error code Slack answers, or any other HTTP 4xx): `invalid_blocks`,
  `invalid_blocks_format`, `invalid_arguments`, `msg_too_long`, `no_text`,
  `channel_not_found`, `is_archived`, `message_not_found`,
  `cant_update_message`, `edit_window_closed`, …: failed at once with Slack's
  error (and its explanation, when Slack gives one) stored in `last_error`.
- The message cannot be built from the database (the lead is gone, the payload
  is malformed, e.g. a tampered value, or a bug in rendering): a lead that is
  gone fails the row at once; any other exception is tried RENDER_ATTEMPTS
  times in all (with backoff), then the row fails with the exception's class
  and message stored, logged once (with its traceback) under the row id.

A failed row never holds up its lane: rows are sent oldest first per channel,
but a row waiting for its backoff is simply not due, so later rows go past it;
and a card update (or a threaded reminder) that waits for the lead's card post
waits only while that post is still pending: once the post has failed, the
update is settled (there is no card to update) and the reminder is posted
unthreaded. Failed rows are counted on `/healthz` (`outbox_failed`), listed by
`python bot.py outbox list --failed`, and sent again by `python bot.py outbox
retry ID…|--all-failed` once the cause is fixed.

Several processes may run a sender: a row is leased before it is sent.
"""
from __future__ import annotations

import http.client
import logging
import random
import threading
import time
import urllib.error
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from blocks.texts import t
from models import outbox as queue
from models.db import Database
from models.tables import Lead, OutboxMessage
from ops.slack_client import CountedWebClient, IdentifiedWebClient
from outbox.deliveries import REGISTRY
from outbox.deliveries.base import Context, Delivery, Message, Outcome

if TYPE_CHECKING:
    from settings import Settings

log = logging.getLogger("handoff.outbox")

# Slack's error codes (chat.postMessage, chat.update, chat.postEphemeral, views.publish, files.* and the
# errors every method can answer), sorted by what they say about the row; see the module docstring.
TRANSIENT_ERRORS = {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
SETUP_ERRORS = {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired",
                "missing_scope", "no_permission", "not_allowed_token_type", "team_access_not_granted",
                "ekm_access_denied", "not_in_channel"}
PERMANENT_ERRORS = {  # any code not listed in the other sets is treated the same way
    "invalid_blocks", "invalid_blocks_format", "invalid_arguments", "invalid_arg_name", "invalid_array_arg",
    "invalid_form_data", "invalid_charset", "invalid_post_type", "missing_post_type", "invalid_attachments",
    "invalid_metadata_format", "invalid_metadata_schema", "metadata_too_large", "msg_too_long",
    "msg_blocks_too_long", "no_text", "too_many_attachments", "channel_not_found", "is_archived",
    "user_not_in_channel", "user_not_found", "cannot_dm_bot", "messages_tab_disabled", "restricted_action",
    "restricted_action_read_only_channel", "restricted_action_thread_only_channel",
    "restricted_action_non_threadable_channel", "message_not_found", "cant_update_message",
    "edit_window_closed", "not_found", "hash_conflict", "duplicate_external_id", "file_not_found",
    "invalid_channel", "posting_to_general_channel_denied", "access_denied", "unknown_method",
}
SETUP_GIVE_UP = timedelta(hours=48)
MAX_BACKOFF = 300.0
SETUP_BACKOFF = 900.0
RENDER_ATTEMPTS = 3  # tries in all for a row whose message cannot be built, before it fails for good
PAGE = 200  # rows read per pass
MAX_ERROR = 1000  # characters of an error kept in last_error


def utcnow() -> datetime:
    return datetime.now(UTC)


def make_client(settings: Settings, identity: dict | None = None) -> WebClient:
    """A Web API client that honours SLACK_API_URL; retries are the outbox's job. Each call is counted in
    `handoff_slack_calls_total` (ops/slack_client.py). `identity`: the token's `auth.test` answer, known
    already (`IdentifiedWebClient`)."""
    options = {"token": settings.SLACK_BOT_TOKEN, "base_url": settings.SLACK_API_URL, "timeout": 10,
               "retry_handlers": []}
    if identity is not None:
        return IdentifiedWebClient(identity=identity, **options)
    return CountedWebClient(**options)


class TokenBucket:
    def __init__(self, rate: float, burst: int):
        self.rate, self.burst = rate, float(burst)
        self.tokens, self.last = float(burst), None

    def _fill(self, now: float) -> None:
        if self.last is not None:
            self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now

    def wait_time(self, now: float) -> float:
        self._fill(now)
        return 0.0 if self.tokens >= 1 - 1e-9 else (1 - self.tokens) / self.rate

    def take(self, now: float) -> None:
        self._fill(now)
        self.tokens = max(0.0, self.tokens - 1)


class Sender:
    def __init__(self, db: Database, settings: Settings, client: WebClient | None = None,
                 now: Callable[[], datetime] = utcnow, monotonic: Callable[[], float] = time.monotonic,
                 poll_seconds: float = 1.0, backoff_base: float = 1.0):
        self.db, self.settings = db, settings
        self.client = client or make_client(settings)
        self.now, self.monotonic = now, monotonic
        self.poll_seconds = poll_seconds
        self.backoff_base = backoff_base  # first retry after about this many seconds, doubling
        self._wake = threading.Event()
        self._buckets: dict[str, TokenBucket] = {}
        self._paused: dict[str, float] = {}  # pace key -> monotonic instant it may go again
        # One pass at a time per sender: the pacing state is not shared-safe, and two passes
        # racing (the background thread and `drain`) could deliver a channel's rows out of order.
        self._pass_lock = threading.Lock()
        self.thread: threading.Thread | None = None  # the background thread, once started
        self._workspace_url: str | None = None

    # Running ----------------------------------------------------------------
    def notify(self) -> None:
        """Something was committed to the outbox: look now instead of at the next poll."""
        self._wake.set()

    def run(self, stop: threading.Event) -> None:
        log.info("outbox sender started")
        while not stop.is_set():
            try:
                wait = self.run_pass()
            except Exception:  # the database may be briefly away; never let the thread die
                log.exception("outbox pass failed; retrying")
                wait = self.poll_seconds * 5
            if wait > 0:
                self._wake.wait(wait)
            self._wake.clear()

    def start(self, stop: threading.Event) -> threading.Thread:
        self.thread = threading.Thread(target=self.run, args=(stop,), name="outbox-sender", daemon=True)
        self.thread.start()
        return self.thread

    def drain(self, timeout: float, since_id: int = 0) -> dict[str, int]:
        """Send until nothing is pending (or `timeout` seconds passed); for `run-job outbox`."""
        deadline = self.monotonic() + timeout
        while True:
            wait = self.run_pass()
            with self.db.begin() as s:
                c = queue.counts(s, since_id)
            if c["pending"] == 0 or self.monotonic() >= deadline:
                return c
            time.sleep(min(max(wait, 0.05), max(0.0, deadline - self.monotonic())))

    # One pass ---------------------------------------------------------------
    def run_pass(self) -> float:
        """Send every row that is due and may go now; return how long to wait before the next pass."""
        with self._pass_lock:
            return self._run_pass()

    def _run_pass(self) -> float:
        now = self.now()
        # Keys that must wait (a channel's bucket is empty, a 429 paused it) are left out of the read.
        waits = {key: ready_in for key in [*self._buckets, *self._paused] if (ready_in := self._ready_in(key)) > 0}
        with self.db.begin() as s:
            # Kinds paced per channel have "post:<channel>" keys; every other kind is paced per method ("method:<kind>").
            channel_kinds = [kind for kind, d in REGISTRY.items() if d.lane == "channel"]
            rows = queue.due(s, now, limit=PAGE, channel_kinds=channel_kinds,
                             held_channels={k.removeprefix("post:") for k in waits if k.startswith("post:")},
                             held_kinds={k.removeprefix("method:") for k in waits if k.startswith("method:")})
            upcoming = s.query(OutboxMessage.next_attempt_at).filter(
                OutboxMessage.status == "pending", OutboxMessage.next_attempt_at > now
            ).order_by(OutboxMessage.next_attempt_at).limit(1).scalar()
        wait = min([self.poll_seconds, *waits.values()])
        if upcoming is not None:
            wait = min(wait, max(0.0, (upcoming - now).total_seconds()))
        held: set[str] = set()  # keep each channel's order: once one row waits, the rest of it waits too
        for row_id, kind, channel in rows:
            key = self._pace_key(kind, channel)
            if key in held:
                continue
            ready_in = self._ready_in(key)
            if ready_in > 0:
                held.add(key)
                wait = min(wait, ready_in)
                continue
            with self.db.begin() as s:
                if not queue.lease(s, row_id, self.now()):
                    continue
            self._deliver(row_id, key, kind)
            if key in self._paused:  # a 429 just paused this key
                held.add(key)
        if len(rows) >= PAGE:  # more may be due behind this page
            wait = 0.0
        return wait

    def _pace_key(self, kind: str, channel: str | None) -> str:
        delivery = REGISTRY.get(kind)
        return delivery.lane_of(channel) if delivery is not None else f"method:{kind}"

    def _ready_in(self, key: str) -> float:
        now = self.monotonic()
        paused = self._paused.get(key, 0.0) - now
        if paused > 0:
            return paused
        self._paused.pop(key, None)
        if not key.startswith("post:"):
            return 0.0
        # One token of the burst is kept back as slack, so that jitter on the way to Slack
        # does not make two messages arrive closer together than Slack's own bucket allows.
        burst = max(1, self.settings.OUTBOX_CHANNEL_BURST - 1)
        bucket = self._buckets.setdefault(key, TokenBucket(self.settings.OUTBOX_CHANNEL_RATE, burst))
        return bucket.wait_time(now)

    # Delivery ---------------------------------------------------------------
    def _deliver(self, row_id: int, key: str, kind: str) -> None:
        try:
            outcome = self._send_or_join(row_id, key)
        except SlackApiError as exc:
            outcome = self._classify(exc)
            if outcome.state == "retry" and exc.response.status_code == 429:
                self._paused[key] = self.monotonic() + outcome.delay
        except (urllib.error.URLError, http.client.HTTPException, OSError, TimeoutError) as exc:
            outcome = Outcome("retry", error=f"connection: {exc}")
        except SlackRequestError as exc:
            if not str(exc).startswith("Failed to upload a file"):  # a request that cannot be made: the row
                outcome = Outcome("render", error=f"{type(exc).__name__}: {_one_line(exc)}", exc=exc)
            else:  # the upload URL answered an error: a new try asks for a new URL
                outcome = Outcome("retry", error=f"upload: {_one_line(exc)}")
        except (OperationalError, InterfaceError, PoolTimeout) as exc:  # the database, not the row
            outcome = Outcome("retry", error=f"database: {_one_line(getattr(exc, 'orig', None) or exc)}")
        except Exception as exc:  # the row's message cannot be built; it must not stop the other rows
            outcome = Outcome("render", error=f"{type(exc).__name__}: {_one_line(exc)}", exc=exc)
        self._settle(row_id, kind, outcome)

    def _send_or_join(self, row_id: int, key: str) -> Outcome:
        """Send the row; when Slack answers that Handoff is not in a public channel, join it and send the row
        again at once (once). Any other refusal is raised for `_deliver` to classify."""
        try:
            return self._send(row_id, key)
        except SlackApiError as exc:
            channel = refused_channel(exc)
            if _slack_error(exc) != "not_in_channel" or not channel or channel[0] not in "CG":
                raise
            cannot = self._join(channel)
            if cannot is not None:
                return cannot
        return self._send(row_id, key)

    def _join(self, channel: str) -> Outcome | None:
        """Join a public channel (conversations.join); None once in it, else what the row should do."""
        if channel.startswith("G"):  # a private channel: only an invitation lets Handoff in
            return self._cannot_join(channel, "fix.private_not_in")
        try:
            self.client.conversations_join(channel=channel)
        except SlackApiError as exc:
            error = _slack_error(exc)
            if error in ("method_not_supported_for_channel_type", "channel_not_found"):
                return self._cannot_join(channel, "fix.private_not_in")
            if error == "missing_scope":
                return self._cannot_join(channel, "fix.no_join_scope")
            return self._classify(exc)  # archived, rate limited, Slack down: as for any call
        log.info("joined the public channel %s to post there", channel)
        return None

    def _cannot_join(self, channel: str, fix: str) -> Outcome:
        """Not in the channel and joining cannot help: retried slowly as a setup error, naming the fix."""
        return Outcome("setup", error=f"not_in_channel: {t(fix, self.settings.LANGUAGE, channel=channel)}")

    def _settle(self, row_id: int, kind: str, outcome: Outcome) -> None:
        now = self.now()
        with self.db.begin() as s:
            row = s.get(OutboxMessage, row_id)
            if row is None:  # deleted meanwhile (only ever by hand)
                return
            if outcome.state == "sent":
                queue.mark_sent(s, row_id, now, outcome.ts, outcome.error, outcome.channel, outcome.detail)
                delivery = REGISTRY.get(kind)
                if delivery is not None and delivery.on_sent is not None:
                    delivery.on_sent(s, row, outcome, now)
                return
            if outcome.state == "defer":
                queue.retry_later(s, row_id, now + timedelta(seconds=outcome.delay), outcome.error,
                                  count_attempt=False)
                return
            error = (outcome.error or "failed")[:MAX_ERROR]
            if outcome.state == "render":
                error = f"render: {error}"[:MAX_ERROR]
                if row.attempts + 1 >= RENDER_ATTEMPTS:
                    log.error("outbox row %s (%s) failed for good: its message could not be built after %d "
                              "attempts: %s", row_id, kind, row.attempts + 1, error, exc_info=outcome.exc)
                    queue.mark_failed(s, row_id, error)
                    return
                delay = self._backoff(row.attempts, cap=MAX_BACKOFF)
                log.debug("outbox row %s (%s) could not be built, retry in %.1f s: %s", row_id, kind, delay, error)
                queue.retry_later(s, row_id, now + timedelta(seconds=delay), error)
                return
            if outcome.state == "failed" or (outcome.state == "setup" and now - row.created_at > SETUP_GIVE_UP):
                log.error("outbox row %s (%s) failed for good: %s", row_id, kind, error)
                queue.mark_failed(s, row_id, error)
                return
            delay = outcome.delay or self._backoff(row.attempts, cap=SETUP_BACKOFF if outcome.state == "setup"
                                                   else MAX_BACKOFF)
            level = logging.ERROR if outcome.state == "setup" else logging.WARNING
            log.log(level, "outbox row %s (%s) will be retried in %.1f s: %s", row_id, kind, delay, error)
            queue.retry_later(s, row_id, now + timedelta(seconds=delay), error,
                              count_attempt=outcome.error != "ratelimited")

    def _backoff(self, attempts: int, cap: float) -> float:
        return min(cap, self.backoff_base * 2.0 ** min(attempts, 16)) * random.uniform(0.75, 1.0)

    def _classify(self, exc: SlackApiError) -> Outcome:
        resp = exc.response
        status = resp.status_code
        data = resp.data if isinstance(resp.data, dict) else {}
        error = data.get("error")
        if status == 429 or error == "ratelimited":
            headers = {k.lower(): v for k, v in (resp.headers or {}).items()}
            retry_after = headers.get("retry-after")
            if isinstance(retry_after, list):
                retry_after = retry_after[0]
            try:
                delay = max(0.0, float(retry_after))
            except (TypeError, ValueError):
                delay = 1.0
            return Outcome("retry", delay=delay or 0.01, error="ratelimited")
        if status >= 500 or error in TRANSIENT_ERRORS:
            return Outcome("retry", error=f"HTTP {status}: {error}")
        if error in SETUP_ERRORS:
            return Outcome("setup", error=error)
        # Slack says why, for invalid_blocks and invalid_arguments: "[ERROR] … [json-pointer:/blocks/2/…]".
        why = (data.get("response_metadata") or {}).get("messages") or data.get("errors") or []
        detail = "; ".join(str(m) for m in why[:3]) if isinstance(why, list) else str(why)
        channel = refused_channel(exc) if error in ("channel_not_found", "invalid_channel") else None
        if channel and channel[0] in "CG":  # deleted, mistyped, or private and Handoff not in it: say how to fix
            fix = t("fix.private_not_in" if channel[0] == "G" else "fix.not_found", self.settings.LANGUAGE,
                    channel=channel)
            detail = f"{detail}; {fix}" if detail else fix
        return Outcome("failed", error=f"HTTP {status}: {error}" + (f" ({detail})" if detail else ""))

    def _send(self, row_id: int, key: str) -> Outcome:
        """Read the row and what it refers to in one transaction, then hand it to its kind's delivery."""
        with self.db.begin() as s:
            row = s.get(OutboxMessage, row_id)
            delivery: Delivery | None = REGISTRY.get(row.kind)
            if delivery is None:
                return Outcome("failed", error=f"unknown kind {row.kind}")
            payload = delivery.read(row.payload)
            # Ask whether the card is still on its way *before* reading the lead: the post settles
            # (status and card_ts) in one commit, and under READ COMMITTED each statement sees the
            # latest commit, so the other order could see neither the ts nor the pending post.
            post_due = (queue.card_post_due(s, row.lead_id)
                        if row.lead_id is not None and delivery.waits_for_card(payload) else None)
            lead = s.get(Lead, row.lead_id) if row.lead_id else None
            if lead is not None:
                s.expunge(lead)
            # Wait for a pending card post no longer than until it is next tried (it may be backing off);
            # a post that failed for good is not waited for.
            card_wait = None if post_due is None else max(0.5, (post_due - self.now()).total_seconds())
            msg = Message(id=row.id, kind=row.kind, channel=row.channel, lead_id=row.lead_id, lead=lead,
                          payload=payload, created_at=row.created_at, card_wait=card_wait)
        ctx = Context(client=self.client, settings=self.settings, db=self.db, now=self.now,
                      take=lambda: self._take(key), workspace_url=self.workspace_url)
        return delivery.deliver(ctx, msg)

    def workspace_url(self) -> str | None:
        """The workspace's address (auth.test's `url`), asked once per process; None while Slack cannot say."""
        if self._workspace_url is None:
            try:
                self._workspace_url = self.client.auth_test().get("url") or ""
            except (SlackApiError, SlackRequestError, urllib.error.URLError, OSError) as exc:
                log.warning("auth.test failed, so this card is posted without a link: %s", _one_line(exc))
                return None
        return self._workspace_url or None

    def _take(self, key: str) -> None:
        if key in self._buckets:
            self._buckets[key].take(self.monotonic())


def refused_channel(exc: SlackApiError) -> str | None:
    """The channel of the call Slack refused: `channel` of chat.*, `channel_id` of files.completeUploadExternal."""
    args = getattr(exc.response, "req_args", None) or {}
    for part in ("json", "params", "data"):
        values = args.get(part)
        if isinstance(values, dict):
            channel = values.get("channel") or values.get("channel_id")
            if isinstance(channel, str) and channel:
                return channel
    return None


def _slack_error(exc: SlackApiError) -> str | None:
    return exc.response.data.get("error") if isinstance(exc.response.data, dict) else None


def _one_line(exc) -> str:
    text = " ".join(str(exc).split())
    return text[:MAX_ERROR]
