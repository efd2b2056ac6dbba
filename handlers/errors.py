"""One place that turns failures into a private message to the person who clicked.

Listeners are wrapped with `explained`: a domain error (the lead is taken,
closed, not yours) becomes its catalog message; anything else is logged and
the person hears that nothing changed. Catching here, rather than letting the
error reach Bolt after `ack()`, keeps the acknowledgement that Slack waits for.
"""
from __future__ import annotations

import functools
import logging
from datetime import datetime

from blocks.format import instant_param
from blocks.texts import t
from handlers.home import refresh_after
from models.leads import LeadError
from models.outbox import Kind, enqueue

log = logging.getLogger("handoff.slack")


def domain_params(params: dict, lang: str) -> dict:
    """A domain error's parameters made ready for its message: outcome codes become words."""
    out = dict(params)
    if out.get("outcome"):
        out["outcome"] = t(f"outcome.{out['outcome']}", lang)
    return out


def reply_privately(services, body: dict, key: str, params: dict) -> None:
    """A message only the clicker sees: ephemeral in the channel, or a DM when the click came from
    App Home (which has no channel)."""
    user = (body.get("user") or {}).get("id") or body.get("user_id")
    channel = (body.get("channel") or {}).get("id") or body.get("channel_id")
    if not user:
        return
    params = {k: instant_param(v) if isinstance(v, datetime) else v for k, v in params.items()}
    token = body.get("trigger_id") or (body.get("actions") or [{}])[0].get("action_ts") or ""
    payload = {"user": user, "key": key, "params": params}
    if not channel:
        channel, payload["dm"] = user, True
    with services.db.begin() as session:
        enqueue(session, kind=Kind.NOTICE, dedupe_key=f"notice:{user}:{token}", now=services.now(),
                channel=channel, payload=payload)
    services.notify()


def explain(services, error: BaseException, body: dict) -> None:
    if isinstance(error, LeadError):
        reply_privately(services, body, error.key, domain_params(error.params, services.settings.LANGUAGE))
    else:
        log.error("listener failed", exc_info=error)
        reply_privately(services, body, "notice.error", {})


def explained(services):
    """Decorate a listener (which must take `body`) so that its failures are explained privately."""
    def decorate(fn):
        @functools.wraps(fn)  # Bolt reads the wrapped signature to inject arguments
        def wrapper(*args, **kwargs):
            body = kwargs.get("body") or {}
            try:
                return fn(*args, **kwargs)
            except Exception as error:
                explain(services, error, body)
            finally:
                refresh_after(services, body)
        return wrapper
    return decorate


def register(app, services) -> None:
    @app.error
    def on_error(error, body):  # failures outside listeners (middleware, Bolt itself)
        explain(services, error, body or {})
