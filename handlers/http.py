"""The HTTP surface: /slack/events, /hooks/leads, /healthz and /metrics on one WSGI app."""
from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from flask import Flask, Response, jsonify, request
from slack_bolt import App
from slack_bolt.adapter.flask import SlackRequestHandler
from werkzeug.exceptions import HTTPException

import handlers
from blocks.texts import t
from handlers import privacy_hook, status_hook, webhook
from models import clicks, crm_sync, crm_tasks, events
from models import outbox as queue
from models.db import is_transient, sqlstate
from ops import logs, metrics
from outbox.sender import make_client

log = logging.getLogger("handoff.http")
work_log = logging.getLogger("handoff.slack")
RETRY_AFTER_SECONDS = 15  # what a 503 asks a webhook sender to wait; the database is usually back by then


class ListenerPool(ThreadPoolExecutor):
    """The lazy listeners' threads, knowing how much acknowledged work is still in flight.

    A click Slack was already told "200" about must not be dropped by a deploy: on SIGTERM the server stops
    taking requests and `wait_idle` lets the work in flight finish before the process exits.

    Bolt hands each lazy listener to `submit` on the request's thread: the work runs with that thread's
    context (the request id of its log lines, ops/logs.py) and ends with one line saying how long it took.
    """

    def __init__(self, max_workers: int):
        super().__init__(max_workers=max_workers, thread_name_prefix="listener")
        self._idle = threading.Condition()
        self._in_flight = 0

    def submit(self, fn, /, *args, **kwargs):
        with self._idle:
            self._in_flight += 1
        try:
            future = super().submit(logs.in_request_context(_timed(fn)), *args, **kwargs)
        except BaseException:
            self._done(None)
            raise
        future.add_done_callback(self._done)
        return future

    def _done(self, _future) -> None:
        with self._idle:
            self._in_flight -= 1
            self._idle.notify_all()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def wait_idle(self, timeout: float) -> bool:
        """Block until no listener work is queued or running (True), or `timeout` seconds (False)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout)


def _timed(fn):
    name = getattr(fn, "__name__", "work")

    def run(*args, **kwargs):
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            ms = round((time.perf_counter() - started) * 1000, 1)
            work_log.info("slack work %s finished in %.1f ms", name, ms, extra={"work": name, "duration_ms": ms})
    return run


def build_bolt_app(services, identity: dict | None, listeners: ListenerPool | None = None) -> App:
    """`identity`: the token's `auth.test` answer, checked by the caller (runtime.py); Bolt keeps it instead of
    asking Slack again. None (a one-off command that answers no request): Bolt would ask on a first request."""
    s = services.settings
    listeners = listeners or ListenerPool(max_workers=8)
    app = App(signing_secret=s.SLACK_SIGNING_SECRET or "",  # the token travels in the client
              client=make_client(s, identity), token_verification_enabled=identity is not None,
              request_verification_enabled=not s.socket_mode,
              # Listeners ack on the request thread; slow work goes to lazy listeners on the executor, and a
              # click's work to the click queue (handlers/clicks.py), written down on the same threads.
              process_before_response=True,
              listener_executor=listeners)
    handlers.register(app, services, listeners)
    return app



def build_flask_app(services, bolt_app: App | None) -> Flask:
    flask_app = Flask("handoff")
    if bolt_app is not None:
        slack = SlackRequestHandler(bolt_app)

        @flask_app.post("/slack/events")
        def slack_events():
            # A body Bolt cannot read is refused here (400 signed, 401 not); its shape is checked next, in
            # Bolt middleware after the signature (handlers/middleware.py).
            return handlers.middleware.dispatch(slack, request, services.settings.SLACK_SIGNING_SECRET)

    webhook.register(flask_app, services)
    status_hook.register(flask_app, services)
    privacy_hook.register(flask_app, services)

    @flask_app.errorhandler(Exception)
    def unexpected(exc):
        """Never a bare 500 for what the sender can retry: while the database is away (down, restarting,
        SQLite's write lock held too long) the answer is 503 with Retry-After, and nothing was kept."""
        if isinstance(exc, HTTPException):
            return exc
        lang = services.settings.LANGUAGE
        if is_transient(exc):
            log.warning("database unavailable for %s %s: %s %s", request.method, request.path,
                        type(getattr(exc, "orig", None) or exc).__name__, sqlstate(exc) or "")
            answer = jsonify(error=t("api.unavailable", lang), retry_after=RETRY_AFTER_SECONDS)
            answer.status_code = 503
            answer.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
            return answer
        log.error("unexpected error for %s %s", request.method, request.path, exc_info=exc)
        answer = jsonify(error=t("api.internal", lang))
        answer.status_code = 500
        return answer

    @flask_app.get("/healthz")
    def healthz():
        """The database answers (else 503), and the outbox: `outbox_pending` waiting to be sent,
        `outbox_retrying` of those after an error, `outbox_oldest_pending_seconds` how long the oldest has
        waited (null when none), `outbox_failed` refused for good (`python bot.py outbox list --failed`); and the
        event deliveries (docs/events.md): `events_pending` and `events_failed`; with HubSpot (docs/hubspot.md),
        `hubspot_pending` leads waiting to be written, `hubspot_not_found` leads with no contact there, and
        `hubspot_refused` leads whose values HubSpot would not take (until their next change); with Salesforce
        (docs/salesforce.md) the same three as `salesforce_pending` (records and Tasks),
        `salesforce_not_found` and `salesforce_refused`. Under `serve`,
        `delivery_process` says how the process that sends is: `running`, `starting`, or `restarting` after it
        died (outbox/process.py). `clicks_pending` card clicks answered and waiting to be applied, and
        `clicks_oldest_pending_seconds` how long the oldest has (docs/http.md#clicks). `process` is the id of
        the web process that answered (with WEB_CONCURRENCY above 1 there are several: prefork.py)."""
        try:
            with services.db.begin() as session:
                health = queue.health(session, services.now())
                event_health = events.health(session)
                waiting_clicks, oldest_click = clicks.pending(session)
                if services.hubspot is not None:
                    hs = crm_sync.status(session, services.hubspot.destination_id, services.now())
                    event_health.update(hubspot_pending=hs["pending"], hubspot_not_found=hs["not_found"],
                                        hubspot_refused=hs["refused"])
                if services.salesforce is not None:
                    sf = crm_tasks.status(session, services.salesforce.destination_id, services.now())
                    event_health.update(salesforce_pending=sf["pending"] + sf["tasks_pending"],
                                        salesforce_not_found=sf["not_found"], salesforce_refused=sf["refused"])
        except Exception as exc:  # any database failure means "not healthy", never a 500
            log.warning("health check failed: %s", exc)
            return jsonify(ok=False, database="unreachable"), 503
        if services.delivery is not None:
            event_health["delivery_process"] = services.delivery.state
        event_health["clicks_pending"] = waiting_clicks
        event_health["clicks_oldest_pending_seconds"] = None if oldest_click is None else \
            round(max(0.0, (services.now() - oldest_click).total_seconds()), 1)
        return jsonify(ok=True, database="ok", process=os.getpid(), outbox_pending=health["pending"], outbox_failed=health["failed"],
                       outbox_retrying=health["retrying"],
                       outbox_oldest_pending_seconds=health["oldest_pending_seconds"], **event_health)

    @flask_app.get("/metrics")
    def prometheus_metrics():
        """Prometheus text format (ops/metrics.py); with METRICS_TOKEN set, only for `Bearer <token>`."""
        if not metrics.authorized(request.headers.get("Authorization"), services.settings.METRICS_TOKEN):
            answer = jsonify(error=t("api.unauthorized", services.settings.LANGUAGE))
            answer.status_code = 401
            answer.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return answer
        body, content_type = metrics.exposition(services.db, services.now)
        return Response(body, content_type=content_type)

    # Every request gets an id and an access line, and is timed by route (ops/logs.py): the routes are the
    # app's own paths, fixed here, whatever paths clients send.
    routes = sorted({rule.rule for rule in flask_app.url_map.iter_rules() if "<" not in rule.rule})
    metrics.known_routes([*routes, logs.OTHER])
    flask_app.wsgi_app = logs.RequestLog(flask_app.wsgi_app, routes, observe=metrics.observe_request)
    return flask_app
