"""One error handler: domain errors become a private message to the person who clicked."""
from __future__ import annotations

import logging

from models.leads import LeadError
from models.outbox import Kind, enqueue

log = logging.getLogger("handoff.slack")


def register(app, services) -> None:
    @app.error
    def on_error(error, body):
        user = (body.get("user") or {}).get("id") or body.get("user_id")
        channel = (body.get("channel") or {}).get("id") or body.get("channel_id")
        if isinstance(error, LeadError):
            key, params = error.key, error.params
        else:
            log.error("listener failed", exc_info=error)
            key, params = "notice.error", {}
        if not (user and channel):
            return
        token = body.get("trigger_id") or (body.get("actions") or [{}])[0].get("action_ts") or ""
        with services.db.begin() as session:
            enqueue(session, kind=Kind.NOTICE, dedupe_key=f"notice:{user}:{token}", now=services.now(),
                    channel=channel, payload={"user": user, "key": key, "params": params})
        services.notify()
