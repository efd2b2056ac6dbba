"""A local stand-in for the HubSpot CRM v3 API (contacts), for the tests, the demo and the benchmarks.

It serves what Handoff calls and refuses what HubSpot refuses, with HubSpot's status codes and bodies, so a
client that works against it has been held to HubSpot's rules. Point the official client at `url` with
`client_for(standin)`, or any HTTP client at `url` with `Authorization: Bearer <token>`.

Served (paths relative to `url`; `contacts`, `contact` and `0-1` all name the contact object):
  POST /crm/v3/objects/contacts/batch/read      POST /crm/v3/objects/contacts/batch/update
  GET|POST /crm/v3/properties/contacts           GET /crm/v3/properties/contacts/{name}
  GET|POST /crm/v3/properties/contacts/groups    GET /crm/v3/properties/contacts/groups/{name}
  GET /_standin/calls (no auth, not counted): the recorded calls, for a stand-in running in another process.

HubSpot's behaviour, and where it was learnt (developers.hubspot.com unless said otherwise):
- Auth: a missing or wrong bearer token is 401 `{"status":"error","message":"Authentication credentials not
  found. This API supports OAuth 2.0 …","correlationId":…,"category":"INVALID_AUTHENTICATION"}` (a real body
  recorded in rudderlabs/rudder-transformer's HubSpot delivery tests, sent with an invalid token).
- Errors are `{"status":"error","message","correlationId",["context"|"errors"],"category"}`
  (/docs/api-reference/error-handling). Two real exceptions are kept: a 429 has `errorType` and `policyName`
  instead of `category`, and a body that is not JSON answers "Invalid input JSON on line L, column C: …" with
  no category (recorded body in the same rudder-transformer tests).
- Property writes: an unknown property, a read-only one, an enumeration value that is not an option, a number
  that is not a number or an email that is not an email refuse the WHOLE request (400 VALIDATION_ERROR, nothing
  written; HubSpot staff on community.hubspot.com "what happens when a property is invalid during API contact
  update": "the request will trigger a 400 error and no fields will be updated"). The message embeds the list
  of invalid properties, e.g. `Property values were not valid: [{"isValid":false,"message":"Property \\"foo\\"
  does not exist","error":"PROPERTY_DOESNT_EXIST","name":"foo","localizedErrorMessage":…,"portalId":…}]`, and
  `errors` repeats each as `{"message","code","context":{"propertyName":[name]}}` (shape from the changelog
  "Property Validations Rules will be enforced for APIs" and a real body quoted in a public chat log; texts:
  `Property "x" does not exist`, `"x" is a read only property; its value cannot be set.`, `v was not one of the
  allowed options: [a, b]`). An empty string clears a value (contacts API reference: "Properties values can be
  cleared by passing an empty string"); a cleared property reads back as null.
- lifecyclestage only moves forward in the stage order (subscriber, lead, marketingqualifiedlead,
  salesqualifiedlead, opportunity, customer, evangelist, other). Contacts API guide, "Update contacts": "you can
  only set the value forward in the stage order. To set the lifecycle stage backward, you'll first need to clear
  the record's existing lifecycle stage value". A backward write is NOT an error: HubSpot answers success and
  leaves the value as it was (HubSpot staff on integrate.hubspot.com "Update Lifecycle Stage Using API": success
  response, "the lifecycle stage cannot move backwards … first set the value to "" … then set the earlier
  value"; the legacy v1 reference says the same). So this stand-in answers 200 and keeps the later stage;
  clearing with "" and writing the earlier stage (in a second request) works.
- Emails are unique, compared case-insensitively, and kept lower case; batch read by `idProperty: "email"`
  finds mixed-case input.
- Batch read: at most 100 inputs, 50 when `propertiesWithHistory` is asked ("The maximum number of inputs
  supported in a batch request for property histories is 50…", a real 400 quoted by several integrations).
  Results carry the requested properties that are defined (null when empty, undefined ones left out: contacts
  guide, "Retrieve contacts") plus hs_object_id, createdate and lastmodifieddate; without `properties` the
  default set (email, firstname, lastname and those three). Ids that do not exist make it 207 with
  `numErrors` and `errors:[{"status":"error","category":"OBJECT_NOT_FOUND","message":"Could not get some
  CONTACT objects, they may be deleted or not exist. Check that ids are valid.","context":{"ids":[…]}}]`;
  all found is 200. Both carry `status:"COMPLETE"`, `startedAt`, `completedAt` (real 207 bodies recorded in
  public test suites, e.g. a PHP client's fixture dated 2024-04-24).
- Batch update: at most 100 inputs; the same id twice refuses the batch with 400 VALIDATION_ERROR "Duplicate IDs
  found in batch input: [id]. IDs must be unique" and `context.ids` (real body recorded in rudder-transformer;
  also a live-tested note in its `live/scenarios.ts`). An id that does not exist does NOT fail the batch: the
  others are written and the answer is 207 with the OBJECT_NOT_FOUND error above for the missing ids. Sources:
  changelog "Simplifying batch update response codes for CRM v3 APIs" (200 when fully successful, 207 "when
  one or more of the batch operations fails"), the official client's response map for batch update
  ({200, 207}), and rudder-transformer's live test against a real portal
  (hs-retl-contacts-update-by-stale-record-id-v3: a deleted id fails only its own item). Results echo the
  written properties (after the lifecyclestage rule) plus hs_object_id, createdate and lastmodifieddate.
- Properties API: groups and properties are created with 201; an existing name is 409 OBJECT_ALREADY_EXISTS
  (legacy reference: "Returns a 409 Conflict … if there is already a group/property with the name"); an unknown
  name is 404 OBJECT_NOT_FOUND. A property needs name, label, type, fieldType and groupName, the group must
  exist, enumerations need options.
- Rate limit: private apps on Free/Starter get 100 requests per rolling 10 seconds (usage guidelines). Beyond
  it: 429 `{"status":"error","message":"You have reached your ten_secondly_rolling limit.","errorType":
  "RATE_LIMIT","correlationId":…,"policyName":"TEN_SECONDLY_ROLLING","groupName":"publicapi:private_app-api-
  calls-ten-secondly:<app>:<portal>"}` (usage guidelines give the DAILY form; the ten-secondly text and
  groupName are from a body observed live, quoted in public tests). Every answer carries
  X-HubSpot-RateLimit-Max, -Remaining and -Interval-Milliseconds (and the -Daily pair). HubSpot documents no
  Retry-After and its own Node client backs off by `policyName` instead, so none is sent unless a test injects
  one. Every request counts, refused ones included.

Wordings NOT confirmed from a public source (the status and category are HubSpot's, the sentence is ours):
the >100 inputs message, the 404 texts of the properties API, the 409 texts, the property-create validation
texts, and "Contact already exists. Existing ID: n" (confirmed for create, assumed for an update that takes
another contact's email). See `UNCONFIRMED`.

Misbehaving on request: `fail_next`, `inject_429`, `slow_down`, `down`/`up`; `reset` clears everything.
"""
from __future__ import annotations

import itertools
import json
import math
import re
import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from standin.base import LocalServer

DEFAULT_TOKEN = "pat-na1-test"
PORTAL_ID = 20260101  # a made-up account ("hub") id, as HubSpot puts in validation errors
APP_ID = 4242001  # a made-up private app id, as HubSpot puts in a 429's groupName
BATCH_LIMIT = 100
HISTORY_BATCH_LIMIT = 50
RATE_REQUESTS, RATE_SECONDS = 100, 10.0  # private app, Free/Starter: 100 per rolling 10 seconds
DAILY_LIMIT = 250_000  # Free/Starter: per account per day
CONTACT_TYPES = {"contacts", "contact", "0-1"}
ALWAYS_READ = ("hs_object_id", "createdate", "lastmodifieddate")
DEFAULT_READ = ("email", "firstname", "lastname")

LIFECYCLE_STAGES = [
    ("subscriber", "Subscriber"), ("lead", "Lead"), ("marketingqualifiedlead", "Marketing Qualified Lead"),
    ("salesqualifiedlead", "Sales Qualified Lead"), ("opportunity", "Opportunity"), ("customer", "Customer"),
    ("evangelist", "Evangelist"), ("other", "Other"),
]
LEAD_STATUSES = [
    ("NEW", "New"), ("OPEN", "Open"), ("IN_PROGRESS", "In Progress"), ("OPEN_DEAL", "Open Deal"),
    ("UNQUALIFIED", "Unqualified"), ("ATTEMPTED_TO_CONTACT", "Attempted to Contact"), ("CONNECTED", "Connected"),
    ("BAD_TIMING", "Bad Timing"),
]
ANALYTICS_SOURCES = [
    ("ORGANIC_SEARCH", "Organic Search"), ("PAID_SEARCH", "Paid Search"), ("EMAIL_MARKETING", "Email Marketing"),
    ("SOCIAL_MEDIA", "Organic Social"), ("REFERRALS", "Referrals"), ("OTHER_CAMPAIGNS", "Other Campaigns"),
    ("DIRECT_TRAFFIC", "Direct Traffic"), ("OFFLINE", "Offline Sources"), ("PAID_SOCIAL", "Paid Social"),
]
PROPERTY_TYPES = {"string", "number", "date", "datetime", "enumeration", "bool"}
FIELD_TYPES = {"textarea", "text", "date", "file", "number", "select", "radio", "checkbox", "booleancheckbox",
               "calculation_equation", "phonenumber", "html"}
PROPERTY_NAME = re.compile(r"[a-z][a-z0-9_]*")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")

AUTH_MESSAGE = ("Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find "
                "more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview")
NOT_FOUND_MESSAGE = "Could not get some CONTACT objects, they may be deleted or not exist. Check that ids are valid."
RATE_MESSAGE = "You have reached your ten_secondly_rolling limit."
HISTORY_LIMIT_MESSAGE = ("The maximum number of inputs supported in a batch request for property histories is 50. "
                         "Please reduce the number of items and try again")
# Our sentences where no public copy of HubSpot's was found (status and category are HubSpot's).
UNCONFIRMED = {
    "too_many_inputs": "The maximum number of inputs supported in a batch request is 100. "
                       "Please reduce the number of items and try again",
    "property_missing": "Unable to find property {name}",
    "group_missing": "Unable to find property group {name}",
    "property_exists": "Property named '{name}' already exists.",
    "group_exists": "Property group named '{name}' already exists.",
    "required": "Invalid input JSON: Cannot build {what}, some of required attributes are not set [{names}]",
    "bad_value": "{field} must be one of {allowed}, not {value!r}",
    "bad_name": "Property name {name!r} must start with a lowercase letter and contain only lowercase letters, "
                "digits and underscores",
    "no_group": "Property group {name} does not exist",
    "no_options": "Enumeration property {name} needs at least one option",
    "id_property": "Unable to perform read/update by non-unique 0-1 property {name}",
    "email_taken": "Contact already exists. Existing ID: {id}",
    "not_served": "The HubSpot stand-in serves contacts only, not {what}",
    "no_route": "The HubSpot stand-in does not serve {method} {path}",
    "fault": "internal error",
}


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _as_string(raw) -> str:
    """HubSpot takes property values as strings; JSON numbers and booleans are written as their text."""
    if raw is None:
        return ""
    if isinstance(raw, bool):
        return "true" if raw else "false"
    return str(raw)


def _option(value: str, label: str, order: int) -> dict:
    return {"label": label, "value": value, "description": "", "displayOrder": order, "hidden": False}


def _definition(name: str, label: str, type_: str, field_type: str, group: str, options=(), *,
                read_only: bool = False, unique: bool = False, hubspot: bool = True, order: int = -1) -> dict:
    at = "2019-08-06T02:41:52.043Z" if hubspot else _now_iso()
    prop = {
        "updatedAt": at, "createdAt": at, "name": name, "label": label, "type": type_, "fieldType": field_type,
        "description": "", "groupName": group,
        "options": [_option(v, lab, i) for i, (v, lab) in enumerate(options)],
        "displayOrder": order, "calculated": False, "externalOptions": False, "hasUniqueValue": unique,
        "hidden": False, "modificationMetadata": {"archivable": not hubspot, "readOnlyDefinition": hubspot,
                                                  "readOnlyValue": read_only},
        "formField": not read_only, "archived": False,
    }
    if hubspot:
        prop["hubspotDefined"] = True
    return prop


def default_groups() -> dict[str, dict]:
    groups = [("contactinformation", "Contact information", 0), ("analyticsinformation", "Web analytics history", 5),
              ("sales_properties", "Sales properties", 8)]
    return {name: {"name": name, "label": label, "displayOrder": order, "archived": False}
            for name, label, order in groups}


def default_properties() -> dict[str, dict]:
    """The default contact properties Handoff uses, as HubSpot defines them."""
    info = "contactinformation"
    props = [
        _definition("email", "Email", "string", "text", info, unique=True),
        _definition("firstname", "First Name", "string", "text", info),
        _definition("lastname", "Last Name", "string", "text", info),
        _definition("company", "Company Name", "string", "text", info),
        _definition("jobtitle", "Job Title", "string", "text", info),
        _definition("hubspotscore", "HubSpot Score", "number", "number", info, read_only=True),
        _definition("hs_analytics_source", "Original Traffic Source", "enumeration", "select",
                    "analyticsinformation", ANALYTICS_SOURCES, read_only=True),
        _definition("createdate", "Create Date", "datetime", "date", info),
        _definition("lastmodifieddate", "Last Modified Date", "datetime", "date", info, read_only=True),
        _definition("lifecyclestage", "Lifecycle Stage", "enumeration", "radio", info, LIFECYCLE_STAGES),
        _definition("hs_lead_status", "Lead Status", "enumeration", "radio", "sales_properties", LEAD_STATUSES),
        _definition("hs_object_id", "Record ID", "number", "number", info, read_only=True, unique=True),
    ]
    return {p["name"]: p for p in props}


@dataclass
class Call:
    method: str
    path: str
    query: dict
    body: Any
    status: int = 0  # 0: dropped without an answer (the stand-in was down)
    at: float = field(default_factory=time.monotonic)  # when it arrived


@dataclass
class _Fault:
    path: str | None
    status: int
    retry_after: float | None


class HubSpotStandIn(LocalServer):
    thread_name = "hubspot-standin"

    def __init__(self, token: str = DEFAULT_TOKEN, host: str = "127.0.0.1", port: int = 0,
                 limit_requests: int = RATE_REQUESTS, limit_seconds: float = RATE_SECONDS):
        self.token = token
        self.calls: list[Call] = []
        self.throttled = 0  # 429s answered, the rate limit's and the injected ones
        self._default_limit = (limit_requests, limit_seconds)
        self._limit = self._default_limit
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._contacts: dict[str, dict] = {}
        self._ids = itertools.count(101)
        self._groups = default_groups()
        self._properties = default_properties()
        self._faults: list[_Fault] = []
        self._slow: dict[str, float] = {}
        self._down = False
        self._windows: dict[str, deque] = {}  # token -> arrival times inside the rolling window
        self._daily = 0
        self._listen(host, port, self._handler())

    @property
    def url(self) -> str:
        return self.base_url

    # Setup ------------------------------------------------------------------
    def limit(self, requests: int = RATE_REQUESTS, seconds: float = RATE_SECONDS) -> None:
        """Allow `requests` per rolling `seconds` per token (HubSpot's private app limit by default)."""
        with self._lock:
            self._limit = (requests, seconds)
            self._windows.clear()

    def add_contact(self, email: str | None = None, **properties) -> str:
        """Seed a contact; returns its id. Any known property may be seeded (read-only ones too, as HubSpot sets
        them itself); an unknown property, an invalid option or a taken email is a ValueError."""
        values = {k: _as_string(v) for k, v in properties.items()}
        if email is not None:
            values["email"] = email
        with self._lock:
            for name, value in values.items():
                definition = self._properties.get(name)
                if definition is None:
                    raise ValueError(f'Property "{name}" does not exist')
                problem = self._value_problem(definition, value) if value else None
                if problem:
                    raise ValueError(problem[1])
            if values.get("email"):
                values["email"] = values["email"].strip().lower()
                owner = self._id_by_email(values["email"])
                if owner:
                    raise ValueError(UNCONFIRMED["email_taken"].format(id=owner))
            contact_id = str(next(self._ids))
            at = _now_iso()
            stored = {k: v for k, v in values.items() if v != ""}
            stored.update(hs_object_id=contact_id, createdate=stored.get("createdate", at), lastmodifieddate=at)
            self._contacts[contact_id] = {
                "id": contact_id, "properties": stored, "createdAt": stored["createdate"], "updatedAt": at,
                "history": {k: [(v, at)] for k, v in stored.items()},
            }
            return contact_id

    def edit_contact(self, contact_id: str, **properties) -> None:
        """Someone edits the contact in HubSpot (a rep changing its lead status): the values are checked like
        add_contact's, stored and added to the property's history."""
        values = {k: _as_string(v) for k, v in properties.items()}
        with self._lock:
            contact = self._contacts[str(contact_id)]
            for name, value in values.items():
                definition = self._properties.get(name)
                if definition is None:
                    raise ValueError(f'Property "{name}" does not exist')
                problem = self._value_problem(definition, value) if value else None
                if problem:
                    raise ValueError(problem[1])
            at = _now_iso()
            for name, value in values.items():
                contact["properties"][name] = value
                contact["history"].setdefault(name, []).append((value, at))
            contact["properties"]["lastmodifieddate"] = contact["updatedAt"] = at

    # Misbehaving ------------------------------------------------------------
    def fail_next(self, times: int, status: int = 500, path: str | None = None,
                  retry_after: float | None = None) -> None:
        """The next `times` calls (to paths starting with `path`, or any) answer `status` with a HubSpot body."""
        with self._lock:
            self._faults.extend(_Fault(path, status, retry_after) for _ in range(times))

    def inject_429(self, times: int, retry_after: float | None = None, path: str | None = None) -> None:
        """The next `times` calls answer HubSpot's ten-secondly 429 (with Retry-After only if given)."""
        self.fail_next(times, 429, path, retry_after)

    def slow_down(self, path: str, seconds: float) -> None:
        """Calls to paths starting with `path` are answered only after `seconds`."""
        with self._lock:
            self._slow[path] = seconds

    def down(self) -> None:
        """Until `up`, every connection is closed without an answer."""
        with self._lock:
            self._down = True

    def up(self) -> None:
        with self._lock:
            self._down = False

    def reset(self) -> None:
        """Forget contacts, calls, faults, delays, custom properties and groups; limits back to the constructor's."""
        with self._lock:
            self.calls.clear()
            self.throttled = 0
            self._contacts.clear()
            self._groups = default_groups()
            self._properties = default_properties()
            self._faults.clear()
            self._slow.clear()
            self._down = False
            self._limit = self._default_limit
            self._windows.clear()
            self._daily = 0

    # Reading ----------------------------------------------------------------
    def contact(self, contact_id: str) -> dict:
        """The stored properties of a contact (KeyError if there is none)."""
        with self._lock:
            return dict(self._contacts[str(contact_id)]["properties"])

    def set_options(self, name: str, values: list[str]) -> None:
        """A portal that customised an enumeration property (e.g. its lead statuses): only `values` are valid."""
        with self._lock:
            self._properties[name]["options"] = [_option(v, v, i) for i, v in enumerate(values)]

    def history(self, contact_id: str, name: str) -> list[str]:
        """Every value written to one property of a contact, oldest first ("" where it was cleared)."""
        with self._lock:
            return [value for value, _ in self._contacts[str(contact_id)]["history"].get(name, [])]

    def contact_by_email(self, email: str) -> dict | None:
        with self._lock:
            contact_id = self._id_by_email(email)
            return dict(self._contacts[contact_id]["properties"]) if contact_id else None

    def property(self, name: str) -> dict | None:
        """The definition of a contact property, as the properties API answers it."""
        with self._lock:
            found = self._properties.get(name)
            return json.loads(json.dumps(found)) if found else None

    def calls_to(self, path_suffix: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.path.endswith(path_suffix)]

    def count(self, status: int) -> int:
        """How many calls were answered `status`."""
        with self._lock:
            return Counter(c.status for c in self.calls)[status]

    def wait_for(self, predicate, timeout: float = 10.0) -> bool:
        """Block until predicate(calls) is true or the timeout passes."""
        return self._wait_until(lambda: predicate(list(self.calls)), timeout)

    def max_in_window(self, seconds: float) -> int:
        """The most requests that arrived within any rolling window of `seconds` (dropped ones not counted)."""
        with self._lock:
            times = sorted(c.at for c in self.calls if c.status)
        best, first = 0, 0
        for last, at in enumerate(times):
            while times[first] <= at - seconds:
                first += 1
            best = max(best, last - first + 1)
        return best

    # Answering --------------------------------------------------------------
    def answer(self, method: str, target: str, headers, raw: bytes) -> tuple[int, dict, bytes] | None:
        """One request: (status, headers, body), or None to drop the connection without an answer."""
        arrived = time.monotonic()
        parts = urlsplit(target)
        path, query = parts.path.rstrip("/") or "/", dict(parse_qsl(parts.query, keep_blank_values=True))
        if path == "/_standin/calls":
            return 200, {}, self._dump_calls()
        try:
            body, bad_json = (json.loads(raw) if raw.strip() else None), None
        except ValueError as e:
            body, bad_json = None, e
        call = Call(method, path, query, body if bad_json is None else raw.decode("utf-8", "replace"), at=arrived)
        with self._lock:
            down = self._down
        if down:
            self._record(call)
            return None
        auth = headers.get("Authorization", "")
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        over, limit_headers = self._count(token, arrived)
        with self._lock:
            slow = max((s for p, s in self._slow.items() if path.startswith(p)), default=0.0)
        if slow:
            time.sleep(slow)
        extra: dict[str, str] = {}
        if token != self.token:
            status, payload = self._error(401, AUTH_MESSAGE, "INVALID_AUTHENTICATION")
        elif over:
            status, payload = 429, self._rate_body()
        else:
            fault = self._take_fault(path)
            if fault is not None:
                status, payload = self._fault_answer(fault)
                if fault.retry_after is not None:
                    extra["Retry-After"] = str(max(0, math.ceil(fault.retry_after)))
                if status == 429:
                    limit_headers["X-HubSpot-RateLimit-Remaining"] = "0"
            elif bad_json is not None:
                status, payload = 400, self._bad_json(bad_json)
            else:
                status, payload = self._route(method, path, query, body)
        call.status = status
        with self._lock:
            if status == 429:
                self.throttled += 1
        self._record(call)
        correlation = payload.get("correlationId") or str(uuid.uuid4())
        answer_headers = {**limit_headers, **extra, "X-HubSpot-Correlation-Id": correlation}
        return status, answer_headers, json.dumps(payload).encode()

    def _count(self, token: str, arrived: float) -> tuple[bool, dict]:
        """Count the request against its token's rolling window (refused ones count too, as at HubSpot)."""
        with self._lock:
            most, seconds = self._limit
            window = self._windows.setdefault(token, deque())
            while window and window[0] <= arrived - seconds:
                window.popleft()
            window.append(arrived)
            self._daily += 1
            headers = {
                "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(seconds * 1000)),
                "X-HubSpot-RateLimit-Max": str(most),
                "X-HubSpot-RateLimit-Remaining": str(max(0, most - len(window))),
                "X-HubSpot-RateLimit-Daily": str(DAILY_LIMIT),
                "X-HubSpot-RateLimit-Daily-Remaining": str(max(0, DAILY_LIMIT - self._daily)),
            }
            return len(window) > most, headers

    def _take_fault(self, path: str) -> _Fault | None:
        with self._lock:
            for i, fault in enumerate(self._faults):
                if fault.path is None or path.startswith(fault.path):
                    return self._faults.pop(i)
        return None

    def _fault_answer(self, fault: _Fault) -> tuple[int, dict]:
        if fault.status == 429:
            return 429, self._rate_body()
        if fault.status == 401:
            return self._error(401, AUTH_MESSAGE, "INVALID_AUTHENTICATION")
        category = {400: "VALIDATION_ERROR", 401: "INVALID_AUTHENTICATION", 403: "MISSING_SCOPES",
                    404: "OBJECT_NOT_FOUND", 409: "CONFLICT"}.get(fault.status, "INTERNAL_ERROR")
        return self._error(fault.status, UNCONFIRMED["fault"], category)

    @staticmethod
    def _rate_body() -> dict:
        return {"status": "error", "message": RATE_MESSAGE, "errorType": "RATE_LIMIT",
                "correlationId": str(uuid.uuid4()), "policyName": "TEN_SECONDLY_ROLLING",
                "groupName": f"publicapi:private_app-api-calls-ten-secondly:{APP_ID}:{PORTAL_ID}"}

    @staticmethod
    def _error(status: int, message: str, category: str | None = None, **extra) -> tuple[int, dict]:
        body = {"status": "error", "message": message, "correlationId": str(uuid.uuid4()), **extra}
        if category:
            body["category"] = category
        return status, body

    @staticmethod
    def _bad_json(problem: ValueError) -> dict:
        line, column = getattr(problem, "lineno", 1), getattr(problem, "colno", 1)
        message = f"Invalid input JSON on line {line}, column {column}: {getattr(problem, 'msg', problem)}"
        return {"status": "error", "message": message, "correlationId": str(uuid.uuid4())}

    def _record(self, call: Call) -> None:
        with self._cond:
            self.calls.append(call)
            self._cond.notify_all()

    def _dump_calls(self) -> bytes:
        with self._lock:
            return json.dumps({"calls": [{"method": c.method, "path": c.path, "query": c.query, "body": c.body,
                                          "status": c.status} for c in self.calls]}).encode()

    def _route(self, method: str, path: str, query: dict, body) -> tuple[int, dict]:
        m = re.fullmatch(r"/crm/v3/objects/([^/]+)/batch/(read|update)", path)
        if m and method == "POST":
            if m[1] not in CONTACT_TYPES:
                return self._error(404, UNCONFIRMED["not_served"].format(what=m[1]), "OBJECT_NOT_FOUND")
            return self._batch_read(body) if m[2] == "read" else self._batch_update(body)
        m = re.fullmatch(r"/crm/v3/properties/([^/]+)(?:/(groups))?(?:/([^/]+))?", path)
        if m:
            if m[1] not in CONTACT_TYPES:
                return self._error(404, UNCONFIRMED["not_served"].format(what=m[1]), "OBJECT_NOT_FOUND")
            groups, name = m[2] is not None, m[3]
            if method == "GET" and name:
                return self._get_group(name) if groups else self._get_property(name)
            if method == "GET":
                with self._lock:
                    found = self._groups if groups else self._properties
                    return 200, {"results": json.loads(json.dumps(list(found.values())))}
            if method == "POST" and not name:
                return self._create_group(body) if groups else self._create_property(body)
        return self._error(404, UNCONFIRMED["no_route"].format(method=method, path=path), "OBJECT_NOT_FOUND")

    # Contacts ---------------------------------------------------------------
    def _id_by_email(self, email: str) -> str | None:
        wanted = str(email).strip().lower()
        for contact_id, contact in self._contacts.items():
            if contact["properties"].get("email") == wanted:
                return contact_id
        return None

    def _inputs(self, body, what: str) -> tuple[list | None, tuple[int, dict] | None]:
        if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
            return None, self._error(400, UNCONFIRMED["required"].format(what=what, names="inputs"),
                                     "VALIDATION_ERROR")
        inputs = body["inputs"]
        if len(inputs) > BATCH_LIMIT:
            return None, self._error(400, UNCONFIRMED["too_many_inputs"], "VALIDATION_ERROR")
        for item in inputs:
            if not isinstance(item, dict) or item.get("id") in (None, ""):
                return None, self._error(400, UNCONFIRMED["required"].format(what="SimplePublicObjectId",
                                                                             names="id"), "VALIDATION_ERROR")
        return inputs, None

    def _resolver(self, id_property):
        """A function from an input id to a contact id (or None), by record id or by a unique property."""
        if id_property in (None, "", "hs_object_id"):
            return lambda given: str(given) if str(given) in self._contacts else None
        definition = self._properties.get(id_property)
        if definition is None or not definition["hasUniqueValue"]:
            return None
        if id_property == "email":
            return self._id_by_email

        def by_value(given):
            for contact_id, contact in self._contacts.items():
                if contact["properties"].get(id_property) == str(given):
                    return contact_id
            return None

        return by_value

    def _not_found(self, ids: list[str]) -> dict:
        return {"status": "error", "category": "OBJECT_NOT_FOUND", "message": NOT_FOUND_MESSAGE,
                "context": {"ids": ids}}

    @staticmethod
    def _batch_answer(results: list, missing: list, started: str, not_found) -> tuple[int, dict]:
        body: dict = {"status": "COMPLETE", "results": results}
        if missing:
            body.update(numErrors=1, errors=[not_found(missing)])
        body.update(startedAt=started, completedAt=_now_iso())
        return (207 if missing else 200), body

    def _batch_read(self, body) -> tuple[int, dict]:
        started = _now_iso()
        inputs, refused = self._inputs(body, "BatchReadInputSimplePublicObjectId")
        if refused:
            return refused
        with_history = [str(p) for p in body.get("propertiesWithHistory") or []]
        if with_history and len(inputs) > HISTORY_BATCH_LIMIT:
            return self._error(400, HISTORY_LIMIT_MESSAGE, "VALIDATION_ERROR")
        with self._lock:
            resolve = self._resolver(body.get("idProperty"))
            if resolve is None:
                return self._error(400, UNCONFIRMED["id_property"].format(name=body.get("idProperty")),
                                   "VALIDATION_ERROR")
            wanted = [str(p) for p in body.get("properties") or DEFAULT_READ]
            names = [p for p in dict.fromkeys([*wanted, *ALWAYS_READ]) if p in self._properties]
            results, missing, seen = [], [], set()
            for item in inputs:
                given = str(item["id"])
                contact_id = resolve(given)
                if contact_id is None:
                    if given not in missing:
                        missing.append(given)
                    continue
                if contact_id in seen:
                    continue
                seen.add(contact_id)
                contact = self._contacts[contact_id]
                result = {"id": contact_id, "properties": {n: contact["properties"].get(n) for n in names},
                          "createdAt": contact["createdAt"], "updatedAt": contact["updatedAt"], "archived": False}
                if with_history:
                    result["propertiesWithHistory"] = {
                        n: [{"value": v, "timestamp": at, "sourceType": "API", "sourceId": None}
                            for v, at in reversed(contact["history"].get(n, []))]
                        for n in with_history if n in self._properties}
                results.append(result)
        return self._batch_answer(results, missing, started, self._not_found)

    def _value_problem(self, definition: dict, value: str) -> tuple[str, str] | None:
        """(error code, message) when `value` is not valid for the property, else None. `value` is not empty."""
        kind = definition["type"]
        if kind in ("enumeration", "bool"):
            allowed = [o["value"] for o in definition["options"]] or (["true", "false"] if kind == "bool" else [])
            chosen = value.split(";") if definition["fieldType"] == "checkbox" else [value]
            for one in chosen:
                if one not in allowed:
                    return "INVALID_OPTION", f"{one} was not one of the allowed options: [{', '.join(allowed)}]"
        elif kind == "number":
            try:
                float(value)
            except ValueError:
                return "INVALID_DECIMAL", f"{value} was not a valid number."
        elif definition["name"] == "email" and not EMAIL.fullmatch(value.strip()):
            return "INVALID_EMAIL", f"Email address {value} is invalid"
        return None

    def _check_writes(self, inputs: list) -> tuple[int, dict] | None:
        """HubSpot's answer when any input writes what it may not: the whole batch is refused."""
        invalid, errors = [], []
        for item in inputs:
            for name, raw in (item.get("properties") or {}).items():
                value = _as_string(raw)
                definition = self._properties.get(name)
                if definition is None:
                    problem = ("PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist')
                elif definition["modificationMetadata"]["readOnlyValue"]:
                    problem = ("READ_ONLY_VALUE", f'"{name}" is a read only property; its value cannot be set.')
                else:
                    problem = self._value_problem(definition, value) if value else None
                if problem:
                    code, message = problem
                    invalid.append({"isValid": False, "message": message, "error": code, "name": name,
                                    "localizedErrorMessage": message, "portalId": PORTAL_ID})
                    errors.append({"message": message, "code": code, "context": {"propertyName": [name]}})
        if not invalid:
            return None
        message = "Property values were not valid: " + json.dumps(invalid, separators=(",", ":"))
        return self._error(400, message, "VALIDATION_ERROR", errors=errors)

    def _batch_update(self, body) -> tuple[int, dict]:
        started = _now_iso()
        inputs, refused = self._inputs(body, "BatchInputSimplePublicObjectBatchInput")
        if refused:
            return refused
        for item in inputs:
            if not isinstance(item.get("properties"), dict):
                return self._error(400, UNCONFIRMED["required"].format(what="SimplePublicObjectBatchInput",
                                                                       names="properties"), "VALIDATION_ERROR")
        counts = Counter(str(item["id"]) for item in inputs)
        duplicates = [i for i, n in counts.items() if n > 1]
        if duplicates:
            return self._error(400, f"Duplicate IDs found in batch input: [{', '.join(duplicates)}]. "
                                    "IDs must be unique", "VALIDATION_ERROR", context={"ids": duplicates})
        with self._lock:
            refused = self._check_writes(inputs)
            if refused:
                return refused
            targets, missing = [], []
            for item in inputs:
                resolve = self._resolver(item.get("idProperty"))
                if resolve is None:
                    return self._error(400, UNCONFIRMED["id_property"].format(name=item.get("idProperty")),
                                       "VALIDATION_ERROR")
                contact_id = resolve(str(item["id"]))
                if contact_id is None:
                    missing.append(str(item["id"]))
                else:
                    targets.append((contact_id, {k: _as_string(v) for k, v in item["properties"].items()}))
            claimed: dict[str, str] = {}
            for contact_id, values in targets:
                email = values.get("email", "").strip().lower()
                if email:
                    owner = self._id_by_email(email) or claimed.get(email)
                    if owner and owner != contact_id:
                        return self._error(409, UNCONFIRMED["email_taken"].format(id=owner), "CONFLICT")
                    claimed[email] = contact_id
            results = [self._write(contact_id, values) for contact_id, values in targets]
        return self._batch_answer(results, missing, started, self._not_found)

    def _write(self, contact_id: str, values: dict[str, str]) -> dict:
        contact = self._contacts[contact_id]
        stored, at = contact["properties"], _now_iso()
        echoed = {}
        for name, value in values.items():
            if name == "email":
                value = value.strip().lower()
            if name == "lifecyclestage" and value and stored.get(name):
                order = [o["value"] for o in self._properties[name]["options"]]
                if order.index(value) < order.index(stored[name]):
                    echoed[name] = stored[name]  # HubSpot keeps the later stage and answers success
                    continue
            if value == "":
                stored.pop(name, None)
            else:
                stored[name] = value
            contact["history"].setdefault(name, []).append((value, at))
            echoed[name] = value
        stored["lastmodifieddate"] = contact["updatedAt"] = at
        echoed.update({n: stored.get(n) for n in ALWAYS_READ})
        return {"id": contact_id, "properties": echoed, "createdAt": contact["createdAt"], "updatedAt": at,
                "archived": False}

    # Properties API -----------------------------------------------------------
    def _get_property(self, name: str) -> tuple[int, dict]:
        with self._lock:
            found = self._properties.get(name)
            if found is None:
                return self._error(404, UNCONFIRMED["property_missing"].format(name=name), "OBJECT_NOT_FOUND")
            return 200, json.loads(json.dumps(found))

    def _get_group(self, name: str) -> tuple[int, dict]:
        with self._lock:
            found = self._groups.get(name)
            if found is None:
                return self._error(404, UNCONFIRMED["group_missing"].format(name=name), "OBJECT_NOT_FOUND")
            return 200, dict(found)

    def _missing_fields(self, body, required: tuple[str, ...], what: str) -> tuple[int, dict] | None:
        if not isinstance(body, dict):
            body = {}
        missing = [f for f in required if body.get(f) in (None, "")]
        if missing:
            return self._error(400, UNCONFIRMED["required"].format(what=what, names=", ".join(missing)),
                               "VALIDATION_ERROR")
        return None

    def _create_group(self, body) -> tuple[int, dict]:
        refused = self._missing_fields(body, ("name", "label"), "PropertyGroupCreate")
        if refused:
            return refused
        name = str(body["name"])
        with self._lock:
            if name in self._groups:
                return self._error(409, UNCONFIRMED["group_exists"].format(name=name), "OBJECT_ALREADY_EXISTS")
            group = {"name": name, "label": str(body["label"]), "displayOrder": int(body.get("displayOrder", -1)),
                     "archived": False}
            self._groups[name] = group
            return 201, dict(group)

    def _create_property(self, body) -> tuple[int, dict]:
        refused = self._missing_fields(body, ("name", "label", "type", "fieldType", "groupName"), "PropertyCreate")
        if refused:
            return refused
        name, kind, field_type = str(body["name"]), body["type"], body["fieldType"]
        if kind not in PROPERTY_TYPES:
            return self._error(400, UNCONFIRMED["bad_value"].format(field="type", allowed=sorted(PROPERTY_TYPES),
                                                                   value=kind), "VALIDATION_ERROR")
        if field_type not in FIELD_TYPES:
            return self._error(400, UNCONFIRMED["bad_value"].format(field="fieldType", allowed=sorted(FIELD_TYPES),
                                                                   value=field_type), "VALIDATION_ERROR")
        if not PROPERTY_NAME.fullmatch(name):
            return self._error(400, UNCONFIRMED["bad_name"].format(name=name), "VALIDATION_ERROR")
        options = body.get("options") or []
        if kind == "enumeration" and not options:
            return self._error(400, UNCONFIRMED["no_options"].format(name=name), "VALIDATION_ERROR")
        for option in options:
            refused = self._missing_fields(option, ("label", "value"), "OptionInput")
            if refused:
                return refused
        with self._lock:
            if name in self._properties:
                return self._error(409, UNCONFIRMED["property_exists"].format(name=name), "OBJECT_ALREADY_EXISTS")
            if body["groupName"] not in self._groups:
                return self._error(400, UNCONFIRMED["no_group"].format(name=body["groupName"]), "VALIDATION_ERROR")
            prop = _definition(name, str(body["label"]), kind, field_type, body["groupName"],
                               [(str(o["value"]), str(o["label"])) for o in options], hubspot=False,
                               unique=bool(body.get("hasUniqueValue")), order=int(body.get("displayOrder", -1)))
            prop["description"] = str(body.get("description") or "")
            for option, given in zip(prop["options"], options, strict=True):
                option["hidden"] = bool(given.get("hidden", False))
                option["description"] = str(given.get("description") or "")
                if given.get("displayOrder") is not None:
                    option["displayOrder"] = int(given["displayOrder"])
            self._properties[name] = prop
            return 201, json.loads(json.dumps(prop))

    # HTTP -------------------------------------------------------------------
    def _handler(self):
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                answer = standin.answer(self.command, self.path, self.headers, raw)
                if answer is None:  # down: hang up without a word
                    self.close_connection = True
                    return
                status, headers, data = answer
                self.send_response(status)
                self.send_header("Content-Type", "application/json;charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

        return Handler


def client_for(standin: HubSpotStandIn, token: str | None = None, **config):
    """The official client (`hubspot-api-client`) pointed at the stand-in.

    The client hands every keyword it is given to each generated package's Configuration (its default api
    factory does `setattr(configuration, key, value)`), so `host=` replaces https://api.hubapi.com."""
    from hubspot import HubSpot

    return HubSpot(access_token=standin.token if token is None else token, host=standin.url, **config)


def main(argv=None) -> int:
    """Run the stand-in on its own: `python -m standin.hubspot --port 8098 --token X [--limit 100:10]`."""
    import argparse

    p = argparse.ArgumentParser(description="Local HubSpot CRM v3 API stand-in")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--token", default=DEFAULT_TOKEN)
    p.add_argument("--limit", help="REQUESTS:SECONDS per token, e.g. 100:10 (the default)")
    args = p.parse_args(argv)
    requests, seconds = (args.limit.split(":") if args.limit else (RATE_REQUESTS, RATE_SECONDS))
    standin = HubSpotStandIn(token=args.token, host=args.host, port=args.port,
                             limit_requests=int(requests), limit_seconds=float(seconds))
    return standin.serve_until_interrupted()


if __name__ == "__main__":
    raise SystemExit(main())
