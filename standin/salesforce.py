"""A local stand-in for the Salesforce REST API (one org, one integration user), for the tests, the demo and the
benchmarks.

It serves what Handoff calls and refuses what Salesforce refuses, with Salesforce's status codes and bodies, so a
client that works against it has been held to Salesforce's rules. It speaks HTTPS only, with a certificate from a
throwaway CA (standin/tls.py): a client trusts `ca_file` (`requests.Session().verify = standin.ca_file`). One
server plays both the My Domain login host and the instance. Build simple-salesforce's client with
`Salesforce(instance_url=standin.url, session_id=<access_token>, version="60.0", session=<that session>)`.

Served (paths relative to `url`; REST ones under /services/data/vNN.N/ for NN.N from 31.0 to 63.0):
  POST /services/oauth2/token              client credentials flow (form body, or HTTP Basic for the client)
  GET  /id/{orgId}/{userId}                identity of the integration user (Bearer, not counted)
  GET  /services/data                      the versions (no auth, not counted)
  GET  limits                              GET sobjects/{Lead|Contact|Task|Event|User|...}/describe
  GET  query?q=, query/{locator}           GET queryAll?q=, queryAll/{locator} (deleted records too)
  GET  sobjects/{Type}/{id}                POST sobjects/{PermissionSet|FieldPermissions|PermissionSetAssignment}
  PATCH composite/sobjects                 update up to 200 Lead/Contact records
  PATCH composite/sobjects/Task/{ExtIdField}  upsert up to 200 Tasks by an External ID field
  GET  tooling/query?q= (CustomField)      POST tooling/sobjects/CustomField   GET tooling/sobjects/CustomField/{id}

Salesforce's behaviour, and where it was learnt (developer.salesforce.com and help.salesforce.com unless said
otherwise; "a public fixture" means a body recorded from Salesforce in some public project's tests or issues):
- Token: client credentials answer 200 {access_token, signature, scope, instance_url, id, token_type "Bearer",
  issued_at (epoch ms, a string)} (field list from Salesforce's published Postman collection schema for the
  client credentials flow; `id` is https://<login host>/id/<orgId>/<userId>). An unknown client_id is 400
  {"error":"invalid_client_id","error_description":"client identifier invalid"}, a wrong secret 400
  {"error":"invalid_client","error_description":"invalid client credentials"}, any other grant 400
  {"error":"unsupported_grant_type","error_description":"grant type not supported"} (public fixtures and
  troubleshooting pages quoting Salesforce's answers).
- Errors are a JSON list of {"message","errorCode"[, "fields"]} (REST API guide, "Status Codes and Error
  Responses"). A missing, unknown or expired token is 401 [{"message":"Session expired or invalid","errorCode":
  "INVALID_SESSION_ID"}] (many public fixtures). An unknown resource or API version is 404 NOT_FOUND "The requested
  resource does not exist"; a wrong method 405 METHOD_NOT_ALLOWED "HTTP Method 'X' not allowed. Allowed are ..."
  (simple-salesforce issue #157). An injected 500 answers UNKNOWN_EXCEPTION "An unexpected error occurred. Please
  include this ErrorId if you contact support: ..." (public fixtures).
- Limits: every REST answer carries `Sforce-Limit-Info: api-usage=N/M` ("returned in each request to REST API
  (except for calls to the Versions URI ...)", REST guide, "Limit Info Header"; simple-salesforce parses it). Each authenticated REST request counts one (the token endpoint does not); at the
  org's daily maximum Salesforce answers 403 [{"message":"TotalRequests Limit exceeded.","errorCode":
  "REQUEST_LIMIT_EXCEEDED"}] (the guide names the code for 403; the body is in many public fixtures). GET limits
  answers {"DailyApiRequests":{"Max":M,"Remaining":M-N}, ...}.
- URI length: "In each REST call, the maximum length for the combined URI and headers is 16,384 bytes. A request
  exceeding this limit returns a 431 Request Header Fields Too Large error. If the URI itself exceeds this limit,
  the request returns a 414 URI Too Long error" (knowledge article 000386264; the 414 row of "Status Codes and
  Error Responses"). Salesforce's edge answers that before the API sees it: the body is Jetty's HTML
  `<h1>Bad Message 414</h1><pre>reason: URI Too Long</pre>` (quoted verbatim in simple-salesforce #271,
  jsforce #1134 and others), with no Sforce-Limit-Info, not counted; the 431 body is assumed to be the same page.
- SOQL: at most 100,000 characters (app limits cheat sheet; the wording of the error is the one quoted for the older
  20,000 limit). String literals take the escapes \\n \\N \\r \\R \\t \\T \\b \\B \\f \\F \\" \\' \\\\ \\uXXXX, and
  \\_ \\% in LIKE only; "If you use a backslash character in any other context, an error occurs" (SOQL reference,
  "Quoted String Escape Sequences"). Syntax errors are 400 MALFORMED_QUERY, an unknown object INVALID_TYPE "sObject
  type 'X' is not supported. If you are attempting to use a custom object, ...", an unknown column INVALID_FIELD
  "No such column 'X' on entity 'Lead'. If you are attempting to use a custom field, ..."; each message echoes the
  query line, a caret and "ERROR at Row:1:Column:N" (public fixtures, e.g. "unexpected token: 'FROM'"). A filter
  value of the wrong kind is INVALID_FIELD "value of filter criterion for field 'X' must be of type dateTime and
  should not be enclosed in quotes". String comparisons are case-insensitive ("case-insensitive for all other
  fields" but unique case-sensitive ones, SOQL reference "Comparison Operators"); != matches nulls; AND and OR
  may not be mixed without parentheses. Answers are {"totalSize","done","records":[{"attributes":{"type","url"},
  ...}]} in batches of 2,000 with "nextRecordsUrl" (REST guide "Query"; knowledge article 000386264); an unknown
  locator is INVALID_QUERY_LOCATOR. ORDER BY sorts case-insensitively with nulls first unless told NULLS LAST,
  and refuses long text areas (SOQL reference, "ORDER BY").
- Field-level security: a field is seen only by a user granted it: "To grant a user access to a field, associate
  a FieldPermissions record with a PermissionSet that's assigned to a user" (object reference, FieldPermissions;
  Field is "prefixed with the SobjectType", a restricted picklist; PermissionsEdit "Requires PermissionsRead").
  A custom field created through the Tooling API is granted to nobody, so for the integration user it is absent
  from describe, "No such column" in SOQL and on write, until a permission set granting it is assigned. Read is
  enough to query and describe (then updateable/createable are false); writing needs Edit. Custom fields on
  Activity appear on Task and Event and are granted per object (SobjectType Task, Field Task.X__c, and likewise
  Event): our reading of how activity fields show in FieldPermissions, not confirmed.
- Writes (sObject Collections, REST guide "Update Records Using sObject Collections" and "Upsert Records Using
  sObject Collections"): up to 200 records, more is 400 [{"message":"record limit reached. cannot submit more than
  200 records into this call","errorCode":"EXCEEDED_ID_LIMIT"}] (public fixtures); results in request order;
  a record that fails has no "id" in its result (Force.com toolkit issue #307), only
  "errors":[{"statusCode","message","fields"}]. With allOrNone true one failure rolls all back and the others
  answer ALL_OR_NONE_OPERATION_ROLLED_BACK "Record rolled back because not all records were valid and the request
  was using AllOrNone header" (a public fixture). The body is deserialized before any record is processed, so a
  field that does not exist or is not visible refuses the whole request, 400 INVALID_FIELD "No such column 'X' on
  sobject of type Lead" (simple-salesforce #737, Force.com toolkit #90), and so does a value of the wrong JSON type
  or an unparsable date: 400 JSON_PARSER_ERROR "Cannot deserialize instance of datetime from VALUE_STRING value X or
  request may be missing a required field at [line:1, column:N]" (a public issue quoting the body; the boolean and
  date forms are by analogy). Per-record status codes, message texts from public fixtures and knowledge articles:
    no id                    MISSING_ARGUMENT "Id not specified in an update call" (article 000387915)
    not an id / other object MALFORMED_ID "Lead ID: id value of incorrect type: X" (article 000387915)
    well-formed, no record   INVALID_CROSS_REFERENCE_KEY "invalid cross reference id" (article 000387915: "Incorrect
                             ID (Update/Upsert)")
    in the recycle bin       ENTITY_IS_DELETED "entity is deleted"
    row locked               UNABLE_TO_LOCK_ROW "unable to obtain exclusive access to this record"
    converted Lead           CANNOT_UPDATE_CONVERTED_LEAD "cannot reference converted lead" (a knowledge article of a
                             backup vendor quoting it; the same when a Task's WhoId names a converted Lead)
    read-only field          INVALID_FIELD_FOR_INSERT_UPDATE "Unable to create/update fields: X. Please check the
                             security settings of this field and verify that it is read/write for your profile or
                             permission set." with fields (a public issue quoting the body); also a custom field
                             granted Read but not Edit
    restricted picklist      INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST "Status: bad value for restricted picklist
                             field: X" with fields [name]; an inactive value counts as bad
    too long                 STRING_TOO_LONG "Last Name: data value too large: X (max length=80)" with fields
    bad email                INVALID_EMAIL_ADDRESS, our wording (UNCONFIRMED["bad_email"])
    inactive owner           INACTIVE_OWNER_OR_USER "operation performed with inactive user" (knowledge article
                             000205862); Leads and Contacts cannot be owned by an inactive user
    lookup of another type   FIELD_INTEGRITY_EXCEPTION "Owner ID: id value of incorrect type: X" (Salto's article
                             "Demystifying 'Invalid Cross Reference Id' errors", tried in an org: a lookup holding an
                             id of another object is FIELD_INTEGRITY_EXCEPTION, one holding no id MALFORMED_ID)
  Writing bumps LastModifiedDate. An upsert result carries "created". Upsert by a field that does not exist or is
  not visible is 404 NOT_FOUND "Provided external ID field does not exist or is not accessible: X" (public
  fixtures). Task Status and Priority are restricted picklists (Not Started, In Progress, Completed, Waiting on
  someone else, Deferred; High, Normal, Low).
- Create (POST sobjects/X): 201 {"id","success":true,"errors":[]}; refusals are 400 lists. A missing required
  field is REQUIRED_FIELD_MISSING "Required fields are missing: [Name]"; a repeated PermissionSetAssignment is
  DUPLICATE_VALUE starting "Duplicate PermissionSetAssignment" (that prefix is what Salesforce CLI users match on);
  a repeated PermissionSet Name or FieldPermissions (ParentId, Field) pair DUPLICATE_VALUE "duplicate value found:
  <unknown> duplicates value on record with id: <unknown>" (Salesforce's masked form, widely quoted).
- Tooling API (Tooling API guide, CustomField): POST tooling/sobjects/CustomField with {"FullName":"Lead.X__c",
  "Metadata":{label,type,length,...}} creates a field (201); DeveloperName is the name without __c; TableEnumOrId
  is the object's name for standard objects ("Activity" for activity fields); FullName and Metadata may be queried
  only when the query returns at most one row. Tooling query answers add size, queryLocator and entityTypeName (an
  example CustomField query answer in Salesforce's Custom Address Fields developer guide).
- Ids are 15 characters (key prefix first: 00D org, 005 User, 00Q Lead, 003 Contact, 00T Task, 00U Event, 0PS
  PermissionSet, 0Pa PermissionSetAssignment, 01k FieldPermissions, 00N CustomField, 01g query locator) plus the
  3-character case-safe suffix (five bits per five characters, set where the character is an upper-case letter,
  read in "A..Z0..5": the algorithm Salesforce's knowledge base publishes; article 000387915's example
  00300000003T2PG -> 00300000003T2PGAA0 checks it). A 15-character id is taken wherever an 18 is; an
  18-character id is case-insensitive (its suffix restores the case).

Wordings NOT confirmed from a public source are our own and kept in `UNCONFIRMED` (the status and error code are
Salesforce's or our best reading): the duplicate custom field (400 DUPLICATE_DEVELOPER_NAME "There is already a field
named X on Lead."), bad field metadata, a bad string escape, an unterminated string or one with a raw line break, a
query string missing, the FullName/Metadata row limit, a not-External-ID upsert field, an upsert record without its
external id or with one repeated in the request, the objects and operations not served, the 503 of `down()`
(SERVER_UNAVAILABLE), a bad email address, a body that is not JSON, the deserializer's text for booleans and dates (the datetime one is
confirmed), the FieldPermissions rules' texts, an invalid id in a filter (INVALID_QUERY_FILTER_OPERATOR), LIKE on a
non-text field, the long text area that cannot be filtered or sorted, and the API-name rule's text.

Not served: relationship queries, GROUP BY, OFFSET, date literals such as TODAY, SOSL, creating or deleting Leads
and Contacts through the API, the Composite (non-collection) and Bulk APIs.

`session_for(standin)` gives a requests session trusting `ca_file`; `client_for(standin)` a simple-salesforce client
on it. `python -m standin.salesforce [--port N] [--grant-all]` serves alone: it prints the url, then the CA file.

Misbehaving on request: `down`/`up` (503 for REST), `fail_next`, `drop_after_commit` (the request is applied, then
the connection is closed without an answer), `slow_down`, `lock_row`, `expire_sessions`, `set_usage`; `reset`
clears everything but the integration user and the sessions issued.
"""
from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import itertools
import json
import re
import secrets
import shutil
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from standin.base import LocalServer
from standin.tls import TestCA

DEFAULT_CLIENT_ID = "handoff-test-client"
DEFAULT_CLIENT_SECRET = "handoff-test-secret"
DEFAULT_API_MAX = 100_000
MIN_VERSION, MAX_VERSION = 31.0, 63.0
URI_LIMIT = 16_384  # bytes, the URI alone (414) and the URI plus the headers (431)
SOQL_MAX = 100_000  # characters in a SOQL statement
BATCH_SIZE = 2_000  # records per query answer
COLLECTION_MAX = 200  # records per sObject Collections request
HANDSHAKE_SECONDS = 10.0
TOKEN_PATH = "/services/oauth2/token"

PREFIXES = {"Organization": "00D", "User": "005", "Lead": "00Q", "Contact": "003", "Task": "00T", "Event": "00U",
            "PermissionSet": "0PS", "PermissionSetAssignment": "0Pa", "FieldPermissions": "01k",
            "CustomField": "00N", "QueryLocator": "01g"}
LEAD_STATUSES = ("Open - Not Contacted", "Working - Contacted", "Closed - Converted", "Closed - Not Converted")
TASK_STATUSES = ("Not Started", "In Progress", "Completed", "Waiting on someone else", "Deferred")
TASK_PRIORITIES = ("High", "Normal", "Low")
INTEGRATION_EMAIL = "handoff-integration@example.com"

# The fields Handoff creates (Tooling API bodies, as sent); grant_all() creates and grants them all.
_LEAD_AND_CONTACT_FIELDS = (
    ("Handoff_Status__c", {"label": "Handoff Status", "type": "Text", "length": 40}),
    ("Handoff_Owner__c", {"label": "Handoff Owner", "type": "Text", "length": 40}),
    ("Handoff_Team__c", {"label": "Handoff Team", "type": "Text", "length": 80}),
    ("Handoff_Claimed_At__c", {"label": "Handoff Claimed At", "type": "DateTime"}),
    ("Handoff_Contacted_At__c", {"label": "Handoff Contacted At", "type": "DateTime"}),
    ("Handoff_Claim_SLA_Met__c", {"label": "Handoff Claim SLA Met", "type": "Checkbox", "defaultValue": "false"}),
    ("Handoff_Lost_Reason__c", {"label": "Handoff Lost Reason", "type": "Text", "length": 255}),
    ("Handoff_Disqualify_Reason__c", {"label": "Handoff Disqualify Reason", "type": "Text", "length": 255}),
    ("Handoff_Feedback_Note__c", {"label": "Handoff Feedback Note", "type": "LongTextArea", "length": 32768,
                                  "visibleLines": 5}),
    ("Handoff_MQL_Quality__c", {"label": "Handoff MQL Quality", "type": "Text", "length": 40}),
    ("Handoff_Card_URL__c", {"label": "Handoff Card URL", "type": "Text", "length": 255}),
)
HANDOFF_FIELDS: tuple[dict, ...] = tuple(
    {"FullName": f"{obj}.{name}", "Metadata": dict(metadata)}
    for obj in ("Lead", "Contact") for name, metadata in _LEAD_AND_CONTACT_FIELDS
) + ({"FullName": "Activity.Handoff_Event_Id__c",
      "Metadata": {"label": "Handoff Event Id", "type": "Text", "length": 64, "externalId": True, "unique": True}},)
HANDOFF_PERMISSION_SET = "Handoff_Integration"

SESSION_EXPIRED = "Session expired or invalid"
NOT_FOUND = "The requested resource does not exist"
LIMIT_EXCEEDED = "TotalRequests Limit exceeded."
TOO_MANY_RECORDS = "record limit reached. cannot submit more than 200 records into this call"
ROLLED_BACK = "Record rolled back because not all records were valid and the request was using AllOrNone header"
LOCKED = "unable to obtain exclusive access to this record"
READ_ONLY = ("Unable to create/update fields: {names}. Please check the security settings of this field and verify "
             "that it is read/write for your profile or permission set.")
NO_SUCH_COLUMN_WRITE = "No such column '{name}' on sobject of type {obj}"
NO_SUCH_COLUMN_QUERY = ("No such column '{name}' on entity '{obj}'. If you are attempting to use a custom field, be "
                        "sure to append the '__c' after the custom field name. Please reference your WSDL or the "
                        "describe call for the appropriate names.")
NO_SUCH_TYPE = ("sObject type '{name}' is not supported. If you are attempting to use a custom object, be sure to "
                "append the '__c' after the entity name. Please reference your WSDL or the describe call for the "
                "appropriate names.")
UNKNOWN_ERROR = "An unexpected error occurred. Please include this ErrorId if you contact support: {error_id}"
MASKED_DUPLICATE = "duplicate value found: <unknown> duplicates value on record with id: <unknown>"
URI_TOO_LONG_PAGE = b"<h1>Bad Message 414</h1><pre>reason: URI Too Long</pre>"
HEADERS_TOO_LARGE_PAGE = b"<h1>Bad Message 431</h1><pre>reason: Request Header Fields Too Large</pre>"

# Our sentences where no public copy of Salesforce's was found (the status and error code are Salesforce's).
UNCONFIRMED = {
    "duplicate_field": "There is already a field named {name} on {obj}.",
    "field_metadata": "Invalid field metadata: {problem}",
    "bad_escape": "Invalid string literal '{literal}'. Illegal character sequence '{sequence}' in string literal.",
    "line_break": "line break not allowed in string literal",
    "eof": "unexpected token: '<EOF>'",
    "no_query": "A query string has to be specified",
    "too_many_rows": "When retrieving results with Metadata or FullName fields, the query qualifications must "
                     "specify no more than one row for retrieval. Result size: {size}",
    "not_external_id": "Field {name} is not an External ID field",
    "no_external_id": "{name} not specified",
    "repeated_external_id": "Duplicate external id specified: {value}",
    "not_served": "The Salesforce stand-in does not serve {what}",
    "unavailable": "Server is temporarily unavailable. Please try again later.",
    "not_json": "Unexpected character ('{char}' (code {code})): {problem} at [line:{line}, column:{column}]",
    "bad_email": "{label}: invalid email address: {value}",
    "json_type": "Cannot deserialize instance of {type} from {token} value {value} or request may be missing a "
                 "required field at [line:1, column:{column}]",
    "no_records": "Cannot deserialize request: a list of records is required in 'records'",
    "no_type": "No sObject type in the attributes of record {index}",
    "wrong_type": "The record type {given} does not match {expected} in the URL",
    "field_prefix": "Field {field} must be prefixed with the SobjectType {sobject}",
    "edit_needs_read": "Permission Edit Field depends on permission(s): Read Field",
    "invalid_id_filter": "invalid ID field: {value}",
    "not_filterable": "field '{name}' can not be filtered in a query call",
    "not_sortable": "field '{name}' can not be sorted in a query call",
    "like_type": "invalid operator on {type} field",
    "bad_name": "The {what} can only contain underscores and alphanumeric characters. It must be unique, begin with "
                "a letter, not include spaces, not end with an underscore, and not contain two consecutive "
                "underscores.",
}


# Ids ----------------------------------------------------------------------------
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_ID15 = re.compile(r"[0-9A-Za-z]{15}")
_ID18 = re.compile(r"[0-9A-Za-z]{15}[A-Za-z0-5]{3}")


def id18(id15: str) -> str:
    """The 18-character form of a 15-character id: Salesforce's case-safe suffix appended."""
    suffix = ""
    for chunk in range(3):
        bits = 0
        for i, ch in enumerate(id15[chunk * 5:chunk * 5 + 5]):
            if "A" <= ch <= "Z":
                bits |= 1 << i
        suffix += _SUFFIX[bits]
    return id15 + suffix


def normalize_id(value) -> str | None:
    """The canonical 18-character id for a 15- or 18-character one (18s are case-insensitive), or None."""
    if not isinstance(value, str):
        return None
    if _ID15.fullmatch(value):
        return id18(value)
    if not _ID18.fullmatch(value):
        return None
    restored = []
    for chunk in range(3):
        bits = _SUFFIX.index(value[15 + chunk].upper())
        for i, ch in enumerate(value[chunk * 5:chunk * 5 + 5]):
            upper = bool(bits & (1 << i))
            if upper and not ch.isalpha():
                return None
            restored.append(ch.upper() if upper else ch.lower())
    return id18("".join(restored))


# Times ----------------------------------------------------------------------------
_ISO_DATETIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?")
_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


def sf_datetime(at: datetime) -> str:
    """Salesforce's way of writing an instant: 2024-05-01T12:34:56.000+0000."""
    at = at.astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}+0000"


def parse_datetime(text) -> datetime | None:
    """An ISO 8601 instant (Salesforce's form too); no zone means UTC. None if it is not one."""
    if not isinstance(text, str):
        return None
    m = _ISO_DATETIME.fullmatch(text)
    if not m:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    fraction, zone = m.group(7) or "0", m.group(8) or "Z"
    try:
        offset = timedelta(0)
        if zone != "Z":
            digits = zone[1:].replace(":", "")
            offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
            if zone[0] == "-":
                offset = -offset
        at = datetime(year, month, day, hour, minute, second, int(fraction[:6].ljust(6, "0")), tzinfo=UTC)
    except ValueError:
        return None
    return at - offset


def parse_date(text) -> date | None:
    if not isinstance(text, str) or not _ISO_DATE.fullmatch(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


# Schema -----------------------------------------------------------------------------
@dataclass
class FieldDef:
    name: str
    label: str
    type: str  # describe's type: id, string, email, picklist, textarea, boolean, datetime, date, reference, url
    length: int = 0
    updateable: bool = True
    createable: bool = True
    nillable: bool = True
    custom: bool = False
    external_id: bool = False
    unique: bool = False
    reference_to: tuple[str, ...] = ()
    picklist: list[dict] | None = None  # [{"value","label","active","defaultValue"}]
    restricted: bool = False
    permissionable: bool = True
    default: Any = None

    @property
    def filterable(self) -> bool:
        return self.type != "textarea"


@dataclass
class SObject:
    name: str
    label: str
    prefix: str
    fields: dict[str, FieldDef]
    queryable: bool = True

    def field(self, name: str) -> FieldDef | None:
        wanted = name.lower()
        for fd in self.fields.values():
            if fd.name.lower() == wanted:
                return fd
        return None


def _pick(values: Iterable[str], default: str | None = None) -> list[dict]:
    return [{"active": True, "defaultValue": v == default, "label": v, "validFor": None, "value": v} for v in values]


def _f(name, label, type_, length=0, **kw) -> FieldDef:
    return FieldDef(name, label, type_, length, **kw)


def _system(name: str, label: str, type_: str = "datetime", length: int = 0) -> FieldDef:
    return _f(name, label, type_, length, updateable=False, createable=False, nillable=False, permissionable=False)


def _id_field(label: str) -> FieldDef:
    return _system("Id", label, "id", 18)


def standard_objects() -> dict[str, SObject]:
    """The objects served, as a fresh org has them (custom fields are added by the Tooling API)."""
    def obj(name, label, fields) -> SObject:
        return SObject(name, label, PREFIXES[name], {f.name: f for f in fields})

    created, modified = _system("CreatedDate", "Created Date"), _system("LastModifiedDate", "Last Modified Date")
    deleted = _system("IsDeleted", "Deleted", "boolean")
    objects = [
        obj("Lead", "Lead", [
            _id_field("Lead ID"), deleted,
            _f("LastName", "Last Name", "string", 80, nillable=False),
            _f("FirstName", "First Name", "string", 40),
            _f("Company", "Company", "string", 255, nillable=False),
            _f("Email", "Email", "email", 80),
            _f("Status", "Status", "picklist", 255, nillable=False, picklist=_pick(LEAD_STATUSES, LEAD_STATUSES[0]),
               restricted=True),
            _f("OwnerId", "Owner ID", "reference", 18, nillable=False, reference_to=("User",)),
            _f("IsConverted", "Converted", "boolean", updateable=False, nillable=False, permissionable=False),
            _f("ConvertedContactId", "Converted Contact ID", "reference", 18, updateable=False, createable=False,
               reference_to=("Contact",)),
            created, modified]),
        obj("Contact", "Contact", [
            _id_field("Contact ID"), deleted,
            _f("LastName", "Last Name", "string", 80, nillable=False),
            _f("FirstName", "First Name", "string", 40),
            _f("Email", "Email", "email", 80),
            _f("OwnerId", "Owner ID", "reference", 18, nillable=False, reference_to=("User",)),
            created, modified]),
        obj("User", "User", [
            _id_field("User ID"),
            _f("Username", "Username", "string", 80, nillable=False, unique=True),
            _f("Email", "Email", "email", 128, nillable=False),
            _f("FirstName", "First Name", "string", 40),
            _f("LastName", "Last Name", "string", 80, nillable=False),
            _f("Name", "Full Name", "string", 121, updateable=False, createable=False, permissionable=False),
            _f("IsActive", "Active", "boolean", nillable=False),
            created, modified]),
        obj("Task", "Task", [
            _id_field("Activity ID"), deleted,
            _f("WhoId", "Name ID", "reference", 18, reference_to=("Lead", "Contact")),
            _f("Subject", "Subject", "string", 255),
            _f("Description", "Description", "textarea", 32000),
            _f("ActivityDate", "Due Date Only", "date"),
            _f("Status", "Status", "picklist", 40, nillable=False, picklist=_pick(TASK_STATUSES, TASK_STATUSES[0]),
               restricted=True),
            _f("Priority", "Priority", "picklist", 40, nillable=False,
               picklist=_pick(TASK_PRIORITIES, "Normal"), restricted=True),
            _f("OwnerId", "Assigned To ID", "reference", 18, nillable=False, reference_to=("User",)),
            created, modified]),
        obj("Event", "Event", [
            _id_field("Activity ID"), deleted,
            _f("WhoId", "Name ID", "reference", 18, reference_to=("Lead", "Contact")),
            _f("Subject", "Subject", "string", 255),
            _f("OwnerId", "Assigned To ID", "reference", 18, nillable=False, reference_to=("User",)),
            created, modified]),
        obj("PermissionSet", "Permission Set", [
            _id_field("Permission Set ID"),
            _f("Name", "Name", "string", 80, nillable=False, permissionable=False),
            _f("Label", "Label", "string", 80, nillable=False, permissionable=False),
            _f("Description", "Description", "string", 255, permissionable=False),
            _f("IsOwnedByProfile", "Is Owned By Profile", "boolean", updateable=False, createable=False,
               permissionable=False),
            created, modified]),
        obj("PermissionSetAssignment", "Permission Set Assignment", [
            _id_field("Permission Set Assignment ID"),
            _f("AssigneeId", "Assignee ID", "reference", 18, nillable=False, updateable=False,
               reference_to=("User",), permissionable=False),
            _f("PermissionSetId", "Permission Set ID", "reference", 18, nillable=False, updateable=False,
               reference_to=("PermissionSet",), permissionable=False)]),
        obj("FieldPermissions", "Field Permissions", [
            _id_field("Field Permissions ID"),
            _f("ParentId", "Parent ID", "reference", 18, nillable=False, updateable=False,
               reference_to=("PermissionSet",), permissionable=False),
            _f("SobjectType", "SObject Type Name", "picklist", 40, nillable=False, updateable=False, restricted=True,
               permissionable=False),
            _f("Field", "Field Name", "picklist", 40, nillable=False, updateable=False, restricted=True,
               permissionable=False),
            _f("PermissionsRead", "Read Field", "boolean", nillable=False, permissionable=False),
            _f("PermissionsEdit", "Edit Field", "boolean", nillable=False, permissionable=False)]),
    ]
    return {o.name: o for o in objects}


def custom_field_object() -> SObject:
    """The Tooling API's CustomField, as far as it is queryable here."""
    fields = [_id_field("Custom Field Definition ID"),
              _f("DeveloperName", "Field Name", "string", 40),
              _f("TableEnumOrId", "Table Enum or ID", "string", 40),
              _f("NamespacePrefix", "Namespace Prefix", "string", 15),
              _f("FullName", "Full Name", "string", 255),
              _f("Metadata", "Metadata", "complexvalue"),
              _system("CreatedDate", "Created Date"), _system("LastModifiedDate", "Last Modified Date")]
    return SObject("CustomField", "Custom Field Definition", PREFIXES["CustomField"], {f.name: f for f in fields})


ACTIVITY_OBJECTS = ("Task", "Event")
CUSTOM_FIELD_OBJECTS = ("Lead", "Contact", "Activity")
WRITABLE = ("Lead", "Contact")  # by sObject Collections update
CREATABLE = ("PermissionSet", "FieldPermissions", "PermissionSetAssignment")  # by POST sobjects/X
FIELD_TYPES = {"Text": "string", "LongTextArea": "textarea", "DateTime": "datetime", "Checkbox": "boolean",
               "Url": "url", "Date": "date", "Email": "email"}
_API_NAME = re.compile(r"[A-Za-z](?:[A-Za-z0-9]|_(?!_))*")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def _api_name_ok(name: str) -> bool:
    return bool(_API_NAME.fullmatch(name)) and not name.endswith("_")


# SOQL -------------------------------------------------------------------------------
class SoqlError(Exception):
    def __init__(self, code: str, explanation: str, pos: int | None = None):
        super().__init__(explanation)
        self.code, self.explanation, self.pos = code, explanation, pos


@dataclass
class Tok:
    kind: str  # ident, string, number, datetime, date, op, punct, eof, other
    text: str
    pos: int
    value: Any = None

    def kw(self, *words: str) -> bool:
        return self.kind == "ident" and self.text.upper() in words


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_DATETIME_LITERAL = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:\d{2})")
_DATE_LITERAL = re.compile(r"\d{4}-\d{2}-\d{2}(?![\w:.])")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?![\w.])")
_OPERATORS = ("!=", "<>", "<=", ">=", "=", "<", ">")
_SIMPLE_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}
RESERVED = {"SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "ORDER", "BY", "LIMIT", "OFFSET", "NULL",
            "TRUE", "FALSE", "ASC", "DESC", "NULLS", "FIRST", "LAST", "GROUP", "HAVING", "WITH", "INCLUDES",
            "EXCLUDES"}


class Lexer:
    """SOQL's tokens, one at a time, so that a syntax error is reported where the parser meets it."""

    def __init__(self, text: str):
        self.text, self.pos = text, 0
        self._peeked: Tok | None = None

    def peek(self) -> Tok:
        if self._peeked is None:
            self._peeked = self._scan()
        return self._peeked

    def next(self) -> Tok:
        tok = self.peek()
        self._peeked = None
        return tok

    def _scan(self) -> Tok:
        text = self.text
        while self.pos < len(text) and text[self.pos].isspace():
            self.pos += 1
        start = self.pos
        if start >= len(text):
            return Tok("eof", "<EOF>", start)
        ch = text[start]
        if ch == "'":
            return self._string(start)
        for kind, pattern in (("datetime", _DATETIME_LITERAL), ("date", _DATE_LITERAL), ("number", _NUMBER)):
            m = pattern.match(text, start)
            if m:
                self.pos = m.end()
                return Tok(kind, m.group(), start)
        m = _IDENT.match(text, start)
        if m:
            self.pos = m.end()
            return Tok("ident", m.group(), start)
        for op in _OPERATORS:
            if text.startswith(op, start):
                self.pos = start + len(op)
                return Tok("op", op, start)
        self.pos = start + 1
        return Tok("punct" if ch in "()," else "other", ch, start)

    def _string(self, start: int) -> Tok:
        """A quoted literal: its characters as (char, escaped) pairs, so LIKE can tell \\% from %."""
        text, i, chars = self.text, start + 1, []
        while True:
            if i >= len(text):
                raise SoqlError("MALFORMED_QUERY", UNCONFIRMED["eof"], len(text))
            ch = text[i]
            if ch == "'":
                self.pos = i + 1
                return Tok("string", text[start:i + 1], start, chars)
            if ch in "\r\n":
                raise SoqlError("MALFORMED_QUERY", UNCONFIRMED["line_break"], i)
            if ch != "\\":
                chars.append((ch, False))
                i += 1
                continue
            following = text[i + 1:i + 2]
            if following and following.lower() in _SIMPLE_ESCAPES:  # \n or \N, \' ...
                chars.append((_SIMPLE_ESCAPES[following.lower()], False))
                i += 2
            elif following in ("%", "_"):
                chars.append((following, True))
                i += 2
            elif following == "u" and re.fullmatch(r"[0-9A-Fa-f]{4}", text[i + 2:i + 6]):
                chars.append((chr(int(text[i + 2:i + 6], 16)), False))
                i += 6
            else:
                end = text.find("'", i + 2)
                literal = text[start + 1:end if end > 0 else len(text)]
                raise SoqlError("MALFORMED_QUERY", UNCONFIRMED["bad_escape"].format(
                    literal=literal, sequence="\\" + following), i)


@dataclass
class Literal:
    kind: str  # string, number, boolean, null, datetime, date
    value: Any
    pos: int
    text: str


@dataclass
class Query:
    fields: list[tuple[str, int]]
    obj: tuple[str, int]
    where: Any = None
    order: list[tuple[str, int, bool, bool | None]] = field(default_factory=list)  # name, pos, desc, nulls first
    limit: int | None = None
    count: bool = False


class Parser:
    """A recursive-descent parser for the SOQL Handoff uses:
    SELECT f, ... | COUNT() FROM Obj [WHERE cond] [ORDER BY f [ASC|DESC] [NULLS FIRST|LAST], ...] [LIMIT n]
    cond: term (AND term)* | term (OR term)*   term: NOT term | ( cond ) | f op literal | f [NOT] IN (literal, ...)
    | f LIKE 'pattern'."""

    def __init__(self, text: str):
        self.lexer = Lexer(text)

    def _unexpected(self, tok: Tok):
        if tok.kind == "eof":
            raise SoqlError("MALFORMED_QUERY", UNCONFIRMED["eof"], tok.pos)
        raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{tok.text}'", tok.pos)

    def _keyword(self, *words: str) -> Tok:
        tok = self.lexer.next()
        if not tok.kw(*words):
            self._unexpected(tok)
        return tok

    def _accept(self, *words: str) -> Tok | None:
        if self.lexer.peek().kw(*words):
            return self.lexer.next()
        return None

    def _punct(self, ch: str) -> Tok:
        tok = self.lexer.next()
        if tok.kind != "punct" or tok.text != ch:
            self._unexpected(tok)
        return tok

    def _name(self) -> tuple[str, int]:
        tok = self.lexer.next()
        if tok.kind != "ident" or tok.text.upper() in RESERVED:
            self._unexpected(tok)
        return tok.text, tok.pos

    def parse(self) -> Query:
        self._keyword("SELECT")
        count = False
        fields: list[tuple[str, int]] = []
        peek = self.lexer.peek()
        if peek.kw("COUNT"):
            self.lexer.next()
            self._punct("(")
            self._punct(")")
            count = True
        else:
            fields.append(self._name())
            while self.lexer.peek().kind == "punct" and self.lexer.peek().text == ",":
                self.lexer.next()
                fields.append(self._name())
        self._keyword("FROM")
        query = Query(fields, self._name(), count=count)
        if self._accept("WHERE"):
            query.where = self._condition()
        if self._accept("ORDER"):
            self._keyword("BY")
            while True:
                name, pos = self._name()
                direction = self._accept("ASC", "DESC")
                desc = direction is not None and direction.text.upper() == "DESC"
                nulls_first = None
                if self._accept("NULLS"):
                    nulls_first = self._keyword("FIRST", "LAST").text.upper() == "FIRST"
                query.order.append((name, pos, desc, nulls_first))
                if not (self.lexer.peek().kind == "punct" and self.lexer.peek().text == ","):
                    break
                self.lexer.next()
        if self._accept("LIMIT"):
            tok = self.lexer.next()
            if tok.kind != "number" or not tok.text.isdigit():
                self._unexpected(tok)
            query.limit = int(tok.text)
        tok = self.lexer.next()
        if tok.kind != "eof":
            self._unexpected(tok)
        return query

    def _condition(self):
        items = [self._term()]
        joined = None
        while self.lexer.peek().kw("AND", "OR"):
            tok = self.lexer.next()
            word = tok.text.upper()
            if joined is None:
                joined = word
            elif word != joined:  # SOQL wants parentheses when AND and OR meet
                self._unexpected(tok)
            items.append(self._term())
        return (joined.lower(), items) if joined else items[0]

    def _term(self):
        if self._accept("NOT"):
            return ("not", self._term())
        peek = self.lexer.peek()
        if peek.kind == "punct" and peek.text == "(":
            self.lexer.next()
            inner = self._condition()
            self._punct(")")
            return inner
        name, pos = self._name()
        tok = self.lexer.next()
        if tok.kind == "op":
            return ("cmp", name, pos, "!=" if tok.text == "<>" else tok.text, self._literal())
        if tok.kw("NOT"):
            self._keyword("IN")
            return ("in", name, pos, True, self._list())
        if tok.kw("IN"):
            return ("in", name, pos, False, self._list())
        if tok.kw("LIKE"):
            return ("like", name, pos, self._literal())
        self._unexpected(tok)
        return None  # not reached

    def _list(self) -> list[Literal]:
        self._punct("(")
        values = [self._literal()]
        while self.lexer.peek().kind == "punct" and self.lexer.peek().text == ",":
            self.lexer.next()
            values.append(self._literal())
        self._punct(")")
        return values

    def _literal(self) -> Literal:
        tok = self.lexer.next()
        if tok.kind == "string":
            return Literal("string", tok.value, tok.pos, tok.text)
        if tok.kind == "number":
            return Literal("number", float(tok.text), tok.pos, tok.text)
        if tok.kind == "datetime":
            at = parse_datetime(tok.text)
            if at is None:
                self._unexpected(tok)
            return Literal("datetime", at, tok.pos, tok.text)
        if tok.kind == "date":
            day = parse_date(tok.text)
            if day is None:
                self._unexpected(tok)
            return Literal("date", day, tok.pos, tok.text)
        if tok.kw("TRUE", "FALSE"):
            return Literal("boolean", tok.text.upper() == "TRUE", tok.pos, tok.text)
        if tok.kw("NULL"):
            return Literal("null", None, tok.pos, tok.text)
        self._unexpected(tok)
        return None  # not reached


def soql_message(query: str, pos: int | None, explanation: str) -> str:
    """Salesforce's form: the query line, a caret under the place, "ERROR at Row:r:Column:c", the explanation."""
    if pos is None:
        return explanation
    pos = max(0, min(pos, len(query)))
    line_start = query.rfind("\n", 0, pos) + 1
    line_end = query.find("\n", pos)
    line = query[line_start:line_end if line_end >= 0 else len(query)]
    row, column = query.count("\n", 0, pos) + 1, pos - line_start
    return f"\n{line}\n{' ' * column}^\nERROR at Row:{row}:Column:{column + 1}\n{explanation}"


def _plain(literal: Literal) -> str:
    """A string literal's text outside LIKE, where \\% and \\_ are not allowed."""
    out = []
    for ch, escaped in literal.value:
        if escaped:
            raise SoqlError("MALFORMED_QUERY", UNCONFIRMED["bad_escape"].format(
                literal=literal.text[1:-1], sequence="\\" + ch), literal.pos)
        out.append(ch)
    return "".join(out)


def _like_regex(literal: Literal) -> re.Pattern:
    parts = []
    for ch, escaped in literal.value:
        if not escaped and ch == "%":
            parts.append(".*")
        elif not escaped and ch == "_":
            parts.append(".")
        else:
            parts.append(re.escape(ch))
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


_TYPE_WORDS = {"boolean": "boolean", "datetime": "dateTime", "date": "date"}


def _sort_value(fd: FieldDef, value):
    if value is None:
        return None
    if fd.type == "datetime":
        return parse_datetime(value)
    if fd.type == "date":
        return parse_date(value)
    if isinstance(value, str):
        return value.casefold()
    return value


class Compiled:
    """A validated query: the object, the fields to answer, a predicate and an ordering."""

    def __init__(self, query: Query, obj: SObject, visible: Callable[[FieldDef], bool], text: str):
        self.query, self.obj, self.text = query, obj, text
        self.visible = visible
        self.fields: list[FieldDef] = []
        seen = set()
        for name, pos in query.fields:
            fd = self._field(name, pos)
            if fd.name in seen:
                raise SoqlError("MALFORMED_QUERY", f"duplicate field selected: {fd.name}", pos)
            seen.add(fd.name)
            self.fields.append(fd)
        self.predicate = self._compile(query.where) if query.where is not None else (lambda record: True)
        self.order = []
        for name, pos, desc, nulls_first in query.order:
            fd = self._field(name, pos)
            if not fd.filterable:
                raise SoqlError("INVALID_FIELD", UNCONFIRMED["not_sortable"].format(name=fd.name), pos)
            self.order.append((fd, desc, True if nulls_first is None else nulls_first))

    def _field(self, name: str, pos: int) -> FieldDef:
        fd = self.obj.field(name)
        if fd is None or not self.visible(fd):
            raise SoqlError("INVALID_FIELD", NO_SUCH_COLUMN_QUERY.format(name=name, obj=self.obj.name), pos)
        return fd

    def _value(self, fd: FieldDef, literal: Literal):
        """The literal as a value of the field's type, or Salesforce's refusal."""
        if literal.kind == "null":
            return None
        if fd.type in ("id", "reference"):
            if literal.kind != "string":
                raise SoqlError("INVALID_FIELD", f"value of filter criterion for field '{fd.name}' must be of type "
                                                 "id and should be enclosed in quotes", literal.pos)
            text = _plain(literal)
            canonical = normalize_id(text)
            if canonical is None:
                raise SoqlError("INVALID_QUERY_FILTER_OPERATOR", UNCONFIRMED["invalid_id_filter"].format(value=text),
                                literal.pos)
            return canonical
        if fd.type in _TYPE_WORDS:
            wanted = "boolean" if fd.type == "boolean" else fd.type
            if literal.kind != wanted:
                raise SoqlError("INVALID_FIELD", f"value of filter criterion for field '{fd.name}' must be of type "
                                                 f"{_TYPE_WORDS[fd.type]} and should not be enclosed in quotes",
                                literal.pos)
            return literal.value
        if literal.kind != "string":
            raise SoqlError("INVALID_FIELD", f"value of filter criterion for field '{fd.name}' must be of type "
                                             "string and should be enclosed in quotes", literal.pos)
        return _plain(literal).casefold()

    def _compile(self, node) -> Callable[[dict], bool]:
        kind = node[0]
        if kind in ("and", "or"):
            parts = [self._compile(item) for item in node[1]]
            if kind == "and":
                return lambda record: all(p(record) for p in parts)
            return lambda record: any(p(record) for p in parts)
        if kind == "not":
            inner = self._compile(node[1])
            return lambda record: not inner(record)
        name, pos = node[1], node[2]
        fd = self._field(name, pos)
        if not fd.filterable:
            raise SoqlError("INVALID_FIELD", UNCONFIRMED["not_filterable"].format(name=fd.name), pos)

        def get(record):
            value = record.get(fd.name)
            if value is None:
                return None
            if fd.type == "datetime":
                return parse_datetime(value)
            if fd.type == "date":
                return parse_date(value)
            if isinstance(value, str) and fd.type not in ("id", "reference"):
                return value.casefold()
            return value

        if kind == "cmp":
            op, wanted = node[3], self._value(fd, node[4])
            return lambda record: _compare(get(record), op, wanted)
        if kind == "in":
            negated, values = node[3], {self._value(fd, lit) for lit in node[4]}
            if negated:
                return lambda record: get(record) not in values
            return lambda record: get(record) in values
        literal = node[3]  # like
        if fd.type not in ("string", "email", "picklist", "url", "textarea"):
            raise SoqlError("INVALID_FIELD", UNCONFIRMED["like_type"].format(type=fd.type), pos)
        if literal.kind != "string":
            raise SoqlError("INVALID_FIELD", f"value of filter criterion for field '{fd.name}' must be of type "
                                             "string and should be enclosed in quotes", literal.pos)
        pattern = _like_regex(literal)
        return lambda record: record.get(fd.name) is not None and bool(pattern.fullmatch(record.get(fd.name)))

    def sort(self, records: list[dict]) -> list[dict]:
        for fd, desc, nulls_first in reversed(self.order):
            present = [r for r in records if r.get(fd.name) is not None]
            absent = [r for r in records if r.get(fd.name) is None]
            present.sort(key=lambda r, fd=fd: _sort_value(fd, r.get(fd.name)), reverse=desc)
            records = absent + present if nulls_first else present + absent
        return records


def _compare(value, op: str, wanted) -> bool:
    if wanted is None:
        return (value is None) if op == "=" else (value is not None) if op == "!=" else False
    if op == "=":
        return value == wanted
    if op == "!=":
        return value != wanted  # nulls included, as SOQL's != does
    if value is None:
        return False
    try:
        return {"<": value < wanted, ">": value > wanted, "<=": value <= wanted, ">=": value >= wanted}[op]
    except TypeError:
        return False


# Recording ------------------------------------------------------------------------------
@dataclass
class Call:
    method: str
    path: str
    query: dict
    body: Any
    status: int = 0  # 0: no answer (dropped after commit)
    arrived: float = field(default_factory=time.monotonic)
    at: float = 0.0  # when it was answered (monotonic)


@dataclass
class _Fault:
    path: str | None
    status: int


class _Refusal(Exception):
    """A whole request refused: (status, Salesforce's error list)."""

    def __init__(self, status: int, code: str, message: str, fields: list | None = None):
        super().__init__(message)
        self.status = status
        self.body = [{"message": message, "errorCode": code, **({"fields": fields} if fields is not None else {})}]


def _error(code: str, message: str, fields: Iterable[str] = ()) -> dict:
    return {"statusCode": code, "message": message, "fields": list(fields)}


def _matches(path: str, pattern: str | None) -> bool:
    """Whether a path (a trailing slash ignored, as simple-salesforce adds one) starts or ends with pattern."""
    if pattern is None:
        return True
    path, pattern = path.rstrip("/"), pattern.rstrip("/")
    return path.startswith(pattern) or path.endswith(pattern)


def _release(version: float) -> str:
    step = round(version) - 31
    return f"{('Summer', 'Winter', 'Spring')[step % 3]} '{14 + (step + 2) // 3:02d}"


class SalesforceStandIn(LocalServer):
    thread_name = "salesforce-standin"
    poll_seconds = 0.05  # stop() is quick

    def __init__(self, client_id: str = DEFAULT_CLIENT_ID, client_secret: str = DEFAULT_CLIENT_SECRET,
                 directory: Path | str | None = None, api_max: int = DEFAULT_API_MAX, host: str = "127.0.0.1",
                 port: int = 0):
        self.client_id, self.client_secret = client_id, client_secret
        self._own_directory = directory is None
        self.directory = Path(tempfile.mkdtemp(prefix="sf-standin-") if directory is None else directory)
        self.ca = TestCA(self.directory)
        self.calls: list[Call] = []
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._serial = itertools.count(1)
        self._signing_key = secrets.token_bytes(32)
        self._org_id = self._new_id("Organization")
        self._tokens: dict[str, float] = {}
        self._api_max_default = api_max
        self._stamp = datetime.now(UTC)
        self._init_state()
        self._integration_user_id = self._insert("User", {
            "Username": INTEGRATION_EMAIL, "Email": INTEGRATION_EMAIL, "FirstName": "Handoff",
            "LastName": "Integration", "Name": "Handoff Integration", "IsActive": True})
        self._listen(host, port, self._handler())
        context = self.ca.server_context()
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True, do_handshake_on_connect=False)

    def _init_state(self) -> None:
        self._objects = standard_objects()
        self._custom_object = custom_field_object()
        self._tables: dict[str, dict[str, dict]] = {name: {} for name in self._objects}
        self._deleted: set[str] = set()
        self._history: dict[str, list[dict]] = {}
        self._custom_fields: dict[str, dict] = {}
        self._locators: dict[str, tuple[list[dict], str, float]] = {}
        self._locks: dict[str, int] = {}
        self._faults: list[_Fault] = []
        self._drops: list[str | None] = []
        self._slow: dict[str, float] = {}
        self._down = False
        self._usage = 0
        self._api_max = self._api_max_default

    # Life cycle -------------------------------------------------------------
    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"https://{host}:{port}"

    @property
    def url(self) -> str:
        return self.base_url

    @property
    def ca_file(self) -> str:
        return str(self.ca.ca_file)

    @property
    def integration_user_id(self) -> str:
        return self._integration_user_id

    @property
    def org_id(self) -> str:
        return self._org_id

    @property
    def usage(self) -> int:
        with self._lock:
            return self._usage

    @property
    def api_max(self) -> int:
        with self._lock:
            return self._api_max

    def stop(self) -> None:
        super().stop()
        if self._own_directory:
            shutil.rmtree(self.directory, ignore_errors=True)

    def token(self) -> str:
        """A new session for the integration user, without HTTP (the token endpoint gives the same)."""
        with self._lock:
            return self._issue()

    # Setup and inspection (plain methods, no HTTP) -------------------------------------
    def add_lead(self, email: str | None, status: str = LEAD_STATUSES[0], **fields) -> str:
        with self._lock:
            values = {"LastName": "Unknown", "Company": "Unknown", "Status": status,
                      "OwnerId": self._integration_user_id, "IsConverted": False, **self._seed_values("Lead", fields)}
            values["Email"] = email
            return self._insert("Lead", values)

    def add_contact(self, email: str | None, **fields) -> str:
        with self._lock:
            values = {"LastName": "Unknown", "OwnerId": self._integration_user_id,
                      **self._seed_values("Contact", fields)}
            values["Email"] = email
            return self._insert("Contact", values)

    def add_user(self, email: str, active: bool = True, name: str | None = None) -> str:
        with self._lock:
            name = name or email.split("@")[0].replace(".", " ").title()
            first, _, last = name.rpartition(" ")
            return self._insert("User", {"Username": email, "Email": email, "FirstName": first or None,
                                         "LastName": last, "Name": name, "IsActive": bool(active)})

    def convert(self, lead_id: str) -> str:
        """Convert a Lead (as a rep would): a Contact is made from it; the Lead is converted and read-only."""
        with self._lock:
            lead = self._record_of(lead_id, "Lead")
            contact_id = self._insert("Contact", {"LastName": lead.get("LastName"), "FirstName": lead.get("FirstName"),
                                                  "Email": lead.get("Email"), "OwnerId": lead.get("OwnerId")})
            lead.update(IsConverted=True, ConvertedContactId=contact_id, Status="Closed - Converted",
                        LastModifiedDate=self._now())
            return contact_id

    def delete(self, record_id: str) -> None:
        """Move a record to the recycle bin: gone from queries, ENTITY_IS_DELETED on write."""
        with self._lock:
            record = self._record_of(record_id)
            record["IsDeleted"] = True
            record["LastModifiedDate"] = self._now()
            self._deleted.add(record["Id"])

    def record(self, record_id: str) -> dict:
        """Every stored field of a record, invisible custom fields included (KeyError if there is none)."""
        with self._lock:
            return dict(self._record_of(record_id))

    def history(self, record_id: str) -> list[dict]:
        """What the API wrote to a record, one dict per write, oldest first."""
        with self._lock:
            canonical = normalize_id(record_id)
            return [dict(h) for h in self._history.get(canonical or "", [])]

    def tasks(self) -> list[dict]:
        with self._lock:
            return [dict(r) for r in self._tables["Task"].values() if not r.get("IsDeleted")]

    def custom_fields(self) -> list[dict]:
        with self._lock:
            return [json.loads(json.dumps(f)) for f in self._custom_fields.values()]

    def grant_all(self) -> str:
        """Create Handoff's fields and grant them (Read and Edit) to the integration user, without HTTP; returns
        the permission set's id. For tests that are not about setup."""
        with self._lock:
            for spec in HANDOFF_FIELDS:
                obj, name = spec["FullName"].split(".")
                if not self._custom_field_named(obj, name):
                    self._create_custom_field(spec)
            permission_set = next((r["Id"] for r in self._tables["PermissionSet"].values()
                                   if r["Name"] == HANDOFF_PERMISSION_SET), None)
            if permission_set is None:
                permission_set = self._insert("PermissionSet", {"Name": HANDOFF_PERMISSION_SET,
                                                                "Label": "Handoff Integration",
                                                                "IsOwnedByProfile": False})
            granted = {r["Field"] for r in self._tables["FieldPermissions"].values()
                       if r["ParentId"] == permission_set}
            for spec in HANDOFF_FIELDS:
                obj, name = spec["FullName"].split(".")
                for sobject in ACTIVITY_OBJECTS if obj == "Activity" else (obj,):
                    if f"{sobject}.{name}" not in granted:
                        self._insert("FieldPermissions", {"ParentId": permission_set, "SobjectType": sobject,
                                                          "Field": f"{sobject}.{name}", "PermissionsRead": True,
                                                          "PermissionsEdit": True})
            if not any(r["AssigneeId"] == self._integration_user_id and r["PermissionSetId"] == permission_set
                       for r in self._tables["PermissionSetAssignment"].values()):
                self._insert("PermissionSetAssignment", {"AssigneeId": self._integration_user_id,
                                                         "PermissionSetId": permission_set})
            return permission_set

    def set_picklist(self, obj: str, name: str, values: Iterable[str], inactive: Iterable[str] = ()) -> None:
        """An org that customised a picklist: `values` active (the first the default), `inactive` kept but inactive."""
        with self._lock:
            fd = self._objects[obj].field(name)
            values = list(values)
            default = values[0] if values else None
            if obj == "Lead" and name == "Status" and LEAD_STATUSES[0] in values:
                default = LEAD_STATUSES[0]
            fd.picklist = _pick(values, default) + [
                {"active": False, "defaultValue": False, "label": v, "validFor": None, "value": v} for v in inactive]

    def lock_row(self, record_id: str, times: int = 1) -> None:
        """The next `times` writes to this record fail with UNABLE_TO_LOCK_ROW (others in the request go through)."""
        with self._lock:
            canonical = normalize_id(record_id)
            if canonical is None:
                raise ValueError(f"not an id: {record_id}")
            self._locks[canonical] = self._locks.get(canonical, 0) + times

    def set_usage(self, n: int, max: int | None = None) -> None:
        with self._lock:
            self._usage = n
            if max is not None:
                self._api_max = max

    def expire_sessions(self) -> None:
        """Every token issued so far stops working (401 INVALID_SESSION_ID); new ones work."""
        with self._lock:
            self._tokens.clear()

    # Misbehaving ---------------------------------------------------------------------
    def down(self) -> None:
        """Until `up`, every REST request answers 503 (the token endpoint keeps working)."""
        with self._lock:
            self._down = True

    def up(self) -> None:
        with self._lock:
            self._down = False

    def fail_next(self, times: int, status: int = 500, path: str | None = None) -> None:
        """The next `times` REST requests (whose path starts or ends with `path`, if given; the token endpoint only
        when named) answer `status` with a Salesforce body, before authentication and without counting."""
        with self._lock:
            self._faults.extend(_Fault(path, status) for _ in range(times))

    def drop_after_commit(self, times: int = 1, path: str | None = None) -> None:
        """The next `times` REST requests (matching `path`) are applied, then the connection closes unanswered."""
        with self._lock:
            self._drops.extend([path] * times)

    def slow_down(self, path: str, seconds: float) -> None:
        """Requests whose path starts or ends with `path` are answered only after `seconds`."""
        with self._lock:
            self._slow[path] = seconds

    def reset(self) -> None:
        """Forget records, custom fields, permission sets, calls, faults, usage; keep the integration user and
        the sessions already issued."""
        with self._lock:
            user = dict(self._tables["User"][self._integration_user_id])
            self._init_state()
            self._tables["User"][user["Id"]] = user
            self.calls.clear()

    def calls_to(self, suffix: str) -> list[Call]:
        """The calls whose path ends with `suffix` (a trailing slash ignored)."""
        with self._lock:
            return [c for c in self.calls if c.path.rstrip("/").endswith(suffix.rstrip("/"))]

    def wait_for(self, predicate, timeout: float = 10.0) -> bool:
        """Block until predicate(calls) is true or the timeout passes."""
        return self._wait_until(lambda: predicate(list(self.calls)), timeout)

    # Store -----------------------------------------------------------------------------
    def _new_id(self, obj: str) -> str:
        n = next(self._serial)
        digits = ""
        while n:
            n, r = divmod(n, 62)
            digits = _B62[r] + digits
        return id18(PREFIXES[obj] + "Hs" + digits.rjust(10, "0"))

    def _now(self) -> str:
        """Now, in Salesforce's form, strictly later than any stamp given before (LastModifiedDate always moves)."""
        now = datetime.now(UTC)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        self._stamp = now if now > self._stamp else self._stamp + timedelta(milliseconds=1)
        return sf_datetime(self._stamp)

    def _insert(self, obj: str, values: dict) -> str:
        record_id = self._new_id(obj)
        stamp = self._now()
        record: dict[str, Any] = {"Id": record_id}
        for fd in self._objects[obj].fields.values():
            if fd.name != "Id":
                record[fd.name] = fd.default if fd.type != "boolean" else bool(fd.default)
        record.update({k: v for k, v in values.items() if k != "Id"})
        if obj == "User" and not record.get("Name"):
            record["Name"] = " ".join(p for p in (record.get("FirstName"), record.get("LastName")) if p)
        for stamp_field in ("CreatedDate", "LastModifiedDate"):
            if stamp_field in self._objects[obj].fields:
                record[stamp_field] = stamp
        for picklist in ("Status", "Priority"):
            fd = self._objects[obj].fields.get(picklist)
            if fd is not None and fd.picklist and record.get(picklist) is None:
                record[picklist] = next((p["value"] for p in fd.picklist if p["defaultValue"]), None)
        self._tables[obj][record_id] = record
        return record_id

    def _type_of(self, record_id: str) -> str | None:
        for obj, prefix in PREFIXES.items():
            if record_id.startswith(prefix) and obj in self._tables:
                return obj
        return None

    def _record_of(self, record_id: str, obj: str | None = None) -> dict:
        canonical = normalize_id(record_id)
        found = None
        if canonical is not None:
            kind = self._type_of(canonical)
            if kind is not None and (obj is None or kind == obj):
                found = self._tables[kind].get(canonical)
        if found is None:
            raise KeyError(record_id)
        return found

    def _seed_values(self, obj: str, fields: dict) -> dict:
        """Values given to add_lead/add_contact, by field name (any case); a bad one is a ValueError."""
        out = {}
        for name, value in fields.items():
            if isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, date):
                value = value.isoformat()
            fd = self._objects[obj].field(name)
            if fd is None:
                raise ValueError(f"No such column '{name}' on sobject of type {obj}")
            try:
                out[fd.name] = self._coerce(fd, value, "")
            except _Refusal as refused:
                raise ValueError(refused.body[0]["message"]) from None
        return out

    # Field-level security -------------------------------------------------------------
    def _grants(self) -> tuple[set[str], set[str]]:
        """The integration user's custom field access: ({"lead.x__c", ...} readable, {...} editable)."""
        assigned = {r["PermissionSetId"] for r in self._tables["PermissionSetAssignment"].values()
                    if r["AssigneeId"] == self._integration_user_id}
        readable, editable = set(), set()
        for row in self._tables["FieldPermissions"].values():
            if row["ParentId"] in assigned:
                key = row["Field"].lower()
                if row.get("PermissionsRead") or row.get("PermissionsEdit"):
                    readable.add(key)
                if row.get("PermissionsEdit"):
                    editable.add(key)
        return readable, editable

    def _visibility(self, obj: SObject) -> tuple[Callable[[FieldDef], bool], Callable[[FieldDef], bool]]:
        readable, editable = self._grants()

        def can_read(fd: FieldDef) -> bool:
            return not fd.custom or f"{obj.name}.{fd.name}".lower() in readable

        def can_edit(fd: FieldDef) -> bool:
            return not fd.custom or f"{obj.name}.{fd.name}".lower() in editable

        return can_read, can_edit

    # Answering -------------------------------------------------------------------------
    def answer(self, method: str, target: str, headers, raw: bytes) -> tuple[int, dict, bytes] | None:
        """One request: (status, headers, body), or None to close the connection without an answer."""
        arrived = time.monotonic()
        parts = urlsplit(target)
        path = parts.path
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        call = Call(method, path, query, self._recorded_body(path, raw), arrived=arrived)
        uri_bytes = len(target.encode("utf-8", "replace"))
        header_bytes = sum(len(k) + len(v) + 4 for k, v in headers.items())
        if uri_bytes > URI_LIMIT or uri_bytes + header_bytes > URI_LIMIT:
            page = URI_TOO_LONG_PAGE if uri_bytes > URI_LIMIT else HEADERS_TOO_LARGE_PAGE
            status = 414 if uri_bytes > URI_LIMIT else 431
            return self._finish(call, status, {"Content-Type": "text/html;charset=iso-8859-1",
                                               "Connection": "close"}, page)
        with self._lock:
            slow = max((s for p, s in self._slow.items() if _matches(path, p)), default=0.0)
        if slow:
            time.sleep(slow)
        if path == TOKEN_PATH:
            fault = self._take_fault(path, explicit=True)
            if fault is not None:
                return self._finish(call, *self._fault_answer(fault, rest=False))
            status, payload = self._token(method, headers, raw)
            return self._finish(call, status, {"Cache-Control": "no-cache,must-revalidate,max-age=0,no-store,private"},
                                json.dumps(payload).encode())
        if path.startswith("/id/"):
            status, payload = self._identity(path, headers)
            return self._finish(call, status, {}, json.dumps(payload).encode())
        if path.rstrip("/") == "/services/data":
            versions = [{"label": _release(v), "url": f"/services/data/v{v:.1f}", "version": f"{v:.1f}"}
                        for v in (float(n) for n in range(int(MIN_VERSION), int(MAX_VERSION) + 1))]
            return self._finish(call, 200, {}, json.dumps(versions).encode())
        m = re.fullmatch(r"/services/data/v(\d+\.\d+)(/.*)?", path)
        if not m:
            return self._finish(call, 404, {}, self._json([{"errorCode": "NOT_FOUND", "message": NOT_FOUND}]))
        return self._rest(call, method, m.group(1), (m.group(2) or "/").rstrip("/") or "/", query, headers, raw)

    def _rest(self, call: Call, method: str, version: str, resource: str, query: dict, headers,
              raw: bytes) -> tuple[int, dict, bytes] | None:
        with self._lock:
            down = self._down
        if down:
            return self._rest_answer(call, 503, [{"errorCode": "SERVER_UNAVAILABLE",
                                                  "message": UNCONFIRMED["unavailable"]}])
        fault = self._take_fault(call.path, explicit=False)
        if fault is not None:
            status, extra, data = self._fault_answer(fault, rest=True)
            return self._finish(call, status, {**extra, **self._limit_header()}, data)
        if not MIN_VERSION <= float(version) <= MAX_VERSION:
            return self._rest_answer(call, 404, [{"errorCode": "NOT_FOUND", "message": NOT_FOUND}])
        if not self._authenticated(headers):
            return self._rest_answer(call, 401, [{"message": SESSION_EXPIRED, "errorCode": "INVALID_SESSION_ID"}])
        with self._lock:
            if self._usage >= self._api_max:
                over = True
            else:
                over = False
                self._usage += 1
        if over:
            return self._rest_answer(call, 403, [{"message": LIMIT_EXCEEDED, "errorCode": "REQUEST_LIMIT_EXCEEDED"}])
        body = None
        if raw.strip():
            try:
                body = json.loads(raw)
            except ValueError as problem:
                return self._rest_answer(call, 400, [{"message": self._not_json(raw, problem),
                                                      "errorCode": "JSON_PARSER_ERROR"}])
        try:
            status, payload = self._route(method, version, resource, query, body, raw.decode("utf-8", "replace"))
        except _Refusal as refused:
            status, payload = refused.status, refused.body
        with self._lock:
            drop = next((i for i, p in enumerate(self._drops) if _matches(call.path, p)), None)
            if drop is not None:
                self._drops.pop(drop)
        if drop is not None:
            self._record(call, 0)
            return None
        return self._rest_answer(call, status, payload)

    def _rest_answer(self, call: Call, status: int, payload) -> tuple[int, dict, bytes]:
        return self._finish(call, status, self._limit_header(), self._json(payload))

    def _finish(self, call: Call, status: int, headers: dict, data: bytes) -> tuple[int, dict, bytes]:
        self._record(call, status)
        return status, headers, data

    def _record(self, call: Call, status: int) -> None:
        call.status, call.at = status, time.monotonic()
        with self._cond:
            self.calls.append(call)
            self._cond.notify_all()

    def _limit_header(self) -> dict:
        with self._lock:
            return {"Sforce-Limit-Info": f"api-usage={self._usage}/{self._api_max}"}

    @staticmethod
    def _json(payload) -> bytes:
        return json.dumps(payload).encode()

    @staticmethod
    def _recorded_body(path: str, raw: bytes):
        if not raw:
            return None
        text = raw.decode("utf-8", "replace")
        if path == TOKEN_PATH:
            form = dict(parse_qsl(text, keep_blank_values=True))
            if "client_secret" in form:
                form["client_secret"] = "***"
            return form
        try:
            return json.loads(text)
        except ValueError:
            return text

    @staticmethod
    def _not_json(raw: bytes, problem: ValueError) -> str:
        pos = getattr(problem, "pos", 0) or 0
        text = raw.decode("utf-8", "replace")
        char = text[pos] if pos < len(text) else " "
        return UNCONFIRMED["not_json"].format(char=char, code=ord(char), problem=getattr(problem, "msg", problem),
                                              line=getattr(problem, "lineno", 1), column=getattr(problem, "colno", 1))

    def _take_fault(self, path: str, explicit: bool) -> _Fault | None:
        with self._lock:
            for i, fault in enumerate(self._faults):
                if (fault.path is None and not explicit) or (fault.path is not None and _matches(path, fault.path)):
                    return self._faults.pop(i)
        return None

    def _fault_answer(self, fault: _Fault, rest: bool) -> tuple[int, dict, bytes]:
        status = fault.status
        if not rest:
            body = {"error": "server_error" if status >= 500 else "invalid_request",
                    "error_description": "injected failure"}
            return status, {}, self._json(body)
        error_id = f"{secrets.randbelow(10**9)}-{secrets.randbelow(10**5)} ({-secrets.randbelow(10**9)})"
        known = {401: ("INVALID_SESSION_ID", SESSION_EXPIRED), 403: ("REQUEST_LIMIT_EXCEEDED", LIMIT_EXCEEDED),
                 404: ("NOT_FOUND", NOT_FOUND), 503: ("SERVER_UNAVAILABLE", UNCONFIRMED["unavailable"])}
        code, message = known.get(status, ("UNKNOWN_EXCEPTION", UNKNOWN_ERROR.format(error_id=error_id)))
        return status, {}, self._json([{"message": message, "errorCode": code}])

    # OAuth ----------------------------------------------------------------------------
    def _issue(self) -> str:
        token = f"{self._org_id[:15]}!{secrets.token_urlsafe(72)}"
        self._tokens[token] = time.time()
        return token

    def _token(self, method: str, headers, raw: bytes) -> tuple[int, dict]:
        if method != "POST":
            return 400, {"error": "invalid_request", "error_description": "must use HTTP POST"}
        form = dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        auth = headers.get("Authorization", "")
        if auth[:6].lower() == "basic ":
            with contextlib.suppress(binascii.Error, UnicodeDecodeError, ValueError):
                client_id, _, client_secret = base64.b64decode(auth[6:].strip()).decode().partition(":")
        if form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type", "error_description": "grant type not supported"}
        if client_id != self.client_id:
            return 400, {"error": "invalid_client_id", "error_description": "client identifier invalid"}
        if not hmac.compare_digest(str(client_secret or ""), self.client_secret):
            return 400, {"error": "invalid_client", "error_description": "invalid client credentials"}
        with self._lock:
            token = self._issue()
        issued = str(int(time.time() * 1000))
        identity = f"{self.url}/id/{self._org_id}/{self._integration_user_id}"
        signature = base64.b64encode(hmac.new(self._signing_key, (identity + issued).encode(),
                                              hashlib.sha256).digest()).decode()
        return 200, {"access_token": token, "signature": signature, "scope": "api", "instance_url": self.url,
                     "id": identity, "token_type": "Bearer", "issued_at": issued}

    def _authenticated(self, headers) -> bool:
        auth = headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() not in ("bearer", "oauth"):
            return False
        with self._lock:
            return token.strip() in self._tokens

    def _identity(self, path: str, headers) -> tuple[int, Any]:
        if not self._authenticated(headers):
            return 403, "Bad_OAuth_Token"
        with self._lock:
            user = self._tables["User"][self._integration_user_id]
            if path.rstrip("/") != f"/id/{self._org_id}/{self._integration_user_id}":
                return 404, "Bad_Id"
            return 200, {"id": f"{self.url}{path}", "asserted_user": True, "user_id": user["Id"],
                         "organization_id": self._org_id, "username": user["Username"],
                         "display_name": user["Name"], "email": user["Email"], "active": user["IsActive"],
                         "user_type": "STANDARD", "language": "en_US", "locale": "en_US", "utcOffset": 0,
                         "urls": {"rest": f"{self.url}/services/data/v{{version}}/",
                                  "query": f"{self.url}/services/data/v{{version}}/query/",
                                  "sobjects": f"{self.url}/services/data/v{{version}}/sobjects/"}}

    # Routing ---------------------------------------------------------------------------
    def _route(self, method: str, version: str, resource: str, query: dict, body, text: str) -> tuple[int, Any]:
        base = f"/services/data/v{version}"

        def allow(*methods: str) -> None:
            if method not in methods:
                raise _Refusal(405, "METHOD_NOT_ALLOWED",
                               f"HTTP Method '{method}' not allowed. Allowed are {','.join(methods)}")

        if resource == "/":
            allow("GET", "HEAD")
            return 200, {name: f"{base}/{name}" for name in ("limits", "sobjects", "query", "queryAll", "tooling",
                                                              "composite")}
        if resource == "/limits":
            allow("GET", "HEAD")
            with self._lock:
                used, most = self._usage, self._api_max
            return 200, {"DailyApiRequests": {"Max": most, "Remaining": max(0, most - used)},
                         "DailyAsyncApexExecutions": {"Max": 250000, "Remaining": 250000},
                         "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
                         "DataStorageMB": {"Max": 5, "Remaining": 5}}
        m = re.fullmatch(r"/(query|queryAll)(?:/([^/]+))?", resource)
        if m:
            allow("GET", "HEAD")
            if m.group(2):
                return self._more(base, m.group(2))
            return self._query(base, query.get("q"), include_deleted=m.group(1) == "queryAll")
        if resource == "/tooling/query":
            allow("GET", "HEAD")
            return self._tooling_query(base, query.get("q"))
        m = re.fullmatch(r"/sobjects/([^/]+)(?:/([^/]+))?", resource)
        if m:
            return self._sobjects(method, base, m.group(1), m.group(2), body, allow)
        if resource == "/composite/sobjects":
            allow("PATCH")
            return self._collections_update(body, text)
        m = re.fullmatch(r"/composite/sobjects/([^/]+)/([^/]+)", resource)
        if m:
            allow("PATCH")
            return self._collections_upsert(m.group(1), m.group(2), body, text)
        m = re.fullmatch(r"/tooling/sobjects/CustomField(?:/([^/]+))?", resource, re.IGNORECASE)
        if m:
            if m.group(1):
                allow("GET", "HEAD")
                return self._get_custom_field(base, m.group(1))
            allow("POST")
            return self._post_custom_field(body)
        return 404, [{"errorCode": "NOT_FOUND", "message": NOT_FOUND}]

    def _sobjects(self, method: str, base: str, type_name: str, rest: str | None, body, allow):
        with self._lock:
            obj = next((o for o in self._objects.values() if o.name.lower() == type_name.lower()), None)
        if obj is None:
            return 404, [{"errorCode": "NOT_FOUND", "message": NOT_FOUND}]
        if rest is None:
            allow("POST")
            return self._create(obj, body)
        if rest == "describe":
            allow("GET", "HEAD")
            return 200, self._describe(base, obj)
        allow("GET", "HEAD")
        with self._lock:
            canonical = normalize_id(rest)
            record = self._tables[obj.name].get(canonical or "")
            if record is None:
                return 404, [{"errorCode": "NOT_FOUND", "message": NOT_FOUND}]
            if record.get("IsDeleted"):
                return 404, [{"errorCode": "ENTITY_IS_DELETED", "message": "entity is deleted"}]
            can_read, _ = self._visibility(obj)
            out = {"attributes": {"type": obj.name, "url": f"{base}/sobjects/{obj.name}/{record['Id']}"}}
            out.update({fd.name: record.get(fd.name) for fd in obj.fields.values() if can_read(fd)})
            return 200, out

    # Query ------------------------------------------------------------------------------
    def _compile(self, text: str | None, tooling: bool) -> Compiled:
        if text is None or not text.strip():
            raise _Refusal(400, "MALFORMED_QUERY", UNCONFIRMED["no_query"])
        if len(text) > SOQL_MAX:
            raise _Refusal(400, "MALFORMED_QUERY", f"SOQL statements can not be longer than {SOQL_MAX} characters")
        try:
            parsed = Parser(text).parse()
            name, pos = parsed.obj
            if tooling:
                obj = self._custom_object if name.lower() == "customfield" else None
            else:
                obj = next((o for o in self._objects.values() if o.name.lower() == name.lower()), None)
            if obj is None:
                raise SoqlError("INVALID_TYPE", NO_SUCH_TYPE.format(name=name), pos)
            can_read = self._visibility(obj)[0] if not tooling else (lambda fd: True)
            return Compiled(parsed, obj, can_read, text)
        except SoqlError as problem:
            raise _Refusal(400, problem.code, soql_message(text, problem.pos, problem.explanation)) from None

    def _query(self, base: str, text: str | None, include_deleted: bool) -> tuple[int, dict]:
        with self._lock:
            compiled = self._compile(text, tooling=False)
            rows = [r for r in self._tables[compiled.obj.name].values()
                    if (include_deleted or not r.get("IsDeleted")) and compiled.predicate(r)]
            rows = compiled.sort(rows)
            if compiled.query.limit is not None:
                rows = rows[:compiled.query.limit]
            if compiled.query.count:
                return 200, {"totalSize": len(rows), "done": True, "records": []}
            records = [self._shape(base, compiled, r) for r in rows]
            return 200, self._page(base, records, "query" if not include_deleted else "queryAll")

    def _shape(self, base: str, compiled: Compiled, row: dict, tooling: bool = False) -> dict:
        obj = compiled.obj
        url = f"{base}/{'tooling/' if tooling else ''}sobjects/{obj.name}/{row['Id']}"
        out = {"attributes": {"type": obj.name, "url": url}}
        for fd in compiled.fields:
            value = row.get(fd.name)
            out[fd.name] = json.loads(json.dumps(value)) if isinstance(value, dict) else value
        return out

    def _page(self, base: str, records: list[dict], endpoint: str) -> dict:
        answer = {"totalSize": len(records), "done": len(records) <= BATCH_SIZE, "records": records[:BATCH_SIZE]}
        if len(records) > BATCH_SIZE:
            locator = self._new_id("QueryLocator")[:15]
            self._locators[locator] = (records, endpoint, time.monotonic())
            answer["nextRecordsUrl"] = f"{base}/{endpoint}/{locator}-{BATCH_SIZE}"
        return answer

    def _more(self, base: str, handle: str) -> tuple[int, dict]:
        locator, _, offset = handle.partition("-")
        with self._lock:
            stored = self._locators.get(locator)
            if stored is None or not offset.isdigit():
                raise _Refusal(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
            records, endpoint, _ = stored
            start = int(offset)
            batch = records[start:start + BATCH_SIZE]
            answer = {"totalSize": len(records), "done": start + BATCH_SIZE >= len(records), "records": batch}
            if not answer["done"]:
                answer["nextRecordsUrl"] = f"{base}/{endpoint}/{locator}-{start + BATCH_SIZE}"
            else:
                self._locators.pop(locator, None)
            return 200, answer

    def _tooling_query(self, base: str, text: str | None) -> tuple[int, dict]:
        with self._lock:
            compiled = self._compile(text, tooling=True)
            rows = [r for r in self._custom_fields.values() if compiled.predicate(r)]
            rows = compiled.sort(rows)
            if compiled.query.limit is not None:
                rows = rows[:compiled.query.limit]
            if len(rows) > 1 and any(fd.name in ("FullName", "Metadata") for fd in compiled.fields):
                raise _Refusal(400, "MALFORMED_QUERY", UNCONFIRMED["too_many_rows"].format(size=len(rows)))
            records = [] if compiled.query.count else [self._shape(base, compiled, r, tooling=True) for r in rows]
            return 200, {"size": len(rows), "totalSize": len(rows), "done": True, "queryLocator": None,
                         "entityTypeName": "CustomField", "records": records}

    # Describe ---------------------------------------------------------------------------
    def _describe(self, base: str, obj: SObject) -> dict:
        with self._lock:
            can_read, can_edit = self._visibility(obj)
            fields = []
            for fd in obj.fields.values():
                if not can_read(fd):
                    continue
                editable = can_edit(fd)
                soap = {"id": "tns:ID", "reference": "tns:ID", "boolean": "xsd:boolean", "datetime": "xsd:dateTime",
                        "date": "xsd:date"}.get(fd.type, "xsd:string")
                fields.append({
                    "name": fd.name, "label": fd.label, "type": fd.type, "soapType": soap,
                    "length": fd.length if fd.type not in ("boolean", "datetime", "date") else 0,
                    "byteLength": fd.length * 3, "custom": fd.custom, "calculated": False,
                    "updateable": fd.updateable and editable, "createable": fd.createable and editable,
                    "nillable": fd.nillable, "externalId": fd.external_id, "unique": fd.unique,
                    "idLookup": fd.name == "Id" or fd.external_id or fd.type == "email",
                    "filterable": fd.filterable, "sortable": fd.filterable, "caseSensitive": False,
                    "defaultValue": fd.default if fd.type == "boolean" else None,
                    "defaultedOnCreate": fd.type == "boolean" or fd.name in ("OwnerId", "CreatedDate"),
                    "picklistValues": [dict(p) for p in fd.picklist or []],
                    "restrictedPicklist": fd.restricted, "referenceTo": list(fd.reference_to),
                    "relationshipName": (fd.name[:-2] if fd.type == "reference" and fd.name.endswith("Id") else None),
                })
            return {"name": obj.name, "label": obj.label, "labelPlural": obj.label + "s", "keyPrefix": obj.prefix,
                    "custom": False, "queryable": True, "createable": obj.name in CREATABLE + ("Task",),
                    "updateable": obj.name in WRITABLE + ("Task",), "deletable": False, "fields": fields,
                    "urls": {"describe": f"{base}/sobjects/{obj.name}/describe",
                             "sobject": f"{base}/sobjects/{obj.name}",
                             "rowTemplate": f"{base}/sobjects/{obj.name}/{{ID}}"}}

    # Values ----------------------------------------------------------------------------
    @staticmethod
    def _json_column(text: str, value) -> int:
        encoded = json.dumps(value)
        at = text.find(encoded)
        return at + len(encoded) + 1 if at >= 0 else 1

    def _coerce(self, fd: FieldDef, value, text: str):
        """A JSON value as the field stores it; a value of the wrong kind refuses the whole request, as
        Salesforce's deserializer does (JSON_PARSER_ERROR)."""
        if value is None:
            return False if fd.type == "boolean" else None

        def refuse(kind: str):
            token = {bool: "VALUE_TRUE" if value is True else "VALUE_FALSE", int: "VALUE_NUMBER_INT",
                     float: "VALUE_NUMBER_FLOAT", str: "VALUE_STRING", dict: "START_OBJECT",
                     list: "START_ARRAY"}.get(type(value), "VALUE_STRING")
            raise _Refusal(400, "JSON_PARSER_ERROR", UNCONFIRMED["json_type"].format(
                type=kind, token=token, value=value if not isinstance(value, dict | list) else json.dumps(value),
                column=self._json_column(text, value)))

        if fd.type == "boolean":
            if not isinstance(value, bool):
                refuse("boolean")
            return value
        if fd.type == "datetime":
            at = parse_datetime(value)
            if at is None:
                refuse("datetime")
            return sf_datetime(at)
        if fd.type == "date":
            day = parse_date(value)
            if day is None:
                refuse("date")
            return day.isoformat()
        if isinstance(value, dict | list):
            refuse("string")
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return str(value)

    def _deserialize(self, raw_record, obj: SObject, can_read, text: str) -> tuple[Any, dict]:
        """(the id given, {field: value}) from one record of a request body; unknown or invisible fields and
        values of the wrong kind refuse the request."""
        if not isinstance(raw_record, dict):
            raise _Refusal(400, "JSON_PARSER_ERROR", UNCONFIRMED["no_records"])
        given_id, values = None, {}
        for key, value in raw_record.items():
            if key == "attributes":
                continue
            fd = obj.field(key)
            if fd is None or not can_read(fd):
                raise _Refusal(400, "INVALID_FIELD", NO_SUCH_COLUMN_WRITE.format(name=key, obj=obj.name))
            if fd.name == "Id":
                given_id = value
                continue
            values[fd.name] = self._coerce(fd, value, text)
        return given_id, values

    def _records_of(self, body) -> tuple[list, bool]:
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            raise _Refusal(400, "JSON_PARSER_ERROR", UNCONFIRMED["no_records"])
        records = body["records"]
        if len(records) > COLLECTION_MAX:
            raise _Refusal(400, "EXCEEDED_ID_LIMIT", TOO_MANY_RECORDS)
        all_or_none = body.get("allOrNone", False)
        if not isinstance(all_or_none, bool):
            raise _Refusal(400, "JSON_PARSER_ERROR", UNCONFIRMED["json_type"].format(
                type="boolean", token="VALUE_STRING", value=all_or_none, column=1))
        return records, all_or_none

    def _type_from(self, raw_record, index: int) -> SObject:
        attributes = raw_record.get("attributes") if isinstance(raw_record, dict) else None
        name = attributes.get("type") if isinstance(attributes, dict) else None
        if not isinstance(name, str) or not name:
            raise _Refusal(400, "INVALID_TYPE", UNCONFIRMED["no_type"].format(index=index))
        obj = next((o for o in self._objects.values() if o.name.lower() == name.lower()), None)
        if obj is None:
            raise _Refusal(400, "INVALID_TYPE", f"sObject type '{name}' is not supported.")
        return obj

    def _check_values(self, obj: SObject, values: dict, can_edit, creating: bool) -> list[dict]:
        """Per-record problems with the values written (the record itself already checked)."""
        read_only = [name for name in values if not (obj.fields[name].createable if creating
                                                     else obj.fields[name].updateable) or not can_edit(obj.fields[name])]
        if read_only:
            return [_error("INVALID_FIELD_FOR_INSERT_UPDATE", READ_ONLY.format(names=", ".join(read_only)), read_only)]
        errors = []
        for name, value in values.items():
            fd = obj.fields[name]
            if value is None:
                if not fd.nillable:
                    errors.append(_error("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{name}]", [name]))
                continue
            if fd.picklist is not None and fd.restricted:
                active = {p["value"] for p in fd.picklist if p["active"]}
                if value not in active:
                    errors.append(_error("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                                         f"{fd.label}: bad value for restricted picklist field: {value}", [name]))
                    continue
            if fd.type in ("string", "email", "textarea", "url", "picklist") and fd.length and len(value) > fd.length:
                errors.append(_error("STRING_TOO_LONG",
                                     f"{fd.label}: data value too large: {value} (max length={fd.length})", [name]))
                continue
            if fd.type == "email" and not _EMAIL.fullmatch(value):
                errors.append(_error("INVALID_EMAIL_ADDRESS", UNCONFIRMED["bad_email"].format(label=fd.label,
                                                                                            value=value), [name]))
                continue
            if fd.type == "reference":
                problem = self._check_reference(fd, value)
                if problem:
                    errors.append(problem)
                else:
                    values[name] = normalize_id(value)  # stored as the 18-character id, whatever was sent
        return errors

    def _check_reference(self, fd: FieldDef, value: str) -> dict | None:
        canonical = normalize_id(value)
        if canonical is None:
            return _error("MALFORMED_ID", f"{fd.label}: id value of incorrect type: {value}", [fd.name])
        kind = self._type_of(canonical)
        if kind not in fd.reference_to:
            return _error("FIELD_INTEGRITY_EXCEPTION", f"{fd.label}: id value of incorrect type: {value}", [fd.name])
        target = self._tables[kind].get(canonical)
        if target is None:
            return _error("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [fd.name])
        if target.get("IsDeleted"):
            return _error("ENTITY_IS_DELETED", "entity is deleted", [fd.name])
        if kind == "User" and not target.get("IsActive"):
            return _error("INACTIVE_OWNER_OR_USER", "operation performed with inactive user", [])
        if kind == "Lead" and target.get("IsConverted"):
            return _error("CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead", [])
        return None

    def _check_target(self, obj: SObject, given_id) -> tuple[str | None, list[dict]]:
        """(the canonical id, problems) of the record an update names."""
        if given_id is None or given_id == "":
            return None, [_error("MISSING_ARGUMENT", "Id not specified in an update call")]
        canonical = normalize_id(given_id)
        if canonical is None or not canonical.startswith(obj.prefix):
            return None, [_error("MALFORMED_ID", f"{obj.label} ID: id value of incorrect type: {given_id}", ["Id"])]
        record = self._tables[obj.name].get(canonical)
        if record is None:
            return canonical, [_error("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")]
        if record.get("IsDeleted"):
            return canonical, [_error("ENTITY_IS_DELETED", "entity is deleted")]
        if self._locks.get(canonical):
            self._locks[canonical] -= 1
            return canonical, [_error("UNABLE_TO_LOCK_ROW", LOCKED)]
        if obj.name == "Lead" and record.get("IsConverted"):
            return canonical, [_error("CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead")]
        return canonical, []

    def _write(self, obj_name: str, record_id: str, values: dict) -> None:
        record = self._tables[obj_name][record_id]
        record.update(values)
        record["LastModifiedDate"] = self._now()
        self._history.setdefault(record_id, []).append(dict(values))

    @staticmethod
    def _settle(outcomes: list[tuple[list[dict], Callable[[], dict]]], all_or_none: bool) -> list[dict]:
        """Apply the successful writes (all or none), and answer per record, in order."""
        failed = any(errors for errors, _ in outcomes)
        results = []
        for errors, apply in outcomes:
            if errors:
                results.append({"success": False, "errors": errors})
            elif all_or_none and failed:
                results.append({"success": False, "errors": [_error("ALL_OR_NONE_OPERATION_ROLLED_BACK", ROLLED_BACK)]})
            else:
                results.append(apply())
        return results

    def _collections_update(self, body, text: str) -> tuple[int, list]:
        records, all_or_none = self._records_of(body)
        with self._lock:
            parsed = []
            for index, raw_record in enumerate(records):
                obj = self._type_from(raw_record, index)
                if obj.name not in WRITABLE:
                    raise _Refusal(400, "INVALID_TYPE", UNCONFIRMED["not_served"].format(what=f"updates of {obj.name}"))
                can_read, can_edit = self._visibility(obj)
                given_id, values = self._deserialize(raw_record, obj, can_read, text)
                parsed.append((obj, given_id, values, can_edit))
            outcomes = []
            for obj, given_id, values, can_edit in parsed:
                record_id, errors = self._check_target(obj, given_id)
                if not errors:
                    errors = self._check_values(obj, values, can_edit, creating=False)

                def apply(obj=obj, record_id=record_id, values=values) -> dict:
                    self._write(obj.name, record_id, values)
                    return {"id": record_id, "success": True, "errors": []}

                outcomes.append((errors, apply))
            return 200, self._settle(outcomes, all_or_none)

    def _collections_upsert(self, type_name: str, ext_name: str, body, text: str) -> tuple[int, list]:
        with self._lock:
            obj = next((o for o in self._objects.values() if o.name.lower() == type_name.lower()), None)
            if obj is None:
                raise _Refusal(404, "NOT_FOUND", NOT_FOUND)
            if obj.name != "Task":
                raise _Refusal(400, "INVALID_TYPE", UNCONFIRMED["not_served"].format(what=f"upserts of {obj.name}"))
            can_read, can_edit = self._visibility(obj)
            ext = obj.field(ext_name)
            if ext is None or not can_read(ext):
                raise _Refusal(404, "NOT_FOUND", f"Provided external ID field does not exist or is not accessible: "
                                                 f"{ext_name}")
            if not ext.external_id:
                raise _Refusal(400, "INVALID_FIELD", UNCONFIRMED["not_external_id"].format(name=ext.name))
        records, all_or_none = self._records_of(body)
        with self._lock:
            parsed = []
            for index, raw_record in enumerate(records):
                given = self._type_from(raw_record, index)
                if given.name != obj.name:
                    raise _Refusal(400, "INVALID_TYPE", UNCONFIRMED["wrong_type"].format(given=given.name,
                                                                                        expected=obj.name))
                _, values = self._deserialize(raw_record, obj, can_read, text)
                parsed.append(values)
            seen: dict[str, int] = {}
            for values in parsed:
                key = (values.get(ext.name) or "").casefold()
                if key:
                    seen[key] = seen.get(key, 0) + 1
            existing = {(r.get(ext.name) or "").casefold(): r["Id"] for r in self._tables[obj.name].values()
                        if not r.get("IsDeleted") and r.get(ext.name)}
            outcomes = []
            for values in parsed:
                value = values.get(ext.name)
                record_id = existing.get((value or "").casefold()) if value else None
                if not value:
                    errors = [_error("MISSING_ARGUMENT", UNCONFIRMED["no_external_id"].format(name=ext.name),
                                     [ext.name])]
                elif seen[value.casefold()] > 1:
                    errors = [_error("DUPLICATE_VALUE", UNCONFIRMED["repeated_external_id"].format(value=value),
                                     [ext.name])]
                elif record_id is not None and self._locks.get(record_id):
                    self._locks[record_id] -= 1
                    errors = [_error("UNABLE_TO_LOCK_ROW", LOCKED)]
                else:
                    errors = self._check_values(obj, values, can_edit, creating=record_id is None)

                def apply(values=values, record_id=record_id) -> dict:
                    if record_id is None:
                        new_id = self._insert(obj.name, {"OwnerId": self._integration_user_id, **values})
                        self._history.setdefault(new_id, []).append(dict(values))
                        return {"id": new_id, "success": True, "errors": [], "created": True}
                    self._write(obj.name, record_id, values)
                    return {"id": record_id, "success": True, "errors": [], "created": False}

                outcomes.append((errors, apply))
            results = self._settle(outcomes, all_or_none)
            for result in results:
                result.setdefault("created", False)
            return 200, results

    # Create ----------------------------------------------------------------------------
    def _create(self, obj: SObject, body) -> tuple[int, Any]:
        if obj.name not in CREATABLE:
            raise _Refusal(400, "INVALID_TYPE", UNCONFIRMED["not_served"].format(what=f"creating {obj.name}"))
        if not isinstance(body, dict):
            raise _Refusal(400, "JSON_PARSER_ERROR", UNCONFIRMED["no_records"])
        with self._lock:
            can_read, can_edit = self._visibility(obj)
            _, values = self._deserialize(body, obj, can_read, json.dumps(body))
            required = {"PermissionSet": ("Name", "Label"), "FieldPermissions": ("ParentId", "SobjectType", "Field"),
                        "PermissionSetAssignment": ("AssigneeId", "PermissionSetId")}[obj.name]
            missing = [n for n in required if values.get(n) in (None, "")]
            if missing:
                raise _Refusal(400, "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]",
                               missing)
            # FieldPermissions' SobjectType and Field are restricted picklists checked by _validate_FieldPermissions
            errors = self._check_values(obj, {k: v for k, v in values.items() if k not in ("SobjectType", "Field")},
                                        can_edit, creating=True)
            if errors:
                first = errors[0]
                raise _Refusal(400, first["statusCode"], first["message"], first["fields"])
            for key in ("ParentId", "AssigneeId", "PermissionSetId"):
                if key in values:
                    values[key] = normalize_id(values[key])
            getattr(self, f"_validate_{obj.name}")(values)
            record_id = self._insert(obj.name, values)
            return 201, {"id": record_id, "success": True, "errors": []}

    def _validate_PermissionSet(self, values: dict) -> None:
        if not _api_name_ok(values["Name"]):
            raise _Refusal(400, "FIELD_INTEGRITY_EXCEPTION", UNCONFIRMED["bad_name"].format(what="Name field"),
                           ["Name"])
        if any(r["Name"].lower() == values["Name"].lower() for r in self._tables["PermissionSet"].values()):
            raise _Refusal(400, "DUPLICATE_VALUE", MASKED_DUPLICATE, [])
        values.setdefault("IsOwnedByProfile", False)

    def _validate_FieldPermissions(self, values: dict) -> None:
        sobject, name = values["SobjectType"], values["Field"]
        obj = self._objects.get(sobject)
        if obj is None or obj.name not in ("Lead", "Contact", "Task", "Event", "User"):
            raise _Refusal(400, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                           f"SObject Type Name: bad value for restricted picklist field: {sobject}", ["SobjectType"])
        prefix, _, field_name = name.partition(".")
        target = obj.field(field_name) if prefix.lower() == sobject.lower() else None
        if prefix.lower() != sobject.lower() and self._objects.get(prefix) is not None:
            raise _Refusal(400, "FIELD_INTEGRITY_EXCEPTION",
                           UNCONFIRMED["field_prefix"].format(field=name, sobject=sobject), ["Field"])
        if target is None or not target.permissionable:
            raise _Refusal(400, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                           f"Field Name: bad value for restricted picklist field: {name}", ["Field"])
        values["Field"] = f"{obj.name}.{target.name}"
        values["SobjectType"] = obj.name
        values.setdefault("PermissionsRead", False)
        values.setdefault("PermissionsEdit", False)
        if values["PermissionsEdit"] and not values["PermissionsRead"]:
            raise _Refusal(400, "FIELD_INTEGRITY_EXCEPTION", UNCONFIRMED["edit_needs_read"], ["PermissionsRead"])
        if any(r["ParentId"] == values["ParentId"] and r["Field"].lower() == values["Field"].lower()
               for r in self._tables["FieldPermissions"].values()):
            raise _Refusal(400, "DUPLICATE_VALUE", MASKED_DUPLICATE, [])

    def _validate_PermissionSetAssignment(self, values: dict) -> None:
        if any(r["AssigneeId"] == values["AssigneeId"] and r["PermissionSetId"] == values["PermissionSetId"]
               for r in self._tables["PermissionSetAssignment"].values()):
            raise _Refusal(400, "DUPLICATE_VALUE", f"Duplicate PermissionSetAssignment. Assignee: "
                                                   f"{values['AssigneeId']}, PermissionSet: {values['PermissionSetId']}",
                           [])

    # Tooling: custom fields -------------------------------------------------------------
    def _custom_field_named(self, table: str, name: str) -> dict | None:
        developer = name[:-3] if name.lower().endswith("__c") else name
        for record in self._custom_fields.values():
            if record["TableEnumOrId"].lower() == table.lower() and record["DeveloperName"].lower() == developer.lower():
                return record
        return None

    def _metadata_problem(self, name: str, metadata) -> tuple[str, list[str]] | None:
        if not isinstance(metadata, dict):
            return "Metadata is required", ["Metadata"]
        if not metadata.get("label"):
            return "label is required", ["label"]
        kind = metadata.get("type")
        if kind not in FIELD_TYPES:
            return f"type must be one of {', '.join(FIELD_TYPES)}, not {kind!r}", ["type"]
        length = metadata.get("length")
        if kind == "Text" and (not isinstance(length, int) or isinstance(length, bool) or not 1 <= length <= 255):
            return "a Text field needs a length from 1 to 255", ["length"]
        if kind == "LongTextArea":
            if not isinstance(length, int) or isinstance(length, bool) or not 256 <= length <= 131072:
                return "a LongTextArea field needs a length from 256 to 131072", ["length"]
            lines = metadata.get("visibleLines")
            if not isinstance(lines, int) or isinstance(lines, bool) or not 2 <= lines <= 50:
                return "a LongTextArea field needs visibleLines from 2 to 50", ["visibleLines"]
        if kind not in ("Text", "LongTextArea") and length is not None:
            return f"a {kind} field has no length", ["length"]
        if kind == "Checkbox" and str(metadata.get("defaultValue")).lower() not in ("true", "false"):
            return "a Checkbox field needs a defaultValue of true or false", ["defaultValue"]
        if (metadata.get("externalId") or metadata.get("unique")) and kind not in ("Text", "Email"):
            return f"a {kind} field can be neither an External ID nor unique", ["externalId"]
        return None

    def _create_custom_field(self, body: dict) -> str:
        """Validate (raising _Refusal) and add a custom field; returns its id."""
        full_name, metadata = body.get("FullName"), body.get("Metadata")
        if not isinstance(full_name, str) or full_name.count(".") != 1:
            raise _Refusal(400, "FIELD_INTEGRITY_EXCEPTION",
                           UNCONFIRMED["field_metadata"].format(problem="FullName must be Object.Field__c"),
                           ["FullName"])
        table, name = full_name.split(".")
        table = next((t for t in CUSTOM_FIELD_OBJECTS if t.lower() == table.lower()), None)
        if table is None:
            raise _Refusal(400, "FIELD_INTEGRITY_EXCEPTION", UNCONFIRMED["not_served"].format(
                what=f"custom fields on {full_name.split('.')[0]}"), ["FullName"])
        if not name.endswith("__c") or not _api_name_ok(name[:-3]) or len(name) - 3 > 40:
            raise _Refusal(400, "FIELD_INTEGRITY_EXCEPTION", UNCONFIRMED["bad_name"].format(what="Field Name"),
                           ["FullName"])
        problem = self._metadata_problem(name, metadata)
        if problem:
            raise _Refusal(400, "FIELD_INTEGRITY_EXCEPTION", UNCONFIRMED["field_metadata"].format(problem=problem[0]),
                           problem[1])
        developer = name[:-3]
        if self._custom_field_named(table, name):
            raise _Refusal(400, "DUPLICATE_DEVELOPER_NAME",
                           UNCONFIRMED["duplicate_field"].format(name=developer, obj=table), [])
        kind = metadata["type"]
        length = {"Text": metadata.get("length"), "LongTextArea": metadata.get("length"), "Url": 255,
                  "Email": 80}.get(kind, 0)
        default = (str(metadata.get("defaultValue")).lower() == "true") if kind == "Checkbox" else None
        stored = {"label": metadata["label"], "type": kind, "length": metadata.get("length"),
                  "visibleLines": metadata.get("visibleLines"), "externalId": bool(metadata.get("externalId")),
                  "unique": bool(metadata.get("unique")), "required": bool(metadata.get("required")),
                  "defaultValue": metadata.get("defaultValue"), "description": metadata.get("description"),
                  "inlineHelpText": metadata.get("inlineHelpText")}
        field_id = self._new_id("CustomField")
        stamp = self._now()
        self._custom_fields[field_id] = {
            "Id": field_id, "DeveloperName": developer, "TableEnumOrId": table, "NamespacePrefix": None,
            "FullName": f"{table}.{name}", "Metadata": stored, "CreatedDate": stamp, "LastModifiedDate": stamp}
        for obj_name in ACTIVITY_OBJECTS if table == "Activity" else (table,):
            fd = FieldDef(name, metadata["label"], FIELD_TYPES[kind], length or 0, custom=True,
                          nillable=kind != "Checkbox", external_id=bool(metadata.get("externalId")),
                          unique=bool(metadata.get("unique")), default=default)
            self._objects[obj_name].fields[name] = fd
            for record in self._tables[obj_name].values():
                record.setdefault(name, default if kind == "Checkbox" else None)
        return field_id

    def _post_custom_field(self, body) -> tuple[int, dict]:
        if not isinstance(body, dict):
            raise _Refusal(400, "JSON_PARSER_ERROR", UNCONFIRMED["field_metadata"].format(problem="no body"))
        with self._lock:
            return 201, {"id": self._create_custom_field(body), "success": True, "errors": []}

    def _get_custom_field(self, base: str, field_id: str) -> tuple[int, Any]:
        with self._lock:
            record = self._custom_fields.get(normalize_id(field_id) or "")
            if record is None:
                return 404, [{"errorCode": "NOT_FOUND", "message": NOT_FOUND}]
            out = {"attributes": {"type": "CustomField", "url": f"{base}/tooling/sobjects/CustomField/{record['Id']}"}}
            out.update(json.loads(json.dumps(record)))
            out["ManageableState"] = "unmanaged"
            return 200, out

    # HTTP ----------------------------------------------------------------------------------
    def _handler(self):
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                # The TLS handshake happens here, in the request's own thread, not in the accept loop.
                try:
                    # Headers and body go out in separate writes: without NODELAY, Nagle's algorithm and the
                    # client's delayed ACK would hold every answer back some 40 ms.
                    self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    self.request.settimeout(HANDSHAKE_SECONDS)
                    self.request.do_handshake()
                    self.request.settimeout(None)
                except (ssl.SSLError, OSError) as problem:  # an untrusting client hangs up mid-handshake
                    raise ConnectionAbortedError(str(problem)) from None
                super().setup()

            def log_message(self, *args):  # quiet
                pass

            def send_error(self, code, message=None, explain=None):
                if code == 414:  # a request line beyond http.server's own 64 KiB: Salesforce's edge answer
                    self.close_connection = True
                    self._drain_request()
                    self.send_response(414)
                    self.send_header("Content-Type", "text/html;charset=iso-8859-1")
                    self.send_header("Content-Length", str(len(URI_TOO_LONG_PAGE)))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(URI_TOO_LONG_PAGE)
                    return
                super().send_error(code, message, explain)

            def _drain_request(self, most: int = 4 << 20):
                """Read the rest of an over-long request line and its headers before answering, as a server's edge
                does: closing with the client's bytes unread resets the connection, and the client meets a broken
                pipe (or a TLS EOF) instead of the 414."""
                self.request.settimeout(2.0)
                try:
                    ended = False
                    while most > 0:
                        line = self.rfile.readline(65537)
                        most -= len(line)
                        if not line or (ended and line in (b"\r\n", b"\n")):
                            return
                        ended = line.endswith(b"\n")
                except OSError:
                    return

            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                answer = standin.answer(self.command, self.path, self.headers, raw)
                if answer is None:  # applied, then hung up without a word
                    self.close_connection = True
                    return
                status, headers, data = answer
                self.send_response(status)
                headers = {"Content-Type": "application/json;charset=UTF-8", **headers}
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                if headers.get("Connection") == "close":
                    self.close_connection = True

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = _serve

        return Handler


def session_for(standin: SalesforceStandIn):
    """A requests session that trusts the stand-in's CA (and nothing else).

    trust_env is turned off because requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE from the environment
    replace a Session's `verify` for every request that does not pass its own; with it on, a machine that sets
    them (many do) would ignore `verify = ca_file`."""
    import requests

    session = requests.Session()
    session.verify = standin.ca_file
    session.trust_env = False
    return session


def client_for(standin: SalesforceStandIn, token: str | None = None, version: str = "60.0"):
    """simple-salesforce's client on a session from `session_for`, with `token` or a new session's token."""
    from simple_salesforce import Salesforce

    return Salesforce(instance_url=standin.url, session_id=token or standin.token(), version=version,
                      session=session_for(standin))


def main(argv=None) -> int:
    """Run the stand-in on its own: `python -m standin.salesforce [--port 8099] [--grant-all]`; prints the url and
    the CA file to trust, serves until Ctrl-C."""
    import argparse
    import signal

    p = argparse.ArgumentParser(description="Local Salesforce REST API stand-in (HTTPS)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--client-id", default=DEFAULT_CLIENT_ID)
    p.add_argument("--client-secret", default=DEFAULT_CLIENT_SECRET)
    p.add_argument("--directory", help="where to write ca.pem and the server's certificate (default: a temp dir)")
    p.add_argument("--api-max", type=int, default=DEFAULT_API_MAX)
    p.add_argument("--grant-all", action="store_true", help="create Handoff's fields and grant them at once")
    args = p.parse_args(argv)
    standin = SalesforceStandIn(client_id=args.client_id, client_secret=args.client_secret,
                                directory=args.directory, api_max=args.api_max, host=args.host, port=args.port)
    if args.grant_all:
        standin.grant_all()
    print(standin.url, flush=True)
    print(standin.ca_file, flush=True)

    def interrupted(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)  # a terminate() cleans up too
    try:
        standin.server.serve_forever(standin.poll_seconds)
    except KeyboardInterrupt:
        pass
    finally:
        standin.server.server_close()
        if standin._own_directory:
            shutil.rmtree(standin.directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
