"""`python bot.py doctor`: the installation checked against the live services (docs/operating.md#the-doctor).

Plain functions, each returning its checks: a Check is passed (✓) or failed (✗) with a text catalog key whose
text names the fix. `run` runs every part at once, each with short timeouts, and never raises: a part that
cannot reach its service (Slack, the database, HubSpot, an endpoint) says so in its own line, and the other
parts are checked all the same. Nothing here changes anything: every call reads.
"""
from __future__ import annotations

import http.client
import logging
import re
import urllib.error
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError

from blocks.texts import t
from ops import scopes

log = logging.getLogger("handoff.doctor")
QUIET = logging.getLogger("handoff.doctor.slack_sdk")  # the client's own error logs: every failure is a line here
QUIET.setLevel(logging.CRITICAL)

TIMEOUT = 5.0  # seconds for each call to a service
CHANNEL_SETTINGS = ("HANDOFF_CHANNEL", "DIGEST_CHANNEL", "MARKETING_CHANNEL")  # DIGEST_CHANNEL defaults to HANDOFF's
PEOPLE_SETTINGS = ("MANAGER_IDS", "SALES_REP_IDS")
CHANNEL_ID = re.compile(r"[CG][A-Z0-9]{2,}")
TOKEN_ERRORS = {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired",
                "not_allowed_token_type", "team_access_not_granted"}
TRANSIENT_ERRORS = {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
MIN_WEBHOOK_TOKEN = 32
MAKE_TOKEN = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'


@dataclass(frozen=True)
class Text:
    """A piece of a line that is itself in the catalog (rendered in the line's language)."""

    key: str
    params: dict = field(default_factory=dict)

    def render(self, lang: str) -> str:
        return t(self.key, lang, **{k: v.render(lang) if isinstance(v, Text) else v for k, v in self.params.items()})


@dataclass(frozen=True)
class Check:
    ok: bool
    key: str
    params: dict = field(default_factory=dict)

    def text(self, lang: str) -> str:
        return Text(self.key, self.params).render(lang)

    def line(self, lang: str) -> str:
        return f"{'✓' if self.ok else '✗'} {self.text(lang)}"


def good(key: str, **params) -> Check:
    return Check(True, key, params)


def bad(key: str, **params) -> Check:
    return Check(False, key, params)


def run(settings, timeout: float = TIMEOUT, root: Path = scopes.ROOT) -> list[Check]:
    """Every check, in a fixed order; the parts run at the same time, so the whole takes about one timeout."""
    client = WebClient(token=settings.SLACK_BOT_TOKEN, base_url=settings.SLACK_API_URL, timeout=timeout,
                       retry_handlers=[], logger=QUIET)
    parts: list[tuple[str, Callable[[], list[Check]]]] = [
        ("Slack", lambda: slack_token(settings, client, root)),
        ("ROUTING_FILE", lambda: routing(settings)),
        ("channels", lambda: channels(settings, client)),
        ("people", lambda: people(settings, client)),
        ("database", lambda: database(settings, timeout)),
        ("LEAD_WEBHOOK_TOKEN", lambda: webhook_token(settings)),
        ("HubSpot", lambda: hubspot(settings, timeout)),
        ("Salesforce", lambda: salesforce(settings, timeout)),
        ("EVENT_WEBHOOK_URLS", lambda: event_endpoints(settings, timeout)),
    ]
    with ThreadPoolExecutor(max_workers=len(parts), thread_name_prefix="doctor") as pool:
        futures = [pool.submit(_guarded, name, part) for name, part in parts]
        return [check for future in futures for check in future.result()]


def _guarded(name: str, part: Callable[[], list[Check]]) -> list[Check]:
    """A part that fails in a way it did not expect is one ✗ line, not a traceback."""
    try:
        return part()
    except Exception as exc:
        log.debug("doctor: %s could not be checked", name, exc_info=exc)
        return [bad("doctor.crashed", name=name, error=_one_line(exc))]


# Slack -----------------------------------------------------------------------------------------------------
class SlackTrouble(Exception):
    """What stops any Slack call (no route, a refused token, Slack down), as the line that says so."""

    def __init__(self, check: Check):
        super().__init__(check.key)
        self.check = check

    def about(self, what: str) -> Check:
        """The same line, for the thing that could not be checked (a channel, a list of people)."""
        return bad("doctor.about", what=what, problem=Text(self.check.key, self.check.params))


def _slack(settings, fn, method: str, **kwargs):
    """One Web API call: its answer, or SlackApiError for the caller to read, or SlackTrouble."""
    try:
        return fn(**kwargs)
    except SlackApiError as exc:
        error = _error(exc)
        if error in TOKEN_ERRORS:
            raise SlackTrouble(bad("doctor.token.refused", error=error)) from None
        status = exc.response.status_code
        if status >= 500 or status == 429 or error in TRANSIENT_ERRORS:
            raise SlackTrouble(bad("doctor.slack.down", what=error or f"HTTP {status}", method=method)) from None
        raise
    except (SlackRequestError, urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        raise SlackTrouble(bad("doctor.slack.unreachable", url=settings.SLACK_API_URL, method=method,
                               error=_one_line(getattr(exc, "reason", None) or exc))) from None


def _error(exc: SlackApiError) -> str:
    data = exc.response.data if isinstance(exc.response.data, dict) else {}
    return _one_line(data.get("error") or "")[:200]


def _header(headers, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return value[0] if isinstance(value, list) else value
    return None


def granted_scopes(headers) -> set[str] | None:
    """The scopes the token has, from Slack's `x-oauth-scopes` header (None when the answer has none)."""
    value = _header(headers, "x-oauth-scopes")
    return None if value is None else {s.strip() for s in value.split(",") if s.strip()}


def slack_token(settings, client: WebClient, root: Path = scopes.ROOT) -> list[Check]:
    """The token works (auth.test), and it has every scope the app uses."""
    if not settings.SLACK_BOT_TOKEN:
        return [bad("doctor.token.unset"), bad("doctor.scopes.unchecked")]
    try:
        answer = _slack(settings, client.auth_test, "auth.test")
    except SlackTrouble as trouble:
        return [trouble.check, bad("doctor.scopes.unchecked")]
    except SlackApiError as exc:
        return [bad("doctor.slack.error", error=_error(exc), method="auth.test"), bad("doctor.scopes.unchecked")]
    return [good("doctor.token.ok", user=answer.get("user") or answer.get("user_id"), team=answer.get("team")),
            scope_check(granted_scopes(answer.headers), scopes.app_scopes(root))]


def scope_check(granted: set[str] | None, needs: scopes.Needs) -> Check:
    if needs.problems:
        return bad("doctor.scopes.underived", problems="; ".join(needs.problems[:3]))
    if granted is None:
        return bad("doctor.scopes.no_header")
    used = ", ".join(sorted(needs.scopes))
    missing = sorted(needs.scopes - granted)
    if missing:
        named = "; ".join(f"{s} ({', '.join(dict.fromkeys(needs.why[s]))})" for s in missing)  # and what needs it
        return bad("doctor.scopes.missing", missing=named)
    extra = sorted(granted - needs.scopes)
    if extra:
        return good("doctor.scopes.extra", n=len(needs.scopes), scopes=used, extra=", ".join(extra))
    return good("doctor.scopes.ok", n=len(needs.scopes), scopes=used)


def channels(settings, client: WebClient) -> list[Check]:
    """Each configured channel (one line per channel, naming every setting that holds it)."""
    results, held_by = [], {}
    for name in CHANNEL_SETTINGS:
        value = getattr(settings, name)
        if not value:
            if name != "DIGEST_CHANNEL":  # unset only when HANDOFF_CHANNEL is, which says so
                results.append(bad("doctor.channel.unset", setting=name))
            continue
        held_by.setdefault(value, []).append(name)
    for team in routed_teams(settings):
        held_by.setdefault(team.channel, []).append(f"ROUTING_FILE {team.id}")
    return results + [channel(settings, client, value, ", ".join(names)) for value, names in held_by.items()]


def channel(settings, client: WebClient, value: str, names: str) -> Check:
    """The channel exists, is not archived, and Handoff can post and upload there (or join it first)."""
    if not CHANNEL_ID.fullmatch(value):
        return bad("doctor.channel.not_an_id", settings=names, value=value)
    if not settings.SLACK_BOT_TOKEN:
        return bad("doctor.channel.unchecked", settings=names, channel=value)
    try:
        answer = _slack(settings, client.conversations_info, "conversations.info", channel=value)
    except SlackTrouble as trouble:
        return trouble.about(f"{names} {value}")
    except SlackApiError as exc:
        error = _error(exc)
        if error == "channel_not_found":  # Slack hides a private channel from whoever is not in it
            key = "doctor.channel.private_not_found" if value.startswith("G") else "doctor.channel.not_found"
            return bad(key, settings=names, channel=value)
        if error == "missing_scope":
            return bad("doctor.channel.no_read", settings=names, channel=value,
                       scopes=exc.response.get("needed") or "channels:read")
        return bad("doctor.about", what=f"{names} {value}",
                   problem=Text("doctor.slack.error", {"error": error, "method": "conversations.info"}))
    info = answer.get("channel") or {}
    where = dict(settings=names, name=info.get("name") or value, channel=value)
    if info.get("is_archived"):
        return bad("doctor.channel.archived", **where)
    granted = granted_scopes(answer.headers)
    lacking = [s for s in ("chat:write", "files:write") if granted is not None and s not in granted]
    if lacking:
        what = {("chat:write",): "doctor.channel.post", ("files:write",): "doctor.channel.upload"}.get(
            tuple(lacking), "doctor.channel.post_upload")
        return bad("doctor.channel.no_scope", what=Text(what), scopes=", ".join(lacking), **where)
    if info.get("is_member"):
        return good("doctor.channel.ok", **where)
    if info.get("is_private"):
        return bad("doctor.channel.private_not_in", **where)
    if granted is None or "channels:join" in granted:
        return good("doctor.channel.will_join", **where)
    return bad("doctor.channel.cannot_join", **where)


def people(settings, client: WebClient) -> list[Check]:
    """Every id in MANAGER_IDS and SALES_REP_IDS is an active person: one line per setting when all are, else one
    per id that is not."""
    results = []
    lists = [(setting, getattr(settings, setting)) for setting in PEOPLE_SETTINGS]
    for team in routed_teams(settings):
        lists += [(f"ROUTING_FILE {team.id} managers", team.managers), (f"ROUTING_FILE {team.id} reps", team.reps)]
    for setting, ids in lists:
        if not ids:
            results.append(good("doctor.users.none", setting=setting))
            continue
        if not settings.SLACK_BOT_TOKEN:
            results.append(bad("doctor.users.unchecked", setting=setting))
            continue
        try:
            with ThreadPoolExecutor(max_workers=4, thread_name_prefix="doctor-users") as pool:
                answers = list(pool.map(lambda user, s=setting: _person(settings, client, s, user), ids))
        except SlackTrouble as trouble:  # Slack unreachable: once, not once per person
            results.append(trouble.about(setting))
            continue
        problems = [check for check, _ in answers if check is not None]
        if problems:
            results += problems
        else:
            names = [f"@{name}" for _, name in answers]
            shown = ", ".join(names[:5]) + (", …" if len(names) > 5 else "")
            results.append(good("doctor.users.ok", setting=setting, n=len(ids), names=shown))
    return results


def _person(settings, client: WebClient, setting: str, user: str) -> tuple[Check | None, str]:
    try:
        answer = _slack(settings, client.users_info, "users.info", user=user)
    except SlackApiError as exc:
        error = _error(exc)
        if error in ("user_not_found", "user_not_visible"):
            return bad("doctor.users.unknown", setting=setting, user=user), user
        if error == "missing_scope":
            error = f"missing_scope ({exc.response.get('needed') or 'users:read'})"
        return bad("doctor.about", what=f"{setting} {user}",
                   problem=Text("doctor.slack.error", {"error": error, "method": "users.info"})), user
    person = answer.get("user") or {}
    name = person.get("name") or user
    if person.get("deleted"):
        return bad("doctor.users.deactivated", setting=setting, user=user, name=name), name
    if person.get("is_bot"):
        return bad("doctor.users.bot", setting=setting, user=user, name=name), name
    return None, name


# The routing file ------------------------------------------------------------------------------------------
def routing(settings) -> list[Check]:
    """ROUTING_FILE reads without mistakes (docs/routing.md); its teams' channels and people are checked with
    the others (`channels`, `people`)."""
    from models.routing import RoutingError

    if not settings.ROUTING_FILE:
        return [good("doctor.routing.none")]
    try:
        found = settings.routing
    except OSError as exc:
        return [bad("doctor.routing.unreadable", path=settings.ROUTING_FILE, error=exc.strerror or _one_line(exc))]
    except RoutingError as exc:
        lines = sorted({line for line, _, _ in exc.problems})
        return [bad("doctor.routing.mistakes", path=settings.ROUTING_FILE, n=len(exc.problems),
                    lines=", ".join(map(str, lines)))]
    return [good("doctor.routing.ok", path=settings.ROUTING_FILE, teams=len(found.teams), rules=len(found.rules))]


def routed_teams(settings) -> list:
    """The teams of ROUTING_FILE, or none when it is unset or has mistakes (`routing` says which)."""
    try:
        return list(settings.routing.teams.values()) if settings.ROUTING_FILE else []
    except Exception:  # RoutingError, OSError: reported by `routing`
        return []


# The database ----------------------------------------------------------------------------------------------
def database(settings, timeout: float = TIMEOUT) -> list[Check]:
    """The database answers and is at the latest migration. Read only: it does not migrate (`bot.py migrate`
    does), nor create an SQLite file that is not there."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError
    from sqlalchemy.pool import NullPool

    from models.db import alembic_config

    url = make_url(settings.DATABASE_URL)
    shown = url.render_as_string(hide_password=True)
    sqlite = url.get_backend_name() == "sqlite"
    if sqlite and url.database and url.database != ":memory:" and url.query.get("mode") != "memory" \
            and not Path(url.database).exists():
        return [bad("doctor.db.no_file", url=shown)]
    # Not the app's engine: that one takes SQLite's write lock for every transaction, and a reader needs none.
    engine = create_engine(url, poolclass=NullPool, connect_args={"timeout": timeout} if sqlite else
                           {"connect_timeout": max(1, int(timeout))})
    try:
        with engine.connect() as conn:
            current = set(MigrationContext.configure(conn).get_current_heads())
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return [bad("doctor.db.unreachable", url=shown, error=reason)]
    finally:
        engine.dispose()
    script = ScriptDirectory.from_config(alembic_config(settings.DATABASE_URL))
    latest = set(script.get_heads())
    if current == latest:
        return [good("doctor.db.ok", url=shown, revision=", ".join(sorted(latest)))]
    if not current:
        return [bad("doctor.db.empty", url=shown)]
    known = {rev.revision for rev in script.walk_revisions()}
    key = "doctor.db.behind" if current <= known else "doctor.db.unknown"
    return [bad(key, url=shown, current=", ".join(sorted(current)), latest=", ".join(sorted(latest)))]


# The webhook token -----------------------------------------------------------------------------------------
def webhook_token(settings) -> list[Check]:
    token = settings.LEAD_WEBHOOK_TOKEN
    if not token:
        return [bad("doctor.hook_token.unset", command=MAKE_TOKEN)]
    if len(token) < MIN_WEBHOOK_TOKEN:
        return [bad("doctor.hook_token.short", n=len(token), command=MAKE_TOKEN)]
    return [good("doctor.hook_token.ok", n=len(token))]


# HubSpot ---------------------------------------------------------------------------------------------------
def hubspot(settings, timeout: float = TIMEOUT) -> list[Check]:
    """With HUBSPOT_TOKEN: the token works and every handoff_* contact property exists."""
    if not settings.HUBSPOT_TOKEN:
        return []
    from hubspot.crm.properties.exceptions import ApiException

    from models import hubspot as mapping
    from outbox.hubspot import make_client

    client = make_client(settings.HUBSPOT_TOKEN, settings.HUBSPOT_API_URL, timeout)
    try:
        answer = client.crm.properties.core_api.get_all(object_type="contacts", _request_timeout=timeout)
    except ApiException as exc:
        if exc.status in (401, 403):
            return [bad("doctor.hubspot.refused", status=exc.status)]
        return [bad("doctor.hubspot.error", status=exc.status, detail=_one_line(exc.body or exc.reason)[:300])]
    except Exception as exc:  # no route, a timeout, TLS: the client raises urllib3's errors as they come
        return [bad("doctor.hubspot.unreachable", url=settings.HUBSPOT_API_URL, error=_one_line(exc)[:300])]
    have = {p.name for p in answer.results or ()}
    wanted = [p["name"] for p in mapping.PROPERTIES]
    missing = [name for name in wanted if name not in have]
    if missing:
        return [bad("doctor.hubspot.missing", n=len(missing), names=", ".join(missing))]
    return [good("doctor.hubspot.ok", n=len(wanted))]


# Salesforce ------------------------------------------------------------------------------------------------
def salesforce(settings, timeout: float = TIMEOUT) -> list[Check]:
    """With SALESFORCE_LOGIN_URL (docs/salesforce.md): the token works; every field Handoff writes is visible and
    updateable to the integration user (describe); every SALESFORCE_STATUS_MAP value is an active Lead Status;
    the org's API usage against SALESFORCE_API_BUDGET."""
    if not settings.SALESFORCE_LOGIN_URL:
        return []
    from models import salesforce as mapping
    from outbox.salesforce import Connection, Paused, Refused

    url = settings.SALESFORCE_LOGIN_URL
    connection = Connection(url, settings.SALESFORCE_CLIENT_ID, settings.SALESFORCE_CLIENT_SECRET,
                            settings.SALESFORCE_API_BUDGET, timeout=timeout, keep_budget=False)
    try:
        connection.login()
        described = {obj: connection.restful(f"sobjects/{obj}/describe") for obj in ("Lead", "Contact", "Task")}
    except Refused as exc:
        if exc.code == "CERTIFICATE":
            return [bad("doctor.salesforce.certificate", url=url, detail=_one_line(exc.message)[:300])]
        return [bad("doctor.salesforce.refused", url=url, detail=_one_line(exc)[:300])]
    except Paused as exc:
        return [bad("doctor.salesforce.unreachable", url=url, error=_one_line(exc.error)[:300])]
    checks = [good("doctor.salesforce.token", url=url)]
    fields = {obj: {f["name"]: f for f in d.get("fields") or ()} for obj, d in described.items()}
    wanted = [(obj, f.name) for obj in mapping.RECORD_OBJECTS for f in mapping.FIELDS] + \
        [("Task", mapping.TASK_FIELD.name)]
    unusable = [f"{obj}.{name}" for obj, name in wanted
                if not (fields[obj].get(name) or {}).get("updateable" if obj != "Task" else "createable")]
    if unusable:
        checks.append(bad("doctor.salesforce.fields", n=len(unusable), names=", ".join(unusable[:6])
                          + (" …" if len(unusable) > 6 else "")))
    else:
        checks.append(good("doctor.salesforce.fields_ok", n=len(wanted)))
    status = fields["Lead"].get("Status") or {}
    active = {v.get("value") for v in status.get("picklistValues") or () if v.get("active")}
    wrong = sorted({v for v in settings.SALESFORCE_STATUS_MAP.values() if v not in active})
    if wrong:
        checks.append(bad("doctor.salesforce.status_map", values=", ".join(wrong),
                          active=", ".join(sorted(active)) or "-"))
    else:
        checks.append(good("doctor.salesforce.status_map_ok", n=len(set(settings.SALESFORCE_STATUS_MAP.values()))))
    if connection.usage is not None:
        used, most = connection.usage
        share = used / most if most else 1.0
        key = "doctor.salesforce.api_over" if connection.over_budget() else "doctor.salesforce.api_ok"
        checks.append(Check(not connection.over_budget(), key, dict(used=used, max=most, share=f"{share:.0%}",
                                                                  budget=f"{settings.SALESFORCE_API_BUDGET:.0%}")))
    return checks


# Event endpoints -------------------------------------------------------------------------------------------
def event_endpoints(settings, timeout: float = TIMEOUT) -> list[Check]:
    """Each endpoint answers at all (any HTTP status), asked with HEAD so that no receiver takes it for an event.
    Named by host only: a URL's path often carries the receiver's secret."""
    import urllib3

    from outbox.events import connection_pool

    results = []
    for n, url in enumerate(settings.EVENT_WEBHOOK_URLS, 1):
        host = urlsplit(url).hostname or "?"
        pool = connection_pool(url, 1, timeout)
        try:
            answer = pool.request("HEAD", url, retries=False, redirect=False,
                                  headers={"User-Agent": "Handoff-Doctor/1"})
            results.append(good("doctor.events.ok", n=n, host=host, status=answer.status))
        except urllib3.exceptions.HTTPError as exc:
            results.append(bad("doctor.events.unreachable", n=n, host=host, why=_why(exc, timeout)))
        finally:
            pool.clear()
    return results


def _why(exc: Exception, timeout: float) -> Text:
    """Why an endpoint did not answer, without its URL (which urllib3 puts in its messages)."""
    import urllib3

    if isinstance(exc, urllib3.exceptions.NameResolutionError):
        return Text("doctor.why.dns")
    if isinstance(exc, urllib3.exceptions.SSLError):
        return Text("doctor.why.tls")
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        return Text("doctor.why.refused")
    if isinstance(exc, urllib3.exceptions.TimeoutError):
        return Text("doctor.why.timeout", {"seconds": f"{timeout:g}"})
    return Text("doctor.why.other", {"kind": type(exc).__name__})


def _one_line(value) -> str:
    return " ".join(str(value).split())[:500]
