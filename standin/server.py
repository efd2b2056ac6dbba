"""A local stand-in for the Slack Web API, shared by the tests, the demo and the benchmarks.

It answers the methods Handoff calls, records every call, and can be told to
misbehave: answer 429 with Retry-After or 500 a number of times, or enforce a
per-channel posting limit the way Slack does. Point SLACK_API_URL at `url`.

It refuses what Slack refuses, with Slack's error codes (HTTP 200, `ok: false`):
a channel that is not a Slack id (C…, G…, D…, or a user id U…/W… for a DM) or
was deleted (`delete_channel`) is `channel_not_found` (`invalid_channel` for
files), an archived one (`archive_channel`) `is_archived`, one the bot was
removed from (`remove_bot`) `not_in_channel`; Block Kit that breaks Slack's
documented limits (50 blocks in a message, 100 in a view, block types, text
lengths, unique block ids, …) is `invalid_blocks` for messages and
`invalid_arguments` for views, with Slack's `[ERROR] … [json-pointer:…]`
explanation in `response_metadata.messages`; blocks that are not a JSON array
are `invalid_blocks_format`; a message with neither text nor blocks `no_text`.

Scopes, as Slack enforces them (ops/scopes.py holds the table of what each method needs, from Slack's method
reference): the bot token (`xoxb-…`) has the scopes manifest.yml asks for, unless `set_scopes` says otherwise;
every answer carries `x-oauth-scopes` (what the token has) and `x-accepted-oauth-scopes` (what the method
takes), and a call without its scope answers `missing_scope` with `needed` and `provided`. Channels: a C… id is
a public channel unless `add_channel(…, private=True)`, a G… id a private one; the bot is a member of every
channel until `remove_bot` or `add_channel(…, member=False)`. Posting into a public channel the bot is not in
answers `not_in_channel`, except chat.postMessage when the token has chat:write.public (which covers no file
upload: files.completeUploadExternal needs membership); `conversations.join` makes the bot a member of a public
channel (`is_archived` when archived, `method_not_supported_for_channel_type` for a private one it is in). Slack
hides a private channel from whoever is not in it: every call about it answers `channel_not_found`.
`conversations.info` describes a channel (name, is_private, is_archived, is_member); `users.info` a person
(`add_user`, `deactivate_user`; an id it does not know is `user_not_found`).
"""
from __future__ import annotations

import itertools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qsl

from ops import scopes as slack_scopes
from standin.base import LocalServer


@dataclass
class Call:
    method: str
    params: dict
    at: float = field(default_factory=time.monotonic)
    status: int = 200


class _Bucket:
    def __init__(self, rate: float, burst: int):
        self.rate, self.burst, self.tokens, self.last = rate, float(burst), float(burst), time.monotonic()

    def take(self) -> float:
        """0 when allowed, else seconds until a token is free."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


CHANNEL_ID = re.compile(r"[CGDUW][A-Z0-9]+")


def dm_channel(channel: str) -> str:
    """The conversation a message posted to `channel` lands in: a user id (U…, W…) means their DM with the bot,
    whose id starts with D (made up here from the user's, so that it is stable)."""
    return f"D{channel[1:]}" if channel[:1] in ("U", "W") else channel
BLOCK_TYPES = {"section", "header", "context", "actions", "divider", "image", "input", "rich_text", "file",
               "video", "markdown", "table"}
MESSAGE_BLOCKS, VIEW_BLOCKS = 50, 100


class BlockError(Exception):
    """A Block Kit payload Slack refuses; `str()` is Slack's explanation."""

    def __init__(self, message: str, pointer: str):
        super().__init__(f"{message} [json-pointer:{pointer}]")


def _text_object(obj, pointer: str, limit: int, plain_only: bool = False) -> None:
    if not isinstance(obj, dict) or obj.get("type") not in (("plain_text",) if plain_only else ("plain_text", "mrkdwn")):
        raise BlockError("must be a valid text object" + (" of type plain_text" if plain_only else ""),
                         f"{pointer}/type")
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        raise BlockError("must be more than 0 characters", f"{pointer}/text")
    if len(text) > limit:
        raise BlockError(f"must be less than {limit + 1} characters", f"{pointer}/text")


def _element(el, pointer: str) -> None:
    if not isinstance(el, dict) or not isinstance(el.get("type"), str):
        raise BlockError("must be a valid element", f"{pointer}/type")
    if len(str(el.get("action_id", ""))) > 255:
        raise BlockError("must be less than 256 characters", f"{pointer}/action_id")
    if el["type"] == "button":
        _text_object(el.get("text"), f"{pointer}/text", 75, plain_only=True)
        if len(str(el.get("value", ""))) > 2000:
            raise BlockError("must be less than 2001 characters", f"{pointer}/value")
        if el.get("style") not in (None, "primary", "danger"):
            raise BlockError("must be one of primary, danger", f"{pointer}/style")


def check_blocks(blocks, limit: int, pointer: str = "/blocks") -> None:
    """Raise BlockError where Slack would refuse these blocks (the documented limits the app can reach)."""
    if not isinstance(blocks, list):
        raise BlockError("must be an array", pointer)
    if len(blocks) > limit:
        raise BlockError(f"no more than {limit} items allowed", pointer)
    seen: set[str] = set()
    for i, block in enumerate(blocks):
        at = f"{pointer}/{i}"
        if not isinstance(block, dict) or block.get("type") not in BLOCK_TYPES:
            raise BlockError("must provide a valid block type", f"{at}/type")
        block_id = block.get("block_id")
        if block_id is not None:
            if not isinstance(block_id, str) or not block_id or len(block_id) > 255:
                raise BlockError("must be between 1 and 255 characters", f"{at}/block_id")
            if block_id in seen:
                raise BlockError("must be unique within the message or view", f"{at}/block_id")
            seen.add(block_id)
        kind = block["type"]
        if kind == "section":
            if "text" not in block and "fields" not in block:
                raise BlockError("must provide either text or fields", at)
            if "text" in block:
                _text_object(block["text"], f"{at}/text", 3000)
            fields = block.get("fields", [])
            if not isinstance(fields, list) or len(fields) > 10:
                raise BlockError("no more than 10 items allowed", f"{at}/fields")
            for j, f in enumerate(fields):
                _text_object(f, f"{at}/fields/{j}", 2000)
            if "accessory" in block:
                _element(block["accessory"], f"{at}/accessory")
        elif kind == "header":
            _text_object(block.get("text"), f"{at}/text", 150, plain_only=True)
        elif kind in ("context", "actions"):
            elements = block.get("elements")
            most = 10 if kind == "context" else 25
            if not isinstance(elements, list) or not elements:
                raise BlockError("must provide at least 1 item", f"{at}/elements")
            if len(elements) > most:
                raise BlockError(f"no more than {most} items allowed", f"{at}/elements")
            for j, el in enumerate(elements):
                if kind == "context" and isinstance(el, dict) and el.get("type") in ("plain_text", "mrkdwn"):
                    _text_object(el, f"{at}/elements/{j}", 3000)
                elif kind == "context" and isinstance(el, dict) and el.get("type") == "image":
                    continue
                elif kind == "context":
                    raise BlockError("must be a text object or an image", f"{at}/elements/{j}/type")
                else:
                    _element(el, f"{at}/elements/{j}")
        elif kind == "input":
            _text_object(block.get("label"), f"{at}/label", 2000, plain_only=True)
            if not isinstance(block.get("element"), dict):
                raise BlockError("must provide an element", f"{at}/element")


def _refused(error: str, problem: BlockError | None = None) -> dict:
    body = {"ok": False, "error": error}
    if problem is not None:
        body["errors"] = [str(problem)]
        body["response_metadata"] = {"messages": [f"[ERROR] {problem}"]}
    return body


RESPONSE_URL_USES = 5  # Slack: a response_url may be used five times within thirty minutes
BOT_USER = {"U0HANDOFF": {"name": "handoff", "deleted": False, "is_bot": True}}  # auth.test's user_id


class SlackStandIn(LocalServer):
    thread_name = "slack-standin"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, on_call=None):
        self.calls: list[Call] = []
        self.rejected: list[Call] = []
        self.messages: dict[tuple[str, str], dict] = {}
        self.homes: dict[str, dict] = {}  # user id -> the App Home view last published
        self.uploads: dict[str, bytes] = {}  # file id -> the bytes posted to its upload URL
        self.files: list[dict] = []  # completed uploads: id, title, channel, initial_comment, bytes
        self.on_call = on_call
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._faults: list[tuple] = []  # (method, status, retry_after, error)
        self._limits: dict[str, _Bucket] = {}
        self._limit: tuple[float, int] | None = None
        self._slow: dict[str, float] = {}  # method -> seconds it takes to answer
        self._archived: set[str] = set()  # channels archived: posting answers is_archived
        self._deleted: set[str] = set()  # channels deleted: channel_not_found
        self._without_bot: set[str] = set()  # channels the bot was removed from: not_in_channel
        self._ts = itertools.count(1)
        self._responses: dict[str, int] = {}  # response_url token -> times used
        # What the bot token was granted (manifest.yml's unless set_scopes), and the workspace (see the docstring).
        self.default_scopes = frozenset(slack_scopes.manifest_scopes())
        self.scopes: set[str] = set(self.default_scopes)
        self._private: set[str] = set()  # C… channels that are private (a G… id always is)
        self._names: dict[str, str] = {}  # channel -> its name (else the id, lower-cased)
        self._users: dict[str, dict] = dict(BOT_USER)  # user id -> what users.info says of them
        self._listen(host, port, self._handler())

    @property
    def url(self) -> str:
        return self.base_url + "/api/"

    # Misbehaving ------------------------------------------------------------
    def fail_next(self, times: int, status: int = 500, method: str | None = None,
                  retry_after: float | None = None, error: str | None = None) -> None:
        """The next `times` calls (of `method`, or any) answer `status` (with `error` if given)."""
        with self._lock:
            self._faults.extend([(method, status, retry_after, error)] * times)

    def slow_down(self, method: str, seconds: float) -> None:
        """Answer `method` only after `seconds` (a call is recorded when it is answered)."""
        with self._lock:
            self._slow[method] = seconds

    def archive_channel(self, channel: str) -> None:
        """The channel is archived: posting to it answers `is_archived`, as Slack does."""
        with self._lock:
            self._archived.add(channel)

    def delete_channel(self, channel: str) -> None:
        """The channel is deleted: every call about it answers `channel_not_found`."""
        with self._lock:
            self._deleted.add(channel)

    def remove_bot(self, channel: str) -> None:
        """The bot was removed from the channel: posting answers `not_in_channel` (a private channel:
        `channel_not_found`) until it joins again (`conversations.join`, public channels) or `reset`."""
        with self._lock:
            self._without_bot.add(channel)

    def limit_channel_posts(self, rate: float, burst: int) -> None:
        """Enforce a per-channel chat.postMessage limit, answering 429 with Retry-After beyond it."""
        with self._lock:
            self._limit = (rate, burst)
            self._limits.clear()

    # Scopes, channels and people ---------------------------------------------
    def set_scopes(self, scopes) -> None:
        """The bot token has exactly these scopes from now on (until `reset`, which gives back the manifest's)."""
        with self._lock:
            self.scopes = set(scopes)

    def add_channel(self, channel: str, name: str | None = None, private: bool = False, member: bool = True,
                    archived: bool = False) -> None:
        """A channel as the workspace has it: its name, public or private, whether the bot is in it, archived."""
        with self._lock:
            if name:
                self._names[channel] = name
            (self._private.add if private else self._private.discard)(channel)
            (self._without_bot.discard if member else self._without_bot.add)(channel)
            (self._archived.add if archived else self._archived.discard)(channel)

    def add_user(self, user: str, name: str | None = None, deleted: bool = False, is_bot: bool = False,
                 email: str | None = None) -> None:
        """A person (or a bot) of the workspace, as users.info describes them (`email`: their profile's, which
        users.lookupByEmail finds)."""
        with self._lock:
            self._users[user] = {"name": name or user.lower(), "deleted": deleted, "is_bot": is_bot, "email": email}

    def deactivate_user(self, user: str) -> None:
        """An admin deactivated the account: users.info says `deleted: true`."""
        with self._lock:
            self._users.setdefault(user, {"name": user.lower(), "is_bot": False})["deleted"] = True

    def is_member(self, channel: str) -> bool:
        with self._lock:
            return channel not in self._without_bot

    def oauth_headers(self, method: str, token: str | None) -> dict[str, str]:
        """Slack's scope headers on every answer: what the bot token has, and what the method accepts."""
        headers = {}
        if token and token.startswith("xoxb-"):
            with self._lock:
                headers["x-oauth-scopes"] = ",".join(sorted(self.scopes))
        accepted = slack_scopes.accepted(method)
        if accepted:
            headers["x-accepted-oauth-scopes"] = ",".join(accepted)
        return headers

    def _is_private(self, channel: str) -> bool:
        return channel.startswith("G") or channel in self._private

    def _kind(self, channel) -> str | None:
        if not isinstance(channel, str) or not channel:
            return None
        if channel[0] == "D":
            return slack_scopes.IM
        if channel[0] in "CG":
            with self._lock:
                return slack_scopes.PRIVATE if self._is_private(channel) else slack_scopes.PUBLIC
        return None

    def _scope_refusal(self, method: str, params: dict, token: str) -> dict | None:
        """`missing_scope` when the bot token lacks what `method` needs (on this kind of conversation)."""
        if not token.startswith("xoxb-") or method not in slack_scopes.METHOD_SCOPES:
            return None
        kind = None
        if isinstance(slack_scopes.METHOD_SCOPES[method], dict):
            users = str(params.get("users") or "")
            opening = method == "conversations.open" and users and not params.get("channel")
            kind = (slack_scopes.MPIM if "," in users else slack_scopes.IM) if opening \
                else self._kind(params.get("channel"))
        needed = slack_scopes.needed_for(method, kind)
        with self._lock:
            granted = set(self.scopes)
        if not needed or granted & set(needed):
            return None
        return {"ok": False, "error": "missing_scope", "needed": ",".join(needed),
                "provided": ",".join(sorted(granted))}

    # response_url ------------------------------------------------------------
    def response_url(self) -> str:
        """A fresh response_url, as Slack puts in a click or a command, that this stand-in answers."""
        token = f"{next(self._ts):06d}"
        with self._lock:
            self._responses[token] = 0
        return f"{self.base_url}/response/{token}"

    def respond(self, token: str, raw: bytes, content_type: str) -> tuple[int, dict]:
        """Slack's rules for a response_url: a JSON message with text or blocks, at most five uses."""
        with self._lock:
            uses = self._responses.get(token)
            if uses is None:
                return 404, {"ok": False, "error": "expired_url"}
            if uses >= RESPONSE_URL_USES:
                return 404, {"ok": False, "error": "used_url"}
            try:
                message = json.loads(raw) if "json" in content_type else None
            except ValueError:
                message = None
            if not isinstance(message, dict):
                return 400, {"ok": False, "error": "invalid_payload"}
            if not message.get("text") and not message.get("blocks"):
                return 400, {"ok": False, "error": "no_text"}
            self._responses[token] = uses + 1
            self.calls.append(Call("response_url", message))
            self._cond.notify_all()
        return 200, {"ok": True}

    # Reading what was sent --------------------------------------------------
    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def wait_for(self, predicate, timeout: float = 10.0) -> bool:
        """Block until predicate(calls) is true or the timeout passes."""
        return self._wait_until(lambda: predicate(list(self.calls)), timeout)

    def wait_calls(self, method: str, count: int, timeout: float = 10.0) -> list[Call]:
        self.wait_for(lambda calls: sum(c.method == method for c in calls) >= count, timeout)
        return self.calls_to(method)

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.rejected.clear()
            self.homes.clear()
            self.uploads.clear()
            self.files.clear()
            self._faults.clear()
            self._slow.clear()
            self._archived.clear()
            self._deleted.clear()
            self._without_bot.clear()
            self.scopes = set(self.default_scopes)
            self._private.clear()
            self._names.clear()
            self._users = dict(BOT_USER)
            self._limit = None
            self._limits.clear()

    # Answering --------------------------------------------------------------
    def _fault_for(self, method: str):
        with self._lock:
            for i, (m, status, retry_after, error) in enumerate(self._faults):
                if m is None or m == method:
                    del self._faults[i]
                    return status, retry_after, error
        return None

    def _rate_limited(self, method: str, params: dict) -> float:
        if method != "chat.postMessage":
            return 0.0
        with self._lock:
            if self._limit is None:
                return 0.0
            bucket = self._limits.setdefault(params.get("channel", ""), _Bucket(*self._limit))
            return bucket.take()

    def answer(self, method: str, params: dict, token: str | None) -> tuple[int, dict, dict]:
        fault = self._fault_for(method)
        if fault is not None:
            status, retry_after, error = fault
            headers = {"Retry-After": str(int(retry_after or 1))} if status == 429 else {}
            error = error or ("ratelimited" if status == 429 else "internal_error")
            return status, headers, {"ok": False, "error": error}
        wait = self._rate_limited(method, params)
        if wait > 0:
            return 429, {"Retry-After": str(max(1, round(wait)))}, {"ok": False, "error": "ratelimited"}
        if not token:
            return 200, {}, {"ok": False, "error": "not_authed"}
        if method == "apps.connections.open" or token.startswith("xapp-"):
            return 200, {}, self._app_level(method, token)
        refused = self._scope_refusal(method, params, token)
        if refused is not None:
            return 200, {}, refused
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return 200, {}, {"ok": False, "error": "unknown_method"}
        return 200, {}, handler(params)

    # Socket Mode: an app-level token (xapp-…) opens connections and does nothing else; nothing else opens them.
    socket_mode = None  # a SocketModeStandIn (standin/socket_mode.py) that hands out the URLs, when attached

    def _app_level(self, method: str, token: str) -> dict:
        if method != "apps.connections.open":
            return {"ok": False, "error": "not_allowed_token_type"}
        if self.socket_mode is None:  # no app with Socket Mode on behind this stand-in
            return {"ok": False, "error": "invalid_auth" if token.startswith("xapp-") else "not_allowed_token_type"}
        return self.socket_mode.open_connection(token)

    def _new_ts(self) -> str:
        return f"{int(time.time())}.{next(self._ts):06d}"

    def _m_auth_test(self, p):
        return {"ok": True, "url": "https://handoff-demo.slack.invalid/", "team": "Handoff Demo",
                "user": "handoff", "team_id": "T0DEMO", "user_id": "U0HANDOFF", "bot_id": "B0HANDOFF"}

    def _channel_error(self, channel, posting: bool = True, public_ok: bool = False) -> str | None:
        """Slack's answer about the channel of a call: None when the bot may use it. `public_ok`: the call may
        post into a public channel the bot is not in when the token has chat:write.public (chat.postMessage)."""
        if not isinstance(channel, str) or not CHANNEL_ID.fullmatch(channel):
            return "channel_not_found"
        with self._lock:
            if channel in self._deleted:
                return "channel_not_found"
            if channel in self._without_bot and self._is_private(channel):  # hidden from non-members
                return "channel_not_found"
            if posting and channel in self._archived:
                return "is_archived"
            if posting and channel in self._without_bot and channel[0] in "CG" \
                    and not (public_ok and "chat:write.public" in self.scopes):
                return "not_in_channel"
        return None

    @staticmethod
    def _message_error(p) -> dict | None:
        """Slack's answer about a message's content: None when it may be posted."""
        blocks = p.get("blocks")
        if isinstance(blocks, str):  # sent as a form field that is not JSON
            return _refused("invalid_blocks_format")
        if blocks is not None and not isinstance(blocks, list):
            return _refused("invalid_blocks_format")
        if not p.get("text") and not blocks and not p.get("attachments"):
            return _refused("no_text")
        if blocks:
            try:
                check_blocks(blocks, MESSAGE_BLOCKS)
            except BlockError as problem:
                return _refused("invalid_blocks", problem)
        return None

    def _m_chat_postMessage(self, p):
        error = self._channel_error(p.get("channel"), public_ok=True)
        if error:
            return _refused(error)
        refused = self._message_error(p)
        if refused:
            return refused
        ts = self._new_ts()
        msg = {"ts": ts, "text": p.get("text"), "blocks": p.get("blocks"), "thread_ts": p.get("thread_ts")}
        channel = dm_channel(p["channel"])  # as Slack does: a message to a user goes into their DM, a D… id
        with self._lock:
            self.messages[(channel, ts)] = msg
        return {"ok": True, "channel": channel, "ts": ts, "message": msg}

    def _m_chat_update(self, p):
        error = self._channel_error(p.get("channel"), posting=False)
        if error:
            return _refused(error)
        if p["channel"][0] in "UW":  # Slack edits a DM by its conversation (D…), never by the user's id
            return {"ok": False, "error": "channel_not_found"}
        key = (p.get("channel"), p.get("ts"))
        refused = self._message_error(p)
        if refused:
            return refused
        with self._lock:
            if key not in self.messages:
                return {"ok": False, "error": "message_not_found"}
            self.messages[key].update(text=p.get("text"), blocks=p.get("blocks"))
        return {"ok": True, "channel": p["channel"], "ts": p["ts"]}

    def _m_chat_postEphemeral(self, p):
        error = self._channel_error(p.get("channel"))
        if error:
            return _refused(error)
        if not p.get("user"):
            return {"ok": False, "error": "user_not_in_channel"}
        refused = self._message_error(p)
        if refused:
            return refused
        return {"ok": True, "message_ts": self._new_ts()}

    def _m_chat_getPermalink(self, p):
        ts = str(p.get("message_ts", "")).replace(".", "")
        return {"ok": True, "channel": p.get("channel"),
                "permalink": f"https://handoff-demo.slack.invalid/archives/{p.get('channel')}/p{ts}"}

    def _m_views_open(self, p):
        if not p.get("trigger_id"):
            return {"ok": False, "error": "invalid_trigger_id"}
        return {"ok": True, "view": {"id": f"V{next(self._ts):08d}", **(p.get("view") or {})}}

    def _m_views_publish(self, p):
        view = p.get("view") or {}
        if not p.get("user_id") or view.get("type") != "home":
            return {"ok": False, "error": "invalid_arguments"}
        try:  # a view's bad blocks are invalid_arguments, unlike a message's
            check_blocks(view.get("blocks") or [], VIEW_BLOCKS, "/view/blocks")
        except BlockError as problem:
            return _refused("invalid_arguments", problem)
        with self._lock:
            self.homes[p["user_id"]] = view
        return {"ok": True, "view": {"id": f"V{next(self._ts):08d}", **view}}

    def _m_files_getUploadURLExternal(self, p):
        if not p.get("filename") or not str(p.get("length", "")).isdigit():
            return {"ok": False, "error": "invalid_arguments"}
        file_id = f"F{next(self._ts):08d}"
        return {"ok": True, "file_id": file_id, "upload_url": self.url.replace("/api/", f"/upload/{file_id}")}

    def _m_files_completeUploadExternal(self, p):
        error = self._channel_error(p["channel_id"]) if p.get("channel_id") else None
        if error:  # sharing a file needs membership: chat:write.public does not cover uploads
            return _refused("not_in_channel" if error == "not_in_channel" else "invalid_channel")
        files = p.get("files")
        if isinstance(files, str):
            files = json.loads(files)
        done = []
        with self._lock:
            for f in files or []:
                if f.get("id") not in self.uploads:
                    return {"ok": False, "error": "file_not_found"}
                record = {"id": f["id"], "title": f.get("title"), "channel": p.get("channel_id"),
                          "initial_comment": p.get("initial_comment"), "bytes": self.uploads[f["id"]]}
                self.files.append(record)
                done.append({"id": f["id"], "title": f.get("title")})
        return {"ok": True, "files": done}

    def _m_conversations_open(self, p):
        users = p.get("users", "")
        return {"ok": True, "channel": {"id": "D" + users.split(",")[0][1:]}}

    def _conversation(self, channel: str) -> dict:
        """A channel as conversations.info and conversations.join describe it (call with the lock held)."""
        private = self._is_private(channel)
        name = self._names.get(channel) or channel.lower()
        return {"id": channel, "name": name, "name_normalized": name, "created": 1700000000,
                "is_channel": channel[0] == "C", "is_group": channel[0] == "G", "is_im": False, "is_mpim": False,
                "is_private": private, "is_archived": channel in self._archived, "is_general": False,
                "is_shared": False, "is_member": channel not in self._without_bot}

    def _m_conversations_info(self, p):
        channel = p.get("channel")
        if isinstance(channel, str) and channel.startswith("D") and CHANNEL_ID.fullmatch(channel):
            return {"ok": True, "channel": {"id": channel, "is_im": True, "user": "U" + channel[1:],
                                            "is_archived": False}}
        error = self._channel_error(channel, posting=False)
        if error:
            return _refused(error)
        with self._lock:
            return {"ok": True, "channel": self._conversation(channel)}

    def _m_conversations_join(self, p):
        channel = p.get("channel")
        if isinstance(channel, str) and channel[:1] in ("D", "U", "W") and CHANNEL_ID.fullmatch(channel):
            return _refused("method_not_supported_for_channel_type")
        error = self._channel_error(channel, posting=False)
        if error:
            return _refused(error)
        with self._lock:
            if self._is_private(channel):  # private channels are joined by invitation only
                return _refused("method_not_supported_for_channel_type")
            if channel in self._archived:
                return _refused("is_archived")
            if channel not in self._without_bot:
                return {"ok": True, "channel": self._conversation(channel), "warning": "already_in_channel",
                        "response_metadata": {"warnings": ["already_in_channel"]}}
            self._without_bot.discard(channel)
            return {"ok": True, "channel": self._conversation(channel)}

    def _m_users_info(self, p):
        user = p.get("user")
        with self._lock:
            known = self._users.get(user) if isinstance(user, str) else None
            if known is None:
                return _refused("user_not_found")
            name = known["name"]
            profile = {"real_name": name, "display_name": name}
            if known.get("email") and "users:read.email" in self.scopes:  # Slack shows it only with that scope
                profile["email"] = known["email"]
            return {"ok": True, "user": {
                "id": user, "team_id": "T0DEMO", "name": name, "real_name": name,
                "deleted": known.get("deleted", False), "is_bot": known.get("is_bot", False), "is_app_user": False,
                "tz": "Asia/Tokyo", "profile": profile}}

    def _m_users_lookupByEmail(self, p):
        """Slack finds a member by their profile's email, whatever its case; none: `users_not_found`."""
        email = p.get("email")
        if not isinstance(email, str) or not email:
            return _refused("invalid_arguments")
        with self._lock:
            for user, known in self._users.items():
                if (known.get("email") or "").lower() == email.lower():
                    name = known["name"]
                    return {"ok": True, "user": {
                        "id": user, "team_id": "T0DEMO", "name": name, "real_name": name,
                        "deleted": known.get("deleted", False), "is_bot": known.get("is_bot", False),
                        "profile": {"real_name": name, "display_name": name, "email": known["email"]}}}
        return _refused("users_not_found")

    def _record(self, call: Call, rejected: bool) -> None:
        with self._cond:
            (self.rejected if rejected else self.calls).append(call)
            self._cond.notify_all()
        if self.on_call is not None and not rejected:
            self.on_call(call)

    def _handler(self):
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _control(self) -> bool:
                """GET /_calls: what was recorded, for a stand-in running in another process."""
                if not self.path.startswith("/_calls"):
                    return False
                with standin._lock:
                    data = json.dumps({
                        "calls": [{"method": c.method, "params": c.params, "status": c.status} for c in standin.calls],
                        "rejected": [{"method": c.method, "status": c.status} for c in standin.rejected],
                    }).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return True

            def _upload(self, raw: bytes) -> bool:
                """The upload URL handed out by files.getUploadURLExternal: keep the bytes."""
                if not self.path.startswith("/upload/"):
                    return False
                with standin._lock:
                    standin.uploads[self.path.rsplit("/", 1)[-1]] = raw
                data = b"OK - " + str(len(raw)).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return True

            def _response_url(self, raw: bytes) -> bool:
                """A response_url handed out with a click or command (`SlackStandIn.response_url`)."""
                if not self.path.startswith("/response/"):
                    return False
                status, answer = standin.respond(self.path.rsplit("/", 1)[-1], raw,
                                                 self.headers.get("Content-Type", ""))
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return True

            def do_POST(self):
                if self._control():
                    return
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                if self._upload(raw) or self._response_url(raw):
                    return
                ctype = self.headers.get("Content-Type", "")
                if "json" in ctype:
                    params = json.loads(raw or b"{}")
                else:
                    params = dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
                    for k in ("blocks", "view", "attachments"):
                        if isinstance(params.get(k), str):
                            try:
                                params[k] = json.loads(params[k])
                            except ValueError:
                                pass
                method = self.path.rsplit("/", 1)[-1].split("?")[0]
                auth = self.headers.get("Authorization", "")
                token = auth.removeprefix("Bearer ").strip() or params.get("token")
                with standin._lock:
                    slow = standin._slow.get(method, 0.0)
                if slow:
                    time.sleep(slow)
                status, headers, body = standin.answer(method, params, token)
                headers = {**standin.oauth_headers(method, token), **headers}
                standin._record(Call(method, params, status=status), rejected=status != 200 or not body.get("ok"))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST

        return Handler


def main(argv=None) -> int:
    """Run the stand-in on its own: `python -m standin.server --port 8099 [--limit 10:3]`."""
    import argparse

    p = argparse.ArgumentParser(description="Local Slack Web API stand-in")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--limit", help="RATE:BURST per-channel chat.postMessage limit, e.g. 10:3")
    p.add_argument("--scopes", help="the bot token's scopes, comma-separated (default: manifest.yml's)")
    args = p.parse_args(argv)
    standin = SlackStandIn(port=args.port)
    if args.scopes is not None:
        standin.set_scopes(s.strip() for s in args.scopes.split(",") if s.strip())
    if args.limit:
        rate, burst = args.limit.split(":")
        standin.limit_channel_posts(float(rate), int(burst))
    return standin.serve_until_interrupted()


if __name__ == "__main__":
    raise SystemExit(main())
