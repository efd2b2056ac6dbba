"""Salesforce write-back: each changed lead's latest state on its Lead or Contact, each outcome a completed Task
(docs/salesforce.md).

One lane (a thread) for Salesforce, apart from Slack, the event endpoints and HubSpot, so Salesforce being
slow, down, out of API requests or over Handoff's budget delays nothing else. Each pass:

1. finds the records of leads not matched yet. With SALESFORCE_MATCH=email, by SOQL: the Leads of up to
   LOOKUP_TAKE emails in as few queries as keep each URI under Salesforce's limit, then the Contacts of the
   emails no Lead has (models/salesforce.py `choose` says which record wins). With external_id, the lead's
   external_id is the record id (00Q… or 003…), taken as it is; a record that turns out gone is looked for
   once by id. A lead Salesforce does not know yet is recorded and skipped until its next change;
2. writes up to COLLECTION records a call (`PATCH composite/sobjects`, allOrNone false), each lead as it is at
   that moment, so many changes become one write of the latest state (models/crm_sync.py);
3. upserts the outcomes' Tasks by their event id (`PATCH composite/sobjects/Task/Handoff_Event_Id__c`), up
   to COLLECTION a call, once their lead's record is known.

Per-record errors are settled per record: transient ones (a locked row) retried for that record alone; a
converted Lead written through its Contact; a deleted record looked up again once; a refused value recorded
with its field and value until the lead's next change. Whole-call trouble pauses the lane: a refused token or
missing fields for 15 minutes, REQUEST_LIMIT_EXCEEDED, 5xx and lost connections with backoff. An expired
session gets a new token and the call is made again. Every answer's `Sforce-Limit-Info` is read, and while
the org's usage is at SALESFORCE_API_BUDGET of its allocation the lane makes one call at most every 5 minutes
(to see whether usage fell).
"""
from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, wait
from datetime import datetime, timedelta

import requests
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from blocks import texts
from models import crm_sync, crm_tasks
from models import salesforce as mapping
from models.db import Database
from models.tables import CrmSync
from outbox.crm_lane import CrmLane

log = logging.getLogger("handoff.salesforce")

TIMEOUT = 20.0
LOOKUP_TAKE = 10_000  # leads whose records one pass looks for: as many as fill whole queries (~500 short emails)
LOOKUP_CHUNK = 2_000  # leads leased at a time while the queries of the ones before are in flight
IN_FLIGHT = 2  # collection calls at once
WRITE_PARTS = 50  # collection calls one pass makes (10,000 leads) before lookups and Tasks get their turn
MAX_BACKOFF = 300.0
SETUP_PAUSE = 900.0  # a refused login or missing fields: an admin must act; look again every 15 minutes
BUDGET_PROBE = 300.0  # over the budget: one call at most every 5 minutes
MAX_ERROR = 1000
RECORD_RETRIES = (5, 30, 120, 600, 1800)  # seconds before retrying one record after a transient error
# Per-record errors that say "not now", not "never": the record alone is tried again later.
TRANSIENT = {"UNABLE_TO_LOCK_ROW", "REQUEST_RUNNING_TOO_LONG", "SERVER_UNAVAILABLE", "UNKNOWN_EXCEPTION",
             "QUERY_TIMEOUT", "TXN_SECURITY_METERING_ERROR"}
GONE = {"ENTITY_IS_DELETED", "INVALID_CROSS_REFERENCE_KEY", "MALFORMED_ID", "NOT_FOUND", "INVALID_ID_FIELD"}
# Errors that say Handoff's fields are missing or hidden (run salesforce-setup): every record would meet them, so
# the lane waits for an admin instead of refusing record after record. An access error of one record (sharing,
# ownership) is that record's, refused like a value.
SETUP = {"INVALID_FIELD", "INVALID_FIELD_FOR_INSERT_UPDATE", "NOT_FOUND_EXTERNAL_ID_FIELD"}
RECORD_ID = re.compile(r"(00Q|003)[A-Za-z0-9]{12}(?:[A-Za-z0-9]{3})?")


class Paused(Exception):
    """Salesforce cannot take requests now: everything waits `seconds`."""

    def __init__(self, seconds: float, error: str, counted: bool = True):
        super().__init__(error)
        self.seconds, self.error, self.counted = seconds, error, counted


class Refused(Exception):
    """Salesforce refused the call as invalid (a 4xx other than the session and the limit)."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"HTTP {status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


def ca_bundle() -> str | bool:
    """What certificates are trusted: REQUESTS_CA_BUNDLE or SSL_CERT_FILE when set, the usual bundle
    otherwise. Never False: there is no way to turn verification off."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE") or True


class VerifiedSession(requests.Session):
    """A session whose every request verifies against the bundle chosen when it was made: requests would
    otherwise let REQUESTS_CA_BUNDLE, read again at each call, win over the session's own `verify`. Proxies and
    the rest of the environment are still honoured."""

    def __init__(self, verify: str | bool):
        super().__init__()
        self.verify = verify

    def request(self, method, url, *args, **kwargs):
        kwargs.setdefault("verify", self.verify)
        return super().request(method, url, *args, **kwargs)


class Connection:
    """A session with the org through simple-salesforce: a token by the client credentials flow, a new one when
    Salesforce says the session expired, the org's API usage from every answer, and the budget kept."""

    def __init__(self, login_url: str, client_id: str, client_secret: str, budget: float = 0.8,
                 timeout: float = TIMEOUT, version: str = mapping.API_VERSION,
                 monotonic: Callable[[], float] = time.monotonic, keep_budget: bool = True):
        # keep_budget: the lane's calls stop at the budget; an admin's command (setup, doctor, status) does not
        self.keep_budget = keep_budget
        self.login_url, self.client_id, self.client_secret = login_url.rstrip("/"), client_id, client_secret
        self.budget, self.timeout, self.version, self.monotonic = budget, timeout, version, monotonic
        self.http = VerifiedSession(ca_bundle())
        self.sf = None  # simple_salesforce.Salesforce, once a token was given
        self.user_id: str | None = None  # the integration user the token runs as
        self.usage: tuple[int, int] | None = None  # (used, max) from the last answer
        self.calls = 0  # calls made (the token's not counted: Salesforce does not count it either)
        self._probe_at = 0.0  # monotonic: when a call over the budget last went
        self._lock = threading.Lock()

    # Auth -----------------------------------------------------------------------------
    def login(self) -> None:
        """Ask for a token (client credentials); raises Refused or Paused."""
        from simple_salesforce import Salesforce

        try:
            answer = self.http.post(f"{self.login_url}/services/oauth2/token", timeout=self.timeout, data={
                "grant_type": "client_credentials", "client_id": self.client_id, "client_secret": self.client_secret})
        except requests.exceptions.SSLError as exc:
            raise Refused(0, "CERTIFICATE", _one_line(exc)) from None
        except (requests.RequestException, OSError) as exc:
            raise Paused(0.0, f"connection: {_one_line(exc)}") from None
        if answer.status_code >= 500:
            raise Paused(0.0, f"token: HTTP {answer.status_code}")
        try:
            body = answer.json()
        except ValueError:
            body = {}
        if answer.status_code != 200 or not body.get("access_token") or not body.get("instance_url"):
            raise Refused(answer.status_code, str(body.get("error") or "login"),
                          _one_line(body.get("error_description") or answer.text))
        self.user_id = str(body.get("id") or "").rstrip("/").rsplit("/", 1)[-1] or None
        sf = Salesforce(instance_url=body["instance_url"], session_id=body["access_token"], version=self.version,
                        session=self.http, object_pairs_hook=dict)
        with self._lock:
            self.sf = sf

    # Calls ------------------------------------------------------------------------------
    def over_budget(self) -> bool:
        return self.usage is not None and self.usage[1] > 0 and self.usage[0] >= self.budget * self.usage[1]

    def call(self, what: Callable, *args, **kwargs):
        """`what(sf, *args, **kwargs)` with the session, within the budget; Salesforce's trouble becomes Paused
        or Refused. An expired session gets one new token and the call is made again."""
        from simple_salesforce.exceptions import SalesforceExpiredSession

        if self.keep_budget and self.over_budget():
            wait = self._probe_at + BUDGET_PROBE - self.monotonic()
            if wait > 0:
                used, most = self.usage
                raise Paused(wait, f"API usage {used}/{most} is at SALESFORCE_API_BUDGET ({self.budget:g})",
                             counted=False)
            self._probe_at = self.monotonic()  # this call is the look at whether usage fell
        if self.sf is None:
            self.login()
        for attempt in (1, 2):
            sf = self.sf
            try:
                self.calls += 1
                result = what(sf, *args, timeout=self.timeout, **kwargs)
                self._usage(sf)
                return result
            except SalesforceExpiredSession:
                if attempt == 2:
                    raise Paused(SETUP_PAUSE, "INVALID_SESSION_ID: a new token was refused too") from None
                log.info("Salesforce session expired; asking for a new token")
                self.login()
            except Exception as exc:  # mapped to what the lane does about it
                raise self._trouble(exc) from None
        raise AssertionError("unreachable")

    def _usage(self, sf) -> None:
        usage = (getattr(sf, "api_usage", None) or {}).get("api-usage")
        if usage is not None:
            self.usage = (usage.used, usage.total)
            if self.over_budget():  # this answer was the look: the next one is BUDGET_PROBE away
                self._probe_at = self.monotonic()

    def _trouble(self, exc: Exception) -> Exception:
        from simple_salesforce.exceptions import SalesforceError

        if isinstance(exc, SalesforceError):
            code, message = _first_error(exc.content)
            if code == "REQUEST_LIMIT_EXCEEDED":
                return Paused(0.0, f"REQUEST_LIMIT_EXCEEDED: {message}")
            if exc.status >= 500 or exc.status in (408, 429):
                return Paused(0.0, f"HTTP {exc.status} {code}: {message}")
            return Refused(exc.status, code, message)
        if isinstance(exc, requests.exceptions.SSLError):
            return Refused(0, "CERTIFICATE", _one_line(exc))
        if isinstance(exc, (requests.RequestException, OSError, ValueError)):
            return Paused(0.0, f"connection: {_one_line(exc)}")
        return exc

    # What the lane asks ---------------------------------------------------------------
    def query(self, soql: str) -> list[dict]:
        return self.call(lambda sf, q, timeout: sf.query_all(q, timeout=timeout)["records"], soql)

    def update_records(self, records: list[dict]) -> list[dict]:
        return self.call(lambda sf, body, timeout: sf.restful("composite/sobjects", method="PATCH", json=body,
                                                              timeout=timeout),
                         {"allOrNone": False, "records": records})

    def upsert_tasks(self, records: list[dict]) -> list[dict]:
        path = f"composite/sobjects/Task/{mapping.TASK_FIELD.name}"
        return self.call(lambda sf, body, timeout: sf.restful(path, method="PATCH", json=body, timeout=timeout),
                         {"allOrNone": False, "records": records})

    def restful(self, path: str, method: str = "GET", **kwargs):
        return self.call(lambda sf, timeout: sf.restful(path, method=method, timeout=timeout, **kwargs))

    def tooling(self, path: str, method: str = "GET", data: dict | None = None):
        return self.call(lambda sf, timeout: sf.toolingexecute(path, method=method, data=data, timeout=timeout))

    def uri_prefix(self) -> int:
        """Bytes of a query's URI before its `q=…`."""
        if self.sf is None:
            self.login()
        return len(f"{self.sf.base_url}query/?")


def _first_error(content) -> tuple[str, str]:
    """Salesforce's error code and message from an error body (a list of {message, errorCode})."""
    if isinstance(content, list) and content and isinstance(content[0], dict):
        first = content[0]
        return str(first.get("errorCode") or first.get("statusCode") or "ERROR"), _one_line(first.get("message", ""))
    if isinstance(content, dict):
        return str(content.get("errorCode") or content.get("error") or "ERROR"), _one_line(
            content.get("message") or content.get("error_description") or "")
    return "ERROR", _one_line(content if isinstance(content, str) else repr(content))


class Owners:
    """The Salesforce User of each Slack owner: the owner's Slack profile email (`users.info`), then the active
    User with that Email (one SOQL for the emails not known yet). Remembered for an hour (a miss for ten
    minutes); Slack failing leaves OwnerId as it is for this write."""

    HIT_SECONDS, MISS_SECONDS = 3600.0, 600.0

    def __init__(self, slack_email: Callable[[str], str | None], monotonic: Callable[[], float] = time.monotonic):
        self.slack_email, self.monotonic = slack_email, monotonic
        self._known: dict[str, tuple[str | None, float]] = {}  # slack id -> (salesforce user id, until)

    def forget(self, user_id: str) -> None:
        self._known = {k: v for k, v in self._known.items() if v[0] != user_id}

    def resolve(self, slack_ids: set[str], connection: Connection) -> dict[str, str | None]:
        now = self.monotonic()
        out = {s: known[0] for s in slack_ids if (known := self._known.get(s)) and known[1] > now}
        unknown = sorted(slack_ids - out.keys())
        if not unknown:
            return out
        emails: dict[str, str] = {}
        for slack_id in unknown:
            email = self.slack_email(slack_id)
            if email:
                emails[slack_id] = email.strip().lower()
            else:
                out[slack_id] = None  # not kept: Slack may answer next time
        if emails:
            users: dict[str, str] = {}
            prefix = connection.uri_prefix()
            for soql, _ in mapping.email_queries("User", "Id, Email, IsActive", sorted(set(emails.values())),
                                                 prefix):
                for row in connection.query(soql.replace(" WHERE ", " WHERE IsActive = true AND ", 1)):
                    email = (row.get("Email") or "").lower()
                    if email not in users or row["Id"] < users[email]:  # several: the oldest id, always the same
                        users[email] = row["Id"]
            for slack_id, email in emails.items():
                found = users.get(email)
                out[slack_id] = found
                self._known[slack_id] = (found, now + (self.HIT_SECONDS if found else self.MISS_SECONDS))
        return out


def slack_emails(settings) -> Callable[[str], str | None]:
    """The profile email of a Slack user (`users.info`, which shows it with users:read.email), None when Slack
    cannot say."""
    from slack_sdk.errors import SlackApiError

    from outbox.sender import make_client

    client = None

    def email_of(user_id: str) -> str | None:
        nonlocal client
        if not settings.SLACK_BOT_TOKEN:
            return None
        if client is None:
            client = make_client(settings)
            client.timeout = 5
        try:
            user = client.users_info(user=user_id).get("user") or {}
        except (SlackApiError, OSError) as exc:
            log.warning("users.info failed for %s (%s): OwnerId is left as it is", user_id, exc)
            return None
        return None if user.get("deleted") else (user.get("profile") or {}).get("email")

    return email_of


class SalesforceWriter(CrmLane):
    """The Salesforce lane."""

    name, label = "salesforce", "Salesforce"
    log = log

    def __init__(self, db: Database, destination_id: int, connection: Connection, match: str,
                 status_map: dict[str, str], owners: Owners, lang: str, tz, now: Callable[[], datetime],
                 backoff_base: float = 5.0):
        self.db, self.destination_id, self.connection, self.match = db, destination_id, connection, match
        self.status_map, self.owners, self.lang, self.tz, self.now = status_map, owners, lang, tz, now
        self.backoff_base = backoff_base
        super().__init__(IN_FLIGHT)
        self._failures = 0

    def _due(self, session, until: datetime) -> int:
        return crm_tasks.due_by(session, self.destination_id, until)

    def _run_pass(self) -> float:
        paused = self.paused_until - time.monotonic()
        if paused > 0:
            return paused
        try:
            busy = self._lookup()
            busy = self._write() or busy
            busy = self._tasks() or busy
        except Paused as pause:
            self._pause(pause)
            return max(0.0, self.paused_until - time.monotonic())
        if busy:
            self._failures = 0
            return 0.0
        with self.db.begin() as s:
            upcoming = crm_tasks.next_due(s, self.destination_id)
        if upcoming is None:
            return 5.0
        return min(5.0, max(0.0, (upcoming - self.now()).total_seconds()))

    def _pause(self, pause: Paused) -> None:
        if pause.seconds <= 0:  # transient: back off, doubling
            self._failures += 1
            pause.seconds = min(MAX_BACKOFF, self.backoff_base * 2 ** min(self._failures - 1, 10))
        log.warning("Salesforce writes wait %.0f s: %s", pause.seconds, pause.error)
        self.paused_until = max(self.paused_until, time.monotonic() + pause.seconds)

    def _wait(self, pause: Paused) -> None:
        """The lane waits out `pause` (a transient one, with seconds 0, for the backoff's next step)."""
        if pause.seconds <= 0:
            self._pause(pause)
        else:
            if time.monotonic() >= self.paused_until:  # said once a pause, not once a leased batch
                log.info("Salesforce writes wait %.0f s: %s", pause.seconds, pause.error)
            self.paused_until = max(self.paused_until, time.monotonic() + pause.seconds)

    def _hold(self, lead_ids: list[int], pause: Paused) -> None:
        """Leased rows go back, due when the pause ends."""
        self._wait(pause)
        now = self.now()
        with self.db.begin() as s:
            crm_sync.retry(s, self.destination_id, lead_ids, now + timedelta(seconds=pause.seconds),
                           pause.error[:MAX_ERROR], now, count=pause.counted)

    def _setup_missing(self, error: str) -> Paused:
        log.error("Salesforce refused Handoff's fields: run `python bot.py salesforce-setup` (%s); writes wait "
                  "15 minutes", error)
        return Paused(SETUP_PAUSE, error)

    def _refused(self, refused: Refused) -> Paused:
        """A call Salesforce refused as a whole: Handoff's fields missing, the login or the certificate refused,
        or a request it will not take; each says so, and the lane waits 15 minutes for someone to act."""
        if refused.code in SETUP:
            return self._setup_missing(str(refused))
        if refused.code == "CERTIFICATE":
            log.error("Salesforce's certificate is not trusted (%s): Handoff always verifies it; if a proxy re-signs "
                      "the traffic, point REQUESTS_CA_BUNDLE at its CA; writes wait 15 minutes", refused)
        else:
            log.error("Salesforce refused Handoff (%s): check SALESFORCE_CLIENT_ID and SALESFORCE_CLIENT_SECRET and "
                      "the integration user's access (`python bot.py doctor`); writes wait 15 minutes", refused)
        return Paused(SETUP_PAUSE, str(refused))

    # 1. Finding records ----------------------------------------------------------------------
    def _lookup(self) -> bool:
        leased: list[int] = []
        settled: set[int] = set()

        def lease(limit: int) -> list[crm_sync.Taken]:
            """Up to `limit` more leads whose records are to be found."""
            with self.db.begin() as s:
                taken = crm_sync.take(s, self.destination_id, "lookup", self.now(), limit,
                                      light=crm_sync.FINDING_COLUMNS)
            leased.extend(t.lead.id for t in taken)
            return taken

        def settle(hits: list[tuple[int, str]]) -> None:
            """These leads' records were found: ready to be written (in this pass)."""
            if hits:
                with self.db.begin() as s:
                    crm_sync.found_many(s, self.destination_id, [(lead_id, record, None) for lead_id, record in hits],
                                        self.now())
                settled.update(lead_id for lead_id, _ in hits)

        try:
            if self.match == "external_id":
                taken = lease(LOOKUP_TAKE)
                hits, misses = self._by_id(taken, {t.lead.id for t in taken if t.looked_again})
                settle(hits)
            else:
                misses = self._by_email(lease, settle)
        except (Paused, Refused) as trouble:
            pause = trouble if isinstance(trouble, Paused) else self._refused(trouble)
            self._hold([lead_id for lead_id in leased if lead_id not in settled], pause)
            return bool(settled)
        if not leased:
            return False
        now = self.now()
        with self.db.begin() as s:
            for why, ids in misses.items():
                crm_sync.not_found_many(s, self.destination_id, ids, why, now)
        return True

    def _by_id(self, taken: list[crm_sync.Taken], again: set[int]) -> tuple[list, dict[str, list[int]]]:
        """external_id is the record id: taken as it is, or, for a record that was gone, looked for by id."""
        hits, misses = [], {"external_id is not a Salesforce Lead or Contact id": []}
        check: dict[int, str] = {}
        for t in taken:
            ext = (t.lead.external_id or "").strip()
            if not RECORD_ID.fullmatch(ext):
                misses["external_id is not a Salesforce Lead or Contact id"].append(t.lead.id)
            elif t.lead.id in again:
                check[t.lead.id] = ext
            else:
                hits.append((t.lead.id, ext))
        if check:
            found = self._current(set(check.values()))
            gone = misses.setdefault("the Salesforce record was deleted", [])
            for lead_id, record in check.items():
                (hits.append((lead_id, found[record])) if found.get(record) else gone.append(lead_id))
        return hits, misses

    def _current(self, ids: set[str]) -> dict[str, str | None]:
        """Where each record id is written now: itself, its Contact once converted, None when gone."""
        out: dict[str, str | None] = dict.fromkeys(ids)
        leads = sorted(i for i in ids if i.startswith(mapping.LEAD_PREFIX))
        contacts = sorted(i for i in ids if i.startswith(mapping.CONTACT_PREFIX))
        from simple_salesforce import format_soql

        for sobject, group, columns in (("Lead", leads, "Id, IsConverted, ConvertedContactId"),
                                        ("Contact", contacts, "Id")):
            for i in range(0, len(group), 200):
                for row in self.connection.query(format_soql(
                        f"SELECT {columns} FROM {sobject} WHERE Id IN {{}}", group[i:i + 200])):
                    key = next((x for x in group[i:i + 200] if _same_id(x, row["Id"])), row["Id"])
                    out[key] = row.get("ConvertedContactId") if row.get("IsConverted") else row["Id"]
        return out

    def _by_email(self, lease: Callable[[int], list[crm_sync.Taken]],
                  settle: Callable[[list[tuple[int, str]]], None]) -> dict[str, list[int]]:
        """Each email's Leads, IN_FLIGHT queries at once, the leads leased LOOKUP_CHUNK at a time while queries
        are in flight (up to LOOKUP_TAKE a pass). A query is sent once full (as many addresses as its URI holds);
        the addresses left over wait for the next chunk, so the queries are as few as leasing everything first
        would make. The leads an unconverted or converted Lead decides (models/salesforce.py `choose`: no
        Contact could change that) are settled as each query answers. Then the Contacts of the emails no Lead
        decided. Returns the leads found nowhere, by why."""
        prefix = 0  # known after the first lease: a login that fails is then recorded on the leased rows
        leads_of: dict[str, list[int]] = {}
        missing: list[int] = []
        undecided: dict[str, list[dict]] = {}
        waiting: list[str] = []  # leased addresses not in a query yet, in lease order
        ready: deque[tuple[str, list[str]]] = deque()  # full queries, not sent yet
        going: deque = deque()  # (answer to come, the addresses it asks for)
        room, more = LOOKUP_TAKE, True
        while True:
            while len(going) < IN_FLIGHT and (ready or more or waiting):
                if ready:
                    soql, chunk = ready.popleft()
                    going.append((self._pool.submit(self.connection.query, soql), chunk))
                    continue
                if more:
                    want = min(LOOKUP_CHUNK, room)
                    taken = lease(want)
                    room -= len(taken)
                    more = len(taken) == want and room > 0
                    for t in taken:
                        address = t.lead.email_norm
                        if not address:
                            missing.append(t.lead.id)
                        elif address in leads_of:
                            leads_of[address].append(t.lead.id)
                        else:
                            leads_of[address] = [t.lead.id]
                            waiting.append(address)
                if not waiting:
                    continue
                prefix = prefix or self.connection.uri_prefix()
                queries = mapping.email_queries("Lead", mapping.LEAD_COLUMNS, waiting, prefix)
                asked = {address for _, chunk in queries for address in chunk}
                # an address no query can hold (none can: an email has at most 254 characters) is found nowhere
                undecided.update((address, []) for address in waiting if address not in asked)
                if more and queries:  # the last query may have room left: its addresses wait for the next chunk
                    *full, (_, waiting) = queries
                else:
                    full, waiting = queries, []
                ready.extend(full)
            if not going:
                break
            answer, chunk = going.popleft()
            found = _by_address(answer.result())
            hits = []
            for address in chunk:
                records = found.get(address, [])
                if any(not r.get("IsConverted") or r.get("ConvertedContactId") for r in records):
                    record_id = mapping.choose(records, [])[0]
                    hits.extend((lead_id, record_id) for lead_id in leads_of[address])
                else:
                    undecided[address] = records
            settle(hits)
        contacts = self._found("Contact", mapping.CONTACT_COLUMNS, sorted(undecided),
                               prefix or self.connection.uri_prefix()) if undecided else {}
        hits = []
        for address, records in undecided.items():
            chosen = mapping.choose(records, contacts.get(address, []))
            if chosen:
                hits.extend((lead_id, chosen[0]) for lead_id in leads_of[address])
            else:
                missing.extend(leads_of[address])
        settle(hits)
        return {"no Salesforce Lead or Contact with this email": missing}

    def _found(self, sobject: str, columns: str, emails: list[str], prefix: int) -> dict[str, list[dict]]:
        """The records of `sobject` with these emails, by email: the queries IN_FLIGHT at once."""
        out: dict[str, list[dict]] = {}
        queries = [soql for soql, _ in mapping.email_queries(sobject, columns, emails, prefix)]
        for rows in self._pool.map(self.connection.query, queries):
            for address, records in _by_address(rows).items():
                out.setdefault(address, []).extend(records)
        return out

    # 2. Writing records ------------------------------------------------------------------------
    def _write(self) -> bool:
        """Write the due leads, COLLECTION a call and IN_FLIGHT calls going at once: the next part is leased and
        made while the others are in flight, so the database work hides behind Salesforce's answers. A lead is in
        one part (its row is leased until the part settles it), and a record in one call at a time."""
        wrote, going, busy = False, {}, set()
        parts = 0
        while True:
            while len(going) < IN_FLIGHT and parts < WRITE_PARTS and self.paused_until <= time.monotonic():
                leased = self._lease_part(busy)
                if leased is None:  # nothing more is due
                    break
                parts += 1
                part, owners = leased
                if part:
                    records = {t.record_id for t in part}
                    busy |= records
                    going[self._pool.submit(self._write_part, part, owners)] = records
            if not going:
                return wrote
            done, _ = wait(going, return_when=FIRST_COMPLETED)
            for future in done:
                busy -= going.pop(future)
                wrote = future.result() or wrote

    def _lease_part(self, busy: set[str]) -> tuple[list[crm_sync.Taken], dict[str, str | None]] | None:
        """Up to COLLECTION due leads and their owners' Users; None when nothing is due. A lead whose record is
        in this part already or in a call in flight waits for the next part."""
        with self.db.begin() as s:
            taken = crm_sync.take(s, self.destination_id, "ready", self.now(), mapping.COLLECTION, light=True)
        if not taken:
            return None
        going, later, seen = [], [], set(busy)
        for t in taken:
            (later if t.record_id in seen else going).append(t)
            seen.add(t.record_id)
        if later:
            now = self.now()
            with self.db.begin() as s:
                crm_sync.retry(s, self.destination_id, [t.lead.id for t in later], now,
                               "same record as another lead being written", now, count=False)
        try:
            owners = self.owners.resolve({t.lead.owner for t in going if t.lead.owner}, self.connection)
        except (Paused, Refused) as trouble:
            pause = trouble if isinstance(trouble, Paused) else self._refused(trouble)
            self._hold([t.lead.id for t in going], pause)
            return [], {}
        return going, owners

    def _write_part(self, part: list[crm_sync.Taken], owners: dict[str, str | None]) -> bool:
        records = []
        for t in part:
            sobject = mapping.kind_of(t.record_id) or "Lead"
            fields = mapping.for_object(mapping.record_fields(t.lead, self.status_map, owners.get(t.lead.owner)),
                                        sobject)
            records.append({"attributes": {"type": sobject}, "id": t.record_id, **fields})
        try:
            results = self.connection.update_records(records)
        except Paused as pause:
            self._hold([t.lead.id for t in part], pause)
            return False
        except Refused as refused:
            self._hold([t.lead.id for t in part], self._refused(refused))
            return False
        done, converted, gone, transient, refused_, setup = [], [], [], [], [], []
        now = self.now()
        for t, record, result in zip(part, records, results or [], strict=False):
            if result.get("success"):
                done.append((t.lead.id, t.want))
                continue
            code, message, fields = _record_error(result)
            if code == "CANNOT_UPDATE_CONVERTED_LEAD":
                converted.append(t)
            elif code in GONE:
                gone.append(t)
            elif code in TRANSIENT:
                transient.append((t, f"{code}: {message}"))
            elif code in SETUP:
                setup.append(f"{code}: {message}")
                transient.append((t, f"{code}: {message}"))
            else:
                if code == "INACTIVE_OWNER_OR_USER" and record.get("OwnerId"):
                    self.owners.forget(record["OwnerId"])
                refused_.append((t, _refusal(code, message, fields, record)))
        if len(results or []) < len(part):  # an answer short of records: the rest are tried again
            transient.extend((t, "no result for this record") for t in part[len(results or []):])
        moved = self._converted_records({t.record_id for t in converted})
        with self.db.begin() as s:
            crm_sync.written_bulk(s, self.destination_id, done, now)
            found = [(t.lead.id, moved[t.record_id], None) for t in converted if moved.get(t.record_id)]
            crm_sync.found_many(s, self.destination_id, found, now)
            gone.extend(t for t in converted if not moved.get(t.record_id))
            self._gone(s, gone, now)
            for t, why in transient:
                delay = SETUP_PAUSE if setup and why in setup else RECORD_RETRIES[min(t.attempts,
                                                                                      len(RECORD_RETRIES) - 1)]
                crm_sync.retry(s, self.destination_id, [t.lead.id], now + timedelta(seconds=delay), why[:MAX_ERROR],
                               now)
            for t, why in refused_:
                log.error("Salesforce refused lead %s's record %s: %s", t.lead.id, t.record_id, why)
                crm_sync.refused(s, self.destination_id, t.lead.id, why[:MAX_ERROR], now)
        if setup:  # Handoff's fields are missing or hidden: nothing will go until an admin acts
            pause = self._setup_missing(setup[0])
            self.paused_until = max(self.paused_until, time.monotonic() + pause.seconds)
        return True

    def _converted_records(self, record_ids: set[str]) -> dict[str, str | None]:
        """The Contact each converted Lead became (one query for the lot)."""
        if not record_ids:
            return {}
        try:
            return self._current(record_ids)
        except (Paused, Refused) as trouble:
            log.warning("Could not read converted Leads' Contacts (%s); looking them up again", trouble)
            return {}

    def _gone(self, s: Session, gone: list[crm_sync.Taken], now: datetime) -> None:
        """A record that is gone is looked up once more (the email may have another); gone again, skipped."""
        if not gone:
            return
        ids = [t.lead.id for t in gone]
        again = set(s.scalars(select(CrmSync.lead_id).where(
            CrmSync.destination_id == self.destination_id, CrmSync.lead_id.in_(ids), CrmSync.looked_again.is_(True))))
        first = [i for i in ids if i not in again]
        if first:
            s.execute(update(CrmSync).where(CrmSync.destination_id == self.destination_id, CrmSync.lead_id.in_(first))
                      .values(state="lookup", looked_again=True, lease_until=None, next_attempt_at=now,
                              last_error="the Salesforce record was gone; looked up again", updated_at=now))
        crm_sync.not_found_many(s, self.destination_id, sorted(again), "the Salesforce record was deleted", now)

    # 3. Tasks --------------------------------------------------------------------------------------
    def _tasks(self) -> bool:
        if self.paused_until > time.monotonic():  # the writes just met a pause: it holds for Tasks too
            return False
        now = self.now()
        with self.db.begin() as s:
            taken = crm_tasks.take(s, self.destination_id, now, mapping.COLLECTION)
        if not taken:
            return False
        records = [task_record(t.event_id, t.body, t.who_id, self.lang, self.tz) for t in taken]
        try:
            results = self.connection.upsert_tasks(records)
        except (Paused, Refused) as trouble:
            pause = trouble if isinstance(trouble, Paused) else self._refused(trouble)
            self._wait(pause)
            with self.db.begin() as s:
                crm_tasks.retry(s, [t.id for t in taken], now + timedelta(seconds=pause.seconds), pause.error,
                                count=pause.counted)
            return False
        outcome = {t.id: (result, _record_error(result)) for t, result in zip(taken, results or [], strict=False)}
        # A Task on a Lead converted since it was found goes to its Contact (one query for the lot)
        moved = self._converted_records({t.who_id for t in taken if t.id in outcome
                                         and outcome[t.id][1][0] == "CANNOT_UPDATE_CONVERTED_LEAD"})
        with self.db.begin() as s:
            relooked = set(s.scalars(select(CrmSync.lead_id).where(
                CrmSync.destination_id == self.destination_id, CrmSync.looked_again.is_(True),
                CrmSync.lead_id.in_([t.lead_id for t in taken]))))
            for n, t in enumerate(taken):
                if t.id not in outcome:
                    crm_tasks.retry(s, [t.id], now + timedelta(seconds=5), "no result for this Task")
                    continue
                result, (code, message, fields) = outcome[t.id]
                why = f"{code}: {message}"
                if result.get("success"):
                    crm_tasks.written(s, t.id, result.get("id"), now)
                elif code in TRANSIENT:
                    delay = RECORD_RETRIES[min(t.attempts, len(RECORD_RETRIES) - 1)]
                    crm_tasks.retry(s, [t.id], now + timedelta(seconds=delay), why)
                elif moved.get(t.who_id) not in (None, t.who_id):
                    crm_sync.found_many(s, self.destination_id, [(t.lead_id, moved[t.who_id], None)], now)
                    crm_tasks.retry(s, [t.id], now, why, count=False)
                elif (code in GONE or code == "CANNOT_UPDATE_CONVERTED_LEAD" or "WhoId" in fields) \
                        and t.lead_id not in relooked:  # its record is gone: looked up once more, then written
                    s.execute(update(CrmSync).where(CrmSync.destination_id == self.destination_id,
                                                    CrmSync.lead_id == t.lead_id)
                              .values(state="lookup", looked_again=True, next_attempt_at=now, lease_until=None,
                                      updated_at=now, last_error=f"Task: {why}"[:MAX_ERROR]))
                    crm_tasks.retry(s, [t.id], now, why, count=False)
                elif code in SETUP:
                    crm_tasks.retry(s, [t.id], now + timedelta(seconds=SETUP_PAUSE), why)
                else:
                    refusal = _refusal(code, message, fields, records[n])
                    log.error("Salesforce refused the Task of lead %s's %s: %s", t.lead_id,
                              t.body.get("type"), refusal)
                    crm_tasks.refused(s, t.id, refusal, now)
        return True


def _by_address(rows: list[dict]) -> dict[str, list[dict]]:
    """Query records by their email, lower-cased as Handoff keeps emails."""
    out: dict[str, list[dict]] = {}
    for row in rows:
        out.setdefault((row.get("Email") or "").lower(), []).append(row)
    return out


def _reason(code: str | None, lang: str) -> str:
    key = f"reason.{code}"
    return texts.t(key, lang) if key in texts.CATALOG else (code or "")


def task_record(event_id: str, body: dict, who_id: str, lang: str, tz) -> dict:
    """The completed Task of one outcome event (docs/events.md body): subject naming the outcome and its
    reason in `lang`, the note as description, the day it happened in the team's time zone."""
    kind = body["type"].removeprefix("lead.")
    data = body.get("data") or {}
    reason = data.get("reason")
    subject = texts.t(f"salesforce.task.{kind}", lang)
    if reason:
        subject = texts.t("salesforce.task.with_reason", lang, outcome=subject, reason=_reason(reason, lang))
    occurred = datetime.fromisoformat(body["timestamp"].replace("Z", "+00:00")).astimezone(tz)
    return {"attributes": {"type": "Task"}, mapping.TASK_FIELD.name: event_id, "WhoId": who_id, "Subject": subject[:255],
            "Description": mapping.cut(data.get("note"), 32_000), "ActivityDate": occurred.date().isoformat(),
            "Status": "Completed"}


def _same_id(a: str, b: str) -> bool:
    return a[:15] == b[:15]


def _record_error(result: dict) -> tuple[str, str, list[str]]:
    errors = result.get("errors") or [{}]
    first = errors[0] if isinstance(errors[0], dict) else {}
    return (str(first.get("statusCode") or "UNKNOWN"), _one_line(first.get("message", "")),
            [str(f) for f in first.get("fields") or []])


def _refusal(code: str, message: str, fields: list[str], record: dict) -> str:
    """A refused value, named: the code, each field with the value sent, and Salesforce's message."""
    named = ", ".join(f"{f}={_one_line(repr(record.get(f)))[:200]}" for f in fields) or "-"
    return f"{code} {named}: {message}"


def _one_line(value) -> str:
    return " ".join(str(value).split())[:MAX_ERROR]


# Setting the org up ---------------------------------------------------------------------------------------
class SetupError(Exception):
    def __init__(self, name: str, detail: str):
        super().__init__(f"{name}: {detail}")
        self.name, self.detail = name, detail


def _soql_list(values) -> str:
    from simple_salesforce import format_soql

    return format_soql("{}", sorted(values))


def setup(connection: Connection) -> list[tuple[str, bool]]:
    """Create Handoff's custom fields on Lead, Contact and Activity (Tooling API), the permission set
    `Handoff_Integration` granting read and edit on each, and its assignment to the integration user the token
    runs as: fields made through the API are invisible to everyone until such a grant. What exists is left
    alone. Returns (name, created) for each; raises SetupError naming what Salesforce refused, Refused or
    Paused when the org cannot be reached or refuses the login."""
    from simple_salesforce import format_soql

    done: list[tuple[str, bool]] = []
    wanted = [(obj, f) for obj in mapping.RECORD_OBJECTS for f in mapping.FIELDS] + [("Activity", mapping.TASK_FIELD)]
    existing = {(row["TableEnumOrId"], row["DeveloperName"]) for row in connection.tooling(
        "query/?q=" + _q(format_soql("SELECT Id, DeveloperName, TableEnumOrId FROM CustomField "
                                     "WHERE TableEnumOrId IN {}", ["Activity", *mapping.RECORD_OBJECTS])))["records"]}
    for obj, field in wanted:
        full = f"{obj}.{field.name}"
        if (obj, field.name.removesuffix("__c")) in existing:
            done.append((full, False))
            continue
        metadata = field.metadata()
        if field is mapping.TASK_FIELD:  # the key Tasks are upserted by
            metadata.update(externalId=True, unique=True, caseSensitive=True)
        try:
            connection.tooling("sobjects/CustomField", "POST", {"FullName": full, "Metadata": metadata})
        except Refused as exc:
            if "DUPLICATE" not in exc.code:
                raise SetupError(full, str(exc)) from None
            done.append((full, False))
            continue
        done.append((full, True))

    found = connection.query(format_soql("SELECT Id FROM PermissionSet WHERE Name = {}", mapping.PERMISSION_SET))
    if found:
        permission_set, created = found[0]["Id"], False
    else:
        answer = _create(connection, "PermissionSet", {
            "Name": mapping.PERMISSION_SET, "Label": "Handoff Integration",
            "Description": "Read and edit on the fields Handoff writes (created by bot.py salesforce-setup)"})
        permission_set, created = answer["id"], True
    done.append((mapping.PERMISSION_SET, created))

    granted = {row["Field"] for row in connection.query(format_soql(
        "SELECT Id, Field FROM FieldPermissions WHERE ParentId = {}", permission_set))}
    for sobject, field in grants():
        name = f"{sobject}.{field.name}"
        if name in granted:
            done.append((f"{mapping.PERMISSION_SET}: {name}", False))
            continue
        _create(connection, "FieldPermissions", {"ParentId": permission_set, "SobjectType": sobject, "Field": name,
                                                 "PermissionsRead": True, "PermissionsEdit": True}, name)
        done.append((f"{mapping.PERMISSION_SET}: {name}", True))

    user = connection.user_id
    assigned = connection.query(format_soql(
        "SELECT Id FROM PermissionSetAssignment WHERE AssigneeId = {} AND PermissionSetId = {}", user,
        permission_set))
    if not assigned:
        _create(connection, "PermissionSetAssignment", {"AssigneeId": user, "PermissionSetId": permission_set})
    done.append((f"{mapping.PERMISSION_SET} → {user}", not assigned))
    return done


def grants() -> list[tuple[str, mapping.FieldDef]]:
    """The field permissions the permission set holds: each field on Lead and Contact, and the activity field
    on Task and Event (an activity field is granted per object that shows it)."""
    return [(obj, f) for obj in mapping.RECORD_OBJECTS for f in mapping.FIELDS] + \
        [(obj, mapping.TASK_FIELD) for obj in ("Task", "Event")]


def _q(soql: str) -> str:
    from urllib.parse import quote_plus

    return quote_plus(soql)


def _create(connection: Connection, sobject: str, values: dict, name: str | None = None) -> dict:
    try:
        return connection.restful(f"sobjects/{sobject}", "POST", json=values)
    except Refused as exc:
        if exc.code == "DUPLICATE_VALUE":
            return {"id": None}
        raise SetupError(name or sobject, str(exc)) from None
