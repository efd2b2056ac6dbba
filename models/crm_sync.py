"""The CRM write-back queue: a row per lead and CRM that says "this lead changed since it was last written".

`bump` is called by models/events.py with every event, in the change's transaction, for every active CRM
destination (HubSpot, Salesforce). The writer (outbox/hubspot.py) takes rows that are due, reads the leads as they
are then, writes them, and settles with the `want` it saw: a change made meanwhile leaves the row due again,
so the CRM always ends with Handoff's latest state and never gets an older one after a newer one.
docs/hubspot.md and docs/salesforce.md describe what is written and when.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from types import SimpleNamespace

from sqlalchemy import (
    BigInteger,
    String,
    bindparam,
    case,
    func,
    literal,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from models.tables import CrmSync, Destination, Lead, UTCDateTime

HUBSPOT = "hubspot"
SALESFORCE = "salesforce"
CRM_KINDS = (HUBSPOT, SALESFORCE)
ACTIVITY_KINDS = (SALESFORCE,)  # CRMs whose activity history gets a Task per outcome (models/crm_tasks.py)


def bump(session: Session, *, lead_id: int, now: datetime) -> None:
    """The lead changed: make it due at every active CRM (a row backing off keeps its time)."""
    crms = list(session.scalars(select(Destination.id).where(Destination.kind.in_(CRM_KINDS),
                                                             Destination.active.is_(True))))
    if crms:
        bump_many(session, [lead_id], crms, now)


def bump_many(session: Session, lead_ids: list[int], destination_ids: list[int], now: datetime) -> None:
    """`bump` for each change of `lead_ids` (a lead may be named once per change) at these CRMs."""
    from models.db import upsert_insert

    insert = upsert_insert(session)
    changes: dict[int, int] = {}
    for lead_id in lead_ids:  # one row per lead in the statement: an upsert may not touch a row twice
        changes[lead_id] = changes.get(lead_id, 0) + 1
    stmt = insert(CrmSync)
    current = CrmSync.__table__.c
    stmt = stmt.on_conflict_do_update(
        index_elements=["lead_id", "destination_id"],
        set_={"want": current.want + stmt.excluded.want, "updated_at": stmt.excluded.updated_at,
              "next_attempt_at": func.coalesce(current.next_attempt_at, stmt.excluded.next_attempt_at),
              # a contact not found is looked for again at the lead's next change, never in a loop
              "state": case((current.state == "not_found", "lookup"), else_=current.state)})
    session.execute(stmt, [{"lead_id": lead_id, "destination_id": d, "want": n, "written": 0, "state": "lookup",
                            "attempts": 0, "next_attempt_at": now, "updated_at": now}
                           for lead_id, n in changes.items() for d in destination_ids])


def configure(session: Session, kind: str, url: str | None, now: datetime, reconcile: bool = True) -> int | None:
    """The destination row of this CRM, active when `url` is set (the CRM is configured); its id, or None.

    Only `reconcile` (serve and clock) turns a CRM on or off; another process writes to it if it is on.
    """
    from models.db import insert_ignore

    known = session.scalars(select(Destination).where(Destination.kind == kind)).all()
    if not reconcile:
        return next((d.id for d in known if d.url == url and d.active), None)
    for dest in known:
        dest.active = dest.url == url
    if url is None:
        session.flush()
        return None
    if not any(d.url == url for d in known):
        insert_ignore(session, Destination, dict(kind=kind, url=url, active=True, created_at=now))
    session.flush()
    return session.scalar(select(Destination.id).where(Destination.kind == kind, Destination.url == url))


@dataclass(frozen=True)
class Taken:
    """A row leased for one pass: the lead as it is now, and what the row knows of its CRM record."""

    lead: Lead
    want: int
    record_id: str | None
    remote_stage: str | None
    sent: dict | None
    attempts: int
    looked_again: bool = False  # its record was gone once and it was looked up again (outbox/salesforce.py)


class LeadView(SimpleNamespace):
    """A lead's columns as plain attributes, read without the ORM (`take(light=True)`): what a CRM write reads,
    for a fraction of the cost of loading Lead objects. `owner` as Lead's."""

    @property
    def owner(self) -> str | None:
        return self.handed_claimed_by or self.claimed_by


# What a light `take` reads of each lead: what a CRM write is made of (models/salesforce.py `record_fields`,
# models/events.py `status_of`, the owner) and what finds its record.
LIGHT_COLUMNS = ("id", "email_norm", "external_id", "team", "handed_to", "claimed_by", "handed_claimed_by",
                 "claim_due", "mql_at", "claimed_at", "contacted_at", "sql_at", "won_at", "lost_at", "disqualified_at",
                 "lost_reason", "disqualify_reason", "outcome_note", "quality", "card_url")


FINDING_COLUMNS = ("id", "email_norm", "external_id")  # what finding a lead's record reads of it


def take(session: Session, destination_id: int, state: str, now: datetime, limit: int,
         lease_seconds: float = 60, light: bool | tuple[str, ...] = False) -> list[Taken]:
    """Lease up to `limit` due rows in `state` (lookup or ready), oldest first, with their leads (with `light`, as
    LeadView holding LIGHT_COLUMNS, or the columns `light` names, and without what was last sent).

    The lease is one statement (the due rows chosen and leased together, what the lane needs of each row
    returned); the leads are a second. The statements are built once (`_lease`, `_leads_of`): a pass leases
    fifty parts, and building a statement costs more than the database's work on it."""
    dialect = session.get_bind().dialect.name
    leased = session.execute(_lease(dialect), {"dest": destination_id, "b_state": state, "now": now, "limit": limit,
                                      "until": now + timedelta(seconds=lease_seconds)}).all()
    if not leased:
        return []
    leased.sort(key=lambda r: (r.next_attempt_at, r.lead_id))  # oldest first, as they were chosen
    ids = [r.lead_id for r in leased]
    if light:
        names = light if isinstance(light, tuple) else LIGHT_COLUMNS
        key = names.index("id")
        found = {row[key]: row for row in session.execute(_leads_of(names, dialect), {"ids": ids})}
        return [Taken(LeadView(**dict(zip(names, found[r.lead_id], strict=True))), r.want, r.record_id,
                      r.remote_stage, None, r.attempts, bool(r.looked_again)) for r in leased if r.lead_id in found]
    leads = {lead.id: lead for lead in session.scalars(select(Lead).where(Lead.id.in_(ids)))}
    out = []
    for r in leased:
        lead = leads.get(r.lead_id)
        if lead is not None:
            session.expunge(lead)
            out.append(Taken(lead, r.want, r.record_id, r.remote_stage, r.sent, r.attempts, bool(r.looked_again)))
    return out


@lru_cache(maxsize=4)
def _lease(dialect: str):
    """The lease statement for this database, built once."""
    t = CrmSync.__table__
    now = bindparam("now", type_=UTCDateTime())
    free = or_(t.c.lease_until.is_(None), t.c.lease_until < now)
    mine = (t.c.destination_id == bindparam("dest"), t.c.state == bindparam("b_state"))
    due = (select(t.c.lead_id).where(*mine, t.c.next_attempt_at <= now, free)
           # by due time alone, as the due index (destination, state, next_attempt_at) reads: a tie broken by lead
           # too would sort every row due at that instant (thousands, after a lookup) for each lease
           .order_by(t.c.next_attempt_at).limit(bindparam("limit")))
    # The chosen rows are then updated by their key. PostgreSQL gets the ids as an array computed once (as a
    # plain IN, a table whose statistics lag behind a burst, ten thousand rows just made due, was joined row by
    # row to the choice); the state is checked as `state || ''`, which no index serves, so that neither
    # database walks the due index over every row in that state to find the chosen ones.
    chosen = t.c.lead_id == func.any(func.array(due.scalar_subquery())) if dialect == "postgresql" \
        else t.c.lead_id.in_(due.scalar_subquery())
    # The outer conditions are checked again on each row as it is updated: a row another process leased or
    # moved between the choice and the update is not leased.
    state = t.c.state.concat(literal_column("''")) == bindparam("b_state")
    return (update(t).where(t.c.destination_id == bindparam("dest"), chosen, state, free)
            .values(lease_until=bindparam("until", type_=UTCDateTime()))
            .returning(t.c.lead_id, t.c.want, t.c.record_id, t.c.remote_stage, t.c.attempts, t.c.next_attempt_at,
                       t.c.sent, t.c.looked_again))


@lru_cache(maxsize=8)
def _leads_of(names: tuple[str, ...], dialect: str):
    """These columns of the leads `ids` (on PostgreSQL one array parameter, not a placeholder a lead)."""
    leads = Lead.__table__
    ids = leads.c.id == func.any(bindparam("ids", type_=postgresql.ARRAY(BigInteger))) if dialect == "postgresql" \
        else leads.c.id.in_(bindparam("ids", expanding=True))
    return select(*(leads.c[name] for name in names)).where(ids)


def _by_key(**values):
    """An UPDATE of one row by its key, run once per parameter set (`k_lead`, `k_dest` and the values' own)."""
    t = CrmSync.__table__
    return update(t).where(t.c.lead_id == bindparam("k_lead"), t.c.destination_id == bindparam("k_dest")).values(**values)


def found_many(session: Session, destination_id: int, hits: list[tuple[int, str, str | None]], now: datetime) -> None:
    """The records of these leads (lead id, record id, stage) were found: write to them (in the same pass).

    On PostgreSQL one UPDATE … FROM unnest(three arrays), built once (`_found_by_arrays`): a statement a lead took
    a second for ten thousand leads, and a VALUES list is a new statement to compile each time. SQLite, which runs
    a statement a lead in C, keeps that."""
    if not hits:
        return
    if session.get_bind().dialect.name == "postgresql":
        lead_ids, records, stages = (list(column_) for column_ in zip(*hits, strict=True))
        session.execute(_found_by_arrays(), {"dest": destination_id, "k_leads": lead_ids, "k_records": records,
                                             "k_stages": stages, "b_now": now})
        return
    settled = dict(state="ready", lease_until=None, next_attempt_at=now, attempts=0, last_error=None, updated_at=now)
    session.execute(_by_key(record_id=bindparam("k_record"), remote_stage=bindparam("k_stage"), **settled),
                    [{"k_lead": lead_id, "k_dest": destination_id, "k_record": record_id, "k_stage": stage}
                     for lead_id, record_id, stage in hits])


@lru_cache(maxsize=1)
def _found_by_arrays():
    t = CrmSync.__table__
    found = func.unnest(bindparam("k_leads", type_=postgresql.ARRAY(BigInteger)),
                        bindparam("k_records", type_=postgresql.ARRAY(String)),
                        bindparam("k_stages", type_=postgresql.ARRAY(String))) \
        .table_valued("k_lead", "k_record", "k_stage").render_derived(name="found")
    now = bindparam("b_now", type_=UTCDateTime())
    return (update(t).where(t.c.destination_id == bindparam("dest"), t.c.lead_id == found.c.k_lead)
            .values(record_id=found.c.k_record, remote_stage=found.c.k_stage, state="ready", lease_until=None,
                    next_attempt_at=now, attempts=0, last_error=None, updated_at=now))


def not_found_many(session: Session, destination_id: int, lead_ids: list[int], why: str, now: datetime) -> None:
    """No such record: recorded and skipped until the lead's next change."""
    if lead_ids:
        session.execute(update(CrmSync).where(CrmSync.destination_id == destination_id, CrmSync.lead_id.in_(lead_ids))
                        .values(state="not_found", record_id=None, lease_until=None, next_attempt_at=None, attempts=0,
                                last_error=why, updated_at=now))


def written_many(session: Session, destination_id: int, done: list[tuple[int, int, dict, str | None]],
                 now: datetime) -> None:
    """The state of change `want` of each lead (lead id, want, what was sent, stage) is in the CRM. A lead that
    changed meanwhile is due again at once."""
    if not done:
        return
    t = CrmSync.__table__
    want = bindparam("k_want", type_=t.c.written.type)
    session.execute(_by_key(
        written=want, sent=bindparam("k_sent", type_=t.c.sent.type), remote_stage=bindparam("k_stage"),
        lease_until=None, attempts=0, last_error=None, updated_at=now, looked_again=False,
        # an instant inside an expression must be typed, or it is stored in its own zone
        next_attempt_at=case((t.c.want > want, literal(now, type_=UTCDateTime())), else_=None)),
        [{"k_lead": lead_id, "k_dest": destination_id, "k_want": n, "k_sent": sent, "k_stage": stage}
         for lead_id, n, sent, stage in done])


def written_bulk(session: Session, destination_id: int, done: list[tuple[int, int]], now: datetime) -> None:
    """`written_many` for a CRM that keeps nothing of what it sent (Salesforce): the leads are settled in two
    statements a change count seen (most of a batch saw the same), not one a lead."""
    by_want: dict[int, list[int]] = {}
    for lead_id, want in done:
        by_want.setdefault(want, []).append(lead_id)
    for want, ids in by_want.items():
        session.execute(_settled(), {"dest": destination_id, "ids": ids, "b_want": want, "b_now": now})


@lru_cache(maxsize=1)
def _settled():
    """Written up to `b_want`: done, or (changed meanwhile, `want` above it) due again at once."""
    t = CrmSync.__table__
    want = bindparam("b_want", type_=t.c.want.type)
    return (update(t).where(t.c.destination_id == bindparam("dest"), t.c.lead_id.in_(bindparam("ids", expanding=True)))
            .values(written=want, lease_until=None, attempts=0, last_error=None, looked_again=False,
                    updated_at=bindparam("b_now", type_=UTCDateTime()),
                    next_attempt_at=case((t.c.want > want, bindparam("b_now", type_=UTCDateTime())), else_=None)))



def refused(session: Session, destination_id: int, lead_id: int, why: str, now: datetime) -> None:
    """The CRM refused this lead's values: recorded with its reason, tried again at the lead's next change."""
    session.execute(update(CrmSync).where(CrmSync.destination_id == destination_id, CrmSync.lead_id == lead_id)
                    .values(lease_until=None, next_attempt_at=None, attempts=CrmSync.attempts + 1, last_error=why,
                            updated_at=now))


def retry(session: Session, destination_id: int, lead_ids: list[int], at: datetime, error: str | None,
          now: datetime, count: bool = True) -> None:
    """Try these leads' rows again at `at` (counted as a failed attempt unless `count` is False)."""
    if not lead_ids:
        return
    values = dict(lease_until=None, next_attempt_at=at, last_error=error, updated_at=now)
    if count:
        values["attempts"] = CrmSync.attempts + 1
    session.execute(update(CrmSync).where(CrmSync.destination_id == destination_id, CrmSync.lead_id.in_(lead_ids))
                    .values(**values))


def status(session: Session, destination_id: int | None, now: datetime) -> dict:
    """How the write-back stands: pending (due or backing off), not found, refused (values the CRM would not
    take, waiting for the lead's next change), and the oldest pending wait."""
    if destination_id is None:
        return {"pending": 0, "not_found": 0, "refused": 0, "oldest_pending_seconds": None}
    base = select(func.count()).select_from(CrmSync).where(CrmSync.destination_id == destination_id)
    pending = session.scalar(base.where(CrmSync.next_attempt_at.is_not(None)))
    missing = session.scalar(base.where(CrmSync.state == "not_found"))
    oldest = session.scalar(select(func.min(CrmSync.updated_at)).where(
        CrmSync.destination_id == destination_id, CrmSync.next_attempt_at.is_not(None)))
    refused_ = session.scalar(base.where(CrmSync.state == "ready", CrmSync.next_attempt_at.is_(None),
                                         CrmSync.attempts > 0))
    return {"pending": pending, "not_found": missing, "refused": refused_,
            "oldest_pending_seconds": None if oldest is None else max(0, int((now - oldest).total_seconds()))}


def due_by(session: Session, destination_id: int, at: datetime) -> int:
    return session.scalar(select(func.count()).select_from(CrmSync).where(
        CrmSync.destination_id == destination_id, CrmSync.next_attempt_at <= at))


def next_due(session: Session, destination_id: int) -> datetime | None:
    return session.scalar(select(func.min(CrmSync.next_attempt_at)).where(CrmSync.destination_id == destination_id))


def row(session: Session, destination_id: int, lead_id: int) -> CrmSync | None:
    return session.get(CrmSync, (lead_id, destination_id))
