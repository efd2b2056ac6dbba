"""Status from the CRM: a rep's transition recorded in the CRM counts in Handoff (docs/crm-status.md).

`POST /hooks/status` (handlers/status_hook.py) parses each update here and applies the batch in the caller's
transaction with `apply`. An update makes the same transition a button makes, through the same domain code
(models/leads.py `claimed`, models/ownership.py `contacted`, models/outcomes.py `apply_outcome`,
models/handover.py `hand_over`), with three differences the contract sets:
- its instant is the CRM's `at`, kept between the lead's MQL and now;
- the actor is the CRM: the audit says `crm` (and the `by` that was sent), events carry no actor and
  `source: crm`, the card says the stage was marked in the CRM;
- it only moves a lead forward (mql < claimed < contacted < sql < won; lost and not a fit close it): anything
  else, a repeat included, changes nothing and is answered "not newer".
Any status on an unclaimed lead implies its claim, at the same instant, by the Slack user `by`
named (or by nobody), which is emitted first. The CRM's SQL does not stamp the first contact (the button's
does): the contact clock stops all the same.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import crm_sync, hubspot
from models.deferred import deferring
from models.events import status_of
from models.handover import hand_over, hands_over
from models.leads import (
    BAD_CHARS,
    EMAIL_RE,
    SLACK_USER_RE,
    Actor,
    FieldError,
    Policy,
    claim_from_crm,
    parse_instant,
)
from models.outcomes import CLOSING, DISQUALIFIED, LOST, SQL, WON, apply_outcome
from models.ownership import contacted
from models.tables import CrmSync, Destination, Lead

CONTACTED = "contacted"
STATUSES = (CONTACTED, SQL, WON, LOST, DISQUALIFIED)
# How far along the lifecycle each state is; lost and not a fit close a lead at any stage.
RANK = {"new": 0, "mql": 1, "claimed": 2, CONTACTED: 3, SQL: 4, WON: 5}
MAX_REASON, MAX_NOTE, MAX_BY = 500, 1000, 320  # a note as long as the Lost… and Not a fit… forms take
OTHER = "other"

# Why an update changed nothing (the `why` of its result; docs/crm-status.md).
UNKNOWN, NOT_NEWER, NO_STATUS, ECHO, NOT_HANDED_OFF = "unknown lead", "not newer", "no status", "echo", "not an MQL"


@dataclass(frozen=True)
class StatusUpdate:
    """One update as the CRM sent it. `status` is None for a HubSpot body with no value Handoff maps."""

    status: str | None
    external_id: str | None = None
    email: str | None = None
    at: datetime | None = None
    reason: str | None = None
    note: str | None = None
    by: str | None = None
    record_id: str | None = None  # HubSpot's contact id, from a workflow body
    echo: dict[str, str] = field(default_factory=dict)  # a HubSpot body's mapped properties, as sent


@dataclass(frozen=True)
class Result:
    id: int | None
    applied: bool
    why: str | None = None

    def answer(self) -> dict:
        return {"id": self.id, "applied": self.applied, "why": self.why}


@dataclass(frozen=True)
class Context:
    """What applying needs besides the updates: the lead rules, the reason codes, marketing's channel, the
    HubSpot destination (for the no-echo rule) and the Slack users `by` emails were found to be."""

    policy: Policy
    lost_reasons: tuple[str, ...]
    disqualify_reasons: tuple[str, ...]
    marketing_channel: str | None = None
    users_by_email: dict[str, str | None] = field(default_factory=dict)


# Parsing -------------------------------------------------------------------------------------------------
def _text(obj: dict, name: str, limit: int, prefix: str, errors: list[FieldError]) -> str | None:
    value = obj.get(name)
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool) and name == "external_id":
        value = str(value)  # CRMs often send numeric ids
    if not isinstance(value, str):
        errors.append(FieldError(prefix + name, "field.string"))
        return None
    if BAD_CHARS.search(value):
        errors.append(FieldError(prefix + name, "field.control_chars"))
        return None
    value = value.strip()
    if len(value) > limit:
        errors.append(FieldError(prefix + name, "field.too_long", {"max": limit}))
        return None
    return value or None


def parse_update(obj, tz: ZoneInfo, prefix: str = "") -> tuple[StatusUpdate | None, list[FieldError]]:
    """Validate one generic update (docs/crm-status.md); errors name the field."""
    if not isinstance(obj, dict):
        return None, [FieldError(prefix.rstrip(".") or "body", "api.status_shape")]
    errors: list[FieldError] = []
    external_id = _text(obj, "external_id", 200, prefix, errors)
    email = _text(obj, "email", 320, prefix, errors)
    if email is not None and not EMAIL_RE.match(email):
        errors.append(FieldError(prefix + "email", "field.email"))
    if external_id is None and email is None and not any(e.field in (prefix + "external_id", prefix + "email")
                                                         for e in errors):
        errors.append(FieldError(prefix + "external_id", "field.status_who"))
    status = obj.get("status")
    if status is None:
        errors.append(FieldError(prefix + "status", "field.required"))
    elif not isinstance(status, str) or status.strip().lower() not in STATUSES:
        errors.append(FieldError(prefix + "status", "field.status", {"statuses": ", ".join(STATUSES)}))
    at = None
    if obj.get("at") is not None:
        at = parse_instant(obj["at"], tz)
        if at is None:
            errors.append(FieldError(prefix + "at", "field.datetime"))
    reason = _text(obj, "reason", MAX_REASON, prefix, errors)
    note = _text(obj, "note", MAX_NOTE, prefix, errors)
    by = _text(obj, "by", MAX_BY, prefix, errors)
    if by is not None and not (SLACK_USER_RE.fullmatch(by) or EMAIL_RE.match(by)):
        errors.append(FieldError(prefix + "by", "field.status_by"))
    if errors:
        return None, errors
    return StatusUpdate(status=status.strip().lower(), external_id=external_id, email=email, at=at, reason=reason,
                        note=note, by=by), []


def from_hubspot(data: dict) -> tuple[StatusUpdate | None, list[FieldError]]:
    """The update a HubSpot workflow body carries (docs/hubspot.md, docs/crm-status.md)."""
    found = hubspot.status_from_workflow(data)
    prefix = hubspot.workflow_properties(data)[2]  # "properties." in the every-property shape
    if found["record_id"] is None and found["email"] is None:
        return None, [FieldError(prefix + "hs_object_id", "field.status_who_hubspot")]
    if found["email"] is not None and not EMAIL_RE.match(found["email"]):
        return None, [FieldError(prefix + "email", "field.email")]
    return StatusUpdate(**found), []


def by_emails(updates: list[StatusUpdate]) -> set[str]:
    """The `by` values that are emails: the handler looks each up in Slack before applying."""
    return {u.by.lower() for u in updates if u.by and not SLACK_USER_RE.fullmatch(u.by)}


# Applying ------------------------------------------------------------------------------------------------
def _find(session: Session, updates: list[StatusUpdate], hubspot_destination: int | None) -> dict[tuple, Lead]:
    """The leads the updates name, locked, keyed by ("id", external_id), ("email", email) or ("record", id)."""
    ids = {u.external_id for u in updates if u.external_id}
    emails = {u.email.lower() for u in updates if u.email}
    records = {u.record_id for u in updates if u.record_id}
    lead_ids: dict[tuple, int] = {}
    if ids:
        lead_ids.update((("id", e), i) for e, i in session.execute(
            select(Lead.external_id, Lead.id).where(Lead.external_id.in_(sorted(ids)))))
    if emails:
        lead_ids.update((("email", e), i) for e, i in session.execute(
            select(Lead.email_norm, Lead.id).where(Lead.email_norm.in_(sorted(emails)))))
    if records and hubspot_destination is not None:
        lead_ids.update((("record", r), i) for r, i in session.execute(
            select(CrmSync.record_id, CrmSync.lead_id).where(CrmSync.destination_id == hubspot_destination,
                                                            CrmSync.record_id.in_(sorted(records)))))
    if not lead_ids:
        return {}
    # One lock order (by id) for every concurrent writer: a click on one of these leads waits, never deadlocks.
    leads = {lead.id: lead for lead in session.scalars(
        select(Lead).where(Lead.id.in_(sorted(set(lead_ids.values())))).order_by(Lead.id).with_for_update()
        .execution_options(populate_existing=True))}
    return {key: leads[i] for key, i in lead_ids.items() if i in leads}


def lead_of(update: StatusUpdate, found: dict[tuple, Lead]) -> Lead | None:
    """The lead an update names: HubSpot's contact id first, then the external id, then the email."""
    for key in (("record", update.record_id), ("id", update.external_id),
                ("email", update.email.lower() if update.email else None)):
        if key[1] is not None and key in found:
            return found[key]
    return None


def is_echo(session: Session, lead: Lead, update: StatusUpdate, destination: int | None) -> bool:
    """A HubSpot body whose every mapped property equals what Handoff last wrote to that contact (docs/hubspot.md
    write-back): HubSpot telling Handoff what Handoff told it."""
    if not update.echo or destination is None:
        return False
    sent = session.scalar(select(CrmSync.sent).where(CrmSync.destination_id == destination,
                                                     CrmSync.lead_id == lead.id)) or {}
    return all(str(sent.get(name) or "").strip().casefold() == value.strip().casefold()
               for name, value in update.echo.items())


def newer(lead: Lead, status: str) -> bool:
    """Whether `status` moves the lead forward: a closed lead never moves, an open one only to a later stage."""
    current = status_of(lead)
    if current in CLOSING or (current == WON):
        return False
    if status in (LOST, DISQUALIFIED):
        return True
    return RANK[status] > RANK[current]


def instant(lead: Lead, at: datetime | None, now: datetime) -> datetime:
    """The update's instant: `at` (now when absent), no later than now and no earlier than the lead's MQL."""
    return min(max(at or now, lead.mql_at), now)


def reason_of(update: StatusUpdate, codes: tuple[str, ...]) -> tuple[str | None, str | None]:
    """(reason code, note): a reason that is not one of the codes counts as `other`, its text kept in the note."""
    reason, note = update.reason, update.note
    if reason is None:
        return (OTHER if OTHER in codes else None), note
    if reason.lower() in codes:
        return reason.lower(), note
    return (OTHER if OTHER in codes else None), "\n".join(x for x in (reason, note) if x)[:MAX_NOTE]


def apply(session: Session, updates: list[StatusUpdate], now: datetime, ctx: Context) -> list[Result]:
    """Apply each update in order, in the caller's transaction; one result per update."""
    hubspot = session.scalar(select(Destination.id).where(Destination.kind == crm_sync.HUBSPOT,
                                                          Destination.active.is_(True)))
    found = _find(session, updates, hubspot)
    results = []
    with deferring(session):  # each transition's outbox rows, events and timers, written together at the end
        for update in updates:
            results.append(_result(session, update, found, hubspot, now, ctx))
    return results


def _result(session: Session, update: StatusUpdate, found: dict[tuple, Lead], hubspot: int | None, now: datetime,
            ctx: Context) -> Result:
    lead = lead_of(update, found)
    if lead is None:
        return Result(None, False, UNKNOWN)
    if update.status is None:
        return Result(lead.id, False, NO_STATUS)
    if lead.mql_at is None:
        return Result(lead.id, False, NOT_HANDED_OFF)
    if is_echo(session, lead, update, hubspot):
        return Result(lead.id, False, ECHO)
    if not newer(lead, update.status):
        return Result(lead.id, False, NOT_NEWER)
    _apply_one(session, lead, update, now, ctx)
    return Result(lead.id, True)


def _apply_one(session: Session, lead: Lead, update: StatusUpdate, now: datetime, ctx: Context) -> None:
    by = update.by
    user = by if by and SLACK_USER_RE.fullmatch(by) else ctx.users_by_email.get(by.lower()) if by else None
    actor = Actor(user, crm=True, by=by)
    at = instant(lead, update.at, now)
    sla_policy = ctx.policy.sla
    status = update.status
    marked = list(filter(None, (lead.crm_marked or "").split(",")))
    if lead.claimed_at is None:
        claim_from_crm(session, lead=lead, actor=actor, at=at, now=now, sla_policy=sla_policy)
        marked.append("claimed")
    if status == CONTACTED:
        contacted(session, lead=lead, actor=actor, at=at, now=now, policy=sla_policy)
    else:
        reason, note = None, update.note
        if status in (LOST, DISQUALIFIED):
            reason, note = reason_of(update, ctx.lost_reasons if status == LOST else ctx.disqualify_reasons)
        apply_outcome(session, lead=lead, actor=actor, outcome=status, at=at, now=now, reason=reason, note=note,
                      marketing_channel=ctx.marketing_channel, imply_contact=False)
        if status == WON and SQL not in marked and lead.sql_at == at:
            marked.append(SQL)
        if status == SQL and ctx.policy.teams is not None:
            to = hands_over(ctx.policy.teams, lead)
            if to is not None:
                hand_over(session, lead=lead, to=to, actor=actor, note=update.note, now=now,
                          clock=ctx.policy.clock)
    marked.append(status)
    lead.crm_marked = ",".join(dict.fromkeys(marked))
