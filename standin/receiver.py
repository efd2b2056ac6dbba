"""A local stand-in for a customer's webhook endpoint, receiving Handoff's signed lead events.

Handoff sends every lead state change as a Standard Webhooks request (https://www.standardwebhooks.com):
a POST with a JSON body `{"type": ..., "timestamp": ..., "data": {...}}` and the headers `webhook-id`,
`webhook-timestamp` (integer Unix seconds) and `webhook-signature` (`v1,<base64 HMAC-SHA256>` of
`{id}.{timestamp}.{body bytes}`, keyed with the base64-decoded part of the `whsec_...` secret; several
space-delimited signatures while a secret rotates). Point the endpoint URL at `url`.

Every request is verified with the official `standardwebhooks` library, as a customer would, and
refused when it fails: a refused request is in `rejected` (with its reason) and never in `deliveries`.
The library tolerates a `webhook-timestamp` at most 5 minutes off the receiver's clock, either way,
and accepts the request when any one of the signatures matches. Beyond the library the stand-in also
refuses what a careful customer's endpoint would (the reason strings start with these words):

  405  `method`            anything but POST
  400  `bad framing`       a Content-Length that is not a number, a Transfer-Encoding but chunked,
                           a body cut short (the connection is closed after the answer)
  400  `content type`      not `application/json` (a charset other than UTF-8 too)
  400  `duplicate header`  webhook-id, webhook-timestamp or webhook-signature sent twice
  400  `missing headers`   webhook-id, webhook-timestamp or webhook-signature absent or empty
  400  `invalid timestamp` webhook-timestamp not a number (library), or not integer seconds (stricter)
  400  `timestamp too old` / `timestamp too new`: beyond the library's 5 minutes
  401  `bad signature`     no `v1,` signature matches (wrong secret, body or id or timestamp changed)
  400  `bad webhook-id`    a `.` in the id (the spec forbids it: it is the signed content's delimiter)
  400  `not json`          the body is not UTF-8 JSON (NaN and Infinity, which Python emits, refused)
  400  `not an event`      not an object with a non-empty string `type`, a string `timestamp` in
                           ISO 8601 and an object `data`

A verified request is answered 200 `{"ok":true}` and recorded as a `Delivery`, in arrival order,
duplicates included: `events()` keeps the first of each webhook-id, as a receiver that drops
duplicates does. It can be told to misbehave: `fail_next` (503, 429 with Retry-After, ...),
`answer_always`, `down` (connections closed without an answer), `close_port` (connections refused),
`slow_down` (to meet a sender's timeout). Faults apply to verified requests only, so that a signing
mistake always shows up in `rejected`; a fault answered with a 2xx status still counts as delivered.

HTTP/1.1 with keep-alive: every answer has a Content-Length (but a 204, which may not), and the body is
always read to its end, so one connection carries any number of requests. `connections` counts the
connections opened; `Attempt.connection` says which one carried a request.

`python -m standin.receiver --port 8097 --secret whsec_...` serves on its own, prints its url, then
one line per delivery; GET /_deliveries answers what was recorded, for a test in another process.
"""
from __future__ import annotations

import base64
import itertools
import json
import math
import os
import re
import socket
import socketserver
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler

from standardwebhooks import Webhook, WebhookVerificationError

from standin.base import LocalServer, QuietServer

TOLERANCE_SECONDS = 5 * 60  # what standardwebhooks' verify allows either way (hard-coded in the library)
BAD_REQUEST, BAD_SIGNATURE, NOT_ALLOWED = 400, 401, 405
SIGNED_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
OK_BODY = b'{"ok":true}'
POLL_SECONDS = 0.05  # how soon serve_forever notices stop() or close_port() (the library's 0.5 s would slow tests)
CONTROL_PATH = "/_deliveries"
_INTEGER = re.compile(r"[0-9]+")


@dataclass
class Delivery:
    """A verified request answered 2xx: what the customer's endpoint processed."""
    id: str  # webhook-id
    timestamp: int  # webhook-timestamp
    type: str
    body: dict  # the parsed JSON
    raw: bytes
    headers: dict  # lower-cased names
    path: str
    at: float = field(default_factory=time.monotonic)  # when it arrived
    status: int = 200
    connection: int = 0  # which connection carried it (1, 2, ... since start)


@dataclass
class Attempt:
    """Any request received, verified or not, with what it was answered."""
    method: str
    path: str
    headers: dict  # lower-cased names
    raw: bytes
    status: int | None  # None: the connection was closed without an answer (`down`)
    reason: str | None  # why it was not delivered: a rejection, `fail_next`, `answer_always`, `down`
    id: str | None = None  # webhook-id, when there was one
    at: float = field(default_factory=time.monotonic)
    connection: int = 0

    @property
    def delivered(self) -> bool:
        return self.reason is None


class _Rejected(Exception):
    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


class _Server(QuietServer):
    allow_reuse_address = True  # SO_REUSEADDR: close_port/reopen_port rebind the same port at once
    request_queue_size = 128  # the default backlog of 5 drops a burst of new connections from a pooled sender


def _retry_after(value) -> str:
    """Retry-After as sent: a number becomes whole seconds (rounded up), a string (an HTTP date) is kept."""
    if isinstance(value, str):
        return value
    return str(max(0, math.ceil(value)))


def _lead_id(data) -> str:
    if not isinstance(data, dict):
        return "-"
    lead = data.get("lead")
    for value in (data.get("lead_id"), lead.get("id") if isinstance(lead, dict) else lead, data.get("id")):
        if value is not None and not isinstance(value, dict):
            return str(value)
    return "-"


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


class WebhookReceiver(LocalServer):
    thread_name = "webhook-receiver"
    poll_seconds = POLL_SECONDS

    def __init__(self, secret: str, host: str = "127.0.0.1", port: int = 0, *, on_delivery=None, on_reject=None):
        self.webhook = Webhook(secret)
        self.deliveries: list[Delivery] = []
        self.rejected: list[Attempt] = []
        self.attempts: list[Attempt] = []
        self.on_delivery, self.on_reject = on_delivery, on_reject
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._faults: list[tuple[int, object]] = []  # (status, retry_after) for the next verified requests
        self._always: int | None = None
        self._slow = 0.0
        self._generation = 0  # bumped by reset(): a request that arrived before it is not recorded after it
        self._down = False
        self._port_closed = False
        self._serial = itertools.count(1)
        self._opened = 0  # connections opened since start or reset
        self._open: dict[socket.socket, int] = {}  # live connections -> serial
        self.server = _Server((host, port), self._handler())
        self._thread: threading.Thread | None = None

    # Life cycle -------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/hooks"

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def stop(self) -> None:
        super().stop()
        self._drop_connections()

    def _drop_connections(self, wait: float = 1.0) -> None:
        """Shut the open connections and wait (at most `wait`) for their threads to let go of them."""
        with self._lock:
            live = list(self._open)
        for sock in live:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes the handler thread waiting for the next request
            except OSError:
                pass
        deadline = time.monotonic() + wait
        with self._cond:  # a thread sleeping in slow_down lets go only when it wakes
            while any(sock in self._open for sock in live) and time.monotonic() < deadline:
                self._cond.wait(deadline - time.monotonic())

    @property
    def connections(self) -> int:
        """Connections opened since start (or reset)."""
        with self._lock:
            return self._opened

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._open)

    # Misbehaving ------------------------------------------------------------
    def set_secret(self, secret: str) -> None:
        """Verify with another secret from now on (the customer rotated theirs)."""
        self.webhook = Webhook(secret)

    def fail_next(self, times: int, status: int = 500, retry_after: float | str | None = None) -> None:
        """The next `times` verified requests answer `status` (with a Retry-After header when given)."""
        with self._lock:
            self._faults.extend([(status, retry_after)] * times)

    def answer_always(self, status: int | None) -> None:
        """Answer every verified request `status` until `answer_always(None)` (a 2xx still delivers)."""
        with self._lock:
            self._always = status

    def down(self) -> None:
        """Close every connection at once, without an answer, on its next request (the port stays open)."""
        with self._lock:
            self._down = True

    def up(self) -> None:
        """Answer again, after `down` or `close_port`."""
        with self._lock:
            self._down = False
        self.reopen_port()

    def close_port(self) -> None:
        """Stop listening and drop the open connections: the sender's connections are refused."""
        with self._lock:
            if self._port_closed:
                return
            self._port_closed = True
        self._stop_serving()
        self.server.socket.close()
        self._drop_connections()

    def reopen_port(self) -> None:
        """Listen again on the same port (SO_REUSEADDR), after `close_port`."""
        with self._lock:
            if not self._port_closed:
                return
            self._port_closed = False
        server = self.server
        server.socket = socket.socket(server.address_family, server.socket_type)
        socketserver.TCPServer.server_bind(server)  # not HTTPServer's: no reverse DNS look-up of the host
        server.server_activate()
        self.start()

    def slow_down(self, seconds: float) -> None:
        """Answer every request only after `seconds` (0 to stop); it is recorded when answered."""
        with self._lock:
            self._slow = max(0.0, seconds)

    def reset(self) -> None:
        """Forget what was received and every fault; listen again if the port was closed."""
        with self._lock:
            self.deliveries.clear()
            self.rejected.clear()
            self.attempts.clear()
            self._faults.clear()
            self._always = None
            self._slow = 0.0
            self._down = False
            self._opened = 0
            self._generation += 1
        self.reopen_port()

    # Reading what was received ----------------------------------------------
    def ids(self) -> list[str]:
        """The distinct webhook-ids delivered, in order of first arrival."""
        return [d.id for d in self.events()]

    def events(self) -> list[Delivery]:
        """The first delivery of each webhook-id: what a receiver that drops duplicates keeps."""
        seen: set[str] = set()
        kept = []
        with self._lock:
            for d in self.deliveries:
                if d.id not in seen:
                    seen.add(d.id)
                    kept.append(d)
        return kept

    def by_type(self, type_: str, distinct: bool = True) -> list[Delivery]:
        """Deliveries of one event type: of `events()`, or of every delivery when `distinct` is false."""
        if distinct:
            return [d for d in self.events() if d.type == type_]
        with self._lock:
            return [d for d in self.deliveries if d.type == type_]

    def wait_for(self, predicate, timeout: float = 10.0) -> bool:
        """Block until predicate(deliveries) is true or the timeout passes."""
        return self._wait_until(lambda: predicate(list(self.deliveries)), timeout)

    def wait_count(self, n: int, timeout: float = 10.0) -> list[Delivery]:
        """Wait until `n` distinct webhook-ids were delivered; returns `events()` (check its length)."""
        self.wait_for(lambda deliveries: len({d.id for d in deliveries}) >= n, timeout)
        return self.events()

    def summary(self) -> dict:
        """What was recorded, as JSON (GET /_deliveries)."""
        with self._lock:
            return {
                "deliveries": [{"id": d.id, "type": d.type, "timestamp": d.timestamp, "path": d.path,
                                "status": d.status, "body": d.body} for d in self.deliveries],
                "rejected": [{"id": a.id, "path": a.path, "status": a.status, "reason": a.reason}
                             for a in self.rejected],
                "attempts": [{"id": a.id, "status": a.status, "reason": a.reason} for a in self.attempts],
            }

    # Verifying --------------------------------------------------------------
    def _check(self, method: str, headers: dict, raw: bytes, counts: dict | None = None) -> tuple[str, int, dict]:
        """(webhook-id, timestamp, event) of a request that verifies; raises _Rejected otherwise.

        `headers` has lower-cased names; `counts` how many times each signed header was sent."""
        if method != "POST":
            raise _Rejected(NOT_ALLOWED, f"method {method} not allowed: POST only")
        ctype = headers.get("content-type", "")
        media, *params = [part.strip().lower() for part in ctype.split(";")]
        charset = next((p.split("=", 1)[1].strip('"') for p in params if p.startswith("charset=")), "utf-8")
        if media != "application/json" or charset not in ("utf-8", "utf8"):
            raise _Rejected(BAD_REQUEST, f"content type {ctype!r} is not application/json")
        for name in SIGNED_HEADERS:
            if (counts or {}).get(name, 0) > 1:
                raise _Rejected(BAD_REQUEST, f"duplicate header {name}")
        msg_id, stamp = headers.get("webhook-id"), headers.get("webhook-timestamp")
        try:
            self.webhook.verify(raw, headers, json_parse=False)
        except WebhookVerificationError as e:
            raise self._explained(str(e), headers) from None
        except Exception as e:  # the library should not raise anything else; a refusal all the same
            raise _Rejected(BAD_REQUEST, f"unverifiable: {type(e).__name__}: {e}") from None
        if not _INTEGER.fullmatch(stamp):
            raise _Rejected(BAD_REQUEST, f"invalid timestamp {stamp!r}: not integer Unix seconds")
        if "." in msg_id:
            raise _Rejected(BAD_REQUEST, f"bad webhook-id {msg_id!r}: contains '.'")
        try:
            body = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
        except UnicodeDecodeError:
            raise _Rejected(BAD_REQUEST, "not json: the body is not UTF-8") from None
        except ValueError as e:
            raise _Rejected(BAD_REQUEST, f"not json: {e}") from None
        problem = self._event_problem(body)
        if problem:
            raise _Rejected(BAD_REQUEST, f"not an event: {problem}")
        return msg_id, int(stamp), body

    @staticmethod
    def _explained(message: str, headers: dict) -> _Rejected:
        stamp = headers.get("webhook-timestamp")
        if message == "Missing required headers":
            missing = [name for name in SIGNED_HEADERS if not headers.get(name)]
            return _Rejected(BAD_REQUEST, "missing headers: " + ", ".join(missing))
        if message == "Invalid Signature Headers":
            return _Rejected(BAD_REQUEST, f"invalid timestamp {stamp!r}")
        if "too old" in message or "too new" in message:
            off = float(stamp) - time.time()
            word = "old" if "too old" in message else "new"
            return _Rejected(BAD_REQUEST, f"timestamp too {word}: {stamp} is {abs(off):.0f} s "
                                          f"{'before' if off < 0 else 'after'} now (tolerance {TOLERANCE_SECONDS} s)")
        if message == "No matching signature found":
            return _Rejected(BAD_SIGNATURE, "bad signature: no v1 signature matches")
        return _Rejected(BAD_REQUEST, f"unverifiable: {message}")

    @staticmethod
    def _event_problem(body) -> str | None:
        if not isinstance(body, dict):
            return f"a JSON {type(body).__name__}, not an object"
        if not isinstance(body.get("type"), str) or not body["type"]:
            return "no string `type`"
        if not isinstance(body.get("data"), dict):
            return "no object `data`"
        stamp = body.get("timestamp")
        if not isinstance(stamp, str):
            return "no string `timestamp`"
        try:
            datetime.fromisoformat(stamp)
        except ValueError:
            return f"`timestamp` {stamp!r} is not ISO 8601"
        return None

    # Answering --------------------------------------------------------------
    def _verdict(self) -> tuple[int, dict, str | None]:
        """(status, extra headers, why it is not delivered) for a verified request: its fault, if any."""
        with self._lock:
            if self._faults:
                status, retry_after = self._faults.pop(0)
                cause = "fail_next"
            elif self._always is not None:
                status, retry_after, cause = self._always, None, "answer_always"
            else:
                return 200, {}, None
        headers = {"Retry-After": _retry_after(retry_after)} if retry_after is not None else {}
        return status, headers, None if 200 <= status < 300 else f"{cause}: answered {status}"

    def _record(self, attempt: Attempt, delivery: Delivery | None, rejected: bool, generation: int) -> None:
        with self._cond:
            if generation != self._generation:  # arrived before a reset (a slow answer): not this test's
                return
            self.attempts.append(attempt)
            if delivery is not None:
                self.deliveries.append(delivery)
            if rejected:
                self.rejected.append(attempt)
            self._cond.notify_all()
        try:
            if delivery is not None and self.on_delivery is not None:
                self.on_delivery(delivery)
            if rejected and self.on_reject is not None:
                self.on_reject(attempt)
        except Exception as e:  # a callback's mistake must not cost the sender its answer
            print(f"receiver callback failed: {e!r}", file=sys.stderr)

    def _serve(self, h: BaseHTTPRequestHandler, method: str) -> None:
        arrived = time.monotonic()
        if method == "GET" and h.path.split("?")[0] == CONTROL_PATH:
            h.reply(200, json.dumps(self.summary()).encode(), {})
            return
        raw, framing = h.read_body()
        headers = {k.lower(): v for k, v in h.headers.items()}
        counts = {name: len(h.headers.get_all(name) or ()) for name in SIGNED_HEADERS}
        msg_id = headers.get("webhook-id") or None
        with self._lock:
            down, slow, generation = self._down, self._slow, self._generation
        if down:
            self._record(Attempt(method, h.path, headers, raw, None, "down: closed without an answer", msg_id,
                                 arrived, h.serial), None, False, generation)
            h.close_connection = True
            return
        delivery, rejected = None, False
        try:
            if framing:
                raise _Rejected(BAD_REQUEST, f"bad framing: {framing}")
            msg_id, stamp, body = self._check(method, headers, raw, counts)
        except _Rejected as e:
            status, extra, reason, rejected = e.status, {}, e.reason, True
            answer = json.dumps({"ok": False, "error": e.reason}).encode()
        else:
            status, extra, reason = self._verdict()
            answer = OK_BODY if reason is None else json.dumps({"ok": False, "error": f"answered {status}"}).encode()
            if reason is None:
                delivery = Delivery(msg_id, stamp, body["type"], body, raw, headers, h.path, arrived, status, h.serial)
        if slow:
            time.sleep(slow)
        if method != "POST":
            extra["Allow"] = "POST"
        if framing:
            h.close_connection = True
        self._record(Attempt(method, h.path, headers, raw, status, reason, msg_id, arrived, h.serial),
                     delivery, rejected, generation)
        h.reply(status, answer, extra)

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body leave at once, no delayed-ACK stall on keep-alive

            def setup(self):
                super().setup()
                with receiver._lock:
                    self.serial = next(receiver._serial)
                    receiver._opened += 1
                    receiver._open[self.connection] = self.serial

            def finish(self):
                try:
                    super().finish()
                except OSError:
                    pass
                finally:
                    with receiver._cond:
                        receiver._open.pop(self.connection, None)
                        receiver._cond.notify_all()

            def log_message(self, *args):  # quiet
                pass

            def read_body(self) -> tuple[bytes, str | None]:
                """The whole body, and what is wrong with its framing (None when nothing is)."""
                encoding = self.headers.get("Transfer-Encoding")
                if encoding is not None:
                    if encoding.strip().lower() != "chunked":
                        return b"", f"Transfer-Encoding {encoding!r}"
                    return self._read_chunked()
                length = self.headers.get("Content-Length")
                if length is None:
                    return b"", None
                if not _INTEGER.fullmatch(length.strip()):
                    return b"", f"Content-Length {length!r}"
                raw = self.rfile.read(int(length))
                if len(raw) < int(length):
                    return raw, f"body cut short at {len(raw)} of {length} bytes"
                return raw, None

            def _read_chunked(self) -> tuple[bytes, str | None]:
                chunks = []
                while True:
                    line = self.rfile.readline(65537)
                    try:
                        size = int(line.split(b";")[0].strip(), 16)
                    except ValueError:
                        return b"".join(chunks), f"chunk size {line[:40]!r}"
                    if size == 0:
                        while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                            pass  # trailers
                        return b"".join(chunks), None
                    chunk = self.rfile.read(size)
                    chunks.append(chunk)
                    self.rfile.readline()
                    if len(chunk) < size:
                        return b"".join(chunks), "chunked body cut short"

            def reply(self, status: int, body: bytes, headers: dict) -> None:
                try:
                    self.send_response(status)
                    bodiless = status in (204, 304) or status < 200
                    if not bodiless:  # a 204 may carry neither a body nor a Content-Length
                        self.send_header("Content-Type", "application/json")
                        self.send_header("Content-Length", str(len(body)))
                    for k, v in headers.items():
                        self.send_header(k, v)
                    if self.close_connection:
                        self.send_header("Connection", "close")
                    self.end_headers()
                    if not bodiless:
                        self.wfile.write(body)
                except OSError:  # the sender gave up (its timeout) before the answer
                    self.close_connection = True

            def do_POST(self):
                receiver._serve(self, "POST")

            def do_GET(self):
                receiver._serve(self, "GET")

            def do_PUT(self):
                receiver._serve(self, "PUT")

            def do_PATCH(self):
                receiver._serve(self, "PATCH")

            def do_DELETE(self):
                receiver._serve(self, "DELETE")

        return Handler


def new_secret(size: int = 32) -> str:
    """A fresh `whsec_` secret: standard base64 of random bytes (the spec asks for 24 to 64)."""
    return "whsec_" + base64.b64encode(os.urandom(size)).decode()


def main(argv=None) -> int:
    """Run the receiver on its own: `python -m standin.receiver --port 8097 --secret whsec_...`."""
    import argparse

    p = argparse.ArgumentParser(description="Local Standard Webhooks receiver (a customer's endpoint)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--secret", help="the endpoint's whsec_ secret (a new one is made and shown when omitted)")
    p.add_argument("--status", type=int, help="answer every verified request with this status")
    args = p.parse_args(argv)
    secret = args.secret or new_secret()
    printing = threading.Lock()
    seen: set[str] = set()

    def delivered(d: Delivery) -> None:
        with printing:
            again = " (duplicate)" if d.id in seen else ""
            seen.add(d.id)
            print(f"{d.type}  id={d.id}  lead={_lead_id(d.body.get('data'))}{again}", flush=True)

    def refused(a: Attempt) -> None:
        with printing:
            print(f"rejected {a.status}  id={a.id or '-'}  {a.reason}", file=sys.stderr, flush=True)

    receiver = WebhookReceiver(secret, args.host, args.port, on_delivery=delivered, on_reject=refused)
    if args.status is not None:
        receiver.answer_always(args.status)
    print(receiver.url, flush=True)
    if not args.secret:
        print(f"secret: {secret}", file=sys.stderr, flush=True)
    receiver.start()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        receiver.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
