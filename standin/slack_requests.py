"""Requests shaped and signed the way Slack sends them to /slack/events (tests, demo, benchmarks)."""
from __future__ import annotations

import itertools
import json
import time
from urllib.parse import parse_qs, urlencode

from slack_sdk.signature import SignatureVerifier

_seq = itertools.count(1)
TEAM = {"id": "T0DEMO", "domain": "handoff-demo"}


def signed_headers(secret: str, body: str, timestamp: int | None = None) -> dict[str, str]:
    ts = int(time.time()) if timestamp is None else timestamp
    sig = SignatureVerifier(secret).generate_signature(timestamp=str(ts), body=body)
    return {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": sig,
            "Content-Type": "application/x-www-form-urlencoded"}


def _trigger() -> str:
    n = next(_seq)
    return f"{int(time.time())}.{n}.{n:032x}"


def block_action(action_id: str, value: str, user: str, channel: str, message_ts: str = "1.000001",
                 block_id: str = "lead_actions", response_url: str | None = None) -> str:
    """The form body of a button click on a message (`payload=` JSON)."""
    n = next(_seq)
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM["id"]},
        "api_app_id": "A0HANDOFF",
        "token": "legacy-verification-token",
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel, "is_ephemeral": False},
        "trigger_id": _trigger(),
        "team": TEAM,
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel, "name": "handoff"},
        "message": {"type": "message", "ts": message_ts, "bot_id": "B0HANDOFF", "text": "card"},
        "response_url": response_url or f"https://hooks.slack.invalid/actions/T0DEMO/{n}/x",
        "actions": [{"action_id": action_id, "block_id": block_id, "value": value, "type": "button",
                     "text": {"type": "plain_text", "text": action_id}, "action_ts": f"{time.time():.6f}"}],
    }
    return urlencode({"payload": json.dumps(payload)})


def users_select_action(action_id: str, block_id: str, selected_user: str, user: str, channel: str,
                        message_ts: str = "1.000001") -> str:
    """The form body of a person picked in a users_select on a message."""
    body = json.loads(parse_qs(block_action(action_id, "", user, channel, message_ts, block_id))["payload"][0])
    act = body["actions"][0]
    act.pop("value")
    act.pop("text")
    act.update(type="users_select", selected_user=selected_user)
    return urlencode({"payload": json.dumps(body)})


def view_submission(callback_id: str, private_metadata: str, user: str, values: dict) -> str:
    payload = {
        "type": "view_submission",
        "team": TEAM,
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM["id"]},
        "api_app_id": "A0HANDOFF",
        "token": "legacy-verification-token",
        "trigger_id": _trigger(),
        "view": {"id": f"V{next(_seq):08d}", "team_id": TEAM["id"], "type": "modal", "callback_id": callback_id,
                 "private_metadata": private_metadata, "state": {"values": values}, "hash": "h",
                 "app_id": "A0HANDOFF", "bot_id": "B0HANDOFF"},
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }
    return urlencode({"payload": json.dumps(payload)})


def select_value(block_id: str, action_id: str, value: str) -> dict:
    return {block_id: {action_id: {"type": "static_select", "selected_option": {
        "text": {"type": "plain_text", "text": value}, "value": value}}}}


def text_value(block_id: str, action_id: str, value: str | None) -> dict:
    return {block_id: {action_id: {"type": "plain_text_input", "value": value}}}


def slash_command(command: str, text: str, user: str, channel: str) -> str:
    return urlencode({"token": "legacy-verification-token", "team_id": TEAM["id"], "team_domain": TEAM["domain"],
                      "channel_id": channel, "channel_name": "handoff", "user_id": user, "user_name": user.lower(),
                      "command": command, "text": text, "api_app_id": "A0HANDOFF",
                      "response_url": "https://hooks.slack.invalid/commands/T0DEMO/1/x", "trigger_id": _trigger()})


def home_action(action_id: str, value: str, user: str, block_id: str = "owner_actions") -> str:
    """A button clicked in App Home: no channel, the container is the home view."""
    body = json.loads(parse_qs(block_action(action_id, value, user, "-", block_id=block_id))["payload"][0])
    view_id = f"VHOME{user}"
    body.pop("channel")
    body.pop("message")
    body["container"] = {"type": "view", "view_id": view_id}
    body["view"] = {"id": view_id, "type": "home", "team_id": TEAM["id"], "callback_id": "", "blocks": []}
    return urlencode({"payload": json.dumps(body)})


def app_home_opened(user: str) -> str:
    """The Events API envelope (JSON) Slack sends when someone opens the app's Home tab."""
    n = next(_seq)
    return json.dumps({
        "token": "legacy-verification-token", "team_id": TEAM["id"], "api_app_id": "A0HANDOFF",
        "type": "event_callback", "event_id": f"Ev{n:010d}", "event_time": int(time.time()),
        "authorizations": [{"team_id": TEAM["id"], "user_id": "U0HANDOFF", "is_bot": True}],
        "event": {"type": "app_home_opened", "user": user, "channel": f"D{user[1:]}", "tab": "home",
                  "event_ts": f"{time.time():.6f}"},
    })
