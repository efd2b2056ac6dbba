"""The second handoff: an SQL qualified in a team with `next` is handed to that team (docs/routing.md).

Inside sales qualifies an MQL by phone and marks it SQL with a note; field sales then has its own card, its
own SLA from `sql_at`, its own reminders and escalations, and its claim moves the owner. What the first team
did stays as it was: the lead's `team`, `claimed_at` and `claimed_by` do not change, and the qualifier is
kept (`qualified_by`), so each team's KPIs count their own stage (models/kpi.py).

Each stage is one card, ever: the hand-over is one conditional UPDATE (a lead is handed once), and its card
is queued under one dedupe key. `claim_handed` is the receiving team's claim, one conditional UPDATE like the
first: one owner under any concurrency.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from models import events, outcomes, sla
from models.clock import BusinessClock
from models.leads import (
    Actor,
    AlreadyClaimed,
    AlreadyYours,
    LeadClosed,
    LeadErased,
    LeadError,
    LeadNotFound,
    audit,
    queue_card_update,
)
from models.outbox import Kind, enqueue
from models.tables import Lead
from models.teams import Team, Teams

HANDED = "handed"  # the receiving team's claim button carries "LEAD:handed" (blocks/card.py `handover_card`)


class NotHandedOver(LeadError):
    key = "notice.not_handed"


class AlreadyHanded(LeadError):
    key = "notice.already_handed"


def hands_over(teams: Teams, lead: Lead) -> Team | None:
    """The team an SQL of this lead would be handed to: its team's `next`; None when it has none, or was
    handed over already."""
    if lead.team is None or lead.handed_to is not None:
        return None
    nxt = teams.get(lead.team).next
    return teams.by_id.get(nxt) if nxt else None


def qualify(session: Session, *, lead_id: int, user: str, note: str | None, now: datetime,
            managers: tuple[str, ...], teams: Teams, clock: BusinessClock) -> tuple[Lead, Team | None]:
    """Mark the lead SQL (as the one-click SQL does) and, in a team with `next`, hand it to that team: one
    transaction. Returns the lead and the team it was handed to (None: no next team)."""
    lead = outcomes.record(session, lead_id=lead_id, user=user, outcome=outcomes.SQL, now=now, managers=managers)
    to = hands_over(teams, lead)
    if to is None:
        return lead, None
    hand_over(session, lead=lead, to=to, actor=Actor(user), note=note, now=now, clock=clock)
    return lead, to


def hand_over(session: Session, *, lead: Lead, to: Team, actor: Actor, note: str | None, now: datetime,
              clock: BusinessClock) -> None:
    """Hand a locked lead just marked SQL to the team `to`: its claim deadline from `sql_at`, its card, its SLA.
    Whoever marked it SQL: a click (`qualify`) or the CRM (models/crm_status.py)."""
    handed = session.execute(
        update(Lead).where(Lead.id == lead.id, Lead.handed_to.is_(None))
        .values(handed_to=to.id, handed_note=note, handed_claim_due=clock.add_minutes(lead.sql_at, to.claim_minutes),
                updated_at=now)
        .execution_options(synchronize_session="fetch"))
    if handed.rowcount != 1:  # the lead is locked by the caller: only a stale state could get here
        raise AlreadyHanded()
    session.refresh(lead)
    if to.sla is not None:
        sla.open_timer(session, lead, sla.Ladder.HANDED, to.sla, now, fresh=True)
    if to.channel:
        enqueue(session, kind=Kind.HANDOVER_CARD, dedupe_key=f"handover:{lead.id}", now=now, channel=to.channel,
                lead_id=lead.id)
    audit(session, lead_id=lead.id, actor=actor.name, action="handed_over", now=now, from_team=lead.team,
          to_team=to.id, note=note, claim_due=lead.handed_claim_due.isoformat(), **actor.audit_extra())
    events.emit(session, lead_id=lead.id, type=events.Type.HANDED_OVER, now=now, actor=actor.event_actor, note=note,
                from_team=lead.team, to_team=to.id, **actor.event_extra())


def claim_handed(session: Session, *, lead_id: int, user: str, now: datetime) -> int:
    """The receiving team's claim of a handed SQL: first click wins, the owner moves to the claimant."""
    won = session.execute(
        update(Lead.__table__)
        .where(Lead.id == lead_id, Lead.handed_to.is_not(None), Lead.handed_claimed_at.is_(None),
               Lead.erased_at.is_(None), Lead.lost_at.is_(None), Lead.disqualified_at.is_(None), Lead.won_at.is_(None))
        .values(handed_claimed_at=now, handed_claimed_by=user, updated_at=now)
        .returning(Lead.handed_claim_due, Lead.handed_to)).first()
    if won is not None:
        sla.close_timers(session, lead_id, sla.Ladder.HANDED)
        audit(session, lead_id=lead_id, actor=user, action="handed_claimed", now=now, team=won.handed_to,
              within_sla=won.handed_claim_due is None or now <= won.handed_claim_due)
        queue_card_update(session, lead_id=lead_id, transition="handed_claimed", now=now)
        events.emit(session, lead_id=lead_id, type=events.Type.CLAIMED, now=now, actor=user, team=won.handed_to,
                    stage="handed")
        return lead_id
    lead = session.get(Lead, lead_id)
    if lead is None:
        raise LeadNotFound()
    if lead.erased_at is not None:
        raise LeadErased()
    if lead.handed_to is None:
        raise NotHandedOver()
    if lead.closed:
        raise LeadClosed()
    if lead.handed_claimed_by == user:
        raise AlreadyYours()
    raise AlreadyClaimed(user=lead.handed_claimed_by)

