"""Shared fixtures: a database (SQLite, or PostgreSQL via TEST_DATABASE_URL), the Slack stand-in,
and the app served on a real port, driven with signed requests."""
from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from datetime import time as day_time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from models.clock import BusinessClock
from models.db import Database
from models.tables import Base, Lead
from settings import load_settings
from standin import slack_requests
from standin.clock import FakeClock  # noqa: F401  (the tests import it from here)
from standin.server import SlackStandIn

ROOT = Path(__file__).resolve().parent.parent  # the checkout
SECRET = "test-signing-secret"
HOOK_TOKEN = "test-hook-token"
HANDOFF = "C0HANDOFF"
MARKETING = "C0MARKETING"
MANAGER = "UMANAGER1"


def pytest_report_header(config):
    return f"database: {os.environ.get('TEST_DATABASE_URL') or 'sqlite (temporary file)'}"


@pytest.fixture(scope="session")
def db_url(tmp_path_factory):
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        from settings import normalize_database_url

        return normalize_database_url(url)
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'handoff-test.db'}"


@pytest.fixture(scope="session")
def _migrated(db_url):
    db = Database(db_url)
    if db.engine.dialect.name == "postgresql":
        with db.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    db.migrate()
    db.dispose()
    return db_url


@pytest.fixture
def db(_migrated):
    database = Database(_migrated)
    yield database
    for attempt in range(5):  # a test's background work may still hold a lock for a moment: take turns
        try:
            with database.engine.begin() as conn:
                if database.engine.dialect.name == "postgresql":
                    names = ", ".join(t.name for t in Base.metadata.sorted_tables)
                    conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
                else:
                    for table in reversed(Base.metadata.sorted_tables):
                        conn.execute(table.delete())
            break
        except OperationalError:
            if attempt == 4:
                raise
            time.sleep(0.2 * (attempt + 1))
    database.dispose()


@pytest.fixture(scope="session")
def _standin():
    with SlackStandIn() as s:
        yield s


EVENT_SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwaBcDeFgHiJk="  # a fixed 32-byte key, for the receivers


@pytest.fixture(scope="session")
def _receivers():
    from standin.receiver import WebhookReceiver

    with WebhookReceiver(EVENT_SECRET) as a, WebhookReceiver(EVENT_SECRET) as b:
        yield a, b


@pytest.fixture
def receivers(_receivers):
    """Two customer endpoints that verify every event as Standard Webhooks requests."""
    for r in _receivers:
        r.reset()
    yield _receivers
    for r in _receivers:
        r.reset()


@pytest.fixture(scope="session")
def _hubspot():
    from standin.hubspot import HubSpotStandIn

    with HubSpotStandIn() as hs:
        yield hs


@pytest.fixture
def hubspot(_hubspot):
    """The HubSpot stand-in, with Handoff's properties created as `bot.py hubspot-setup` does."""
    from outbox.hubspot import make_client, setup

    _hubspot.reset()
    setup(make_client(_hubspot.token, _hubspot.url))
    _hubspot.calls.clear()
    yield _hubspot
    _hubspot.reset()


@pytest.fixture(scope="session")
def _salesforce():
    from standin.salesforce import SalesforceStandIn

    with SalesforceStandIn() as sf:
        yield sf


@pytest.fixture
def salesforce(_salesforce, monkeypatch):
    """The Salesforce stand-in (HTTPS with its own test CA, trusted through REQUESTS_CA_BUNDLE as docs/salesforce.md
    says), with Handoff's fields created and granted as `bot.py salesforce-setup` leaves them."""
    _salesforce.reset()
    _salesforce.grant_all()
    _salesforce.calls.clear()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", _salesforce.ca_file)
    # Not reset afterwards: this fixture may end before the app's lanes are stopped (make_app's teardown), and
    # a lane still writing would meet an org without Handoff's fields. The next test resets it first.
    return _salesforce


def salesforce_settings(sf, **extra) -> dict:
    return dict(SALESFORCE_LOGIN_URL=sf.url, SALESFORCE_CLIENT_ID=sf.client_id,
                SALESFORCE_CLIENT_SECRET=sf.client_secret, **extra)


@pytest.fixture
def slack(_standin):
    _standin.reset()
    yield _standin
    _standin.reset()


def make_settings(db_url: str, api_url: str, **extra):
    values = dict(SLACK_BOT_TOKEN="xoxb-test", SLACK_SIGNING_SECRET=SECRET, SLACK_API_URL=api_url,
                  DATABASE_URL=db_url, HANDOFF_CHANNEL=HANDOFF, MARKETING_CHANNEL=MARKETING,
                  LEAD_WEBHOOK_TOKEN=HOOK_TOKEN, MANAGER_IDS=MANAGER, OUTBOX_CHANNEL_RATE=1000.0,
                  OUTBOX_CHANNEL_BURST=1000, SCHEDULER="off", _env_file=None)
    values.update(extra)
    return load_settings(**values)


class Client:
    """Talks to the served app like Slack and like a marketing tool would."""

    def __init__(self, base: str, runtime, slack: SlackStandIn):
        self.base, self.runtime, self.slack = base, runtime, slack

    def request(self, path: str, body: bytes | str = b"", headers: dict | None = None, method: str = "POST"):
        data = body.encode() if isinstance(body, str) else body
        req = urllib.request.Request(self.base + path, data=data if method == "POST" else None,
                                     headers=headers or {}, method=method)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                raw = resp.read()
                return resp.status, _decode(raw)
        except urllib.error.HTTPError as err:
            return err.code, _decode(err.read())

    def post_leads(self, payload, token: str = HOOK_TOKEN):
        return self.request("/hooks/leads", json.dumps(payload),
                            {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})

    def post_status(self, payload, token: str = HOOK_TOKEN):
        """POST /hooks/status (docs/crm-status.md): a status update, a batch, or a HubSpot workflow body."""
        return self.request("/hooks/status", json.dumps(payload),
                            {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})

    def slack_post(self, body: str, timestamp: int | None = None, headers: dict | None = None):
        h = slack_requests.signed_headers(SECRET, body, timestamp)
        h.update(headers or {})
        return self.request("/slack/events", body, h)

    def click(self, action_id: str, lead_id: int, user: str, message_ts: str = "1.000001"):
        return self.slack_post(slack_requests.block_action(action_id, str(lead_id), user, HANDOFF, message_ts))

    def drain(self, timeout: float = 10.0):
        return self.runtime.services.sender.drain(timeout)


def _decode(raw: bytes):
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


@pytest.fixture
def make_app(db, slack):
    """Build and serve the app; keyword arguments override settings."""
    from runtime import build_runtime

    stops, servers, clients = [], [], []

    def factory(now=None, **extra):
        settings = make_settings(db.url, slack.url, **extra)
        rt = build_runtime(settings, db=db, now=now)
        server = rt.start_http(host="127.0.0.1", port=0)
        stop = threading.Event()
        rt.start_background(stop, scheduler=False)
        stops.append(stop)
        servers.append(server)
        client = Client(f"http://127.0.0.1:{server.effective_port}", rt, slack)
        clients.append(client)
        return client

    yield factory
    for stop in stops:
        stop.set()
    for client in clients:
        if client.runtime.listeners is not None:  # clicks acknowledged but still being worked on
            client.runtime.listeners.wait_idle(10)
        client.runtime.services.notify()
        client.runtime.services.sender.thread.join(10)
        for lane in client.runtime.services.lanes:
            lane.join(10)
    for server in servers:
        server.close()


@pytest.fixture
def app(make_app):
    return make_app()


def stop_sender(client) -> None:
    """Stop the served app's background threads (the sender among them): a test then runs the sender's passes
    itself, with its own clock."""
    rt = client.runtime
    rt.stop.set()
    rt.services.sender.notify()
    rt.services.sender.thread.join(10)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def wait_until(predicate, timeout: float = 10.0, every: float = 0.02):
    """Poll for something the app does in the background (never a wait for a deadline)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    return predicate()


JST = ZoneInfo("Asia/Tokyo")


def jst(*args) -> datetime:
    """An instant given as Tokyo wall time (the default TIMEZONE)."""
    return datetime(*args, tzinfo=JST).astimezone(UTC)


def new_card(app, slack, **fields) -> int:
    """A lead posted by webhook whose card is in Slack; its id."""
    status, body = app.post_leads({"email": "x@example.com", "score": 80, **fields})
    assert status in (200, 201)
    slack.wait_calls("chat.postMessage", 1)
    assert wait_until(lambda: card_of(app, body["id"]).card_ts)
    return body["id"]


def card_of(app, lead_id):
    """The lead as stored now (its card_ts says whether its card was posted)."""
    from models.tables import Lead

    with app.runtime.db.begin() as s:
        return s.get(Lead, lead_id)



# Leads written straight to the database, for the KPI and report tests ----------
TOKYO_CLOCK = BusinessClock(JST, (day_time(9), day_time(18)), frozenset(range(5)), "JP")  # the default settings' clock
_lead_numbers = iter(range(1, 10**9))


def add_lead(db, mql=None, score=70, source="webinar", created=None, **stamps) -> None:
    """One lead with the given stamps; an MQL gets the default SLA deadlines (240 and 540 business minutes)."""
    n = next(_lead_numbers)
    values = dict(email=f"k{n}@example.com", email_norm=f"k{n}@example.com", source=source, score=score,
                  attributes={}, created_at=created or mql or jst(2026, 11, 24, 9), updated_at=jst(2026, 11, 24, 9))
    if mql is not None:
        values.update(mql_at=mql, claim_due=TOKYO_CLOCK.add_minutes(mql, 240),
                      contact_due=TOKYO_CLOCK.add_minutes(mql, 540))
    values.update(stamps)
    with db.begin() as s:
        s.add(Lead(**values))
