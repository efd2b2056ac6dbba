"""SLA ladders: what to remind, escalate or expire for a lead, and when.

A lead has at most one timer row per ladder (`claim`, `contact`, `outcome`,
`offer`). Each ladder is a list of steps with the instant each falls due,
derived from the lead and the settings by the business clock. `decide` is the
pure heart of the sweep: given the steps, the timer and `now`, it says which
single step to send (the latest one due, so a week of downtime yields one
message, not a flood) and when to look again. Nothing here reads the wall
clock or talks to Slack; the sweep (jobs/sla_sweep.py) applies the decisions
and queues the messages through the outbox with one dedupe key per step.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from models import deferred
from models.clock import BusinessClock
from models.tables import Lead, SlaTimer

# A deadline that falls exactly at closing time may still be sent this long after it.
CLOSING_GRACE = timedelta(minutes=15)


class Ladder(StrEnum):
    CLAIM = "claim"
    CONTACT = "contact"
    OUTCOME = "outcome"
    OFFER = "offer"
    HANDED = "handed"  # an SQL handed to the next team, until that team claims it (models/handover.py)


class Action(StrEnum):
    CLAIM_REMIND = "claim_remind"        # thread reply on the card: time left to claim
    CLAIM_DUE = "claim_due"              # thread reply mentioning the managers
    CLAIM_ESCALATE = "claim_escalate"    # DM to each manager with a reassign control
    CONTACT_REMIND = "contact_remind"    # DM to the owner: log contact / snooze
    CONTACT_DUE = "contact_due"          # DM to each manager with a reassign control
    OUTCOME_REMIND = "outcome_remind"    # DM to the owner: record the outcome
    OFFER_EXPIRE = "offer_expire"        # round-robin window over: back to the channel
    HANDED_REMIND = "handed_remind"      # thread reply on the handed card: time left for the next team to claim
    HANDED_DUE = "handed_due"            # thread reply mentioning the next team's managers
    HANDED_ESCALATE = "handed_escalate"  # DM to each of the next team's managers with a reassign control


@dataclass(frozen=True)
class Step:
    name: str
    at: datetime
    action: Action


@dataclass(frozen=True)
class SlaPolicy:
    clock: BusinessClock
    claim_minutes: int
    contact_minutes: int
    claim_reminders: tuple[int, ...] = (50, 80)
    contact_reminders: tuple[int, ...] = (50, 80)
    grace_minutes: int = 60
    snooze_limit: int = 2
    outcome_days: int = 5
    outcome_repeats: int = 3
    offer_minutes: int = 30

    @classmethod
    def from_settings(cls, settings) -> SlaPolicy:
        return cls(clock=settings.clock, claim_minutes=settings.SLA_CLAIM_MINUTES,
                   contact_minutes=settings.SLA_CONTACT_MINUTES, claim_reminders=settings.CLAIM_REMINDERS,
                   contact_reminders=settings.CONTACT_REMINDERS, grace_minutes=settings.ESCALATION_GRACE_MINUTES,
                   snooze_limit=settings.SNOOZE_LIMIT, outcome_days=settings.OUTCOME_REMINDER_DAYS,
                   offer_minutes=settings.ASSIGNMENT_WINDOW_MINUTES)

    @property
    def business_day_minutes(self) -> int:
        hours = self.clock.hours
        if hours is None:
            return 24 * 60
        return (hours[1].hour * 60 + hours[1].minute) - (hours[0].hour * 60 + hours[0].minute)


# The ladders ------------------------------------------------------------------
def steps(ladder: str, lead: Lead, policy: SlaPolicy) -> list[Step]:
    """Every step of one ladder for this lead, in time order."""
    clock = policy.clock
    # Reminders fall at shares of the lead's own SLA, from the MQL to its stored deadline: its team's SLA
    # (models/teams.py), or the settings' without a routing file.
    if ladder == Ladder.CLAIM:
        span = clock.minutes_between(lead.mql_at, lead.claim_due)
        out = [Step(str(p), clock.add_minutes(lead.mql_at, span * p / 100), Action.CLAIM_REMIND)
               for p in policy.claim_reminders]
        out.append(Step("due", lead.claim_due, Action.CLAIM_DUE))
        out.append(Step("escalate", clock.add_minutes(lead.claim_due, policy.grace_minutes), Action.CLAIM_ESCALATE))
        return out
    if ladder == Ladder.CONTACT:
        span = clock.minutes_between(lead.mql_at, lead.contact_due)
        out = [Step(str(p), clock.add_minutes(lead.mql_at, span * p / 100), Action.CONTACT_REMIND)
               for p in policy.contact_reminders]
        out.append(Step("due", lead.contact_due, Action.CONTACT_DUE))
        return out
    if ladder == Ladder.OUTCOME:
        if policy.outcome_days <= 0 or lead.contacted_at is None:
            return []
        span = policy.outcome_days * policy.business_day_minutes
        return [Step(str(k), clock.add_minutes(lead.contacted_at, k * span), Action.OUTCOME_REMIND)
                for k in range(1, policy.outcome_repeats + 1)]
    if ladder == Ladder.OFFER:
        return [Step("expire", lead.offer_until, Action.OFFER_EXPIRE)] if lead.offer_until else []
    if ladder == Ladder.HANDED:  # the claim ladder of the next team, from sql_at to its own deadline
        if lead.sql_at is None or lead.handed_claim_due is None:
            return []
        span = clock.minutes_between(lead.sql_at, lead.handed_claim_due)
        out = [Step(str(p), clock.add_minutes(lead.sql_at, span * p / 100), Action.HANDED_REMIND)
               for p in policy.claim_reminders]
        out.append(Step("due", lead.handed_claim_due, Action.HANDED_DUE))
        out.append(Step("escalate", clock.add_minutes(lead.handed_claim_due, policy.grace_minutes),
                        Action.HANDED_ESCALATE))
        return out
    raise ValueError(f"unknown ladder {ladder!r}")


def applies(ladder: str, lead: Lead) -> bool:
    """Whether the ladder still has a reason to run for this lead as it stands."""
    if lead.lost_at is not None or lead.disqualified_at is not None or lead.won_at is not None \
            or lead.mql_at is None:
        return False
    if ladder == Ladder.CLAIM:
        return lead.claimed_at is None
    if ladder == Ladder.OFFER:
        return lead.claimed_at is None and lead.offered_to is not None
    if ladder == Ladder.CONTACT:
        return lead.claimed_at is not None and lead.contacted_at is None
    if ladder == Ladder.OUTCOME:
        return lead.contacted_at is not None and lead.sql_at is None
    if ladder == Ladder.HANDED:
        return lead.handed_to is not None and lead.handed_claimed_at is None
    return False


# The decision -------------------------------------------------------------------
@dataclass(frozen=True)
class TimerState:
    step: int
    due_at: datetime
    snoozes: int = 0
    snoozed_until: datetime | None = None


@dataclass(frozen=True)
class Decision:
    fire: Step | None      # the step to send now (None: nothing)
    repeat: bool           # a snoozed reminder coming back (fire is the step it repeats)
    next_step: int
    next_due: datetime | None  # None: the ladder is over, drop the timer
    snoozed_until: datetime | None


def sendable(clock: BusinessClock, at: datetime, now: datetime) -> bool:
    """Whether a step that fell due at `at` may go to a person at `now` (business hours only)."""
    if clock.is_open(now):
        return True
    return clock.is_closing(at) and timedelta(0) <= now - at <= CLOSING_GRACE


def gate(clock: BusinessClock, at: datetime) -> datetime:
    """When a step due at `at` can first be sent."""
    if clock.is_open(at) or clock.is_closing(at):
        return at
    return clock.next_opening(at)


def start_step(ladder_steps: list[Step], now: datetime) -> int:
    """Where a ladder opened at `now` begins: reminders already past are skipped, deadlines never."""
    for i, step in enumerate(ladder_steps):
        if step.at > now or step.action not in (Action.CLAIM_REMIND, Action.CONTACT_REMIND,
                                                Action.OUTCOME_REMIND):
            return i
    return len(ladder_steps)


def decide(ladder_steps: list[Step], state: TimerState, now: datetime, clock: BusinessClock) -> Decision:
    """What one timer does at `now`. Pure: the same inputs always give the same answer."""
    if state.snoozed_until is not None and state.snoozed_until > now:
        return Decision(None, False, state.step, state.snoozed_until, state.snoozed_until)
    due = [i for i in range(state.step, len(ladder_steps)) if ladder_steps[i].at <= now]
    snooze_over = state.snoozed_until is not None and state.step > 0
    if not due and not snooze_over:
        if state.step >= len(ladder_steps):
            return Decision(None, False, state.step, None, None)
        return Decision(None, False, state.step, gate(clock, ladder_steps[state.step].at), None)
    at = ladder_steps[due[-1]].at if due else state.snoozed_until
    if not sendable(clock, at, now):
        return Decision(None, False, state.step, clock.next_opening(now), state.snoozed_until)
    if due:
        latest = due[-1]
        fire, repeat, nxt = ladder_steps[latest], False, latest + 1
    else:  # the snooze is over and no new step is due: the last reminder comes back once
        fire, repeat, nxt = ladder_steps[state.step - 1], True, state.step
    next_due = gate(clock, ladder_steps[nxt].at) if nxt < len(ladder_steps) else None
    return Decision(fire, repeat, nxt, next_due, None)


# Timer rows ---------------------------------------------------------------------
def open_timer(session: Session, lead: Lead, ladder: str, policy: SlaPolicy, now: datetime,
               fresh: bool = False) -> SlaTimer | None:
    """Start (or restart) one ladder for the lead; steps already behind `now` are skipped.

    `fresh` says the lead cannot have this timer yet (a lead becomes an MQL once), sparing a read.
    """
    ladder_steps = steps(ladder, lead, policy)
    first = start_step(ladder_steps, now)
    batch = deferred.of(session)
    if batch is not None:  # a deferring batch: the ladder's row is replaced when the batch is written
        pending = _pending(batch, lead.id)
        pending.closing.add(str(ladder))
        pending.opening.pop(str(ladder), None)
        if first < len(ladder_steps):
            pending.opening[str(ladder)] = {"lead_id": lead.id, "kind": str(ladder), "step": first, "snoozes": 0,
                                            "due_at": gate(policy.clock, ladder_steps[first].at)}
        return None
    timer = None if fresh else session.scalars(
        select(SlaTimer).where(SlaTimer.lead_id == lead.id, SlaTimer.kind == str(ladder)).with_for_update()).first()
    if first >= len(ladder_steps):
        if timer is not None:
            session.delete(timer)
        return None
    due = gate(policy.clock, ladder_steps[first].at)
    if timer is None:
        timer = SlaTimer(lead_id=lead.id, kind=str(ladder), step=first, due_at=due, snoozes=0)
        session.add(timer)
    else:
        timer.step, timer.due_at, timer.snoozes, timer.snoozed_until = first, due, 0, None
    return timer


def close_timers(session: Session, lead_id: int, *ladders: str) -> None:
    """Stop ladders at once: nothing more is reminded about what was just done."""
    batch = deferred.of(session)
    if batch is not None:
        pending = _pending(batch, lead_id)
        if ladders:
            pending.closing.update(str(x) for x in ladders)
            for x in ladders:
                pending.opening.pop(str(x), None)
        else:
            pending.closing_all = True
            pending.opening.clear()
        return
    stmt = delete(SlaTimer).where(SlaTimer.lead_id == lead_id)
    if ladders:
        stmt = stmt.where(SlaTimer.kind.in_([str(x) for x in ladders]))
    session.execute(stmt.execution_options(synchronize_session=False))


@dataclass
class _Pending:
    """A lead's timer changes in a deferring batch: the rows to delete, then the ladders to open."""

    closing: set[str]
    opening: dict[str, dict]
    closing_all: bool = False


def _pending(batch: deferred.Deferred, lead_id: int) -> _Pending:
    return batch.part("timers", dict, _write_pending).setdefault(lead_id, _Pending(set(), {}))


def _write_pending(session: Session, pending: dict[int, _Pending]) -> None:
    """A batch's timer changes in a few statements: every lead's deletions, then every opened ladder."""
    every = sorted(lead for lead, p in pending.items() if p.closing_all)
    if every:
        session.execute(delete(SlaTimer).where(SlaTimer.lead_id.in_(every))
                        .execution_options(synchronize_session=False))
    by_kind: dict[str, list[int]] = {}
    for lead, p in pending.items():
        if not p.closing_all:
            for kind in p.closing:
                by_kind.setdefault(kind, []).append(lead)
    for kind, leads in sorted(by_kind.items()):
        session.execute(delete(SlaTimer).where(SlaTimer.kind == kind, SlaTimer.lead_id.in_(sorted(leads)))
                        .execution_options(synchronize_session=False))
    rows = [row for p in pending.values() for row in p.opening.values()]
    if rows:
        session.execute(insert(SlaTimer), rows)


def select_due(session: Session, now: datetime, limit: int = 500,
               skip: frozenset[int] = frozenset()) -> list[int]:
    """The sweep's selection: ids of the timers due at `now`, earliest first (the due_at index only)."""
    stmt = select(SlaTimer.id).where(SlaTimer.due_at <= now)
    if skip:
        stmt = stmt.where(SlaTimer.id.not_in(skip))
    return list(session.scalars(stmt.order_by(SlaTimer.due_at).limit(limit)))
