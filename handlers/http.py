"""The HTTP surface: /slack/events, /hooks/leads and /healthz on one WSGI app."""
from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from flask import Flask, jsonify, request
from slack_bolt import App
from slack_bolt.adapter.flask import SlackRequestHandler

import handlers
from handlers import webhook
from models import outbox as queue
from outbox.sender import make_client

log = logging.getLogger("handoff.http")


class ListenerPool(ThreadPoolExecutor):
    """The lazy listeners' threads, knowing how much acknowledged work is still in flight.

    A click Slack was already told "200" about must not be dropped by a deploy: on SIGTERM the server stops
    taking requests and `wait_idle` lets the work in flight finish before the process exits.
    """

    def __init__(self, max_workers: int):
        super().__init__(max_workers=max_workers, thread_name_prefix="listener")
        self._idle = threading.Condition()
        self._in_flight = 0

    def submit(self, fn, /, *args, **kwargs):
        with self._idle:
            self._in_flight += 1
        try:
            future = super().submit(fn, *args, **kwargs)
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


def build_bolt_app(services, verify_token: bool = True, listeners: ListenerPool | None = None) -> App:
    s = services.settings
    app = App(signing_secret=s.SLACK_SIGNING_SECRET or "",  # the token travels in the client
              client=make_client(s), token_verification_enabled=verify_token,
              request_verification_enabled=not s.socket_mode,
              # Listeners ack on the request thread; slow work goes to lazy listeners on the executor.
              process_before_response=True,
              listener_executor=listeners or ListenerPool(max_workers=8))
    handlers.register(app, services)
    return app



def build_flask_app(services, bolt_app: App | None) -> Flask:
    flask_app = Flask("handoff")
    if bolt_app is not None:
        slack = SlackRequestHandler(bolt_app)

        @flask_app.post("/slack/events")
        def slack_events():
            return slack.handle(request)

    webhook.register(flask_app, services)

    @flask_app.get("/healthz")
    def healthz():
        try:
            with services.db.begin() as session:
                counts = queue.counts(session)
        except Exception as exc:  # any database failure means "not healthy", never a 500
            log.warning("health check failed: %s", exc)
            return jsonify(ok=False, database="unreachable"), 503
        return jsonify(ok=True, database="ok", outbox_pending=counts["pending"], outbox_failed=counts["failed"])

    return flask_app
