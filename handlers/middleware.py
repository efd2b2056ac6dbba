"""What every Slack request passes before a listener sees it.

1. `shape_problem`, checked by `dispatch` in the /slack/events route before Bolt sees the request: the
   body can be read (not broken JSON, a `payload` that is an object) and the fields Bolt and our
   listeners rely on are there with the right types (a user on every click, command and event; a
   non-empty `actions` list; a view with its `state`; text without NUL or lone surrogates). Otherwise
   the answer is 400 when the request is properly signed, 401 when it is not, and nothing runs.
   Listeners can then read those fields without guarding each access. It has to come before Bolt:
   Bolt's own middleware, and the arguments it builds for ours (`action` is `body["actions"][0]`),
   already fail on such bodies, as a 500. In Socket Mode (no route) `CheckShape` applies the same rule.
2. `count_calls`: the Web API client Bolt makes for each request (the `client` listeners get) is swapped for
   one that counts its calls in `handoff_slack_calls_total` (ops/slack_client.py); in Socket Mode, where no
   HTTP request gave it one, the request gets its log lines' request id here (ops/logs.py).
3. `name_request`: each request is named so a repeated delivery takes effect once. The key is
   recorded in the same transaction as the request's effect (see `Services.once`), so a retry of a
   request that changed something finds it, and a request that failed changed nothing and may be
   retried.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re

from slack_bolt.middleware import Middleware
from slack_bolt.response import BoltResponse
from slack_sdk.signature import SignatureVerifier

from models.leads import SLACK_USER_RE
from ops import logs
from ops.slack_client import counted

log = logging.getLogger("handoff.slack")

USER_EVENTS = frozenset({"app_home_opened"})  # the events we listen to; each is about one user
INTERACTIVE = frozenset({"block_actions", "view_submission", "view_closed", "shortcut", "message_action",
                         "block_suggestion"})
OBJECTS = ("channel", "container", "view", "message", "team")  # when present, objects
ACTION_STRINGS = ("action_id", "block_id", "value", "selected_user", "action_ts")  # when present, strings
UNREADABLE = re.compile("[\x00\ud800-\udfff]")  # never in what Slack sends; PostgreSQL refuses to store them


def request_key(req) -> str:
    raw = req.raw_body or json.dumps(req.body, sort_keys=True)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


# 1. Before Bolt -----------------------------------------------------------------------------------------
def dispatch(handler, request, signing_secret: str | None):
    """Answer a POST to /slack/events through Bolt (`handler` is the Flask adapter), unless its body is not
    shaped like a Slack request: then 400 if it is properly signed (Slack sent nonsense), 401 if not."""
    from slack_bolt.adapter.flask.handler import to_bolt_request, to_flask_response

    try:
        bolt_request = to_bolt_request(request)
        problem = shape_problem(bolt_request.body)
    except (ValueError, TypeError, AttributeError, KeyError, IndexError, RecursionError):
        problem = "a body that cannot be read"  # broken JSON, or a `payload` Bolt cannot take apart
    if problem is None:
        return to_flask_response(handler.app.dispatch(bolt_request))
    if not _signed(request.get_data(as_text=True), request.headers, signing_secret):
        return "", 401  # what Bolt answers any unsigned request; nothing about its body is told
    log.warning("refusing a malformed Slack request: %s", problem)
    return "", 400


def _signed(body: str, headers, secret: str | None) -> bool:
    if not secret:
        return False
    try:
        return SignatureVerifier(secret).is_valid_request(body, dict(headers))
    except (ValueError, TypeError):  # a timestamp that is not a number
        return False


# 2. The shape of a signed request -----------------------------------------------------------------------
def _is_user(value) -> bool:
    return isinstance(value, str) and SLACK_USER_RE.fullmatch(value) is not None


def _bad_text(obj) -> bool:
    """Whether any key or string anywhere in the JSON value holds a NUL or a lone surrogate."""
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if UNREADABLE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def shape_problem(body) -> str | None:
    """What makes a (signed) request unusable, in a few words; None when listeners can rely on it."""
    if not isinstance(body, dict):
        return "the body is not an object"
    if _bad_text(body):
        return "text with a NUL or a lone surrogate"
    if "command" in body:  # a slash command (form fields)
        if not isinstance(body.get("command"), str) or not isinstance(body.get("text", ""), str):
            return "a command without its name or text"
        if not _is_user(body.get("user_id")):
            return "a command without a user"
        return None
    kind = body.get("type")
    if kind == "event_callback":
        event = body.get("event")
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            return "an event without a type"
        if event["type"] in USER_EVENTS and not _is_user(event.get("user")):
            return "an event without a user"
        return None
    if kind not in INTERACTIVE:
        return None  # url_verification, app_rate_limited, …: Bolt answers those itself
    user = body.get("user")
    if not isinstance(user, dict) or not _is_user(user.get("id")):
        return f"{kind} without a user"
    for name in OBJECTS:
        if body.get(name) is not None and not isinstance(body[name], dict):
            return f"{kind} whose {name} is not an object"
    if kind == "block_actions":
        actions = body.get("actions")
        if not isinstance(actions, list) or not actions:
            return "block_actions without actions"
        for action in actions:
            if not isinstance(action, dict) or not isinstance(action.get("action_id"), str):
                return "an action without an action_id"
            if any(action.get(k) is not None and not isinstance(action[k], str) for k in ACTION_STRINGS):
                return "an action whose value is not a string"
        if not isinstance(body.get("trigger_id", ""), str):
            return "a trigger_id that is not a string"
    if kind in ("view_submission", "view_closed"):
        view = body.get("view")
        if not isinstance(view, dict) or not isinstance(view.get("callback_id"), str):
            return f"{kind} without a view"
        if not isinstance(view.get("private_metadata") or "", str):
            return f"{kind} whose private_metadata is not a string"
        state = view.get("state")
        if kind == "view_submission" and not (isinstance(state, dict) and isinstance(state.get("values"), dict)
                                              and all(isinstance(v, dict) for v in state["values"].values())):
            return "view_submission without state"
    return None


class CheckShape(Middleware):
    """`shape_problem` for Socket Mode, where requests come through no route. (A class, not a function
    middleware: Bolt builds a function's arguments from the body, which fails on the bodies refused here.)"""

    def process(self, *, req, resp, next):
        problem = shape_problem(req.body)
        if problem is not None:
            log.warning("refusing a malformed Slack request: %s", problem)
            return BoltResponse(status=400, body="")
        return next()


def register(app, services) -> None:
    if services.settings.socket_mode:
        app.middleware(CheckShape())

        @app.middleware
        def request_id(req, resp, next):
            if logs.current_request_id() is not None:
                return next()
            token = logs.REQUEST_ID.set(logs.new_request_id())
            try:
                return next()  # its lazy work, handed over during next(), keeps the id (handlers/http.py)
            finally:
                logs.REQUEST_ID.reset(token)

    @app.middleware
    def count_calls(req, resp, next):
        if req.context.client is not None:
            req.context["client"] = counted(req.context.client)
        return next()

    @app.middleware
    def name_request(req, resp, next):
        req.context["request_key"] = request_key(req)
        return next()
