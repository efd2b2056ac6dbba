"""A local Socket Mode server: Slack's side of Socket Mode, for the tests.

Attach it to the Web API stand-in (`slack.socket_mode = server`, standin/server.py): `apps.connections.open`
there hands out this server's WebSocket URLs. The app connects, gets `hello`, and is sent envelopes that it
must acknowledge; the tests send envelopes with `send` and read how and when each was acknowledged.

The rules it holds a client to, learnt from Slack's Socket Mode pages (api.slack.com/apis/socket-mode and
/apis/connections/socket-implement) and from the official Python client (slack_sdk.socket_mode: the builtin
client, `SocketModeRequest`, `SocketModeResponse`, and the SDK's own test server):
- A URL comes only from `apps.connections.open`, called with the app-level token (`xapp-…`). A bot or user
  token is `not_allowed_token_type`, an app-level token of another app (or a revoked one) `invalid_auth`, no
  token `not_authed` (the Web API stand-in answers that before asking here). An app-level token opens
  connections and nothing else: any other method called with it is `not_allowed_token_type`.
- The URL carries a one-time ticket (`wss://…/link/?ticket=…&app_id=…`): it opens one connection, and only
  for a short while (`ticket_seconds`). A used, unknown or expired ticket is refused at the handshake (here
  with HTTP 401; `refused` says why), so the client must ask `apps.connections.open` again.
- On connect Slack sends `{"type": "hello", "num_connections", "debug_info": {…}, "connection_info":
  {"app_id"}}`. An app may hold up to 10 connections; Slack spreads envelopes over them. One more is told
  `disconnect` with reason `too_many_websockets` and closed.
- An envelope is `{"envelope_id", "type", "payload", "accepts_response_payload"}`; `events_api` envelopes also
  carry `retry_attempt` and `retry_reason` (0 and "" the first time). Types: `events_api` (the Events API
  body), `slash_commands` (the command's fields as an object), `interactive` (the interaction payload).
- The acknowledgement is a text frame `{"envelope_id": …}`, within 3 seconds (`ack_seconds`). It may carry a
  `payload` only when the envelope said `accepts_response_payload`: slash commands (the message shown to the
  person who typed it: text and/or valid blocks), view submissions (a `response_action`) and options
  requests. An ack that is not JSON, names no or an unknown envelope, comes twice, or carries a payload that is
  not accepted is recorded as a problem: Slack would ignore it.
- An `events_api` envelope not acknowledged in time is sent again as a new envelope with `retry_attempt` one
  higher and `retry_reason` "timeout", up to three retries (Slack: at once, after a minute, after five
  minutes; `retry_delays`). An interaction or command acknowledged late is not retried: the person saw an
  error, and a payload that came late is never shown (`Ack.late`).
- Connections are refreshed: Slack sends `{"type": "disconnect", "reason": "refresh_requested"|"warning",
  "debug_info": {…}}`, sends nothing more on that connection, and closes it a little later (`refresh`). The
  client is expected to open a new connection at once. `drop` closes connections with no warning.

What it records: `connections` (each with its ticket, when it opened and closed, any disconnect sent),
`envelopes` (each with its `ack`: when it came, how many seconds after sending, what it carried),
`problems` (what the client sent that Slack would not use) and `refused` (handshakes refused).
"""
from __future__ import annotations

import asyncio
import hmac
import itertools
import json
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import WSMsgType, web

from standin.server import MESSAGE_BLOCKS, BlockError, check_blocks

ACK_SECONDS = 3.0  # Slack waits this long for an acknowledgement
RETRY_DELAYS = (0.0, 60.0, 300.0)  # Events API retries: at once, after a minute, after five minutes
MAX_CONNECTIONS = 10  # per app
TICKET_SECONDS = 30.0  # how long a URL from apps.connections.open may wait to be used
CLOSE_AFTER_DISCONNECT = 10.0  # "warning": the connection closes in about ten seconds
CONNECTION_SECONDS = 18060  # what hello says a connection lasts (as Slack's hello in the SDK's test server)
ENVELOPE_TYPES = ("events_api", "slash_commands", "interactive")
INTERACTIVE_WITH_PAYLOAD = frozenset({"view_submission", "block_suggestion"})
RESPONSE_ACTIONS = frozenset({"errors", "update", "push", "clear"})


class NoConnection(Exception):
    """No open connection took the envelope in time."""


@dataclass
class Ack:
    at: float  # time.monotonic() when it arrived
    seconds: float  # after the envelope was sent
    late: bool  # after ack_seconds: Slack had given up on it
    payload: dict | None
    problem: str | None  # why Slack would not use its payload, else None
    connection: int

    @property
    def shown(self) -> bool:
        """Whether Slack would use the payload (show the message, apply the response_action)."""
        return self.payload is not None and self.problem is None and not self.late


@dataclass
class Envelope:
    envelope_id: str
    type: str
    payload: dict
    accepts_response_payload: bool
    retry_attempt: int | None = None  # events_api only
    retry_reason: str | None = None
    sent_at: float | None = None
    connection: int | None = None
    ack: Ack | None = None
    timed_out: bool = False  # no ack within ack_seconds
    retry: Envelope | None = field(default=None, repr=False)  # the envelope Slack sent again, if it did

    def message(self) -> dict:
        body = {"envelope_id": self.envelope_id, "type": self.type, "payload": self.payload,
                "accepts_response_payload": self.accepts_response_payload}
        if self.type == "events_api":
            body.update(retry_attempt=self.retry_attempt or 0, retry_reason=self.retry_reason or "")
        return body


@dataclass
class Connection:
    id: int
    ticket: str
    opened_at: float
    closed_at: float | None = None
    disconnect_reason: str | None = None  # the disconnect message Slack sent on it, if any
    ws: web.WebSocketResponse | None = field(default=None, repr=False)

    @property
    def taking(self) -> bool:
        """Open, and not told to go away: Slack sends envelopes here."""
        return self.closed_at is None and self.disconnect_reason is None


def _payload_problem(env: Envelope, payload: Any) -> str | None:
    """Why Slack would not use an acknowledgement's payload, or None."""
    if not env.accepts_response_payload:
        return f"{env.type} envelopes take no response payload"
    if not isinstance(payload, dict):
        return "the payload is not an object"
    if env.type == "slash_commands":
        if payload.get("response_type") not in (None, "ephemeral", "in_channel"):
            return "response_type must be ephemeral or in_channel"
        blocks = payload.get("blocks")
        if not payload.get("text") and not blocks:
            return "no_text"
        if blocks is not None:
            try:
                check_blocks(blocks, MESSAGE_BLOCKS)
            except BlockError as problem:
                return f"invalid_blocks: {problem}"
        return None
    kind = env.payload.get("type")
    if kind == "view_submission":
        action = payload.get("response_action")
        if action not in RESPONSE_ACTIONS:
            return "response_action must be errors, update, push or clear"
        if action == "errors" and not (isinstance(payload.get("errors"), dict) and payload["errors"]):
            return "response_action errors needs an errors object"
        if action in ("update", "push") and not isinstance(payload.get("view"), dict):
            return f"response_action {action} needs a view"
        return None
    if kind == "block_suggestion" and not isinstance(payload.get("options", payload.get("option_groups")), list):
        return "an options response needs options or option_groups"
    return None


class SocketModeStandIn:
    """Slack's Socket Mode endpoint on a local port, in a thread with its own event loop."""

    def __init__(self, app_token: str | None = None, app_id: str = "A0HANDOFF", host: str = "127.0.0.1",
                 port: int = 0, ack_seconds: float = ACK_SECONDS, retry_delays: tuple[float, ...] = RETRY_DELAYS,
                 ticket_seconds: float = TICKET_SECONDS, close_after: float = CLOSE_AFTER_DISCONNECT):
        self.app_id = app_id
        self.app_token = app_token or f"xapp-1-{app_id}-{int(time.time())}-{secrets.token_hex(32)}"
        self.ack_seconds, self.retry_delays = ack_seconds, tuple(retry_delays)
        self.ticket_seconds, self.close_after = ticket_seconds, close_after
        self.connections: list[Connection] = []
        self.envelopes: list[Envelope] = []
        self.problems: list[str] = []
        self.refused: list[str] = []  # why a handshake was refused
        self._tickets: dict[str, float] = {}  # ticket -> when it expires (monotonic)
        self._by_id: dict[str, Envelope] = {}
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._ids = itertools.count(1)
        self._turn = itertools.count()
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self._sock.listen(64)
        self.host, self.port = self._sock.getsockname()[:2]
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._connected: asyncio.Event | None = None  # set whenever a connection got its hello

    # Running -------------------------------------------------------------------------------------------
    def start(self) -> Self:
        if self._thread is not None:
            return self
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run():
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self._serve())
            ready.set()
            self._loop.run_forever()
            self._loop.run_until_complete(self._runner.cleanup())
            self._loop.close()

        self._thread = threading.Thread(target=run, name="socket-mode-standin", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    async def _serve(self) -> None:
        self._connected = asyncio.Event()
        app = web.Application()
        app.router.add_get("/link/", self._link)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.SockSite(self._runner, self._sock).start()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        try:
            self._call(self._close_all(None, 1001), timeout=5)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            thread.join(10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _call(self, coro, timeout: float):
        """Run a coroutine on the server's loop from another thread and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    # apps.connections.open (called by the Web API stand-in) ----------------------------------------------
    def open_connection(self, token: str) -> dict:
        """What `apps.connections.open` answers for this token: a fresh one-time URL, or Slack's error."""
        if not token.startswith("xapp-"):
            return {"ok": False, "error": "not_allowed_token_type"}
        if not hmac.compare_digest(token.encode(), self.app_token.encode()):
            return {"ok": False, "error": "invalid_auth"}
        ticket = str(uuid.uuid4())
        with self._lock:
            self._tickets[ticket] = time.monotonic() + self.ticket_seconds
        return {"ok": True, "url": f"ws://{self.host}:{self.port}/link/?ticket={ticket}&app_id={self.app_id}"}

    # The WebSocket -------------------------------------------------------------------------------------
    async def _link(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        with self._lock:
            expires = self._tickets.pop(ticket, None)
        why = None
        if expires is None:
            why = "a ticket that was never issued or was used already"
        elif expires < time.monotonic():
            why = "an expired ticket"
        elif request.query.get("app_id") != self.app_id:
            why = "a URL for another app"
        ws = web.WebSocketResponse(autoping=True)
        if why is None and not ws.can_prepare(request).ok:
            why = "not a WebSocket handshake"
        if why is not None:
            with self._cond:
                self.refused.append(why)
                self._cond.notify_all()
            return web.Response(status=401, text=why)
        await ws.prepare(request)
        with self._cond:
            conn = Connection(next(self._ids), ticket, time.monotonic(), ws=ws)
            taking = [c for c in self.connections if c.taking]
            self.connections.append(conn)
        if len(taking) >= MAX_CONNECTIONS:
            await self._send_disconnect(conn, "too_many_websockets")
            await ws.close()
        else:
            await ws.send_str(json.dumps({
                "type": "hello", "num_connections": len(taking) + 1,
                "debug_info": {"host": "applink-standin", "build_number": 1,
                               "approximate_connection_time": CONNECTION_SECONDS},
                "connection_info": {"app_id": self.app_id}}))
            self._connected.set()
            with self._cond:
                self._cond.notify_all()
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._received(conn, msg.data)
                elif msg.type == WSMsgType.BINARY:
                    self._problem("a binary frame (Slack reads text frames only)")
        with self._cond:
            conn.closed_at = time.monotonic()
            self._cond.notify_all()
        return ws

    def _problem(self, text: str) -> None:
        with self._cond:
            self.problems.append(text)
            self._cond.notify_all()

    def _received(self, conn: Connection, data: str) -> None:
        """An acknowledgement, as the client sent it."""
        now = time.monotonic()
        try:
            message = json.loads(data)
        except ValueError:
            self._problem(f"not JSON: {data[:100]!r}")
            return
        if not isinstance(message, dict) or not isinstance(message.get("envelope_id"), str):
            self._problem(f"no envelope_id: {data[:100]!r}")
            return
        with self._cond:
            env = self._by_id.get(message["envelope_id"])
            if env is None:
                self.problems.append(f"an ack for an unknown envelope {message['envelope_id']!r}")
            elif env.ack is not None:
                self.problems.append(f"a second ack for envelope {env.envelope_id}")
            else:
                payload = message.get("payload")
                seconds = now - env.sent_at
                env.ack = Ack(at=now, seconds=seconds, late=seconds > self.ack_seconds, payload=payload,
                              problem=None if payload is None else _payload_problem(env, payload),
                              connection=conn.id)
            self._cond.notify_all()

    # Envelopes -----------------------------------------------------------------------------------------
    def send(self, kind: str, payload: dict, *, accepts_response_payload: bool | None = None,
             retry_attempt: int = 0, retry_reason: str = "", wait: float = 10.0) -> Envelope:
        """Send an envelope on an open connection (waiting up to `wait` seconds for one); it is written
        when this returns. `accepts_response_payload` defaults to what Slack says for the type."""
        if kind not in ENVELOPE_TYPES:
            raise ValueError(f"envelope type {kind!r}: one of {', '.join(ENVELOPE_TYPES)}")
        if accepts_response_payload is None:
            accepts_response_payload = (kind == "slash_commands" or
                                        (kind == "interactive" and payload.get("type") in INTERACTIVE_WITH_PAYLOAD))
        event = kind == "events_api"
        env = Envelope(str(uuid.uuid4()), kind, payload, accepts_response_payload,
                       retry_attempt if event else None, retry_reason if event else None)
        self._call(self._deliver(env, wait), timeout=wait + 5)
        return env

    def event(self, body: dict, **kw) -> Envelope:
        """An Events API body (`type: event_callback`)."""
        return self.send("events_api", body, **kw)

    def command(self, fields: dict, **kw) -> Envelope:
        """A slash command's fields (what HTTP mode gets as a form)."""
        return self.send("slash_commands", fields, **kw)

    def interaction(self, payload: dict, **kw) -> Envelope:
        """An interaction payload (what HTTP mode gets as the `payload` form field)."""
        return self.send("interactive", payload, **kw)

    async def _deliver(self, env: Envelope, wait: float) -> None:
        deadline = self._loop.time() + wait
        while True:
            with self._lock:
                taking = [c for c in self.connections if c.taking and c.ws is not None and not c.ws.closed]
                conn = taking[next(self._turn) % len(taking)] if taking else None
                if conn is not None:  # registered before it is written: the ack may come at once
                    env.sent_at, env.connection = time.monotonic(), conn.id
                    self.envelopes.append(env)
                    self._by_id[env.envelope_id] = env
            if conn is not None:
                try:
                    await conn.ws.send_str(json.dumps(env.message()))
                    with self._cond:
                        self._cond.notify_all()
                    break
                except (ConnectionError, RuntimeError):  # it closed meanwhile: Slack uses another
                    with self._lock:
                        self.envelopes.remove(env)
                        del self._by_id[env.envelope_id]
                    continue
            left = deadline - self._loop.time()
            if left <= 0:
                raise NoConnection(f"no open Socket Mode connection took envelope {env.envelope_id}")
            self._connected.clear()
            try:
                await asyncio.wait_for(self._connected.wait(), left)
            except TimeoutError:
                pass
        self._loop.call_later(self.ack_seconds, self._deadline, env)

    def _deadline(self, env: Envelope) -> None:
        """ack_seconds after sending: an event not acknowledged is sent again (Events API retries)."""
        with self._cond:
            if env.ack is not None:
                return
            env.timed_out = True
            self._cond.notify_all()
        attempt = env.retry_attempt or 0
        if env.type != "events_api" or attempt >= len(self.retry_delays):
            return
        again = Envelope(str(uuid.uuid4()), env.type, env.payload, env.accepts_response_payload, attempt + 1,
                         "timeout")
        env.retry = again
        self._loop.call_later(self.retry_delays[attempt],
                              lambda: self._loop.create_task(self._retry(again)))

    async def _retry(self, env: Envelope) -> None:
        try:
            await self._deliver(env, wait=self.ack_seconds)
        except NoConnection as exc:  # nobody connected: one more failed attempt
            self._problem(str(exc))
            self._deadline(env)

    # Waiting and reading -------------------------------------------------------------------------------
    def _wait_until(self, condition: Callable[[], Any], timeout: float):
        deadline = time.monotonic() + timeout
        with self._cond:
            while not (value := condition()):
                left = deadline - time.monotonic()
                if left <= 0:
                    return value
                self._cond.wait(left)
            return value

    def wait_ack(self, env: Envelope, timeout: float = 10.0) -> Ack | None:
        """The envelope's acknowledgement, once it came (None if none within `timeout` seconds)."""
        return self._wait_until(lambda: env.ack, timeout)

    def wait_retry(self, env: Envelope, timeout: float = 10.0) -> Envelope | None:
        """The envelope Slack sent again because `env` was not acknowledged in time, once it was sent."""
        return self._wait_until(lambda: env.retry if env.retry is not None and env.retry.sent_at else None,
                                timeout)

    def wait_connections(self, count: int, timeout: float = 10.0) -> list[Connection]:
        """Every connection opened so far, once at least `count` were (fewer if the timeout passed)."""
        self._wait_until(lambda: len(self.connections) >= count, timeout)
        return list(self.connections)

    def wait_closed(self, conn: Connection, timeout: float = 10.0) -> bool:
        return bool(self._wait_until(lambda: conn.closed_at is not None, timeout))

    def open_connections(self) -> list[Connection]:
        """The connections envelopes go to now."""
        with self._lock:
            return [c for c in self.connections if c.taking]

    # Refreshing and dropping ---------------------------------------------------------------------------
    def refresh(self, reason: str = "refresh_requested", close_after: float | None = None) -> list[Connection]:
        """Tell every open connection `disconnect` (`refresh_requested` or `warning`): nothing more is sent on
        them, and they are closed `close_after` seconds later if the client has not closed them first."""
        if reason not in ("refresh_requested", "warning"):
            raise ValueError(f"disconnect reason {reason!r}: refresh_requested or warning")
        return self._call(self._refresh(reason, self.close_after if close_after is None else close_after), 10)

    async def _refresh(self, reason: str, close_after: float) -> list[Connection]:
        told = self.open_connections()
        for conn in told:
            await self._send_disconnect(conn, reason)
        if told:
            self._loop.call_later(close_after, lambda: self._loop.create_task(self._close_all(told, 1000)))
        return told

    async def _send_disconnect(self, conn: Connection, reason: str) -> None:
        with self._cond:
            conn.disconnect_reason = reason
            self._cond.notify_all()
        try:
            await conn.ws.send_str(json.dumps({"type": "disconnect", "reason": reason,
                                               "debug_info": {"host": "applink-standin"}}))
        except (ConnectionError, RuntimeError):
            pass

    def drop(self) -> list[Connection]:
        """Close every open connection at once, with no disconnect message first."""
        return self._call(self._close_all(self.open_connections(), 1001), 10)

    async def _close_all(self, conns: list[Connection] | None, code: int) -> list[Connection]:
        for conn in list(self.connections) if conns is None else conns:
            if conn.ws is not None and not conn.ws.closed:
                await conn.ws.close(code=code)
        return conns or []
