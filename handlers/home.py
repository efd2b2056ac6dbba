"""App Home: published when someone opens it, and again after they act on it."""
from __future__ import annotations

import logging

from models.outbox import queue_home

log = logging.getLogger("handoff.slack")


def from_home(body: dict) -> bool:
    """Whether a click came from someone's App Home (rather than a card in a channel)."""
    container = body.get("container") or {}
    view = body.get("view") or {}
    return container.get("type") == "view" and view.get("type") == "home"


def refresh_after(services, body: dict) -> None:
    """A click or a modal that came from App Home: publish it again with the new state."""
    if not (from_home(body) or body.get("type") == "view_submission"):
        return
    user = (body.get("user") or {}).get("id")
    token = (body.get("actions") or [{}])[0].get("action_ts") or body.get("trigger_id") or ""
    if not user:
        return
    try:
        with services.db.begin() as session:
            queue_home(session, user, services.now(), f"after:{token}")
    except Exception:  # the action itself is done; a stale Home is not worth failing it
        log.exception("could not queue an App Home refresh for %s", user)
        return
    services.notify()


def register(app, services) -> None:
    @app.event("app_home_opened")
    def on_home_opened(event):
        if event.get("tab") not in (None, "home"):
            return
        with services.db.begin() as session:
            queue_home(session, event["user"], services.now(), f"opened:{event.get('event_ts', '')}")
        services.notify()
