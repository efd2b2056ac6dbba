"""What happened to an MQL: SQL, won, lost, not a fit; the quality rating; corrections.

Every outcome is a domain operation with its rules, in the caller's
transaction, with `now`:
- only the owner or a manager records it (not a fit may also come from an
  unclaimed card, where it counts as the response and makes the clicker owner);
- a won deal implies SQL and contact, an SQL implies contact: the implied
  stamps are written too (and the audit entry says so);
- lost and not a fit close the lead: its SLA timers stop, marketing gets the
  feedback through the outbox;
- the first outcome asks the owner "was this MQL sales-ready?";
- a mistaken outcome is undone by the owner or a manager; the audit keeps both.
Double clicks and Slack retries change nothing twice: a second attempt finds
the stamp already there and says so.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from models import events, sla
from models.deferred import flush_now
from models.leads import (
    Actor,
    LeadClosed,
    LeadErased,
    LeadError,
    LeadNotFound,
    NotAllowed,
    NotHandedOff,
    audit,
    queue_card_update,
)
from models.outbox import Kind, enqueue
from models.ownership import NotClaimed, reminder
from models.tables import AuditEvent, Lead

SQL, WON, LOST, DISQUALIFIED = "sql", "won", "lost", "disqualified"
CLOSING = (WON, LOST, DISQUALIFIED)


def reasons_for(outcome: str, settings) -> tuple[str, ...]:
    """The reason codes offered for a lost or not-a-fit outcome (LOST_REASONS, DISQUALIFY_REASONS)."""
    return settings.LOST_REASONS if outcome == LOST else settings.DISQUALIFY_REASONS


class AlreadyRecorded(LeadError):
    key = "notice.already_recorded"


class AlreadyClosedBy(LeadError):
    key = "notice.closed_by"


class BadReason(LeadError):
    key = "notice.bad_reason"


class NothingToUndo(LeadError):
    key = "notice.nothing_to_undo"


class HandedOn(LeadError):
    key = "notice.handed_on"


def outcome_of(lead: Lead) -> str | None:
    """The lead's latest outcome, if any."""
    for name, at in ((DISQUALIFIED, lead.disqualified_at), (LOST, lead.lost_at), (WON, lead.won_at),
                     (SQL, lead.sql_at)):
        if at is not None:
            return name
    return None


def _closer(session: Session, lead: Lead) -> str | None:
    """Who closed the lead (for "already closed by @x")."""
    return session.scalar(select(AuditEvent.actor).where(
        AuditEvent.lead_id == lead.id, AuditEvent.action.in_(CLOSING)).order_by(AuditEvent.id.desc()).limit(1))


def check_can_record(session: Session, lead: Lead | None, *, user: str, outcome: str,
                     managers: tuple[str, ...]) -> Lead:
    """Raise the reason this user cannot record `outcome` on the lead now; else return the lead."""
    if lead is None:
        raise LeadNotFound()
    if lead.erased_at is not None:
        raise LeadErased()
    if lead.mql_at is None:
        raise NotHandedOff()
    if lead.closed:
        closer = _closer(session, lead)
        if closer:
            raise AlreadyClosedBy(user=closer, outcome=outcome_of(lead))
        raise LeadClosed()
    if lead.claimed_by is None:
        if outcome != DISQUALIFIED:
            raise NotClaimed()
    elif lead.owner != user and user not in managers:  # after a handover, the receiving team's claimant
        raise NotAllowed(user=lead.owner)
    if outcome == SQL and lead.sql_at is not None:
        raise AlreadyRecorded(outcome=SQL)
    return lead


def record(session: Session, *, lead_id: int, user: str, outcome: str, now: datetime,
           managers: tuple[str, ...], reason: str | None = None,
           note: str | None = None, reasons: tuple[str, ...] = (), marketing_channel: str | None = None) -> Lead:
    lead = session.scalars(select(Lead).where(Lead.id == lead_id).with_for_update()).first()
    check_can_record(session, lead, user=user, outcome=outcome, managers=managers)
    if outcome in (LOST, DISQUALIFIED) and (not reason or reason not in reasons):
        raise BadReason()
    implied = []
    if lead.claimed_at is None:  # not a fit from an unclaimed card: that is the response
        lead.claimed_at, lead.claimed_by = now, user
        implied.append("claimed")
    apply_outcome(session, lead=lead, actor=Actor(user), outcome=outcome, at=now, now=now, reason=reason, note=note,
                  marketing_channel=marketing_channel, implied=implied)
    return lead


def apply_outcome(session: Session, *, lead: Lead, actor: Actor, outcome: str, at: datetime, now: datetime,
                  reason: str | None = None, note: str | None = None, marketing_channel: str | None = None,
                  implied: list[str] | None = None, imply_contact: bool = True) -> None:
    """Record `outcome` (at `at`) on a locked lead that may take it, whoever records it: a click in Slack or a
    status from the CRM (models/crm_status.py, which does not imply the contact: `imply_contact`)."""
    implied = list(implied or ())
    if outcome in (SQL, WON):
        if lead.contacted_at is None and imply_contact:
            lead.contacted_at = at
            implied.append("contacted")
        if lead.sql_at is None:
            lead.sql_at, lead.qualified_by = at, actor.user
            if outcome == WON:
                implied.append(SQL)
    if outcome == WON:
        lead.won_at = at
    elif outcome == LOST:
        lead.lost_at, lead.lost_reason, lead.outcome_note = at, reason, note
    elif outcome == DISQUALIFIED:
        lead.disqualified_at, lead.disqualify_reason, lead.outcome_note = at, reason, note
    lead.updated_at = now
    flush_now(session)

    sla.close_timers(session, lead.id)  # an SQL is what the outcome reminder waits for, too
    audit(session, lead_id=lead.id, actor=actor.name, action=outcome, now=now, reason=reason, note=note,
          implied=implied, **actor.audit_extra())
    queue_card_update(session, lead_id=lead.id, transition=f"{outcome}:{now.timestamp():.0f}", now=now)
    if outcome in (LOST, DISQUALIFIED) and marketing_channel:
        enqueue(session, kind=Kind.FEEDBACK, dedupe_key=f"feedback:{lead.id}:{outcome}:{now.timestamp():.0f}",
                now=now, channel=marketing_channel, lead_id=lead.id,
                payload={"outcome": outcome, "note": note, "user": actor.user, "crm": actor.crm})
    if lead.quality is None and lead.claimed_by:
        reminder(session, lead=lead, action="quality", step="1", now=now, channel=lead.claimed_by, user=lead.claimed_by)
    extra = actor.event_extra()
    for step in implied:  # what the outcome implies happened first, each its own event, in lifecycle order
        events.emit(session, lead_id=lead.id, type=f"lead.{step}", now=now, actor=actor.event_actor, **extra)
    events.emit(session, lead_id=lead.id, type=events.OUTCOME_TYPES[outcome], now=now, actor=actor.event_actor,
                reason=reason, note=note, **extra)


def undo(session: Session, *, lead_id: int, user: str, now: datetime, managers: tuple[str, ...],
         policy: sla.SlaPolicy | None = None, marketing_channel: str | None = None) -> tuple[Lead, str]:
    """Take back the latest outcome (a mis-click); the lead is open again where it was before it."""
    lead = session.scalars(select(Lead).where(Lead.id == lead_id).with_for_update()).first()
    if lead is None:
        raise LeadNotFound()
    if lead.erased_at is not None:
        raise LeadErased()
    if lead.owner != user and user not in managers:
        raise NotAllowed(user=lead.owner or "-")
    was = outcome_of(lead)
    if was is None:
        raise NothingToUndo()
    if was == SQL and lead.handed_to is not None:  # another team has it now: its card, its SLA, maybe its owner
        raise HandedOn(team=lead.handed_to)
    before = {"outcome": was, "lost_reason": lead.lost_reason, "disqualify_reason": lead.disqualify_reason,
              "at": {LOST: lead.lost_at, WON: lead.won_at, SQL: lead.sql_at,
                     DISQUALIFIED: lead.disqualified_at}[was].isoformat()}
    if was == DISQUALIFIED:
        lead.disqualified_at = lead.disqualify_reason = lead.outcome_note = None
    elif was == LOST:
        lead.lost_at = lead.lost_reason = lead.outcome_note = None
    elif was == WON:
        lead.won_at = None
    else:
        lead.sql_at = lead.qualified_by = None
    if lead.crm_marked:  # the stage taken back is no longer the CRM's (docs/crm-status.md)
        lead.crm_marked = ",".join(s for s in lead.crm_marked.split(",") if s != was) or None
    lead.updated_at = now
    session.flush()
    if policy is not None and not lead.closed and lead.sql_at is None:
        if lead.contacted_at is None and lead.claimed_at is not None:
            sla.open_timer(session, lead, sla.Ladder.CONTACT, policy, now)
        elif lead.contacted_at is not None:
            sla.open_timer(session, lead, sla.Ladder.OUTCOME, policy, now)
    audit(session, lead_id=lead.id, actor=user, action="outcome_undone", now=now, **before)
    queue_card_update(session, lead_id=lead.id, transition=f"undo:{now.timestamp():.0f}", now=now)
    events.emit(session, lead_id=lead.id, type=events.Type.REOPENED, now=now, actor=user, undone=was)
    if was in (LOST, DISQUALIFIED) and marketing_channel:
        enqueue(session, kind=Kind.FEEDBACK, dedupe_key=f"feedback:{lead.id}:undo:{now.timestamp():.0f}",
                now=now, channel=marketing_channel, lead_id=lead.id,
                payload={"outcome": "undone", "was": was, "user": user})
    return lead, was


def rate_quality(session: Session, *, lead_id: int, user: str, good: bool, now: datetime,
                 managers: tuple[str, ...]) -> Lead:
    lead = session.scalars(select(Lead).where(Lead.id == lead_id).with_for_update()).first()
    if lead is None:
        raise LeadNotFound()
    if lead.erased_at is not None:
        raise LeadErased()
    if lead.claimed_by != user and user not in managers:
        raise NotAllowed(user=lead.claimed_by or "-")
    value = "good" if good else "bad"
    if lead.quality != value:
        audit(session, lead_id=lead.id, actor=user, action="quality", now=now, before=lead.quality, after=value)
        lead.quality, lead.quality_by, lead.quality_at = value, user, now
        events.emit(session, lead_id=lead.id, type=events.Type.QUALITY_RATED, now=now, actor=user,
                    reason="sales_ready" if good else "not_ready")
    return lead


def quality_by_source(session: Session, since: datetime) -> dict[str, dict[str, int]]:
    """{source: {good, bad, unrated}} over the MQLs handed off since `since`."""
    rows = session.execute(
        select(Lead.source,
               func.sum(case((Lead.quality == "good", 1), else_=0)),
               func.sum(case((Lead.quality == "bad", 1), else_=0)),
               func.count())
        .where(Lead.mql_at >= since).group_by(Lead.source).order_by(Lead.source))
    return {src: {"good": int(g or 0), "bad": int(b or 0), "rated": int(g or 0) + int(b or 0), "mqls": int(n)}
            for src, g, b, n in rows}
