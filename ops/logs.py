"""Log lines: `LOG_FORMAT=text` (one readable line per record) or `json` (one JSON object per line), each
carrying the id of the HTTP request it was written for (docs/operating.md#logs).

- The request id is taken from the request's `X-Request-Id` when that is a sane id (what a load balancer or
  proxy sets), else made here; it is sent back in the answer's `X-Request-Id`. It lives in a context variable
  for as long as the request is handled, and `in_request_context` carries it into work handed to another
  thread (the Slack request's lazy work: handlers/http.py `ListenerPool`).
- `RequestLog` wraps the WSGI app: it sets the id and writes one access line per request (method, route,
  status, duration) on the `handoff.access` logger. The route is one of the app's own paths or `other`; the
  raw path, the query, the body and the headers are never written.
- In JSON, every line the process writes is an object: `time` (UTC, ISO 8601), `level`, `logger`,
  `message`, `pid`, `request_id` when there is one, the record's own fields (`method`, `route`, `status`,
  `duration_ms`, …) and `exception` with the traceback. Uncaught exceptions of any thread, warnings and the
  start-up lines go through the same formatter, so nothing is written as a loose line.

Both formats mask every email address in the finished line (logsafe.py): no lead's email reaches a log.
"""
from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable
from contextvars import ContextVar, copy_context
from datetime import UTC, datetime

from logsafe import FORMAT, RedactingFormatter, mask

REQUEST_ID: ContextVar[str | None] = ContextVar("handoff_request_id", default=None)
# What an incoming X-Request-Id may be: a UUID, a hex or base64 token, a load balancer's `Root=1-…` trace id.
SANE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+/=-]{0,127}")
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER = "other"  # the route (and method) of anything the app does not serve

access_log = logging.getLogger("handoff.access")
# A LogRecord's own attributes; anything else on a record came from `extra=` and is written as a field.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
_format = "text"


# The request id ---------------------------------------------------------------------------------------
def new_request_id() -> str:
    return uuid.uuid4().hex


def request_id_from(header: str | None) -> str:
    """The id of a request: its `X-Request-Id` if sane (at most 128 plain characters), else a new one."""
    if header and SANE_ID.fullmatch(header):
        return header
    return new_request_id()


def current_request_id() -> str | None:
    return REQUEST_ID.get()


def in_request_context(fn: Callable) -> Callable:
    """`fn`, to run on another thread with the context variables (the request id) of the caller's thread."""
    context = copy_context()

    def run(*args, **kwargs):
        return context.run(fn, *args, **kwargs)

    run.__name__ = getattr(fn, "__name__", "work")
    return run


class RequestIdFilter(logging.Filter):
    """Puts the current request id on every record a handler writes (None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = REQUEST_ID.get()
        return True


# Formats ----------------------------------------------------------------------------------------------
class TextFormatter(RedactingFormatter):
    """`logsafe.FORMAT`, with `[request id]` after the logger's name on the lines written for a request."""

    def __init__(self):
        super().__init__(FORMAT)
        self._with_id = RedactingFormatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if getattr(record, "request_id", None):
            return self._with_id.format(record)
        return super().format(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line; email addresses masked in every text."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": mask(record.getMessage()),
            "pid": record.process,
        }
        if getattr(record, "request_id", None):
            line["request_id"] = record.request_id
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRIBUTES and key not in line and key != "request_id" and not key.startswith("_"):
                line[key] = _field(value)
        if record.exc_info:
            line["exception"] = mask(self.formatException(record.exc_info))
        elif record.exc_text:
            line["exception"] = mask(record.exc_text)
        if record.stack_info:
            line["stack"] = mask(self.formatStack(record.stack_info))
        return json.dumps(line, ensure_ascii=False, default=str)


def _field(value):
    if value is None or isinstance(value, bool | int | float):
        return value
    return mask(value if isinstance(value, str) else str(value))


def configure(log_format: str) -> None:
    """Set every handler of the root logger (see `logsafe.configure`) to `log_format`, with request ids.

    In JSON, also write through logging what Python would otherwise print as loose lines: uncaught exceptions
    (of the main thread and of every other thread), exceptions ignored in `__del__`, and warnings."""
    global _format
    _format = log_format
    formatter = JsonFormatter() if log_format == "json" else TextFormatter()
    for handler in logging.getLogger().handlers:
        handler.setFormatter(formatter)
        if not any(isinstance(f, RequestIdFilter) for f in handler.filters):
            handler.addFilter(RequestIdFilter())
    if log_format == "json":
        logging.captureWarnings(True)
        sys.excepthook = _uncaught
        threading.excepthook = lambda args: _uncaught(args.exc_type, args.exc_value, args.exc_traceback,
                                                      args.thread.name if args.thread else None)
        sys.unraisablehook = _unraisable


def _uncaught(exc_type, exc_value, exc_traceback, thread: str | None = None) -> None:
    if issubclass(exc_type, KeyboardInterrupt):
        return
    where = f" in thread {thread}" if thread else ""
    logging.getLogger("handoff").critical("uncaught exception%s", where,
                                          exc_info=(exc_type, exc_value, exc_traceback))


def _unraisable(hook) -> None:
    trace = "".join(traceback.format_exception(hook.exc_type, hook.exc_value, hook.exc_traceback))
    logging.getLogger("handoff").error("%s: %r", hook.err_msg or "exception ignored", hook.object,
                                       extra={"exception": mask(trace)})


def announce(text: str, stream=None) -> None:
    """A line for the operator on stdout (`serving on port …`): as it is in text, as a JSON object in JSON."""
    stream = stream or sys.stdout
    if _format == "json":
        record = logging.LogRecord("handoff", logging.INFO, __file__, 0, text, None, None)
        stream.write(JsonFormatter().format(record) + "\n")
    else:
        stream.write(text + "\n")
    stream.flush()


def fail(text: str) -> None:
    """The one line a command that cannot run writes on stderr (`error: …`), as an ERROR object in JSON."""
    if _format == "json" or os.environ.get("LOG_FORMAT", "").strip().lower() == "json":
        record = logging.LogRecord("handoff", logging.ERROR, __file__, 0, text, None, None)
        sys.stderr.write(JsonFormatter().format(record) + "\n")
    else:
        sys.stderr.write(f"error: {text}\n")
    sys.stderr.flush()


# The access line ---------------------------------------------------------------------------------------
class RequestLog:
    """WSGI middleware: the request id (in, in the context, back out) and one access line per request.

    `routes` are the app's paths (a fixed set, so a scanner's paths cannot make new labels); `observe(route,
    seconds)` is told each request's duration (the metrics' request histogram)."""

    def __init__(self, app, routes: Iterable[str], observe: Callable[[str, float], None] | None = None):
        self.app = app
        self.routes = frozenset(routes)
        self.observe = observe

    def route_of(self, path: str) -> str:
        return path if path in self.routes else OTHER

    def __call__(self, environ, start_response):
        rid = request_id_from(environ.get("HTTP_X_REQUEST_ID"))
        started = time.perf_counter()
        answer = {"status": 500}

        def start(status: str, headers: list, exc_info=None):
            try:
                answer["status"] = int(status.split(" ", 1)[0])
            except ValueError:
                pass
            headers = [(k, v) for k, v in headers if k.lower() != "x-request-id"]
            headers.append(("X-Request-Id", rid))
            return start_response(status, headers, exc_info)

        def done() -> None:
            self._log(environ, rid, answer["status"], time.perf_counter() - started)

        # The id is current while the app handles the request (and hands work to other threads), and no
        # longer: the thread serves other requests next, and a caller may never close the body.
        token = REQUEST_ID.set(rid)
        try:
            body = self.app(environ, start)
        except BaseException:
            done()
            raise
        finally:
            REQUEST_ID.reset(token)
        return _Finally(body, done)

    def _log(self, environ, rid: str, status: int, seconds: float) -> None:
        route = self.route_of(environ.get("PATH_INFO") or "")
        method = environ.get("REQUEST_METHOD", "")
        method = method if method in METHODS else OTHER
        if self.observe is not None:
            self.observe(route, seconds)
        ms = round(seconds * 1000, 1)
        access_log.info("%s %s %s %.1f ms", method, route, status, ms,
                        extra={"request_id": rid, "method": method, "route": route, "status": status,
                               "duration_ms": ms})


class _Finally:
    """The app's response body, with `done` called once when the server closes it (after the last byte)."""

    def __init__(self, body, done: Callable[[], None]):
        self._body, self._done, self._called = body, done, False

    def __iter__(self):
        return iter(self._body)

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            if not self._called:
                self._called = True
                self._done()
