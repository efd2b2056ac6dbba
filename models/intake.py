"""Leads coming in: create or update each one and hand off, once, those that reach the MQL threshold.

The rules it applies live in `models/leads.py` (validation, identity, see docs/identity.md) and
`models/ownership.py` (the round-robin offer); this module is where they meet, so neither imports the
other. The caller owns the transaction.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from models import events, privacy, sla
from models.leads import (
    IdentityConflict,
    LeadIn,
    Policy,
    apply_update,
    audit,
    match,
    new_lead_values,
    resolve,
    set_deadlines,
)
from models.outbox import Kind, enqueue_many
from models.ownership import account_owners, away, last_in_turn, next_in_turn, offer_next, offer_to
from models.tables import Lead
from models.teams import AccountOwner, Route, company_domain


@dataclass(frozen=True)
class IngestResult:
    id: int | None  # None for a suppressed email: nothing was stored
    status: str
    created: bool


SUPPRESSED = IngestResult(None, "suppressed", False)


def ingest(session: Session, items: list[LeadIn], now: datetime, policy: Policy,
           actor: str = "webhook") -> list[IngestResult]:
    """Create or update each lead; hand off (queue one card) those that first reach the threshold. An item whose
    email was erased with suppression (docs/privacy.md) is dropped: nothing of it is stored or sent, and its
    result says `suppressed`.

    Raises IdentityConflict (with the item's index) for an item that names two different leads.
    """
    blocked = privacy.suppressed(session, [item.email for item in items])
    if not blocked:
        return _ingest(session, items, now, policy, actor)
    kept = [i for i, item in enumerate(items) if item.email not in blocked]
    try:
        results = iter(_ingest(session, [items[i] for i in kept], now, policy, actor) if kept else [])
    except IdentityConflict as conflict:
        conflict.index = kept[conflict.index]
        raise
    return [SUPPRESSED if item.email in blocked else next(results) for item in items]


def _ingest(session: Session, items: list[LeadIn], now: datetime, policy: Policy, actor: str) -> list[IngestResult]:
    by_ext, by_email, inserted = resolve(session, items, now)
    owners = account_owners_of(session, items, policy, now)
    results: list[tuple[Lead, bool]] = []
    crossed: list[Lead] = []
    routes: dict[int, Route] = {}  # by id(lead): the team each MQL of this batch goes to
    for index, item in enumerate(items):
        try:
            lead = match(item, by_ext, by_email)
        except IdentityConflict as conflict:
            conflict.index = index
            raise
        if lead is None:  # e.g. an email freed earlier in this batch; the unique index still guards it
            lead = Lead(**new_lead_values(item, now))
            session.add(lead)
            session.flush()
            inserted.add(lead.id)
        created = lead.id in inserted
        inserted.discard(lead.id)  # a later item about the same new person is an update
        if not created:
            apply_update(lead, item, now)
        results.append((lead, created))
        if lead.external_id:
            by_ext[lead.external_id] = lead
        by_email[lead.email_norm] = lead
        if lead.mql_at is None and lead.score >= policy.threshold and lead not in crossed:
            lead.mql_at = now
            route = routes[id(lead)] = policy.route(lead, owners)
            lead.team, lead.routed_by = route.team.id, route.why or None
            set_deadlines(lead, policy, route.team)
            crossed.append(lead)
    session.flush()

    seen: set[int] = set()
    for lead, created in results:
        if lead.id in seen:
            continue
        seen.add(lead.id)
        audit(session, lead_id=lead.id, actor=actor, action="created" if created else "updated", now=now,
              score=lead.score)
    cards = []
    for lead in crossed:
        team = routes[id(lead)].team
        routed = {"team": team.id, "routed_by": lead.routed_by} if team.id is not None else {}
        audit(session, lead_id=lead.id, actor=actor, action="mql", now=now, score=lead.score,
              claim_due=lead.claim_due.isoformat(), **routed)
        if team.sla is not None:
            sla.open_timer(session, lead, sla.Ladder.CLAIM, team.sla, now, fresh=True)
            owner = routes[id(lead)].owner
            if owner is not None and owner not in away(session, (owner,), now.astimezone(policy.clock.tz).date()):
                offer_to(session, lead=lead, rep=owner, team=team, clock=policy.clock, now=now, why="account-owner")
            elif team.rotation:
                offer_next(session, lead=lead, team=team, clock=policy.clock, now=now)
        if team.channel:
            cards.append({"dedupe_key": f"card:{lead.id}", "channel": team.channel, "lead_id": lead.id})
    enqueue_many(session, Kind.CARD_POST, cards, now)
    events.emit_many(session, [events.Change(lead.id, events.Type.MQL) for lead in crossed], now)
    return [IngestResult(lead.id, lead.status, created) for lead, created in results]


def account_owners_of(session: Session, items: list[LeadIn], policy: Policy, now: datetime) -> dict[str, AccountOwner]:
    """With `account_owner_days` in the routing file: the owner of each company the batch's leads write from
    (docs/routing.md, "The account owner"); one query for the batch, none without."""
    days = policy.teams.account_owner_days if policy.teams is not None else 0
    if days <= 0:
        return {}
    domains = {domain for item in items if (domain := company_domain(item.email))}
    return account_owners(session, domains, now - timedelta(days=days))


@dataclass(frozen=True)
class Explanation:
    """Where an MQL would go now, and to whom first (`bot.py routing explain`)."""

    route: Route
    offered_first: str | None  # None: anyone in the team's channel may claim it
    owner_away: bool  # its account owner is away, so the team's own assignment applies
    is_mql: bool  # its score reaches MQL_SCORE_THRESHOLD


def explain(session: Session, item: LeadIn, policy: Policy, now: datetime) -> Explanation:
    """What `ingest` would decide for this lead as an MQL now, read only: nothing is stored or advanced."""
    lead = Lead(**new_lead_values(item, now))
    route = policy.route(lead, account_owners_of(session, [item], policy, now))
    team, today = route.team, now.astimezone(policy.clock.tz).date()
    owner_away = route.owner is not None and route.owner in away(session, (route.owner,), today)
    first = None
    if route.owner is not None and not owner_away:
        first = route.owner
    elif team.rotation:
        first = next_in_turn(session, team, last_in_turn(session, team), policy.clock, now)
    return Explanation(route, first, owner_away, item.score >= policy.threshold)
