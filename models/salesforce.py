"""What Handoff writes to Salesforce, as pure functions (docs/salesforce.md).

The custom fields `bot.py salesforce-setup` creates (FIELDS, TASK_FIELD), the values a lead's record gets
(`record_fields`), how the record of an email is chosen among
the Leads and Contacts found (`choose`), and the SOQL that finds them, cut so every query's URI stays under
Salesforce's limit (`email_queries`).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

from simple_salesforce import format_soql

from models.events import status_of
from models.tables import Lead

API_VERSION = "60.0"
COLLECTION = 200  # records per sObject Collections call: Salesforce's maximum
URI_LIMIT = 16_384  # bytes of a request's URI Salesforce takes (a longer one is refused)
# Salesforce also refuses a request whose URI and headers together pass the limit (431): room for the headers a
# query carries (the bearer token, the client's own), with plenty to spare.
HEADROOM = 1024
SOQL_LIMIT = 100_000  # characters of a SOQL statement, by default
OUTCOMES = ("contacted", "sql", "won", "lost", "disqualified")  # each adds a completed Task
LEAD_PREFIX, CONTACT_PREFIX, USER_PREFIX = "00Q", "003", "005"


@dataclass(frozen=True)
class FieldDef:
    name: str  # API name, with __c
    label: str
    type: str  # Metadata API type: Text, LongTextArea, DateTime, Checkbox
    length: int | None = None

    def metadata(self) -> dict:
        """The CustomField metadata the Tooling API creates it from."""
        out: dict = {"label": self.label, "type": self.type,
                     "description": "Written by Handoff (Slack lead handoff); see its docs/salesforce.md"}
        if self.type == "Text":
            out["length"] = self.length
        elif self.type == "LongTextArea":
            out.update(length=self.length, visibleLines=5)
        elif self.type == "Checkbox":
            out["defaultValue"] = "false"
        return out


# On Lead and on Contact.
FIELDS = (
    FieldDef("Handoff_Status__c", "Handoff status", "Text", 40),
    FieldDef("Handoff_Owner__c", "Handoff owner (Slack user id)", "Text", 40),
    FieldDef("Handoff_Team__c", "Handoff team", "Text", 80),
    FieldDef("Handoff_Claimed_At__c", "Handoff claimed at", "DateTime"),
    FieldDef("Handoff_Contacted_At__c", "Handoff first contact at", "DateTime"),
    FieldDef("Handoff_Claim_SLA_Met__c", "Handoff claim SLA met", "Checkbox"),
    FieldDef("Handoff_Lost_Reason__c", "Handoff lost reason", "Text", 255),
    FieldDef("Handoff_Disqualify_Reason__c", "Handoff not-a-fit reason", "Text", 255),
    FieldDef("Handoff_Feedback_Note__c", "Handoff feedback note", "LongTextArea", 32_768),
    FieldDef("Handoff_MQL_Quality__c", "Handoff MQL quality", "Text", 40),
    FieldDef("Handoff_Card_URL__c", "Handoff Slack card", "Text", 255),
)
RECORD_OBJECTS = ("Lead", "Contact")
# On Activity (so on Task): the event's id, by which a Task is upserted, so a retried call never makes two.
TASK_FIELD = FieldDef("Handoff_Event_Id__c", "Handoff event id", "Text", 64)
PERMISSION_SET = "Handoff_Integration"


def _utc(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z") if value is not None else None


def cut(value: str | None, length: int) -> str | None:
    """A text cut to fit its field (Salesforce would refuse it whole): a long note loses its end, not itself."""
    if value is None or value == "":
        return None
    return value if len(value) <= length else value[:length - 1] + "…"


def kind_of(record_id: str | None) -> str | None:
    """Lead or Contact, from the id's key prefix."""
    if record_id and record_id.startswith(LEAD_PREFIX):
        return "Lead"
    if record_id and record_id.startswith(CONTACT_PREFIX):
        return "Contact"
    return None


def record_fields(lead: Lead, status_map: dict[str, str], owner_id: str | None) -> dict:
    """The fields of the lead's record as the lead is now (a Lead's also get `Status` by the map). `owner_id`:
    the active Salesforce User of the Slack owner, None to leave OwnerId as it is."""
    status = status_of(lead)
    lengths = {f.name: f.length for f in FIELDS}
    out = {
        "Handoff_Status__c": status,
        "Handoff_Owner__c": lead.owner,
        "Handoff_Team__c": cut(lead.handed_to or lead.team, lengths["Handoff_Team__c"]),
        "Handoff_Claimed_At__c": _utc(lead.claimed_at),
        "Handoff_Contacted_At__c": _utc(lead.contacted_at),
        "Handoff_Claim_SLA_Met__c": bool(lead.claimed_at is not None and lead.claim_due is not None
                                         and lead.claimed_at <= lead.claim_due),
        "Handoff_Lost_Reason__c": cut(lead.lost_reason, lengths["Handoff_Lost_Reason__c"]),
        "Handoff_Disqualify_Reason__c": cut(lead.disqualify_reason, lengths["Handoff_Disqualify_Reason__c"]),
        "Handoff_Feedback_Note__c": cut(lead.outcome_note, lengths["Handoff_Feedback_Note__c"]),
        "Handoff_MQL_Quality__c": {"good": "sales_ready", "bad": "not_ready"}.get(lead.quality or ""),
        "Handoff_Card_URL__c": cut(lead.card_url, lengths["Handoff_Card_URL__c"]),
    }
    if status in status_map:
        out["Status"] = status_map[status]
    if owner_id:
        out["OwnerId"] = owner_id
    return out


def for_object(fields: dict, sobject: str) -> dict:
    """`record_fields` as a record of `sobject` takes them: a Contact has no Lead Status."""
    return fields if sobject == "Lead" else {k: v for k, v in fields.items() if k != "Status"}


def choose(leads: list[dict], contacts: list[dict]) -> tuple[str, str] | None:
    """The record an email's lead is written to, from the Leads and Contacts found with that email (query
    records): an unconverted Lead wins, the most recently modified first; then a converted Lead, through its
    Contact; then a Contact, the most recently modified. (record id, SObject) or None."""
    def recent(rows):
        return sorted(rows, key=lambda r: (r.get("LastModifiedDate") or "", r["Id"]), reverse=True)

    open_ = [r for r in leads if not r.get("IsConverted")]
    if open_:
        return recent(open_)[0]["Id"], "Lead"
    converted = [r for r in recent(leads) if r.get("ConvertedContactId")]
    if converted:
        return converted[0]["ConvertedContactId"], "Contact"
    if contacts:
        return recent(contacts)[0]["Id"], "Contact"
    return None


LEAD_COLUMNS = "Id, Email, IsConverted, ConvertedContactId, LastModifiedDate"
CONTACT_COLUMNS = "Id, Email, LastModifiedDate"


def email_queries(sobject: str, columns: str, emails: list[str], prefix_bytes: int) -> list[tuple[str, list[str]]]:
    """SOQL finding the records of `emails`, as few queries as fit: each one's URI (`prefix_bytes` for the
    scheme, host and path up to `?`, then `q=` and the encoded query) stays under URI_LIMIT and its text under
    SOQL_LIMIT, however long the emails. Every value is escaped as SOQL requires (an email may hold ' or \\).
    Returns (query, the emails it asks for). An email too long for any query is left out (none is: an email
    has at most 254 characters)."""
    head = f"SELECT {columns} FROM {sobject} WHERE Email IN "
    room = URI_LIMIT - prefix_bytes - HEADROOM
    out: list[tuple[str, list[str]]] = []
    chunk: list[str] = []
    used = len(urlencode({"q": head + "()"}))
    text = len(head) + 2
    for email in emails:
        literal = format_soql("{}", email)
        cost = len(urlencode({"q": literal + ","})) - 2  # the encoded literal and its comma
        if chunk and (used + cost > room or text + len(literal) + 1 > SOQL_LIMIT):
            out.append((format_soql(head + "{}", chunk), chunk))
            chunk, used, text = [], len(urlencode({"q": head + "()"})), len(head) + 2
        if used + cost > room:
            continue
        chunk.append(email)
        used += cost
        text += len(literal) + 1
    if chunk:
        out.append((format_soql(head + "{}", chunk), chunk))
    return out
