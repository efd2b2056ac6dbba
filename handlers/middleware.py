"""Bolt middleware: name each Slack request so a repeated delivery takes effect once.

The key is recorded in the same transaction as the request's effect (see
`Services.once`), so a retry of a request that changed something finds it,
and a request that failed changed nothing and may be retried.
"""
from __future__ import annotations

import hashlib
import json


def request_key(req) -> str:
    raw = req.raw_body or json.dumps(req.body, sort_keys=True)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def register(app, services) -> None:
    @app.middleware
    def name_request(req, resp, next):  # runs after Bolt has verified the signature
        req.context["request_key"] = request_key(req)
        return next()
