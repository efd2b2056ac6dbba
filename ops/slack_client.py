"""The Slack Web API client every Handoff process uses, counting each call in `handoff_slack_calls_total`.

Every Web API method goes through `api_call` (the SDK's `chat_postMessage`, `views_open`, … all call it), so
counting there sees every call, whichever process or thread makes it: the delivery process's sender, a
listener opening a modal, the start-up `auth.test`. Uploading a file's bytes to the URL Slack hands out is not
a Web API method and is not counted; the two calls around it are.
"""
from __future__ import annotations

import http.client
import re

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse

from ops import metrics

ERROR_CODE = re.compile(r"[a-z][a-z0-9_]{0,63}")  # what Slack's `error` codes look like


def outcome_of(exc: SlackApiError) -> str:
    """A failed call's outcome label: `ratelimited`, `http_5xx`, Slack's error code, or `http_4xx`/`error`."""
    response = exc.response
    status = getattr(response, "status_code", 0) or 0
    data = response.data if isinstance(getattr(response, "data", None), dict) else {}
    error = data.get("error")
    if status == 429 or error == "ratelimited":
        return "ratelimited"
    if status >= 500:
        return "http_5xx"
    if isinstance(error, str) and ERROR_CODE.fullmatch(error):
        return error
    return "http_4xx" if 400 <= status < 500 else "error"


class CountedWebClient(WebClient):
    """A WebClient whose every call is counted by method and outcome (ops/metrics.py)."""

    def api_call(self, api_method: str, **kwargs):
        try:
            response = super().api_call(api_method, **kwargs)
        except SlackApiError as exc:
            metrics.slack_call(api_method, outcome_of(exc))
            raise
        except (OSError, http.client.HTTPException):  # no answer: refused, reset, timed out, DNS
            metrics.slack_call(api_method, "connection")
            raise
        except Exception:
            metrics.slack_call(api_method, "error")
            raise
        metrics.slack_call(api_method, "ok")
        return response


class IdentifiedWebClient(CountedWebClient):
    """A counted client that already knows its `auth.test` answer (`identity`, the one `serve` got when it checked
    the token at start). Bolt checks the token when its App is made and keeps the answer; given this client, it
    reads the known one. A pre-forked web worker (prefork.py) is made so: otherwise Bolt asks Slack on the
    worker's first request, on the request's thread, and a burst of first clicks while Slack is slow or away
    answered 500. Every other method is a real call."""

    def __init__(self, *, identity: dict, **kwargs):
        super().__init__(**kwargs)
        self.identity = dict(identity)

    def auth_test(self, **kwargs) -> SlackResponse:
        return SlackResponse(client=self, http_verb="POST", api_url=f"{self.base_url}auth.test", req_args={},
                             data=dict(self.identity), headers={}, status_code=200)


def counted(client: WebClient) -> CountedWebClient:
    """The same client, counted: for the one Bolt makes for each request (handlers/middleware.py).

    Bolt builds a plain WebClient per request; rather than build a second one on the way to the ack, the client
    becomes a CountedWebClient in place (it adds no state, only counts in `api_call`), keeping every setting."""
    if type(client) is WebClient:
        client.__class__ = CountedWebClient
    return client
