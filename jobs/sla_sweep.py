"""The `sla-sweep` job: act on every SLA timer that is due at `now`.

The selection reads only the `due_at` index, so its cost follows what is due,
not how many leads exist. Each timer is then handled in its own transaction:
locked (skipped when another sweep holds it), checked again, decided by the
pure `models.sla.decide`, and its message queued in the outbox under a dedupe
key of its own. A failure on one timer is logged and the others go on; two
sweeps at once, or the same sweep twice, queue each message once. A missed deadline is counted in
`handoff_sla_breaches_total{kind}` once its transaction is committed (ops/metrics.py).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from models import events, sla
from models.leads import audit
from models.ownership import expire_offer, reminder
from models.tables import Lead, SlaTimer
from models.teams import Teams
from ops import metrics

log = logging.getLogger("handoff.sla")
BATCH = 500
BREACHES = {sla.Ladder.CLAIM: events.Type.CLAIM_BREACHED, sla.Ladder.CONTACT: events.Type.CONTACT_BREACHED}
BREACHED = "sla_breached"  # session.info: the ladders whose deadline a transaction recorded as missed
AUDIT_NAMES = {sla.Action.CLAIM_DUE: "claim_overdue", sla.Action.CLAIM_ESCALATE: "escalated",
               sla.Action.CONTACT_DUE: "escalated", sla.Action.OFFER_EXPIRE: "offer_returned"}


@dataclass
class SweepResult:
    looked_at: int = 0
    sent: int = 0
    errors: int = 0
    actions: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Targets:
    """Who hears about a lead's deadlines: its team's channel and managers (models/teams.py)."""

    handoff_channel: str | None
    managers: tuple[str, ...]
    teams: Teams | None = None

    @classmethod
    def from_settings(cls, settings) -> Targets:
        return cls(settings.HANDOFF_CHANNEL, tuple(settings.MANAGER_IDS), Teams.from_settings(settings))

    def of(self, lead: Lead) -> tuple[str | None, tuple[str, ...]]:
        """The channel (where its card is, else its team's) and the managers of a lead."""
        if self.teams is None or lead.team is None:
            return lead.card_channel or self.handoff_channel, self.managers
        team = self.teams.get(lead.team)
        return lead.card_channel or team.channel, team.managers

    def handed(self, lead: Lead) -> tuple[str | None, tuple[str, ...]]:
        """The channel (of the handed card, else the team's) and the managers of the team a lead was handed to."""
        team = self.teams.get(lead.handed_to) if self.teams is not None else None
        if team is None:
            return lead.handed_card_channel or self.handoff_channel, self.managers
        return lead.handed_card_channel or team.channel, team.managers


def run(db, now: datetime, policy: sla.SlaPolicy, targets: Targets) -> SweepResult:
    result = SweepResult()
    seen: set[int] = set()
    while True:
        with db.begin() as session:
            ids = sla.select_due(session, now, BATCH, frozenset(seen))
        for timer_id in ids:
            seen.add(timer_id)
            result.looked_at += 1
            try:
                with db.begin() as session:
                    action = handle(session, timer_id, now, policy, targets)
                for kind in session.info.pop(BREACHED, ()):
                    metrics.sla_breach(kind)
            except Exception:
                result.errors += 1
                log.exception("SLA timer %s could not be handled; it stays due", timer_id)
                continue
            if action:
                result.sent += 1
                result.actions[action] = result.actions.get(action, 0) + 1
        if len(ids) < BATCH:
            return result


def handle(session, timer_id: int, now: datetime, policy: sla.SlaPolicy, targets: Targets) -> str | None:
    """Do what one due timer asks. Returns the action taken, or None."""
    # The lead first, then its timer: the order a click takes them in (it changes the lead, then closes
    # timers), so a sweep and a click on one lead never wait for each other in a circle. A lead someone is
    # changing right now is left to the next sweep.
    lead_id = session.scalar(select(SlaTimer.lead_id).where(SlaTimer.id == timer_id))
    lead = session.scalars(select(Lead).where(Lead.id == lead_id).with_for_update(skip_locked=True)
                           ).first() if lead_id is not None else None
    timer = session.scalars(select(SlaTimer).where(SlaTimer.id == timer_id, SlaTimer.due_at <= now)
                            .with_for_update(skip_locked=True)).first() if lead is not None else None
    if timer is None:  # another sweep has it, or has just moved it on, or the lead is being changed
        return None
    if lead is None or not sla.applies(timer.kind, lead):
        session.delete(timer)  # what it was about is done
        return None
    ladder_steps = sla.steps(timer.kind, lead, policy)
    state = sla.TimerState(timer.step, timer.due_at, timer.snoozes, timer.snoozed_until)
    decision = sla.decide(ladder_steps, state, now, policy.clock)
    if decision.fire is not None:
        queue(session, lead, decision.fire, timer, decision.repeat, now, targets)
        audit(session, lead_id=lead.id, actor="sla-sweep", action=AUDIT_NAMES.get(decision.fire.action, "reminded"),
              now=now, ladder=timer.kind, step=decision.fire.name, repeat=decision.repeat)
        breach = BREACHES.get(timer.kind)
        if breach and decision.fire.name in ("due", "escalate") and not events.has_event(session, lead.id, breach):
            events.emit(session, lead_id=lead.id, type=breach, now=now)  # once, at the first step past the deadline
            session.info.setdefault(BREACHED, []).append(str(timer.kind))
    if decision.next_due is None:
        session.delete(timer)
    else:
        timer.step, timer.due_at, timer.snoozed_until = decision.next_step, decision.next_due, decision.snoozed_until
    return str(decision.fire.action) if decision.fire is not None else None


def queue(session, lead: Lead, step: sla.Step, timer: SlaTimer, repeat: bool, now: datetime,
          targets: Targets) -> None:
    action = step.action
    again = timer.snoozes if repeat else 0
    if action in (sla.Action.CLAIM_REMIND, sla.Action.CLAIM_DUE, sla.Action.OFFER_EXPIRE):
        was = lead.offered_to
        if action == sla.Action.OFFER_EXPIRE and not expire_offer(session, lead=lead, now=now):
            return
        channel, managers = targets.of(lead)
        if channel:
            reminder(session, lead=lead, action=action, step=step.name, now=now, channel=channel, thread=True, was=was,
                     managers=list(managers) if action == sla.Action.CLAIM_DUE else [])
        return
    if action in (sla.Action.HANDED_REMIND, sla.Action.HANDED_DUE):
        channel, managers = targets.handed(lead)
        if channel:
            reminder(session, lead=lead, action=action, step=step.name, now=now, channel=channel, thread=True,
                     handed=True, managers=list(managers) if action == sla.Action.HANDED_DUE else [])
        return
    if action == sla.Action.HANDED_ESCALATE:
        for manager in targets.handed(lead)[1]:
            reminder(session, lead=lead, action=action, step=step.name, now=now, channel=manager, user=manager)
        return
    if action in (sla.Action.CLAIM_ESCALATE, sla.Action.CONTACT_DUE):
        for manager in targets.of(lead)[1]:
            reminder(session, lead=lead, action=action, step=step.name, now=now, channel=manager, user=manager)
        return
    if action in (sla.Action.CONTACT_REMIND, sla.Action.OUTCOME_REMIND) and lead.owner:
        reminder(session, lead=lead, action=action, step=step.name, now=now, channel=lead.owner,
                 user=lead.owner, repeat=again)
