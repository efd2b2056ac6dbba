"""Who works a lead: first contact, snoozing a nag, reassignment, round-robin offers, out of office.

Like models/leads.py, every operation works in the caller's transaction and
takes `now`; the SLA timers change in the same commit as the lead, so a
reminder about something already done is never queued.
"""
from __future__ import annotations

import json
from datetime import date, datetime

from sqlalchemy import String, bindparam, delete, func, literal_column, select, true, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from models import events, sla
from models.clock import BusinessClock
from models.deferred import flush_now
from models.leads import (
    Actor,
    AlreadyYours,
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
from models.tables import AssignmentState, Lead, OutOfOffice, SlaTimer
from models.teams import AccountOwner, Team


class NotClaimed(LeadError):
    key = "notice.not_claimed"


class AlreadyContacted(LeadError):
    key = "notice.already_contacted"


class NothingToSnooze(LeadError):
    key = "notice.nothing_to_snooze"


class SnoozeLimit(LeadError):
    key = "notice.snooze_limit"


class ManagersOnly(LeadError):
    key = "notice.managers_only"


class NotAUser(LeadError):
    key = "notice.not_a_user"


def _locked(session: Session, lead_id: int) -> Lead:
    lead = session.scalars(select(Lead).where(Lead.id == lead_id).with_for_update()).first()
    if lead is None:
        raise LeadNotFound()
    if lead.erased_at is not None:
        raise LeadErased()
    if lead.mql_at is None:
        raise NotHandedOff()
    return lead


def _owner_or_manager(lead: Lead, user: str, managers: tuple[str, ...]) -> None:
    if lead.claimed_by is None:
        raise NotClaimed()
    if lead.owner != user and user not in managers:
        raise NotAllowed(user=lead.owner)


def reminder(session: Session, *, lead: Lead, action: str, step: str, now: datetime, channel: str,
             user: str | None = None, repeat: int = 0, **extra) -> bool:
    """Queue one SLA message. Its dedupe key makes it at most once per lead, step and person."""
    key = f"remind:{action.split('_')[0]}:{lead.id}:{step}"
    if action.endswith(("_escalate", "_due")) and user:
        key += f":{user}"
    if repeat:
        key += f":again{repeat}"
    return enqueue(session, kind=Kind.REMINDER, dedupe_key=key, now=now, channel=channel, lead_id=lead.id,
                   payload={"action": str(action), "step": step, "user": user, "repeat": bool(repeat), **extra})


# First contact --------------------------------------------------------------------
def log_contact(session: Session, *, lead_id: int, user: str, now: datetime, managers: tuple[str, ...],
                policy: sla.SlaPolicy | None) -> Lead:
    lead = _locked(session, lead_id)
    if lead.closed:
        raise LeadClosed()
    _owner_or_manager(lead, user, managers)
    if lead.contacted_at is not None:
        raise AlreadyContacted(at=lead.contacted_at)
    contacted(session, lead=lead, actor=Actor(user), at=now, now=now, policy=policy)
    return lead


def contacted(session: Session, *, lead: Lead, actor: Actor, at: datetime, now: datetime,
              policy: sla.SlaPolicy | None) -> None:
    """Stamp the first contact (at `at`) on a locked lead: the contact clock stops, the outcome clock starts."""
    lead.contacted_at, lead.updated_at = at, now
    sla.close_timers(session, lead.id, sla.Ladder.CONTACT)
    if policy is not None:
        flush_now(session)
        sla.open_timer(session, lead, sla.Ladder.OUTCOME, policy, now)
    audit(session, lead_id=lead.id, actor=actor.name, action="contacted", now=now, within_sla=at <= lead.contact_due,
          **actor.audit_extra())
    queue_card_update(session, lead_id=lead.id, transition="contacted", now=now)
    events.emit(session, lead_id=lead.id, type=events.Type.CONTACTED, now=now, actor=actor.event_actor,
                **actor.event_extra())


# Snooze ---------------------------------------------------------------------------
def snooze(session: Session, *, lead_id: int, user: str, choice: str, now: datetime, managers: tuple[str, ...],
           policy: sla.SlaPolicy) -> tuple[datetime, int]:
    """Postpone the next nag (`1h` of business time, or `tomorrow`'s opening). Returns (until, snoozes used)."""
    lead = _locked(session, lead_id)
    if lead.closed:
        raise LeadClosed()
    _owner_or_manager(lead, user, managers)
    timer = session.scalars(select(SlaTimer).where(
        SlaTimer.lead_id == lead_id, SlaTimer.kind.in_([sla.Ladder.CONTACT, sla.Ladder.OUTCOME]))
        .order_by(SlaTimer.kind).with_for_update()).first()
    if timer is None:
        raise NothingToSnooze()
    if timer.snoozes >= policy.snooze_limit:
        raise SnoozeLimit(limit=policy.snooze_limit)
    clock = policy.clock
    until = clock.next_day_opening(now) if choice == "tomorrow" else clock.add_minutes(now, 60)
    timer.snoozes += 1
    timer.snoozed_until = until
    timer.due_at = until
    audit(session, lead_id=lead_id, actor=user, action="snoozed", now=now, ladder=timer.kind, until=until.isoformat(),
          count=timer.snoozes)
    return until, timer.snoozes



# Reassignment ---------------------------------------------------------------------
def reassign(session: Session, *, lead_id: int, manager: str, new_owner: str, now: datetime,
             managers: tuple[str, ...], policy: sla.SlaPolicy | None) -> Lead:
    """A manager gives the lead to another rep. An unclaimed lead counts as claimed now, for them."""
    if manager not in managers:
        raise ManagersOnly()
    if not new_owner or not new_owner.startswith(("U", "W")):
        raise NotAUser()
    lead = _locked(session, lead_id)
    if lead.closed:
        raise LeadClosed()
    if lead.owner == new_owner and (lead.handed_to is None or lead.handed_claimed_at is not None):
        raise AlreadyYours()
    if lead.handed_to is not None:  # handed to another team: its owner moves, the first claim stays as it was
        return _reassign_handed(session, lead=lead, manager=manager, new_owner=new_owner, now=now)
    before, was_claimed = lead.claimed_by, lead.claimed_at is not None
    if not was_claimed:
        lead.claimed_at = now
    lead.claimed_by, lead.offered_to, lead.offer_until, lead.updated_at = new_owner, None, None, now
    sla.close_timers(session, lead_id, sla.Ladder.CLAIM, sla.Ladder.OFFER)
    session.flush()
    if policy is not None and lead.contacted_at is None:
        sla.open_timer(session, lead, sla.Ladder.CONTACT, policy, now)
    elif policy is not None and lead.sql_at is None:
        sla.open_timer(session, lead, sla.Ladder.OUTCOME, policy, now)
    audit(session, lead_id=lead_id, actor=manager, action="reassigned", now=now, before=before, after=new_owner)
    queue_card_update(session, lead_id=lead_id, transition=f"reassigned:{now.timestamp():.0f}:{new_owner}", now=now)
    reminder(session, lead=lead, action="assigned", step=f"{now.timestamp():.0f}", now=now, channel=new_owner,
             user=new_owner, by=manager)
    if not was_claimed:  # given to a rep before anyone claimed it: that is its claim
        events.emit(session, lead_id=lead_id, type=events.Type.CLAIMED, now=now, actor=manager)
    events.emit(session, lead_id=lead_id, type=events.Type.REASSIGNED, now=now, actor=manager, previous_owner=before)
    return lead


def _reassign_handed(session: Session, *, lead: Lead, manager: str, new_owner: str, now: datetime) -> Lead:
    """A handed SQL given to a rep of the receiving team: before anyone there claimed it, that is its claim."""
    before, was_claimed = lead.owner, lead.handed_claimed_at is not None
    if not was_claimed:
        lead.handed_claimed_at = now
    lead.handed_claimed_by, lead.updated_at = new_owner, now
    sla.close_timers(session, lead.id, sla.Ladder.HANDED)
    session.flush()
    audit(session, lead_id=lead.id, actor=manager, action="reassigned", now=now, before=before, after=new_owner,
          team=lead.handed_to)
    queue_card_update(session, lead_id=lead.id, transition=f"reassigned:{now.timestamp():.0f}:{new_owner}", now=now)
    reminder(session, lead=lead, action="assigned", step=f"{now.timestamp():.0f}", now=now, channel=new_owner,
             user=new_owner, by=manager)
    if not was_claimed:
        events.emit(session, lead_id=lead.id, type=events.Type.CLAIMED, now=now, actor=manager,
                    team=lead.handed_to, stage="handed")
    events.emit(session, lead_id=lead.id, type=events.Type.REASSIGNED, now=now, actor=manager, previous_owner=before)
    return lead


# The account owner -----------------------------------------------------------------
def domain_of(dialect: str):
    """The SQL for a stored lead's email domain: the expression migration 0010 indexes, so that the query
    finds a company's leads through that index."""
    # Literals, not bound parameters: a database matches an indexed expression only when it is written the same
    # way, and `instr(email_norm, ?) + ?` is not `instr(email_norm, '@') + 1`.
    sign, one = literal_column("'@'"), literal_column("1")
    at = func.strpos(Lead.email_norm, sign) if dialect == "postgresql" else func.instr(Lead.email_norm, sign)
    return func.substr(Lead.email_norm, at + one)


def account_owners(session: Session, domains: set[str], since: datetime) -> dict[str, AccountOwner]:
    """For each company domain, whoever claimed the latest lead from it since `since`, in one statement.

    Each domain is one probe of migration 0011's index (its claimed leads newest first, the first one taken),
    so the work grows with the batch's companies, not with how many leads each company ever sent: PostgreSQL
    joins each wanted domain to its latest lead laterally; SQLite picks each domain's latest lead id in a
    correlated subquery and reads those leads by id."""
    if not domains:
        return {}
    dialect = session.get_bind().dialect.name
    domain = domain_of(dialect)
    if dialect == "postgresql":  # one array parameter, whatever the batch's size
        wanted = func.unnest(bindparam("domains", sorted(domains), type_=postgresql.ARRAY(String))) \
            .table_valued("value").render_derived(name="wanted")
    else:
        wanted = func.json_each(json.dumps(sorted(domains))).table_valued("value").alias("wanted")
    latest = (select(Lead.id, Lead.claimed_by, Lead.team)
              .where(domain == wanted.c.value, Lead.claimed_at.is_not(None), Lead.claimed_at >= since,
                     Lead.claimed_by.is_not(None))
              .order_by(Lead.claimed_at.desc(), Lead.id.desc()).limit(1))
    if dialect == "postgresql":
        found = latest.lateral("latest")
        rows = session.execute(select(wanted.c.value, found.c.claimed_by, found.c.team)
                               .select_from(wanted.join(found, true())))
    else:
        picked = select(wanted.c.value.label("domain"),
                        latest.with_only_columns(Lead.id).scalar_subquery().label("lead_id")).subquery("picked")
        rows = session.execute(select(picked.c.domain, Lead.claimed_by, Lead.team)
                               .join(Lead, Lead.id == picked.c.lead_id))
    return {found_domain: AccountOwner(user, team) for found_domain, user, team in rows}


def offer_to(session: Session, *, lead: Lead, rep: str, team: Team, clock: BusinessClock, now: datetime,
             why: str) -> None:
    """Offer the MQL to one rep first (only they or a manager may claim it until the window ends), and tell
    them by DM."""
    lead.offered_to = rep
    lead.offer_until = clock.add_minutes(lead.mql_at, team.sla.offer_minutes)
    session.flush()
    sla.open_timer(session, lead, sla.Ladder.OFFER, team.sla, now, fresh=True)
    audit(session, lead_id=lead.id, actor=why, action="offered", now=now, to=rep, until=lead.offer_until.isoformat())
    reminder(session, lead=lead, action="offered", step="1", now=now, channel=rep, user=rep)


# Round-robin ----------------------------------------------------------------------
def away(session: Session, users: tuple[str, ...], today: date) -> set[str]:
    rows = session.scalars(select(OutOfOffice.user_id).where(OutOfOffice.user_id.in_(users),
                                                             OutOfOffice.until >= today))
    return set(rows)


def next_in_turn(session: Session, team: Team, last: str | None, clock: BusinessClock, now: datetime) -> str | None:
    """The rep after `last` in the team's rotation who is not away today; None when everyone is."""
    reps = team.rotation
    start = reps.index(last) + 1 if last in reps else 0
    absent = away(session, reps, now.astimezone(clock.tz).date())
    return next((r for r in (reps[(start + i) % len(reps)] for i in range(len(reps))) if r not in absent), None)


def last_in_turn(session: Session, team: Team) -> str | None:
    """Who the team's rotation offered an MQL to last (read only: `routing explain`)."""
    return session.scalar(select(AssignmentState.last_user).where(AssignmentState.name == team.rotation_name))


def offer_next(session: Session, *, lead: Lead, team: Team, clock: BusinessClock, now: datetime) -> str | None:
    """Offer the MQL to the next rep in its team's rotation who is not away; None when everyone is. Each team
    keeps its own place in its rotation (assignment_state, `Team.rotation_name`)."""
    reps = team.rotation
    if not reps or team.sla is None:
        return None
    name = team.rotation_name
    state = session.scalars(select(AssignmentState).where(AssignmentState.name == name).with_for_update()).first()
    if state is None:
        from models.db import insert_ignore

        insert_ignore(session, AssignmentState, {"name": name, "last_user": None})
        state = session.scalars(select(AssignmentState).where(AssignmentState.name == name)
                                .with_for_update()).one()
    rep = next_in_turn(session, team, state.last_user, clock, now)
    if rep is None:
        audit(session, lead_id=lead.id, actor="round-robin", action="offer_skipped", now=now,
              reason="everyone is out of office")
        return None
    state.last_user = rep
    offer_to(session, lead=lead, rep=rep, team=team, clock=clock, now=now, why="round-robin")
    return rep


def expire_offer(session: Session, *, lead: Lead, now: datetime) -> bool:
    """The offered rep did not claim in time: the lead is open to the whole channel."""
    res = session.execute(update(Lead).where(Lead.id == lead.id, Lead.claimed_at.is_(None),
                                             Lead.offered_to.is_not(None))
                          .values(offered_to=None, offer_until=None, updated_at=now)
                          .execution_options(synchronize_session=False))
    if res.rowcount != 1:
        return False
    audit(session, lead_id=lead.id, actor="sla-sweep", action="offer_expired", now=now, was=lead.offered_to)
    queue_card_update(session, lead_id=lead.id, transition="offer_expired", now=now)
    return True


# Out of office --------------------------------------------------------------------
def set_away(session: Session, *, user: str, until: date, by: str, now: datetime) -> None:
    row = session.get(OutOfOffice, user, with_for_update=True)
    if row is None:
        session.add(OutOfOffice(user_id=user, until=until, set_by=by, set_at=now))
    else:
        row.until, row.set_by, row.set_at = until, by, now
    audit(session, lead_id=None, actor=by, action="out_of_office", now=now, user=user, until=until.isoformat())


def clear_away(session: Session, *, user: str, by: str, now: datetime) -> bool:
    res = session.execute(delete(OutOfOffice).where(OutOfOffice.user_id == user))
    if res.rowcount:
        audit(session, lead_id=None, actor=by, action="back_in_office", now=now, user=user)
    return bool(res.rowcount)


def away_list(session: Session, today: date) -> list[tuple[str, date]]:
    return [(r.user_id, r.until) for r in session.scalars(
        select(OutOfOffice).where(OutOfOffice.until >= today).order_by(OutOfOffice.until))]
