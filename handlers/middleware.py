"""Bolt middleware: a request Slack delivers twice takes effect once."""
from __future__ import annotations

import hashlib
import json
import logging

from slack_bolt import BoltResponse

from models.requests import first_time

log = logging.getLogger("handoff.slack")


def request_key(req) -> str:
    raw = req.raw_body or json.dumps(req.body, sort_keys=True)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def register(app, services) -> None:
    @app.middleware
    def once_only(req, resp, next):  # runs after Bolt has verified the signature
        with services.db.begin() as session:
            fresh = first_time(session, request_key(req), services.now())
        if not fresh:
            retry = req.headers.get("x-slack-retry-num", ["?"])
            log.info("dropping a repeated Slack request (retry %s)", retry[0] if retry else "?")
            return BoltResponse(status=200, body="")
        return next()
