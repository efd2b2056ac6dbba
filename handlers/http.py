"""The HTTP surface: /slack/events, /hooks/leads and /healthz on one WSGI app."""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from flask import Flask, jsonify, request
from slack_bolt import App
from slack_bolt.adapter.flask import SlackRequestHandler

import handlers
from handlers import webhook
from models import outbox as queue
from outbox.sender import make_client

log = logging.getLogger("handoff.http")


def build_bolt_app(services, verify_token: bool = True) -> App:
    s = services.settings
    app = App(signing_secret=s.SLACK_SIGNING_SECRET or "",  # the token travels in the client
              client=make_client(s), token_verification_enabled=verify_token,
              request_verification_enabled=not s.socket_mode,
              # Listeners ack on the request thread; slow work goes to lazy listeners on the executor.
              process_before_response=True,
              listener_executor=ThreadPoolExecutor(max_workers=8, thread_name_prefix="listener"))
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
