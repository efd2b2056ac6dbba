"""Every setting of Handoff, typed and validated once at start (docs/settings.md).

Settings come from the environment or a `.env` file in the working directory.
An invalid value raises `SettingsError` naming the variable and what to do;
`bot.py` prints it as one line and exits non-zero.
"""
from __future__ import annotations

import base64
import binascii
import re
from datetime import time
from functools import cached_property
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# What to tell the user for each variable when its value is rejected.
_HINTS = {
    "DATABASE_URL": "use an SQLAlchemy URL such as sqlite:///handoff.db or postgres://user:pass@host/db",
    "PORT": "use a TCP port number between 1 and 65535",
    "MQL_SCORE_THRESHOLD": "use an integer from 0 to 100",
    "TIMEZONE": "use an IANA time zone name such as Asia/Tokyo or Europe/Berlin",
    "BUSINESS_HOURS": "use HH:MM-HH:MM with the opening before the closing, e.g. 09:00-18:00, or leave it empty for 24/7",
    "BUSINESS_DAYS": "use day names or ranges such as mon-fri or mon,tue,thu",
    "HOLIDAYS": "use a country code such as JP or US, or leave it empty for none",
    "SLA_CLAIM_MINUTES": "use a whole number of business minutes, at least 1",
    "SLA_CONTACT_MINUTES": "use a whole number of business minutes, at least 1",
    "LANGUAGE": "use en or ja",
    "SCHEDULER": "use on or off",
    "WEB_CONCURRENCY": "use a whole number of web processes from 1 to 32",
    "MANAGER_IDS": "use comma-separated Slack user ids such as U012AB3CD,U045EF6GH",
    "OUTBOX_CHANNEL_RATE": "use messages per second per channel, e.g. 1",
    "OUTBOX_CHANNEL_BURST": "use a whole number of messages, at least 1",
    "DATABASE_WAIT_SECONDS": "use a number of seconds from 1 to 60",
    "CLICK_RETRY_SECONDS": "use a number of seconds from 0 to 1200",
    "CLAIM_REMINDERS": "use percentages of the SLA between 1 and 99, comma-separated, e.g. 50,80 (empty for none)",
    "CONTACT_REMINDERS": "use percentages of the SLA between 1 and 99, comma-separated, e.g. 50,80 (empty for none)",
    "ESCALATION_GRACE_MINUTES": "use a whole number of business minutes, 0 or more",
    "SNOOZE_LIMIT": "use a whole number of snoozes per lead, 0 or more",
    "OUTCOME_REMINDER_DAYS": "use a whole number of business days, 0 to turn the reminder off",
    "ASSIGNMENT": "use off or round-robin",
    "SALES_REP_IDS": "use comma-separated Slack user ids such as U012AB3CD,U045EF6GH",
    "ASSIGNMENT_WINDOW_MINUTES": "use a whole number of business minutes, at least 1",
    "LOST_REASONS": "use comma-separated reason codes of lowercase letters, digits and _, e.g. budget,timing,other",
    "DISQUALIFY_REASONS": "use comma-separated reason codes of lowercase letters, digits and _, e.g. spam,duplicate,other",
    "EVENT_WEBHOOK_URLS": "use comma-separated http:// or https:// URLs, e.g. https://hooks.zapier.com/hooks/catch/1/abc",
    "EVENT_WEBHOOK_SECRET": "use whsec_ followed by a base64 key of 24 to 64 bytes, e.g. from "
                            "`python -c \"import base64,os;print('whsec_'+base64.b64encode(os.urandom(32)).decode())\"`",
    "HUBSPOT_API_URL": "use an http:// or https:// base URL such as https://api.hubapi.com",
    "HUBSPOT_MATCH": "use email or external_id",
    "HUBSPOT_SCORE_PROPERTY": "use the internal name of a HubSpot contact property, e.g. hubspotscore",
    "SALESFORCE_LOGIN_URL": "use the org's https:// My Domain URL, e.g. https://acme.my.salesforce.com",
    "SALESFORCE_MATCH": "use email or external_id",
    "SALESFORCE_STATUS_MAP": "use comma-separated status=Lead Status value pairs, e.g. "
                             "claimed=Working - Contacted,lost=Closed - Not Converted (statuses: mql, "
                             "claimed, contacted, sql, won, lost, disqualified)",
    "SALESFORCE_API_BUDGET": "use a share of the daily API requests above 0 and at most 1, e.g. 0.8",
    "METRICS_TOKEN": "use a long random string of letters, digits and - . _ ~ + /, e.g. from `openssl rand -hex 32`",
    "LOG_FORMAT": "use text or json",
    "PRIVACY_TOKEN": "use a random string of at least 32 letters, digits and - . _ ~ + /, e.g. from "
                     "`openssl rand -hex 32`",
    "RETENTION_DAYS": "use a whole number of days, 0 to keep leads until they are erased by hand",
    "METRICS_PORT": "use a TCP port number between 1 and 65535, other than PORT, or leave it empty",
}


# The Handoff statuses SALESFORCE_STATUS_MAP may map to a Lead Status (docs/salesforce.md).
SALESFORCE_STATUSES = ("mql", "claimed", "contacted", "sql", "won", "lost", "disqualified")


class SettingsError(Exception):
    """A setting is missing or invalid; the message is one line for the user."""


def normalize_database_url(url: str) -> str:
    """Accept hosting-style URLs: postgres:// and postgresql:// use psycopg 3."""
    url = url.strip()
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def parse_business_hours(value: str) -> tuple[time, time] | None:
    value = value.strip()
    if not value:
        return None
    m = re.fullmatch(r"(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})", value)
    if not m:
        raise ValueError(f"{value!r} is not HH:MM-HH:MM")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    if h2 == 24 and m2 == 0:
        h2, m2 = 23, 59  # "09:00-24:00": close at the last minute of the day
    if not (0 <= h1 < 24 and 0 <= m1 < 60 and 0 <= h2 < 24 and 0 <= m2 < 60):
        raise ValueError(f"{value!r} has an hour or minute out of range")
    start, end = time(h1, m1), time(h2, m2)
    if start >= end:
        raise ValueError(f"{value!r} opens at or after it closes")
    return start, end


def parse_business_days(value: str) -> frozenset[int]:
    days: set[int] = set()
    for part in value.lower().replace(" ", "").split(","):
        if not part:
            continue
        if "-" in part:
            a, b = part.split("-", 1)
            if a not in DAY_NAMES or b not in DAY_NAMES:
                raise ValueError(f"{part!r} is not a range of day names")
            i, j = DAY_NAMES.index(a), DAY_NAMES.index(b)
            span = range(i, j + 1) if i <= j else [*range(i, 7), *range(j + 1)]
            days.update(span)
        elif part in DAY_NAMES:
            days.add(DAY_NAMES.index(part))
        else:
            raise ValueError(f"{part!r} is not a day name (mon … sun)")
    if not days:
        raise ValueError("no working day given")
    return frozenset(days)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore",
                                      case_sensitive=True)

    SLACK_BOT_TOKEN: str | None = None
    SLACK_SIGNING_SECRET: str | None = None
    SLACK_APP_TOKEN: str | None = None
    SLACK_API_URL: str = "https://slack.com/api/"
    DATABASE_URL: str = "sqlite:///handoff.db"
    PORT: int = Field(3000, ge=1, le=65535)
    HANDOFF_CHANNEL: str | None = None
    DIGEST_CHANNEL: str | None = None
    MARKETING_CHANNEL: str | None = None
    MANAGER_IDS: Annotated[tuple[str, ...], NoDecode] = ()
    LEAD_WEBHOOK_TOKEN: str | None = None
    MQL_SCORE_THRESHOLD: int = Field(60, ge=0, le=100)
    TIMEZONE: str = "Asia/Tokyo"
    BUSINESS_HOURS: str = "09:00-18:00"
    BUSINESS_DAYS: str = "mon-fri"
    HOLIDAYS: str = "JP"
    SLA_CLAIM_MINUTES: int = Field(240, ge=1)
    SLA_CONTACT_MINUTES: int = Field(540, ge=1)
    LANGUAGE: Literal["en", "ja"] = "en"
    SCHEDULER: Literal["on", "off"] = "on"
    # Web processes of `serve` (docs/operating.md, "Scaling out"): above 1, pre-forked workers share PORT.
    WEB_CONCURRENCY: int = Field(1, ge=1, le=32)
    # Our own addition: how fast the outbox posts into one channel (Slack allows
    # about one message per second per channel, with short bursts).
    OUTBOX_CHANNEL_RATE: float = Field(1.0, gt=0)
    OUTBOX_CHANNEL_BURST: int = Field(3, ge=1)
    # When the database is away (docs/failures.md): how long a request waits for it before a webhook is
    # answered 503, and how long an acknowledged click keeps trying before its clicker is told.
    DATABASE_WAIT_SECONDS: float = Field(10.0, ge=1, le=60)
    CLICK_RETRY_SECONDS: float = Field(120.0, ge=0, le=1200)
    # The SLA ladders (README, "Reminders and escalation").
    CLAIM_REMINDERS: Annotated[tuple[int, ...], NoDecode] = (50, 80)
    CONTACT_REMINDERS: Annotated[tuple[int, ...], NoDecode] = (50, 80)
    ESCALATION_GRACE_MINUTES: int = Field(60, ge=0)
    SNOOZE_LIMIT: int = Field(2, ge=0)
    OUTCOME_REMINDER_DAYS: int = Field(5, ge=0)
    ASSIGNMENT: Literal["off", "round-robin"] = "off"
    SALES_REP_IDS: Annotated[tuple[str, ...], NoDecode] = ()
    ASSIGNMENT_WINDOW_MINUTES: int = Field(30, ge=1)
    # The reason taxonomies of the Lost… and Not a fit… modals (labels in the text catalog).
    LOST_REASONS: Annotated[tuple[str, ...], NoDecode] = (
        "budget", "timing", "no_authority", "no_need", "competitor", "no_response", "bad_contact_data", "other")
    DISQUALIFY_REASONS: Annotated[tuple[str, ...], NoDecode] = (
        "bad_contact_data", "student_personal", "competitor", "duplicate", "out_of_segment", "spam", "other")
    # Events out (docs/events.md): every change of a lead, signed as Standard Webhooks, to each URL.
    EVENT_WEBHOOK_URLS: Annotated[tuple[str, ...], NoDecode] = ()
    EVENT_WEBHOOK_SECRET: str | None = None
    # HubSpot write-back (docs/hubspot.md).
    HUBSPOT_TOKEN: str | None = None
    HUBSPOT_API_URL: str = "https://api.hubapi.com"
    HUBSPOT_MATCH: Literal["email", "external_id"] = "email"
    HUBSPOT_SCORE_PROPERTY: str = Field("hubspotscore", pattern=r"^[a-z0-9_]{1,100}$")  # the score a workflow sends
    # Salesforce write-back (docs/salesforce.md): the org's My Domain URL, where a token is asked for with the
    # OAuth 2.0 client credentials flow of an External Client App; how a lead finds its record; the Lead Status
    # each Handoff status writes; the share of the org's daily API requests Handoff may drive usage up to.
    SALESFORCE_LOGIN_URL: str | None = None
    SALESFORCE_CLIENT_ID: str | None = None
    SALESFORCE_CLIENT_SECRET: str | None = None
    SALESFORCE_MATCH: Literal["email", "external_id"] = "email"
    SALESFORCE_STATUS_MAP: Annotated[dict[str, str], NoDecode] = {
        "claimed": "Working - Contacted", "contacted": "Working - Contacted",
        "lost": "Closed - Not Converted", "disqualified": "Closed - Not Converted"}
    SALESFORCE_API_BUDGET: float = Field(0.8, gt=0, le=1)
    # Operating it (docs/operating.md): the bearer token GET /metrics asks for (unset: open), the port on which a
    # `clock` answers it (unset: none), and the log lines.
    METRICS_TOKEN: str | None = None
    METRICS_PORT: int | None = Field(None, ge=1, le=65535)
    LOG_FORMAT: Literal["text", "json"] = "text"
    # Personal data (docs/privacy.md): the bearer token POST /hooks/privacy asks for (unset: the endpoint is off),
    # and the days without activity after which the daily `retention` job erases a lead (0: keep).
    PRIVACY_TOKEN: str | None = None
    RETENTION_DAYS: int = Field(0, ge=0, le=36_500)
    # Teams and routing (docs/routing.md): a YAML file of teams and the rules that route MQLs to them, read and
    # checked at start (`routing`); unset, Handoff is the one team the settings above describe.
    ROUTING_FILE: str | None = None

    @field_validator("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "HANDOFF_CHANNEL",
                     "DIGEST_CHANNEL", "MARKETING_CHANNEL", "LEAD_WEBHOOK_TOKEN", "METRICS_TOKEN", "ROUTING_FILE",
                     "PRIVACY_TOKEN", mode="before")
    @classmethod
    def _empty_is_unset(cls, v):
        if isinstance(v, str) and not v.strip():
            return None
        return v.strip() if isinstance(v, str) else v

    @field_validator("SLACK_BOT_TOKEN")
    @classmethod
    def _bot_token(cls, v):
        if v is not None and not v.startswith("xoxb-"):
            raise ValueError("a bot token starts with xoxb-")
        return v

    @field_validator("SLACK_APP_TOKEN")
    @classmethod
    def _app_token(cls, v):
        if v is not None and not v.startswith("xapp-"):
            raise ValueError("an app-level token starts with xapp-")
        return v

    @field_validator("METRICS_PORT", mode="before")
    @classmethod
    def _no_port(cls, v):
        return None if isinstance(v, str) and not v.strip() else v

    @field_validator("PRIVACY_TOKEN")
    @classmethod
    def _privacy_token(cls, v):
        if v is not None and len(v) < 32:
            raise ValueError(f"{len(v)} characters; it lets whoever holds it erase leads, so it must have at least 32")
        return cls._metrics_token(v)

    @field_validator("METRICS_TOKEN")
    @classmethod
    def _metrics_token(cls, v):
        # What a bearer token may hold (RFC 6750): anything else could not be sent in the header as it is.
        if v is not None and not re.fullmatch(r"[A-Za-z0-9\-._~+/]+=*", v):
            raise ValueError("a bearer token is letters, digits and - . _ ~ + / (then = signs), without spaces")
        return v

    @field_validator("SLACK_API_URL")
    @classmethod
    def _api_url(cls, v: str):
        v = v.strip()
        if not re.match(r"^https?://", v):
            raise ValueError("must be an http(s) URL")
        return v if v.endswith("/") else v + "/"

    @field_validator("DATABASE_URL")
    @classmethod
    def _db_url(cls, v: str):
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        v = normalize_database_url(v)
        try:
            make_url(v)
        except ArgumentError as exc:
            raise ValueError(str(exc)) from None
        return v

    @field_validator("CLAIM_REMINDERS", "CONTACT_REMINDERS", mode="before")
    @classmethod
    def _percents(cls, v):
        if isinstance(v, str):
            parts = [p.strip().rstrip("%") for p in v.split(",") if p.strip()]
            try:
                v = [int(p) for p in parts]
            except ValueError:
                raise ValueError(f"{','.join(parts)!r} is not a list of whole percentages") from None
        values = tuple(sorted(set(v or ())))
        if any(not 0 < p < 100 for p in values):
            raise ValueError("every reminder is a percentage between 1 and 99")
        return values

    @field_validator("LOST_REASONS", "DISQUALIFY_REASONS", mode="before")
    @classmethod
    def _reasons(cls, v):
        codes = tuple(p.strip().lower() for p in v.split(",") if p.strip()) if isinstance(v, str) else tuple(v or ())
        if not codes:
            raise ValueError("at least one reason is needed")
        if len(codes) > 100:
            raise ValueError("a select holds at most 100 reasons")
        for code in codes:
            if not re.fullmatch(r"[a-z0-9_]{1,40}", code):
                raise ValueError(f"{code!r} is not a reason code")
        return tuple(dict.fromkeys(codes))

    @field_validator("MANAGER_IDS", "SALES_REP_IDS", mode="before")
    @classmethod
    def _managers(cls, v):
        if isinstance(v, str):
            ids = tuple(p.strip() for p in v.split(",") if p.strip())
        else:
            ids = tuple(v or ())
        for i in ids:
            if not re.fullmatch(r"[UW][A-Z0-9]{2,}", i):
                raise ValueError(f"{i!r} is not a Slack user id")
        return ids

    @field_validator("EVENT_WEBHOOK_URLS", mode="before")
    @classmethod
    def _event_urls(cls, v):
        urls = tuple(p.strip() for p in v.split(",") if p.strip()) if isinstance(v, str) else tuple(v or ())
        for url in urls:
            if not re.fullmatch(r"https?://[^\s/?#]+[^\s]*", url) or len(url) > 2000:
                raise ValueError(f"{url!r} is not an http(s) URL")
        return tuple(dict.fromkeys(urls))

    @field_validator("EVENT_WEBHOOK_SECRET")
    @classmethod
    def _event_secret(cls, v):
        if v is None or not v.strip():
            return None
        v = v.strip()
        key = v.removeprefix("whsec_")
        try:
            raw = base64.b64decode(key, validate=True)
        except (ValueError, binascii.Error):
            raise ValueError("the part after whsec_ is not base64") from None
        if not v.startswith("whsec_") or not 24 <= len(raw) <= 64:
            raise ValueError("not a whsec_ secret of 24 to 64 bytes")
        return v

    @field_validator("HUBSPOT_API_URL")
    @classmethod
    def _hubspot_url(cls, v: str):
        if not re.fullmatch(r"https?://[^\s]+", v.strip()):
            raise ValueError(f"{v!r} is not an http(s) URL")
        return v.strip().rstrip("/")

    @field_validator("HUBSPOT_TOKEN")
    @classmethod
    def _hubspot_token(cls, v):
        return v.strip() or None if isinstance(v, str) else v

    @field_validator("HUBSPOT_MATCH", mode="before")
    @classmethod
    def _hubspot_match(cls, v):
        return v.strip().lower() if isinstance(v, str) else v

    @field_validator("SALESFORCE_LOGIN_URL", "SALESFORCE_CLIENT_ID", "SALESFORCE_CLIENT_SECRET")
    @classmethod
    def _salesforce_text(cls, v):
        return v.strip() or None if isinstance(v, str) else v

    @field_validator("SALESFORCE_LOGIN_URL")
    @classmethod
    def _salesforce_url(cls, v):
        # https only: a token and every record travel over it, and certificates are always verified.
        if v is not None and not re.fullmatch(r"https://[^\s/]+(/[^\s]*)?", v):
            raise ValueError(f"{v!r} is not an https:// URL")
        return v.rstrip("/") if v else v

    @field_validator("SALESFORCE_MATCH", mode="before")
    @classmethod
    def _salesforce_match(cls, v):
        return v.strip().lower() if isinstance(v, str) else v

    @field_validator("SALESFORCE_STATUS_MAP", mode="before")
    @classmethod
    def _status_map(cls, v):
        if not isinstance(v, str):
            return v
        out: dict[str, str] = {}
        for pair in filter(None, (p.strip() for p in v.split(","))):
            status, sep, value = (x.strip() for x in pair.partition("="))
            if not sep or not value:
                raise ValueError(f"{pair!r} is not status=value")
            if status not in SALESFORCE_STATUSES:
                raise ValueError(f"{status!r} is not a Handoff status")
            if len(value) > 255:
                raise ValueError(f"{value[:40]!r}… is longer than a picklist value can be")
            out[status] = value
        return out

    @field_validator("TIMEZONE")
    @classmethod
    def _tz(cls, v: str):
        try:
            ZoneInfo(v.strip())
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{v!r} is not a known time zone") from None
        return v.strip()

    @field_validator("BUSINESS_HOURS")
    @classmethod
    def _hours(cls, v: str):
        parse_business_hours(v)
        return v.strip()

    @field_validator("BUSINESS_DAYS")
    @classmethod
    def _days(cls, v: str):
        parse_business_days(v)
        return v.strip()

    @field_validator("HOLIDAYS")
    @classmethod
    def _holidays(cls, v: str):
        v = v.strip().upper()
        if v and v not in holidays.list_supported_countries():
            raise ValueError(f"{v!r} is not a country the holidays calendar knows")
        return v

    @field_validator("LANGUAGE", "SCHEDULER", "ASSIGNMENT", "LOG_FORMAT", mode="before")
    @classmethod
    def _lower(cls, v):
        return v.strip().lower() if isinstance(v, str) else v

    @model_validator(mode="after")
    def _digest_default(self):
        if self.DIGEST_CHANNEL is None:
            self.DIGEST_CHANNEL = self.HANDOFF_CHANNEL
        return self

    @model_validator(mode="after")
    def _event_secret_needed(self):
        if self.EVENT_WEBHOOK_URLS and not self.EVENT_WEBHOOK_SECRET:
            raise ValueError("EVENT_WEBHOOK_SECRET is required when EVENT_WEBHOOK_URLS is set: every event is "
                             "signed with it (use whsec_ followed by a base64 key)")
        return self

    @model_validator(mode="after")
    def _salesforce_credentials(self):
        if self.SALESFORCE_LOGIN_URL:
            missing = [n for n in ("SALESFORCE_CLIENT_ID", "SALESFORCE_CLIENT_SECRET") if not getattr(self, n)]
            if missing:
                raise ValueError(f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} required when "
                                 "SALESFORCE_LOGIN_URL is set: the consumer key and secret of the External Client "
                                 "App whose client credentials flow gives Handoff its token")
        return self

    @model_validator(mode="after")
    def _privacy_token_apart(self):
        if self.PRIVACY_TOKEN and self.PRIVACY_TOKEN == self.LEAD_WEBHOOK_TOKEN:
            raise ValueError("PRIVACY_TOKEN is the same as LEAD_WEBHOOK_TOKEN: whoever may send leads must not be "
                             "able to erase them; give the privacy endpoint a token of its own")
        return self

    @model_validator(mode="after")
    def _metrics_port_apart(self):
        if self.METRICS_PORT is not None and self.METRICS_PORT == self.PORT:
            raise ValueError("METRICS_PORT is the same as PORT: serve answers GET /metrics on PORT, and a clock "
                             "needs a port of its own for it (or leave METRICS_PORT empty)")
        return self

    # Parsed views -----------------------------------------------------------
    @cached_property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.TIMEZONE)

    @cached_property
    def business_hours(self) -> tuple[time, time] | None:
        return parse_business_hours(self.BUSINESS_HOURS)

    @cached_property
    def business_days(self) -> frozenset[int]:
        return parse_business_days(self.BUSINESS_DAYS)

    @cached_property
    def clock(self):
        from models.clock import BusinessClock

        return BusinessClock(self.tz, self.business_hours, self.business_days, self.HOLIDAYS or None)

    @cached_property
    def routing(self):
        """The routing file, read and checked (models/routing.py), or None without ROUTING_FILE. Raises
        RoutingError naming every mistake, or OSError when the file cannot be read; `bot.py` reads it at start."""
        if not self.ROUTING_FILE:
            return None
        from models.routing import load

        return load(self.ROUTING_FILE, self.SLA_CLAIM_MINUTES, self.SLA_CONTACT_MINUTES)

    @property
    def socket_mode(self) -> bool:
        return self.SLACK_APP_TOKEN is not None

    def is_manager(self, user_id: str) -> bool:
        return user_id in self.MANAGER_IDS

    def require(self, *names: str) -> None:
        """Stop with a clear line when a setting needed by this command is missing."""
        missing = [n for n in names if getattr(self, n) in (None, "")]
        if missing:
            raise SettingsError(
                f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set: put "
                f"{' and '.join(missing)} in the environment or in .env (see .env.example); "
                "to try Handoff without Slack, run `make demo`")


def load_settings(**overrides) -> Settings:
    """Read and validate settings; raise SettingsError with one line per problem."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            msg = err["msg"].removeprefix("Value error, ")
            if not err["loc"]:  # a rule across settings: its message names them
                lines.append(msg)
                continue
            name = str(err["loc"][0])
            hint = _HINTS.get(name)
            lines.append(f"{name} is invalid: {msg}" + (f" ({hint})" if hint else ""))
        raise SettingsError("; ".join(lines)) from None
