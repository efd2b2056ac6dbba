"""What Handoff writes to a HubSpot contact, as pure functions of the lead (docs/hubspot.md).

The `handoff_*` properties (created by `bot.py hubspot-setup` from PROPERTIES), HubSpot's own lead status,
and the lifecycle stage, which only ever moves forward from the stage HubSpot holds.
"""
from __future__ import annotations

import math
from datetime import UTC, datetime

from models.events import status_of
from models.tables import Lead

GROUP = {"name": "handoff", "label": "Handoff", "displayOrder": -1}
STATUSES = ("mql", "claimed", "contacted", "sql", "won", "lost", "disqualified")


def _enum(name: str, label: str, values: tuple[str, ...], field_type: str = "select") -> dict:
    return {"name": name, "label": label, "type": "enumeration", "fieldType": field_type, "groupName": "handoff",
            "options": [{"label": v, "value": v, "displayOrder": i} for i, v in enumerate(values)]}


def _text(name: str, label: str, field_type: str = "text") -> dict:
    return {"name": name, "label": label, "type": "string", "fieldType": field_type, "groupName": "handoff"}


def _datetime(name: str, label: str) -> dict:
    return {"name": name, "label": label, "type": "datetime", "fieldType": "date", "groupName": "handoff"}


PROPERTIES = (
    _enum("handoff_status", "Handoff status", STATUSES),
    _text("handoff_owner", "Handoff owner (Slack user id)"),
    _datetime("handoff_claimed_at", "Handoff claimed at"),
    _datetime("handoff_contacted_at", "Handoff first contact at"),
    {"name": "handoff_claim_sla_met", "label": "Handoff claim SLA met", "type": "bool",
     "fieldType": "booleancheckbox", "groupName": "handoff",
     "options": [{"label": "Yes", "value": "true", "displayOrder": 0},
                 {"label": "No", "value": "false", "displayOrder": 1}]},
    _text("handoff_lost_reason", "Handoff lost reason"),
    _text("handoff_disqualify_reason", "Handoff not-a-fit reason"),
    _text("handoff_feedback_note", "Handoff feedback note", "textarea"),
    _enum("handoff_mql_quality", "Handoff MQL quality", ("sales_ready", "not_ready")),
    _text("handoff_card_url", "Handoff Slack card"),
    _text("handoff_team", "Handoff team"),
)

# HubSpot's lead status for each of our states. A won deal keeps OPEN_DEAL, the last lead status it passed
# (HubSpot has none for a won deal), so a coalesced write that skips the sql step still sets it. mql: left as is.
LEAD_STATUS = {"claimed": "IN_PROGRESS", "contacted": "CONNECTED", "sql": "OPEN_DEAL", "won": "OPEN_DEAL",
               "lost": "BAD_TIMING", "disqualified": "UNQUALIFIED"}
# The lifecycle stage each state reaches, and HubSpot's order of stages.
STAGE = {"sql": "salesqualifiedlead", "won": "customer"}
STAGE_ORDER = ("subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity", "customer",
               "evangelist", "other")


def _utc(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value is not None else ""


def stage_wanted(lead: Lead) -> str | None:
    """The lifecycle stage this lead's state reaches, if any."""
    status = status_of(lead)
    if status in STAGE:
        return STAGE[status]
    if status in ("lost", "disqualified") and lead.won_at is not None:
        return STAGE["won"]
    return None


def moves_forward(stage: str, held: str | None) -> bool:
    """True when `stage` is later than the stage HubSpot holds (an unknown or empty stage is earliest)."""
    rank = {s: i for i, s in enumerate(STAGE_ORDER)}
    return rank.get(stage, -1) > rank.get(held or "", -1)


def properties(lead: Lead, held_stage: str | None) -> dict[str, str]:
    """The contact's properties for the lead as it is now; `held_stage` is HubSpot's lifecycle stage."""
    status = status_of(lead)
    quality = {"good": "sales_ready", "bad": "not_ready"}.get(lead.quality or "", "")
    out = {
        "handoff_status": status if status in STATUSES else "",
        "handoff_owner": lead.owner or "",
        "handoff_claimed_at": _utc(lead.claimed_at),
        "handoff_contacted_at": _utc(lead.contacted_at),
        "handoff_claim_sla_met": ("true" if lead.claim_due and lead.claimed_at <= lead.claim_due else "false")
        if lead.claimed_at is not None else "",
        "handoff_lost_reason": lead.lost_reason or "",
        "handoff_disqualify_reason": lead.disqualify_reason or "",
        "handoff_feedback_note": (lead.outcome_note or "")[:65000],
        "handoff_mql_quality": quality,
        "handoff_card_url": lead.card_url or "",
        "handoff_team": lead.handed_to or lead.team or "",  # the team it belongs to now (docs/routing.md)
    }
    if status in LEAD_STATUS:
        out["hs_lead_status"] = LEAD_STATUS[status]
    stage = stage_wanted(lead)
    if stage is not None and moves_forward(stage, held_stage):
        out["lifecyclestage"] = stage
    return out


# HubSpot in: the body of a workflow's "Send a webhook" action, as a lead ---------------------------------
# Which lead field each HubSpot property fills (and so which property an error about that field names).
WORKFLOW_FIELDS = {"external_id": "hs_object_id", "email": "email", "name": "firstname", "company": "company",
                   "title": "jobtitle", "score": "hubspotscore", "source": "hs_analytics_source",
                   "created_at": "createdate"}


HUBSPOT_ONLY = {"hs_object_id", "firstname", "lastname", "jobtitle", "hs_analytics_source", "createdate"}


def is_workflow_body(data, score_property: str = "hubspotscore") -> bool:
    """A HubSpot workflow webhook: every contact property (`vid` and `properties` of {"value": …}), or the
    chosen properties, flat: with `hs_object_id`, or, without Handoff's own `score`, any of HubSpot's names."""
    if not isinstance(data, dict):
        return False
    if "vid" in data and isinstance(data.get("properties"), dict):
        return True
    return "hs_object_id" in data or ("score" not in data and bool(data.keys() & (HUBSPOT_ONLY | {score_property})))


def field_name(lead_field: str, score_property: str = "hubspotscore") -> str:
    """The HubSpot property a lead field came from, for an error about it."""
    return score_property if lead_field == "score" else WORKFLOW_FIELDS.get(lead_field, lead_field)


def workflow_properties(data: dict) -> tuple[dict, object, str]:
    """A workflow body's properties as plain values, the contact's record id, and the prefix errors get."""
    if "vid" in data and isinstance(data.get("properties"), dict):
        props = {k: (v.get("value") if isinstance(v, dict) else v) for k, v in data["properties"].items()}
        return props, props.get("hs_object_id") or data.get("vid"), "properties."
    return data, data.get("hs_object_id"), ""


# Status in (docs/crm-status.md): HubSpot's lead status and lifecycle stage, as Handoff's statuses.
STATUS_FROM_LEAD_STATUS = {"CONNECTED": "contacted", "OPEN_DEAL": "sql", "UNQUALIFIED": "disqualified",
                           "BAD_TIMING": "lost"}
STATUS_FROM_STAGE = {"salesqualifiedlead": "sql", "opportunity": "sql", "customer": "won"}
REASON_FROM_LEAD_STATUS = {"BAD_TIMING": "timing"}
STATUS_PROPERTIES = ("hs_lead_status", "lifecyclestage")
LATER = {"contacted": 1, "sql": 2, "won": 3, "lost": 4, "disqualified": 4}  # closing a lead is its last stage


def status_from_workflow(data: dict) -> dict:
    """The status update a workflow body carries: who (record id, email), the mapped status (None when no
    property maps; the later stage when both do), its reason, and the mapped properties as sent (for the
    no-echo rule)."""
    props, record_id, _ = workflow_properties(data)
    found, echo, reason = [], {}, None
    for name in STATUS_PROPERTIES:
        value = props.get(name)
        if not isinstance(value, str) or not value.strip():
            continue
        key = value.strip()
        status = STATUS_FROM_LEAD_STATUS.get(key.upper()) if name == "hs_lead_status" else \
            STATUS_FROM_STAGE.get(key.lower())
        if status is not None:
            found.append((LATER[status], status, REASON_FROM_LEAD_STATUS.get(key.upper())
                          if name == "hs_lead_status" else None))
            echo[name] = value
    if found:
        _, status, reason = max(found, key=lambda f: f[0])
    else:
        status = None
    record = str(record_id) if isinstance(record_id, int | str) and not isinstance(record_id, bool) and \
        str(record_id).strip() else None
    email = props.get("email") if isinstance(props.get("email"), str) and props.get("email").strip() else None
    return {"status": status, "record_id": record, "external_id": record, "email": email and email.strip(),
            "reason": reason, "echo": echo}


def lead_from_workflow(data: dict, score_property: str = "hubspotscore") -> tuple[dict, str]:
    """The lead object a workflow body describes, in the webhook's own terms, and the prefix its errors get.

    HubSpot sends every value as a string: the score (`score_property`, HUBSPOT_SCORE_PROPERTY) is read as a
    number, rounded and held within 0–100, as HubSpot's scoring tools may go beyond (an unreadable one is left
    as it is, for the lead's own validation to refuse, naming the property); `createdate` may be epoch
    milliseconds or ISO 8601; the source is lower-cased."""
    props, record_id, prefix = workflow_properties(data)
    name = " ".join(p.strip() for p in (props.get("firstname"), props.get("lastname"))
                    if isinstance(p, str) and p.strip()) or None
    source = props.get("hs_analytics_source")
    lead = {"external_id": str(record_id) if isinstance(record_id, (int, str)) and str(record_id) else None,
            "email": props.get("email"), "name": name, "company": props.get("company") or None,
            "title": props.get("jobtitle") or None, "score": _score(props.get(score_property)),
            "source": source.strip().lower() or None if isinstance(source, str) else source,
            "created_at": _instant(props.get("createdate"))}
    return {k: v for k, v in lead.items() if v is not None}, prefix


def _score(value):
    """A score as HubSpot sends it (a string, perhaps "87.5" or "140"), as a whole number from 0 to 100."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip():
        try:
            value = float(value)
        except ValueError:
            return value
    if isinstance(value, (int, float)) and math.isfinite(value):
        return round(min(max(value, 0), 100))
    return value


def _instant(value):
    """Epoch milliseconds (a number or digits) as ISO 8601; anything else as it came."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.strip().isdigit()):
        try:
            return datetime.fromtimestamp(int(value) / 1000, UTC).isoformat()
        except (OverflowError, OSError, ValueError):
            return "out of range"
    return value
