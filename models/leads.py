"""Lead rules: validation of what comes in, identity (insert-or-get), claim, not-a-fit. Leads coming in are
applied by `models/intake.py`.

Every operation takes the session it works in and `now`; the caller owns the
transaction (`with db.begin() as session:`), so a failure rolls back all of it,
the outbox rows included.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import insert, or_, select, update
from sqlalchemy.orm import Session

from models import deferred, events, sla
from models.clock import BusinessClock
from models.deferred import flush_now
from models.outbox import Kind, enqueue
from models.tables import AuditEvent, Lead
from models.teams import AccountOwner, Route, Team, Teams, company_domain

EMAIL_RE = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
SLACK_USER_RE = re.compile(r"^[UW][A-Z0-9]{2,}$")
TEXT_LIMITS = {"external_id": 200, "email": 320, "name": 200, "company": 200, "title": 200, "source": 100}
MAX_ATTRIBUTES = 20
MAX_ATTRIBUTE_KEY = 60
MAX_ATTRIBUTE_VALUE = 300
# What no name or email holds and a database may refuse: C0 controls but tab and newlines, DEL, and
# the lone surrogates JSON's \uXXXX can smuggle into a string (no UTF-8 encoding exists for them).
BAD_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
# Instants outside these years are typos or probes, and some can't even be moved to UTC.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 12, 31, 23, 59, 59, tzinfo=UTC)


@dataclass(frozen=True)
class Actor:
    """Who makes a change: a person clicking in Slack, or the CRM (docs/crm-status.md).

    A change from the CRM is recorded in the audit as `crm` (with its `by` as sent), its events carry no
    actor and `source: crm`; `user` is then the Slack user its `by` named, if any."""

    user: str | None
    crm: bool = False
    by: str | None = None  # the CRM's `by` as sent: a Slack user id or the CRM user's email

    @property
    def name(self) -> str:
        """As the audit records it."""
        return "crm" if self.crm else (self.user or "-")

    @property
    def event_actor(self) -> str | None:
        return None if self.crm else self.user

    def event_extra(self) -> dict:
        return {"source": "crm"} if self.crm else {}

    def audit_extra(self) -> dict:
        return {"by": self.by, "user": self.user} if self.crm else {}


# Errors ---------------------------------------------------------------------
class LeadError(Exception):
    """A request that is no longer (or never was) possible; `key` names the user's message."""

    key = "notice.error"

    def __init__(self, **params):
        super().__init__(self.key, params)
        self.params = params


class LeadNotFound(LeadError):
    key = "notice.not_found"


class LeadErased(LeadError):
    """The lead's person was erased (docs/privacy.md): its buttons change nothing."""

    key = "notice.erased"


class AlreadyClaimed(LeadError):
    key = "notice.already_claimed"


class AlreadyYours(LeadError):
    key = "notice.already_yours"


class LeadClosed(LeadError):
    key = "notice.closed"


class NotAllowed(LeadError):
    key = "notice.not_allowed"


class NotHandedOff(LeadError):
    key = "notice.not_mql"


class OfferedToOther(LeadError):
    key = "notice.offered_to_other"


@dataclass(frozen=True)
class FieldError:
    field: str
    key: str  # a text catalog key under field.*
    params: dict = field(default_factory=dict)


# Input ----------------------------------------------------------------------
@dataclass(frozen=True)
class LeadIn:
    email: str
    score: int
    external_id: str | None = None
    name: str | None = None
    company: str | None = None
    title: str | None = None
    source: str | None = None
    created_at: datetime | None = None
    attributes: dict | None = None
    given: frozenset[str] = frozenset()  # the fields the sender actually sent


def parse_instant(value, tz: ZoneInfo) -> datetime | None:
    """ISO 8601 text to an aware instant; without an offset it is local to `tz`."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(text)
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=tz)
        dt = dt.astimezone(UTC)
    except (ValueError, OverflowError):  # 0001-01-01 in Tokyo is before the first instant there is
        return None
    return dt if EARLIEST <= dt <= LATEST else None


def parse_lead(obj, tz: ZoneInfo, prefix: str = "") -> tuple[LeadIn | None, list[FieldError]]:
    """Validate one lead object from the webhook (docs/http.md)."""
    if not isinstance(obj, dict):
        return None, [FieldError(prefix.rstrip(".") or "body", "api.body_shape")]
    errors: list[FieldError] = []
    given = frozenset(k for k in obj if k in {*TEXT_LIMITS, "score", "created_at", "attributes"})
    values: dict = {}

    for name, limit in TEXT_LIMITS.items():
        if name not in obj or obj[name] is None:
            continue
        v = obj[name]
        if isinstance(v, (int, float)) and not isinstance(v, bool) and name == "external_id":
            v = str(v)  # CRMs often send numeric ids
        if not isinstance(v, str):
            errors.append(FieldError(prefix + name, "field.string"))
            continue
        if BAD_CHARS.search(v):
            errors.append(FieldError(prefix + name, "field.control_chars"))
            continue
        v = v.strip()
        if len(v) > limit:
            errors.append(FieldError(prefix + name, "field.too_long", {"max": limit}))
            continue
        values[name] = v or None

    email = values.get("email")
    if "email" not in obj or obj["email"] is None or (isinstance(obj["email"], str) and not email):
        errors.append(FieldError(prefix + "email", "field.required"))
    elif email is not None and not EMAIL_RE.match(email):
        errors.append(FieldError(prefix + "email", "field.email"))

    score = obj.get("score")
    if score is None:
        errors.append(FieldError(prefix + "score", "field.required"))
    elif isinstance(score, bool) or not isinstance(score, (int, float)) \
            or (isinstance(score, float) and not math.isfinite(score)) or score != int(score) or not 0 <= score <= 100:
        errors.append(FieldError(prefix + "score", "field.score"))

    created_at = None
    if obj.get("created_at") is not None:
        created_at = parse_instant(obj["created_at"], tz)
        if created_at is None:
            errors.append(FieldError(prefix + "created_at", "field.datetime"))

    attributes = None
    if obj.get("attributes") is not None:
        attributes = _parse_attributes(obj["attributes"])
        if attributes is None:
            errors.append(FieldError(prefix + "attributes", "field.attributes", {"max": MAX_ATTRIBUTES}))
        elif any(BAD_CHARS.search(k) or BAD_CHARS.search(v) for k, v in attributes.items()):
            errors.append(FieldError(prefix + "attributes", "field.control_chars"))

    if errors:
        return None, errors
    return LeadIn(email=email, score=int(score), external_id=values.get("external_id"), name=values.get("name"),
                  company=values.get("company"), title=values.get("title"), source=values.get("source"),
                  created_at=created_at, attributes=attributes, given=given), []


def _parse_attributes(value) -> dict | None:
    if not isinstance(value, dict) or len(value) > MAX_ATTRIBUTES:
        return None
    out = {}
    for k, v in value.items():
        if isinstance(v, bool) or not isinstance(v, (str, int, float)) or len(k) > MAX_ATTRIBUTE_KEY:
            return None
        v = str(v)
        if len(v) > MAX_ATTRIBUTE_VALUE:
            return None
        out[k] = v
    return out


# Ingest ---------------------------------------------------------------------
@dataclass(frozen=True)
class Policy:
    """The settings the lead rules need, without anything of Slack."""

    threshold: int
    clock: BusinessClock
    claim_minutes: int
    contact_minutes: int
    handoff_channel: str | None
    sla: sla.SlaPolicy | None = None  # None: no reminders (imports of history)
    rotation: tuple[str, ...] = ()    # round-robin reps; empty: every MQL goes to the channel
    teams: Teams | None = None  # where each MQL goes (models/teams.py); None: the fields above are the one team

    @classmethod
    def from_settings(cls, settings, post_cards: bool = True) -> Policy:
        live = post_cards
        return cls(threshold=settings.MQL_SCORE_THRESHOLD, clock=settings.clock,
                   claim_minutes=settings.SLA_CLAIM_MINUTES, contact_minutes=settings.SLA_CONTACT_MINUTES,
                   handoff_channel=settings.HANDOFF_CHANNEL if live else None,
                   sla=sla.SlaPolicy.from_settings(settings) if live else None,
                   rotation=settings.SALES_REP_IDS if live and settings.ASSIGNMENT == "round-robin" else (),
                   teams=Teams.from_settings(settings, live=live))

    def route(self, lead: Lead, owners: dict[str, AccountOwner] | None = None) -> Route:
        """The team an MQL goes to: its company's account owner's (`owners` by domain), else by the routing
        file's rules (the one team without a file)."""
        if self.teams is None:
            return Route(Team(id=None, name=None, channel=self.handoff_channel, managers=(),
                              rotation=self.rotation, reps=self.rotation, claim_minutes=self.claim_minutes,
                              contact_minutes=self.contact_minutes, sla=self.sla))
        owner = (owners or {}).get(company_domain(lead.email) or "")
        return self.teams.route(routing_fields(lead), owner)


def audit(session: Session, *, lead_id: int | None, actor: str, action: str, now: datetime, **detail) -> None:
    batch = deferred.of(session)
    if batch is not None:  # written with the batch's other rows, in this order (models/deferred.py)
        batch.part("audit", list, _write_audit).append(
            {"lead_id": lead_id, "at": now, "actor": actor, "action": action, "detail": detail})
        return
    session.add(AuditEvent(lead_id=lead_id, at=now, actor=actor, action=action, detail=detail))


def _write_audit(session: Session, rows: list[dict]) -> None:
    if rows:
        session.execute(insert(AuditEvent.__table__), rows)


def set_deadlines(lead: Lead, policy: Policy, team: Team | None = None) -> None:
    """The claim and contact deadlines, in business minutes from the MQL: its team's SLA (the settings')."""
    claim, contact = (team.claim_minutes, team.contact_minutes) if team else (policy.claim_minutes,
                                                                               policy.contact_minutes)
    lead.claim_due = policy.clock.add_minutes(lead.mql_at, claim)
    lead.contact_due = policy.clock.add_minutes(lead.mql_at, contact)


def routing_fields(lead: Lead) -> dict:
    """What a routing rule may test of a lead (models/routing.py `field_value`)."""
    return {"source": lead.source, "score": lead.score, "company": lead.company, "title": lead.title,
            "email": lead.email, "external_id": lead.external_id, "attributes": lead.attributes or {}}


def find_matches(session: Session, items: list[LeadIn], lock: bool = True) -> tuple[dict[str, Lead], dict[str, Lead]]:
    """Existing leads by external_id and by normalised email, locked for this transaction unless `lock` is
    False."""
    ext_ids = {i.external_id for i in items if i.external_id}
    emails = {i.email.lower() for i in items}
    by_ext: dict[str, Lead] = {}
    by_email: dict[str, Lead] = {}
    conds = [Lead.email_norm.in_(emails)]
    if ext_ids:
        conds.append(Lead.external_id.in_(ext_ids))
    query = select(Lead).where(or_(*conds)).order_by(Lead.id)
    if lock:  # and read again what an earlier plain read of this transaction loaded: it may have changed since
        query = query.with_for_update().execution_options(populate_existing=True)
    found = session.scalars(query)
    for lead in found:
        if lead.external_id:
            by_ext[lead.external_id] = lead
        by_email[lead.email_norm] = lead
    return by_ext, by_email


class IdentityConflict(Exception):
    """An item whose external_id names one lead and whose email belongs to another (docs/identity.md).

    `index` is the item's place in what was sent, set by the caller that knows it.
    """

    def __init__(self, field_name: str, key: str, lead_id: int | None):
        super().__init__(field_name, key, lead_id)
        self.field, self.key, self.lead_id = field_name, key, lead_id
        self.index: int | None = None

    def error(self, prefix: str = "") -> FieldError:
        return FieldError(prefix + self.field, self.key, {"id": self.lead_id})


def match(item: LeadIn, by_ext: dict[str, Lead], by_email: dict[str, Lead]) -> Lead | None:
    """The lead an item is about: by external_id, else by case-insensitive email; None for a new person.

    One email is one person, so an item that would need a second lead with a stored email is a
    conflict, never a duplicate: its external_id is another lead's, or its email already has a lead with
    another external_id.
    """
    email = item.email.lower()
    owner = by_email.get(email)
    if owner is not None and owner.email_norm != email:
        owner = None  # that lead's email changed earlier in this batch
    if item.external_id and item.external_id in by_ext:
        lead = by_ext[item.external_id]
        if owner is not None and owner is not lead:
            raise IdentityConflict("email", "field.email_taken", owner.id)
        return lead
    if owner is not None and item.external_id and owner.external_id and owner.external_id != item.external_id:
        raise IdentityConflict("external_id", "field.external_id_conflict", owner.id)
    return owner


def new_lead_values(item: LeadIn, now: datetime) -> dict:
    return dict(email=item.email, email_norm=item.email.lower(), external_id=item.external_id, name=item.name,
                company=item.company, title=item.title, source=item.source or "other", score=item.score,
                attributes=item.attributes or {}, created_at=item.created_at or now, updated_at=now)


def insert_new(session: Session, rows: list[dict]) -> list[int]:
    """INSERT the rows, skipping any whose email or external_id is already taken (by a concurrent
    request too: the database waits for it and then skips). Returns the ids inserted."""
    if not rows:
        return []
    from models.db import upsert_insert

    insert = upsert_insert(session)
    rows = sorted(rows, key=lambda r: r["email_norm"])  # one lock order for every concurrent batch
    # executemany with RETURNING: SQLAlchemy sends it as a few multi-row INSERTs from one cached statement.
    stmt = insert(Lead.__table__).on_conflict_do_nothing().returning(Lead.__table__.c.id)
    return list(session.connection().execute(stmt, rows).scalars())


def resolve(session: Session, items: list[LeadIn], now: datetime) -> tuple[dict[str, Lead], dict[str, Lead],
                                                                           set[int]]:
    """Insert-or-get: every new person in `items` gets its lead row, whoever inserts it first.

    Returns the leads by external_id and by email (all locked for this transaction) and the ids this
    transaction inserted. Identity is the database's to enforce (unique email_norm and external_id);
    this only makes the race end in "the other one inserted it, use that" instead of an error.
    """
    # Plan from a plain read and lock only after inserting: a transaction holding row locks while it
    # waits on another's uncommitted insert of the same email is how two batches deadlock.
    by_ext, by_email = find_matches(session, items, lock=False)
    planned: list[dict] = []
    seen_ext = dict(by_ext)
    seen_email = dict(by_email)
    for item in items:
        email = item.email.lower()
        if (item.external_id and item.external_id in seen_ext) or email in seen_email:
            continue  # known (or planned): the pass that applies the items decides about it
        values = new_lead_values(item, now)
        planned.append(values)
        seen_email[email] = values
        if item.external_id:
            seen_ext[item.external_id] = values
    inserted = set(insert_new(session, planned))
    by_ext, by_email = find_matches(session, items)
    return by_ext, by_email, inserted


def apply_update(lead: Lead, item: LeadIn, now: datetime) -> None:
    for name in ("name", "company", "title", "source"):
        if name in item.given and getattr(item, name) is not None:
            setattr(lead, name, getattr(item, name))
    if item.external_id and not lead.external_id:
        lead.external_id = item.external_id
    if "email" in item.given:
        lead.email, lead.email_norm = item.email, item.email.lower()
    if item.attributes:
        lead.attributes = {**(lead.attributes or {}), **item.attributes}
    lead.score = item.score
    lead.updated_at = now


# Claim ----------------------------------------------------------------------
def claim(session: Session, *, lead_id: int, user: str, now: datetime, sla_policy: sla.SlaPolicy | None = None,
          managers: tuple[str, ...] = ()) -> int:
    """First click wins: one conditional UPDATE, so one owner under any concurrency.

    While a round-robin offer runs, only the rep it is offered to (or a manager) may take it.
    """
    conds = [Lead.id == lead_id, Lead.mql_at.is_not(None), Lead.claimed_at.is_(None), Lead.erased_at.is_(None),
             Lead.lost_at.is_(None), Lead.disqualified_at.is_(None), Lead.won_at.is_(None)]
    if user not in managers:
        conds.append(or_(Lead.offered_to.is_(None), Lead.offered_to == user, Lead.offer_until <= now))
    won = session.connection().execute(
        update(Lead.__table__).where(*conds)
        .values(claimed_at=now, claimed_by=user, updated_at=now)
        .returning(Lead.claim_due)).first()
    if won is not None:
        claimed(session, lead_id=lead_id, actor=Actor(user), at=now, now=now, claim_due=won.claim_due,
                sla_policy=sla_policy)
        return lead_id
    lead = session.get(Lead, lead_id)
    if lead is None:
        raise LeadNotFound()
    if lead.erased_at is not None:
        raise LeadErased()
    if lead.mql_at is None:
        raise NotHandedOff()
    if lead.claimed_by == user and not lead.closed:
        raise AlreadyYours()
    if lead.claimed_by and not lead.closed:
        raise AlreadyClaimed(user=lead.claimed_by)
    if not lead.closed and lead.offered_to and lead.offer_until and lead.offer_until > now:
        raise OfferedToOther(user=lead.offered_to, until=lead.offer_until)
    raise LeadClosed()


def claim_from_crm(session: Session, *, lead: Lead, actor: Actor, at: datetime, now: datetime,
                   sla_policy: sla.SlaPolicy | None) -> None:
    """The claim a status from the CRM implies on an unclaimed lead (docs/crm-status.md): the lead is locked by
    the caller; claimed at `at` by the Slack user the CRM's `by` named, or by nobody."""
    lead.claimed_at, lead.claimed_by, lead.updated_at = at, actor.user, now
    flush_now(session)
    # The card changes once, with the status that implied the claim (its caller queues that update).
    claimed(session, lead_id=lead.id, actor=actor, at=at, now=now, claim_due=lead.claim_due, sla_policy=sla_policy,
            card=False)


def claimed(session: Session, *, lead_id: int, actor: Actor, at: datetime, now: datetime, claim_due: datetime,
            sla_policy: sla.SlaPolicy | None, card: bool = True) -> None:
    """What follows a claim, whoever made it: the audit, the card, the event, the contact clock."""
    audit(session, lead_id=lead_id, actor=actor.name, action="claimed", now=now, within_sla=at <= claim_due,
          **actor.audit_extra())
    if card:
        queue_card_update(session, lead_id=lead_id, transition="claimed", now=now)
    events.emit(session, lead_id=lead_id, type=events.Type.CLAIMED, now=now, actor=actor.event_actor,
                **actor.event_extra())
    if sla_policy is not None:
        sla.close_timers(session, lead_id, sla.Ladder.CLAIM, sla.Ladder.OFFER)
        sla.open_timer(session, session.get(Lead, lead_id), sla.Ladder.CONTACT, sla_policy, now)


def queue_card_update(session: Session, *, lead_id: int, transition: str, now: datetime) -> None:
    """Re-render the card once its state changed (the sender waits for a card still queued)."""
    enqueue(session, kind=Kind.CARD_UPDATE, dedupe_key=f"card:{lead_id}:{transition}", now=now, lead_id=lead_id)
