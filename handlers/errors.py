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

from slack_sdk.webhook import WebhookClient

from blocks.format import instant_param
from blocks.texts import t
from handlers.home import refresh_after
from models.db import is_transient, is_unavailable
from models.leads import LeadError
from models.outbox import Kind, enqueue
from outbox.sender import make_client

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
    with services.db.begin() as session:
        queued = queue_private_reply(session, body, key, params, now=services.now())
    if queued:
        services.notify()


def queue_private_reply(session, body: dict, key: str, params: dict, now: datetime) -> bool:
    """`reply_privately` in the caller's transaction (the click queue answers a batch of clicks in one)."""
    user = (body.get("user") or {}).get("id") or body.get("user_id")
    channel = (body.get("channel") or {}).get("id") or body.get("channel_id")
    if not user:
        return False
    params = {k: instant_param(v) if isinstance(v, datetime) else v for k, v in params.items()}
    token = body.get("trigger_id") or (body.get("actions") or [{}])[0].get("action_ts") or ""
    payload = {"user": user, "key": key, "params": params}
    if not channel:
        channel, payload["dm"] = user, True
    enqueue(session, kind=Kind.NOTICE, dedupe_key=f"notice:{user}:{token}", now=now, channel=channel,
            payload=payload)
    return True


def tell_without_database(services, body: dict, key: str) -> bool:
    """A private message that needs no database: through the request's response_url (a click, a command),
    else a DM through the Web API. For when the outbox itself can't be written."""
    settings = services.settings
    text = t(key, settings.LANGUAGE)
    url = body.get("response_url") or ((body.get("response_urls") or [{}])[0] or {}).get("response_url")
    user = (body.get("user") or {}).get("id") or body.get("user_id")
    try:
        if isinstance(url, str) and url.startswith(("https://", "http://")):
            answer = WebhookClient(url, timeout=5).send(text=text, response_type="ephemeral", replace_original=False)
            if answer.status_code == 200:
                return True
            log.warning("response_url refused the message (%s)", answer.status_code)
        if user:
            make_client(settings).chat_postMessage(channel=user, text=text)
            return True
    except Exception as exc:  # Slack away too: nothing more can be done, and it is logged
        log.warning("could not tell the user privately: %s", type(exc).__name__)
    return False


def explain(services, error: BaseException, body: dict) -> None:
    if isinstance(error, LeadError):
        reply_privately(services, body, error.key, domain_params(error.params, services.settings.LANGUAGE))
    elif is_transient(error):
        log.warning("a Slack request was not recorded: the database is unavailable (%s)", type(error).__name__)
        tell_without_database(services, body, "notice.not_recorded")
    else:
        log.error("listener failed", exc_info=error)
        try:
            reply_privately(services, body, "notice.error", {})
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            tell_without_database(services, body, "notice.error")


def answered_when_down(services):
    """Decorate a slash command listener (which takes `ack`): while the database is away the person is told
    privately that nothing was done, in the acknowledgement itself, instead of Slack's bare failure."""
    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except Exception as error:
                if not is_transient(error):
                    raise
                log.warning("a slash command was not carried out: the database is unavailable (%s)",
                            type(error).__name__)
                kwargs["ack"](text=t("notice.not_recorded", services.settings.LANGUAGE))
        return wrapper
    return decorate


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
