"""Events out: every change of a lead, stored with the change and fanned out to each endpoint.

`emit` is called by the domain transitions themselves (intake, claim, contact, reassign, outcomes, undo,
quality, the SLA sweep), inside their transaction: the event exists if and only if the change does. The body
is frozen at that moment (the lead as it is right after the change) and one delivery row per active endpoint
is written beside it. outbox/events.py sends them; docs/events.md is the contract receivers rely on.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, func, insert, literal, or_, select, update
from sqlalchemy.orm import Session

from models import crm_sync, crm_tasks, deferred
from models.db import insert_ignore
from models.tables import Destination, Event, EventDelivery, Lead, UTCDateTime

WEBHOOK = "webhook"


class Type:
    """The event types (docs/events.md)."""

    MQL = "lead.mql"
    CLAIMED = "lead.claimed"
    REASSIGNED = "lead.reassigned"
    CONTACTED = "lead.contacted"
    SQL = "lead.sql"
    WON = "lead.won"
    LOST = "lead.lost"
    DISQUALIFIED = "lead.disqualified"
    REOPENED = "lead.reopened"
    QUALITY_RATED = "lead.quality_rated"
    CLAIM_BREACHED = "sla.claim_breached"
    CONTACT_BREACHED = "sla.contact_breached"
    HANDED_OVER = "lead.handed_over"
    ERASED = "lead.erased"  # the person was erased (docs/privacy.md): data.lead holds only id and external_id


ALL_TYPES = tuple(v for k, v in vars(Type).items() if k.isupper())
# The outcomes a CRM's activity history gets a completed Task for (Salesforce: docs/salesforce.md).
TASK_TYPES = frozenset({Type.CONTACTED, Type.SQL, Type.WON, Type.LOST, Type.DISQUALIFIED})
OUTCOME_TYPES = {"sql": Type.SQL, "won": Type.WON, "lost": Type.LOST, "disqualified": Type.DISQUALIFIED}

# The Standard Webhooks retry schedule (after the first attempt: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, …),
# continued every 10 hours until the delivery is 72 hours old (a replay starts anew): then the next failure is final.
RETRY_SCHEDULE = (5, 300, 1800, 7200, 18000, 36000)
RETRY_FOR = timedelta(hours=72)
MAX_RETRY_AFTER = 36000.0  # a Retry-After longer than the longest step of the schedule is cut to it


def retry_delay(attempts: int) -> float:
    """Seconds before the next try, after `attempts` failed ones (1 = the first attempt failed)."""
    return float(RETRY_SCHEDULE[min(max(attempts, 1), len(RETRY_SCHEDULE)) - 1])


def status_of(lead: Lead) -> str:
    """Where the lead stands: new, mql, claimed, contacted, sql, won, lost or disqualified."""
    if lead.disqualified_at is not None:
        return "disqualified"
    if lead.lost_at is not None:
        return "lost"
    for name in ("won", "sql", "contacted", "claimed", "mql"):
        if getattr(lead, f"{name}_at") is not None:
            return name
    return "new"


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def snapshot(lead: Lead) -> dict:
    """LEAD of docs/events.md: the lead's fields as they are now."""
    return {
        "id": lead.id, "external_id": lead.external_id, "email": lead.email, "name": lead.name,
        "company": lead.company, "title": lead.title, "source": lead.source, "score": lead.score,
        "status": status_of(lead), "owner": lead.owner, "team": lead.team, "qualified_by": lead.qualified_by,
        "mql_at": iso(lead.mql_at),
        "claim_due": iso(lead.claim_due), "claimed_at": iso(lead.claimed_at),
        "contacted_at": iso(lead.contacted_at), "sql_at": iso(lead.sql_at), "won_at": iso(lead.won_at),
        "lost_at": iso(lead.lost_at), "lost_reason": lead.lost_reason, "disqualified_at": iso(lead.disqualified_at),
        "disqualify_reason": lead.disqualify_reason, "card_url": lead.card_url,
    }


def emit(session: Session, *, lead_id: int, type: str, now: datetime, actor: str | None = None,
         reason: str | None = None, note: str | None = None, **extra) -> str:
    """Record one event of the lead, as it stands after the change, and queue it for every active endpoint.

    Call it inside the transaction that made the change, after making it. Returns the event's id.
    """
    return emit_many(session, [Change(lead_id, type, actor, reason, note, extra)], now)[0]


@dataclass(frozen=True)
class Change:
    """One event to emit: which lead, what happened, who did it, and its reason, note and extra data."""

    lead_id: int
    type: str
    actor: str | None = None
    reason: str | None = None
    note: str | None = None
    extra: dict | None = None


def emit_many(session: Session, changes: list[Change], now: datetime) -> list[str]:
    """`emit` for many changes at once (a batch of leads becoming MQLs): a handful of statements, not a handful
    per change. Events are stored in the order given; returns their ids in that order."""
    if not changes:
        return []
    batch = deferred.of(session)
    if batch is not None:
        # A deferring batch (models/deferred.py) has its leads locked and loaded: each body is the lead as it is
        # in memory now, right after this change; the rows are written with the batch's others at its end.
        leads = {c.lead_id: session.get(Lead, c.lead_id) for c in changes}
        rows = [_row(c, leads[c.lead_id], now) for c in changes]
        batch.part("events", list, _write_deferred).extend(rows)
        return [r["event_id"] for r in rows]
    session.flush()  # the changes themselves, so the leads read below are the leads after them
    # Locked, so that two transactions changing one lead write their events in the order they commit (a claim
    # and the sweep's breach at the same moment), each with the lead as that change left it.
    ids = sorted({c.lead_id for c in changes})
    leads = {lead.id: lead for lead in session.scalars(
        select(Lead).where(Lead.id.in_(ids)).order_by(Lead.id).with_for_update()
        .execution_options(populate_existing=True))}
    rows = [_row(c, leads[c.lead_id], now) for c in changes]
    _store(session, rows, now)
    return [r["event_id"] for r in rows]


def emit_erased(session: Session, leads: list[tuple[int, str | None]], now: datetime) -> None:
    """`lead.erased` for each (lead id, external id), to every active endpoint only: the CRM lanes are not
    written for it (an erasure cancels what they still had to write, docs/privacy.md)."""
    rows = [{"event_id": f"evt_{uuid.uuid4().hex}", "type": Type.ERASED, "lead_id": lead_id, "occurred_at": now,
             "body": {"type": Type.ERASED, "timestamp": iso(now),
                      "data": {"lead": {"id": lead_id, "external_id": external_id}}}}
            for lead_id, external_id in leads]
    _store(session, rows, now, crms=False)


def _row(c: Change, lead: Lead, now: datetime) -> dict:
    """The stored event of one change: its id and body, the lead as it is now."""
    body = {"type": c.type, "timestamp": iso(now),
            "data": {"lead": snapshot(lead), "actor": c.actor, "reason": c.reason, "note": c.note, **(c.extra or {})}}
    return {"event_id": f"evt_{uuid.uuid4().hex}", "type": c.type, "lead_id": c.lead_id, "occurred_at": now,
            "body": body}


def _write_deferred(session: Session, rows: list[dict]) -> None:
    if rows:
        _store(session, rows, rows[-1]["occurred_at"])


def _store(session: Session, rows: list[dict], now: datetime, crms: bool = True) -> None:
    """Insert the events, in order, with a delivery per active endpoint and (`crms`) a due write-back per CRM."""
    active = session.execute(select(Destination.id, Destination.kind).where(Destination.active.is_(True))).all()
    if not crms:
        active = [(d, kind) for d, kind in active if kind == WEBHOOK]
    endpoints = [d for d, kind in active if kind == WEBHOOK]
    activity = [d for d, kind in active if kind in crm_sync.ACTIVITY_KINDS]  # outcomes become Tasks there
    outcomes = [r for r in rows if r["type"] in TASK_TYPES] if activity else []
    if len(rows) == 1 or not (endpoints or outcomes):  # no ids needed, or one: one statement either way
        if endpoints or outcomes:
            stored = [session.execute(insert(Event).returning(Event.id), rows[0]).scalar_one()]
        else:
            stored = []
            session.execute(insert(Event), rows)
    else:  # many rows in one executemany, then their ids in one read (a RETURNING in order is a row at a time)
        session.execute(insert(Event), rows)
        ids = dict(session.execute(select(Event.event_id, Event.id).where(
            Event.event_id.in_([r["event_id"] for r in rows]))).all())
        stored = [ids[r["event_id"]] for r in rows]
    if endpoints:
        session.execute(insert(EventDelivery), [
            {"event_row": row, "destination_id": d, "lead_id": r["lead_id"], "status": "pending", "attempts": 0,
             "created_at": now, "next_attempt_at": now}
            for row, r in zip(stored, rows, strict=True) for d in endpoints])
    crms = [d for d, kind in active if kind in crm_sync.CRM_KINDS]
    if crms:
        crm_sync.bump_many(session, [r["lead_id"] for r in rows], crms, now)
    if outcomes:
        crm_tasks.queue(session, [(row, r["lead_id"]) for row, r in zip(stored, rows, strict=True)
                                  if r["type"] in TASK_TYPES], activity, now)


def _fan_out(session: Session, event: select, now: datetime, destination_ids: list[int] | None = None) -> int:
    """A pending delivery of `event` (a select of event row and lead id) to each active endpoint."""
    event = event.subquery()
    cols = list(event.c)
    where = [Destination.kind == WEBHOOK, Destination.active.is_(True)]
    if destination_ids is not None:
        where.append(Destination.id.in_(destination_ids))
    at = literal(now, type_=UTCDateTime())
    pick = (select(cols[0], Destination.id, cols[1], literal("pending"), literal(0), at, at)
            .select_from(event).join(Destination, and_(*where)).order_by(cols[0], Destination.id))
    res = session.execute(insert(EventDelivery).from_select(
        ["event_row", "destination_id", "lead_id", "status", "attempts", "created_at", "next_attempt_at"], pick))
    return res.rowcount or 0


def has_event(session: Session, lead_id: int, type: str) -> bool:
    return session.scalar(select(exists().where(Event.lead_id == lead_id, Event.type == type)))


# Endpoints ------------------------------------------------------------------------
def configure(session: Session, urls: tuple[str, ...], now: datetime, reconcile: bool = True) -> dict[str, int]:
    """The endpoints this process sends to: {url: destination id}.

    With `reconcile` (the long-running `serve` and `clock`, which own the settings) the endpoints in the
    database become those of the settings: a URL no longer set becomes inactive and its pending deliveries
    are failed ("endpoint removed"), so they do not count as waiting for ever; a URL set again is active again.
    Without it (`run-job`, `events replay`, started perhaps from a shell with other settings) nothing is
    changed: the process sends to the URLs it has that are active.
    """
    known = {d.url: d for d in session.scalars(select(Destination).where(Destination.kind == WEBHOOK))}
    if not reconcile:
        return {url: known[url].id for url in urls if url in known and known[url].active}
    for url in urls:
        if url not in known:
            insert_ignore(session, Destination, dict(kind=WEBHOOK, url=url, active=True, created_at=now))
        elif not known[url].active:
            known[url].active = True
    for url, dest in known.items():
        if url not in urls and dest.active:
            dest.active = False
            session.execute(update(EventDelivery).where(EventDelivery.destination_id == dest.id,
                                                        EventDelivery.status == "pending")
                            .values(status="failed", lease_until=None,
                                    last_error="endpoint removed from EVENT_WEBHOOK_URLS"))
    session.flush()
    return dict(session.execute(select(Destination.url, Destination.id).where(
        Destination.kind == WEBHOOK, Destination.active.is_(True))).all())


# Sending --------------------------------------------------------------------------
MAX_PAGES = 5  # pages of due deliveries read per pass when earlier ones of their leads hold them back


@dataclass(frozen=True)
class Due:
    """One delivery to send now: its row, the event's id and type, and the exact body to send."""

    id: int
    event_id: str
    type: str
    body: dict
    attempts: int
    created_at: datetime  # when this delivery was queued: retries go on until it is 72 hours old


def take_due(session: Session, destination_id: int, now: datetime, limit: int = 200,
             lease_seconds: float = 60) -> list[Due]:
    """Lease the deliveries of this endpoint that are due now, at most one per lead: a lead's delivery waits
    while an earlier one of the same lead is still pending here (delivered or failed for good first).

    Two plain index reads rather than one query with NOT EXISTS: on a table that has just grown (a first
    burst), the planner's statistics are stale and it may run the anti-join row by row against the whole
    table, which took seconds a pass. Due deliveries are read a page at a time, oldest first; each page
    keeps those that are the oldest pending delivery of their lead, and a lead held back by an earlier one
    is left out of the next page, so a few held leads cannot fill every page."""
    d = EventDelivery
    ids: list[int] = []
    held: set[int] = set()
    after = 0
    for _ in range(MAX_PAGES):
        query = (select(d.id, d.lead_id)
                 .where(d.destination_id == destination_id, d.status == "pending", d.next_attempt_at <= now,
                        or_(d.lease_until.is_(None), d.lease_until < now), d.id > after)
                 .order_by(d.id).limit(limit))
        if held:
            query = query.where(or_(d.lead_id.is_(None), d.lead_id.not_in(held)))
        page = session.execute(query).all()
        if not page:
            break
        after = page[-1].id
        leads = {lead_id for _, lead_id in page if lead_id is not None}
        first = dict(session.execute(
            select(d.lead_id, func.min(d.id))
            .where(d.destination_id == destination_id, d.status == "pending", d.lead_id.in_(leads))
            .group_by(d.lead_id)).all()) if leads else {}
        for row_id, lead_id in page:
            if lead_id is None or first.get(lead_id) == row_id:
                ids.append(row_id)
            else:
                held.add(lead_id)
        if len(ids) >= limit or len(page) < limit:
            break
    ids = ids[:limit]
    if not ids:
        return []
    leased = set(session.scalars(
        update(EventDelivery)
        .where(EventDelivery.id.in_(ids), EventDelivery.status == "pending",
               or_(EventDelivery.lease_until.is_(None), EventDelivery.lease_until < now))
        .values(lease_until=now + timedelta(seconds=lease_seconds))
        .returning(EventDelivery.id)))
    rows = session.execute(
        select(EventDelivery.id, Event.event_id, Event.type, Event.body, EventDelivery.attempts,
               EventDelivery.created_at)
        .join(Event, Event.id == EventDelivery.event_row)
        .where(EventDelivery.id.in_(leased)).order_by(EventDelivery.id)).all()
    return [Due(*r) for r in rows]


@dataclass(frozen=True)
class Result:
    """What one attempt came to: delivered, retry (at `retry_at`) or failed for good."""

    id: int
    state: str  # sent | retry | failed
    status: int | None = None
    error: str | None = None
    retry_at: datetime | None = None
    counted: bool = True  # False: never tried (its endpoint was found down in the same pass)


def settle(session: Session, results: list[Result], now: datetime) -> None:
    """Record a batch of attempts in one transaction: the delivered ones in one statement (most of them)."""
    delivered = {}
    for r in results:
        if r.state == "sent" and r.counted:
            delivered.setdefault(r.status, []).append(r.id)
    for status, ids in delivered.items():
        session.execute(update(EventDelivery).where(EventDelivery.id.in_(ids), EventDelivery.status == "pending")
                        .values(lease_until=None, last_status=status, last_error=None, status="sent",
                                delivered_at=now, attempts=EventDelivery.attempts + 1))
    for r in results:
        if r.state == "sent" and r.counted:
            continue
        values = dict(lease_until=None, last_status=r.status, last_error=r.error)
        if r.counted:
            values["attempts"] = EventDelivery.attempts + 1
        if r.state == "sent":
            values.update(status="sent", delivered_at=now)
        elif r.state == "failed":
            values.update(status="failed")
        else:
            values.update(next_attempt_at=r.retry_at)
        session.execute(update(EventDelivery).where(EventDelivery.id == r.id, EventDelivery.status == "pending")
                        .values(**values))


def next_due(session: Session, destination_id: int) -> datetime | None:
    return session.scalar(select(func.min(EventDelivery.next_attempt_at)).where(
        EventDelivery.destination_id == destination_id, EventDelivery.status == "pending"))


def pending_due_by(session: Session, at: datetime) -> int:
    """Deliveries to active endpoints still pending and due by `at` (what `run-job outbox` waits for)."""
    return session.scalar(select(func.count()).select_from(EventDelivery).join(
        Destination, Destination.id == EventDelivery.destination_id).where(
        EventDelivery.status == "pending", EventDelivery.next_attempt_at <= at, Destination.active.is_(True)))


def counts(session: Session) -> dict[str, int]:
    """Deliveries by status: pending, sent, failed."""
    rows = dict(session.execute(select(EventDelivery.status, func.count()).group_by(EventDelivery.status)).all())
    return {status: rows.get(status, 0) for status in ("pending", "sent", "failed")}


def health(session: Session) -> dict[str, int]:
    """`events_pending` and `events_failed` of /healthz."""
    rows = dict(session.execute(select(EventDelivery.status, func.count()).where(
        EventDelivery.status.in_(["pending", "failed"])).group_by(EventDelivery.status)).all())
    return {"events_pending": rows.get("pending", 0), "events_failed": rows.get("failed", 0)}


# Looking and replaying ----------------------------------------------------------------
def deliveries(session: Session, *, failed_only: bool = False, limit: int = 50) -> tuple[list, int]:
    """Deliveries newest first (with their event and endpoint), and how many there are in all."""
    where = [EventDelivery.status == "failed"] if failed_only else []
    rows = session.execute(
        select(EventDelivery, Event.event_id, Event.type, Destination.url)
        .join(Event, Event.id == EventDelivery.event_row).join(Destination, Destination.id == EventDelivery.destination_id)
        .where(*where).order_by(EventDelivery.id.desc()).limit(limit)).all()
    total = session.scalar(select(func.count()).select_from(EventDelivery).where(*where))
    return rows, total


def replay(session: Session, *, since: datetime, now: datetime, type: str | None = None,
           destination_ids: list[int] | None = None) -> int:
    """Queue again every event since `since` (of `type`), to the given active endpoints or all of them.

    The same event ids go out, so a receiver drops what it already has. Returns the deliveries queued.
    """
    where = [Event.occurred_at >= since]
    if type is not None:
        where.append(Event.type == type)
    return _fan_out(session, select(Event.id, Event.lead_id).where(*where).order_by(Event.id), now, destination_ids)
