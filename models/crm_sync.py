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
from types import SimpleNamespace

from sqlalchemy import BigInteger, String, bindparam, case, column, func, literal, or_, select, update, values
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
    LeadView holding LIGHT_COLUMNS, or the columns `light` names, and without what was last sent)."""
    ids = list(session.scalars(
        select(CrmSync.lead_id).where(
            CrmSync.destination_id == destination_id, CrmSync.state == state, CrmSync.next_attempt_at <= now,
            or_(CrmSync.lease_until.is_(None), CrmSync.lease_until < now))
        # by due time alone, as the due index (destination, state, next_attempt_at) reads: a tie broken by lead
        # too would sort every row due at that instant (thousands, after a lookup) for each lease
        .order_by(CrmSync.next_attempt_at).limit(limit)))
    if not ids:
        return []
    leased = list(session.scalars(
        update(CrmSync).where(CrmSync.destination_id == destination_id, CrmSync.lead_id.in_(ids),
                              CrmSync.state == state,
                              or_(CrmSync.lease_until.is_(None), CrmSync.lease_until < now))
        .values(lease_until=now + timedelta(seconds=lease_seconds)).returning(CrmSync.lead_id)))
    if light:
        sync, leads = CrmSync.__table__.c, Lead.__table__
        found = session.execute(
            select(sync.want.label("_want"), sync.record_id.label("_record"), sync.remote_stage.label("_stage"),
                   sync.attempts.label("_attempts"),
                   *(leads.c[name] for name in (light if isinstance(light, tuple) else LIGHT_COLUMNS)))
            .join(leads, leads.c.id == sync.lead_id)
            .where(sync.destination_id == destination_id, sync.lead_id.in_(leased))
            .order_by(sync.next_attempt_at, sync.lead_id)).mappings().all()
        return [Taken(LeadView(**{k: v for k, v in row.items() if not k.startswith("_")}), row["_want"],
                      row["_record"], row["_stage"], None, row["_attempts"]) for row in found]
    rows = session.execute(
        select(CrmSync, Lead).join(Lead, Lead.id == CrmSync.lead_id)
        .where(CrmSync.destination_id == destination_id, CrmSync.lead_id.in_(leased))
        .order_by(CrmSync.next_attempt_at, CrmSync.lead_id)).all()
    out = []
    for sync, lead in rows:
        session.expunge(lead)
        out.append(Taken(lead, sync.want, sync.record_id, sync.remote_stage, sync.sent, sync.attempts))
    return out


def _by_key(**values):
    """An UPDATE of one row by its key, run once per parameter set (`k_lead`, `k_dest` and the values' own)."""
    t = CrmSync.__table__
    return update(t).where(t.c.lead_id == bindparam("k_lead"), t.c.destination_id == bindparam("k_dest")).values(**values)


FOUND_CHUNK = 2000  # leads a statement settles on PostgreSQL (3 parameters each, well under its 65,535)


def found_many(session: Session, destination_id: int, hits: list[tuple[int, str, str | None]], now: datetime) -> None:
    """The records of these leads (lead id, record id, stage) were found: write to them (in the same pass).

    On PostgreSQL one UPDATE … FROM (VALUES …) a chunk, not a statement a lead (ten thousand leads found at once
    took a second); SQLite, which runs a statement a lead in C, keeps that (and has no such VALUES)."""
    if not hits:
        return
    settled = dict(state="ready", lease_until=None, next_attempt_at=now, attempts=0, last_error=None, updated_at=now)
    if session.get_bind().dialect.name == "postgresql":
        for start in range(0, len(hits), FOUND_CHUNK):
            found = values(column("k_lead", BigInteger), column("k_record", String), column("k_stage", String),
                           name="found").data(hits[start:start + FOUND_CHUNK])
            session.execute(update(CrmSync).where(CrmSync.destination_id == destination_id,
                                                  CrmSync.lead_id == found.c.k_lead)
                            .values(record_id=found.c.k_record, remote_stage=found.c.k_stage, **settled))
        return
    session.execute(_by_key(record_id=bindparam("k_record"), remote_stage=bindparam("k_stage"), **settled),
                    [{"k_lead": lead_id, "k_dest": destination_id, "k_record": record_id, "k_stage": stage}
                     for lead_id, record_id, stage in hits])


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
    settled = dict(written=0, lease_until=None, attempts=0, last_error=None, updated_at=now, looked_again=False)
    for want, ids in by_want.items():
        mine = (CrmSync.destination_id == destination_id, CrmSync.lead_id.in_(ids))
        session.execute(update(CrmSync).where(*mine, CrmSync.want == want)
                        .values(**{**settled, "written": want}, next_attempt_at=None))
        # changed meanwhile: written up to `want`, due again at once
        session.execute(update(CrmSync).where(*mine, CrmSync.want > want)
                        .values(**{**settled, "written": want}, next_attempt_at=now))


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
