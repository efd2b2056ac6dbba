"""What Handoff writes to a HubSpot contact, as pure functions of the lead (docs/hubspot.md).

The `handoff_*` properties (created by `bot.py hubspot-setup` from PROPERTIES), HubSpot's own lead status,
and the lifecycle stage, which only ever moves forward from the stage HubSpot holds.
"""
from __future__ import annotations

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
)

# HubSpot's lead status for each of our states (none for mql and won: left as they are).
LEAD_STATUS = {"claimed": "IN_PROGRESS", "contacted": "CONNECTED", "sql": "OPEN_DEAL", "lost": "BAD_TIMING",
               "disqualified": "UNQUALIFIED"}
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
        "handoff_owner": lead.claimed_by or "",
        "handoff_claimed_at": _utc(lead.claimed_at),
        "handoff_contacted_at": _utc(lead.contacted_at),
        "handoff_claim_sla_met": ("true" if lead.claim_due and lead.claimed_at <= lead.claim_due else "false")
        if lead.claimed_at is not None else "",
        "handoff_lost_reason": lead.lost_reason or "",
        "handoff_disqualify_reason": lead.disqualify_reason or "",
        "handoff_feedback_note": (lead.outcome_note or "")[:65000],
        "handoff_mql_quality": quality,
        "handoff_card_url": lead.card_url or "",
    }
    if status in LEAD_STATUS:
        out["hs_lead_status"] = LEAD_STATUS[status]
    stage = stage_wanted(lead)
    if stage is not None and moves_forward(stage, held_stage):
        out["lifecyclestage"] = stage
    return out
