"""Which Slack scopes Handoff needs, derived from the code that calls Slack (docs/operating.md#scopes).

One table, METHOD_SCOPES, says which bot scope each Slack Web API method needs (from each method's reference
page, "Required scopes" for a bot token). Three things use it:

- `python bot.py doctor` (doctor.py) compares the scopes the token was granted (Slack's `x-oauth-scopes`
  response header) with `app_scopes()`, the scopes the code in this checkout uses;
- the least-privilege test compares `app_scopes()` with the bot scopes manifest.yml asks for, both ways;
- the Slack stand-in (standin/server.py) refuses a call with `missing_scope` as Slack does.

`app_scopes()` reads the source with `ast`: every Slack Web API call the app makes, as slack_sdk client methods
(`client.chat_postMessage(…)`, `self.client.auth_test()`), `api_call("method", …)` and Bolt's `say(…)`;
each client method is mapped to the Web API methods it calls by reading slack_sdk's own client source
(`files_upload_v2` is `files.getUploadURLExternal` then `files.completeUploadExternal`). A call it cannot map
(a method name that is not a literal, a Web API method missing from the table, an event the manifest
subscribes to whose scope is unknown) is a problem it reports, never a scope it silently leaves out.
"""
from __future__ import annotations

import ast
import functools
import inspect
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the checkout
MANIFEST = ROOT / "manifest.yml"

PUBLIC, PRIVATE, IM, MPIM = "public", "private", "im", "mpim"

# Slack Web API method -> the bot scope it needs: one scope, None for none, or (the conversations.* methods)
# one scope per kind of conversation it is called on. From Slack's method reference, bot tokens.
METHOD_SCOPES: dict[str, str | dict[str, str] | None] = {
    "auth.test": None,
    "apps.connections.open": None,  # Socket Mode: an app-level token's connections:write, not a bot scope
    "chat.postMessage": "chat:write",
    "chat.postEphemeral": "chat:write",
    "chat.update": "chat:write",
    "chat.delete": "chat:write",
    "chat.scheduleMessage": "chat:write",
    "chat.getPermalink": None,
    "conversations.info": {PUBLIC: "channels:read", PRIVATE: "groups:read", IM: "im:read", MPIM: "mpim:read"},
    "conversations.join": {PUBLIC: "channels:join"},  # public channels only: private ones are joined by invitation
    "conversations.open": {IM: "im:write", MPIM: "mpim:write"},
    "files.getUploadURLExternal": "files:write",
    "files.completeUploadExternal": "files:write",
    "files.upload": "files:write",
    "files.info": "files:read",
    "users.info": "users:read",
    "users.lookupByEmail": "users:read.email",
    "views.open": None,
    "views.publish": None,
    "views.push": None,
    "views.update": None,
}

# A scope that only works beside another one (Slack's scope reference says so).
REQUIRES = {"chat:write.public": "chat:write", "users:read.email": "users:read"}

# Where Handoff posts: HANDOFF_CHANNEL, DIGEST_CHANNEL and MARKETING_CHANNEL may each be a public or a private
# channel, so a conversations.* method needs the scope of both kinds; DMs go to a user id by chat.postMessage.
CHANNEL_KINDS = (PUBLIC, PRIVATE)

# Bolt's listener arguments that call the Web API themselves.
BOLT_ARGUMENTS = {"say": "chat.postMessage"}

# Events the manifest may subscribe to -> the scope each needs (None: none), from Slack's event reference.
EVENT_SCOPES: dict[str, str | None] = {
    "app_home_opened": None,
    "app_mention": "app_mentions:read",
    "message.im": "im:history",
    "message.channels": "channels:history",
}

# The code of the app (what runs against Slack), and what is not: a new top-level module or package must be
# put in one of the two (the least-privilege test checks), so nothing that calls Slack is left unread.
APP_CODE = ("bot.py", "doctor.py", "runtime.py", "prefork.py", "settings.py", "logsafe.py", "handlers", "jobs", "models", "blocks", "outbox",
            "ops")
NOT_APP_CODE = ("standin", "tests", "bench", "migrations")  # the local stand-ins and demo, tests, benchmarks


@dataclass
class Derived:
    """What the code calls: Slack Web API method -> where (file:line), and what could not be mapped."""

    methods: dict[str, list[str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def add(self, method: str, where: str) -> None:
        self.methods.setdefault(method, []).append(where)


@dataclass
class Needs:
    """The scopes the app needs, why (scope -> the methods or manifest features), and what could not be mapped."""

    scopes: set[str]
    why: dict[str, list[str]]
    problems: list[str]


# slack_sdk's client ---------------------------------------------------------------------------------------
@functools.cache
def client_methods() -> dict[str, frozenset[str]]:
    """Each public method of slack_sdk's WebClient -> the Web API methods it calls, read from its source."""
    from slack_sdk.web import client as sdk_client

    tree = ast.parse(inspect.getsource(sdk_client))
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "WebClient")
    direct: dict[str, set[str]] = {}
    calls: dict[str, set[str]] = {}
    for fn in cls.body:
        if not isinstance(fn, ast.FunctionDef) or fn.name.startswith("_"):
            continue
        direct[fn.name], calls[fn.name] = set(), set()
        for node in ast.walk(fn):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "self"):
                continue
            if node.func.attr == "api_call":
                name = _literal(node.args[0] if node.args else _keyword(node, "api_method"))
                if name:
                    direct[fn.name].add(name)
            else:
                calls[fn.name].add(node.func.attr)

    def resolve(name: str, seen: frozenset[str]) -> set[str]:
        found = set(direct.get(name, ()))
        for other in calls.get(name, ()):
            if other in direct and other not in seen:
                found |= resolve(other, seen | {other})
        return found

    return {name: frozenset(resolve(name, frozenset({name}))) for name in direct if name != "api_call"}


def _literal(node) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _keyword(call: ast.Call, name: str):
    return next((k.value for k in call.keywords if k.arg == name), None)


# The app's code -------------------------------------------------------------------------------------------
def _forwarding_calls(tree: ast.AST) -> set[int]:
    """The `super().api_call(api_method, …)` of a client subclass's own `api_call(self, api_method, …)` (a
    client that counts its calls, ops/slack_client.py): it calls whatever method its caller names, which is
    where the method is read."""
    found = set()
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) and fn.name == "api_call" and len(fn.args.args) >= 2:
            param = fn.args.args[1].arg
            for call in ast.walk(fn):
                if (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "api_call"
                        and isinstance(call.func.value, ast.Call) and isinstance(call.func.value.func, ast.Name)
                        and call.func.value.func.id == "super" and call.args
                        and isinstance(call.args[0], ast.Name) and call.args[0].id == param):
                    found.add(id(call))
    return found


def calls_in(source: str, filename: str = "<source>") -> Derived:
    """The Slack Web API methods one module calls, and the calls it cannot map to a method."""
    derived = Derived()
    methods = client_methods()
    tree = ast.parse(source, filename)
    forwarded = _forwarding_calls(tree)
    for node in ast.walk(tree):
        where = f"{filename}:{getattr(node, 'lineno', 0)}"
        if id(node) in forwarded:
            continue
        if isinstance(node, ast.Attribute) and node.attr in methods:
            # A client method, called or handed on (`client.chat_postMessage(…)`, `send = client.chat_update`).
            for method in methods[node.attr]:
                derived.add(method, where)
            if not methods[node.attr]:
                derived.problems.append(f"{where}: WebClient.{node.attr} calls no Web API method that its source "
                                        "names: map it by hand")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "api_call":
            name = _literal(node.args[0] if node.args else _keyword(node, "api_method"))
            if name:
                derived.add(name, where)
            else:
                derived.problems.append(f"{where}: api_call(…) with a method name that is not a literal")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr" \
                and len(node.args) >= 2:
            name = _literal(node.args[1])
            if name in methods:
                for method in methods[name]:
                    derived.add(method, where)
            elif name is None and "client" in ast.unparse(node.args[0]).lower():
                derived.problems.append(f"{where}: getattr on a Slack client with a name that is not a literal")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            # Bolt hands a listener `say`, which posts with chat.postMessage when it is called.
            params = {a.arg for a in [*node.args.args, *node.args.kwonlyargs]} & BOLT_ARGUMENTS.keys()
            for inner in ast.walk(node):
                if isinstance(inner, ast.Call) and isinstance(inner.func, ast.Name) and inner.func.id in params:
                    derived.add(BOLT_ARGUMENTS[inner.func.id], f"{filename}:{inner.lineno}")
    return derived


def app_files(root: Path = ROOT) -> list[Path]:
    """The app's Python files under `root` (a checkout has them all; the least-privilege test says so)."""
    files: list[Path] = []
    for name in APP_CODE:
        path = root / name
        if path.suffix == ".py":
            files += [path] if path.exists() else []
        else:
            files += sorted(path.rglob("*.py"))
    return files


def methods_used(root: Path = ROOT) -> Derived:
    """Every Slack Web API method the app's code calls (file:line of each call), and what cannot be mapped."""
    derived = Derived()
    for path in app_files(root):
        found = calls_in(path.read_text(encoding="utf-8"), str(path.relative_to(root)))
        for method, places in found.methods.items():
            for where in places:
                derived.add(method, where)
        derived.problems += found.problems
    return derived


# Scopes -------------------------------------------------------------------------------------------------
def accepted(method: str) -> tuple[str, ...]:
    """Every scope that lets a bot call `method` on some kind of conversation (Slack's x-accepted-oauth-scopes)."""
    needed = METHOD_SCOPES.get(method)
    if needed is None:
        return ()
    return (needed,) if isinstance(needed, str) else tuple(dict.fromkeys(needed.values()))


def needed_for(method: str, kind: str | None = None) -> tuple[str, ...]:
    """The scopes that let a bot call `method` on a conversation of `kind` (any of them; () for none needed).
    For a conversations.* method on a kind it does not serve (joining a DM), ()."""
    needed = METHOD_SCOPES.get(method)
    if needed is None or isinstance(needed, str):
        return () if needed is None else (needed,)
    if kind is None:
        return tuple(dict.fromkeys(needed.values()))
    return (needed[kind],) if kind in needed else ()


def scopes_for(methods, kinds=CHANNEL_KINDS) -> tuple[dict[str, list[str]], list[str]]:
    """scope -> the methods that need it, for `methods` called on conversations of `kinds`; and the methods the
    table does not know (a problem: look the method up in Slack's reference and add it to METHOD_SCOPES)."""
    why: dict[str, list[str]] = {}
    unknown = []
    for method in sorted(methods):
        if method not in METHOD_SCOPES:
            unknown.append(method)
            continue
        needed = METHOD_SCOPES[method]
        if needed is None:
            continue
        for scope in [needed] if isinstance(needed, str) else [needed[k] for k in kinds if k in needed]:
            why.setdefault(scope, []).append(method)
    return why, unknown


# The manifest ---------------------------------------------------------------------------------------------
@functools.cache
def _manifest(path: str) -> dict:
    import yaml

    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f) or {}


def manifest(path: Path = MANIFEST) -> dict:
    return _manifest(str(path))


def manifest_scopes(path: Path = MANIFEST) -> frozenset[str]:
    """The bot scopes manifest.yml asks for."""
    return frozenset(((manifest(path).get("oauth_config") or {}).get("scopes") or {}).get("bot") or ())


def feature_scopes(data: dict) -> tuple[dict[str, list[str]], list[str]]:
    """scope -> the manifest features that need it (slash commands and shortcuts: `commands`; each bot event
    its own), and the events whose scope is not known."""
    why: dict[str, list[str]] = {}
    problems = []
    features = data.get("features") or {}
    for feature in ("slash_commands", "shortcuts"):
        if features.get(feature):
            why.setdefault("commands", []).append(f"features.{feature}")
    events = ((data.get("settings") or {}).get("event_subscriptions") or {}).get("bot_events") or ()
    for event in events:
        if event not in EVENT_SCOPES:
            problems.append(f"manifest.yml subscribes to the event {event}, whose scope ops/scopes.py does not know")
        elif EVENT_SCOPES[event]:
            why.setdefault(EVENT_SCOPES[event], []).append(f"event {event}")
    return why, problems


def app_scopes(root: Path = ROOT) -> Needs:
    """Every bot scope this checkout of Handoff uses: its Web API calls and its manifest's features."""
    derived = methods_used(root)
    why, unknown = scopes_for(derived.methods)
    problems = list(derived.problems)
    problems += [f"{m} (called at {', '.join(derived.methods[m][:3])}) is not in ops/scopes.METHOD_SCOPES: look "
                 "its scopes up in Slack's method reference and add it" for m in unknown]
    features, feature_problems = feature_scopes(manifest(root / "manifest.yml"))
    for scope, reasons in features.items():
        why.setdefault(scope, []).extend(reasons)
    for scope, base in REQUIRES.items():
        if scope in why:
            why.setdefault(base, []).append(f"{scope} needs it")
    return Needs(scopes=set(why), why=why, problems=problems + feature_problems)
