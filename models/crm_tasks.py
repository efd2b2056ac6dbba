"""Outcomes on their way to a CRM's activity history: Salesforce's completed Tasks (docs/salesforce.md).

`queue` is called by models/events.py with each outcome event, in the change's transaction, for every active
Salesforce destination. The writer (outbox/salesforce.py) takes the due ones whose lead's record is known
(`crm_sync` state ready), upserts them by the event's id, and settles each with its own result.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.orm import Session

from models import crm_sync
from models.tables import CrmSync, CrmTask, Event

MAX_ERROR = 1000


@dataclass(frozen=True)
class Taken:
    """A Task leased for one pass: its event (id and body) and the record it goes to."""

    id: int
    lead_id: int
    event_id: str
    body: dict
    who_id: str
    attempts: int


def queue(session: Session, rows: list[tuple[int, int]], destination_ids: list[int], now: datetime) -> None:
    """A Task to write for each (event row, lead id) at each Salesforce destination, in the event's transaction."""
    if rows and destination_ids:
        session.execute(insert(CrmTask), [
            {"destination_id": d, "lead_id": lead_id, "event_row": event_row, "status": "pending", "attempts": 0,
             "created_at": now, "next_attempt_at": now} for event_row, lead_id in rows for d in destination_ids])


def take(session: Session, destination_id: int, now: datetime, limit: int,
               lease_seconds: float = 60) -> list[Taken]:
    """Lease due Tasks whose lead's record is known, oldest first, with their event and record."""
    rows = session.execute(
        select(CrmTask.id, CrmTask.lead_id, CrmTask.attempts, Event.event_id, Event.body, CrmSync.record_id)
        .join(Event, Event.id == CrmTask.event_row)
        .join(CrmSync, and_(CrmSync.lead_id == CrmTask.lead_id, CrmSync.destination_id == CrmTask.destination_id))
        .where(CrmTask.destination_id == destination_id, CrmTask.next_attempt_at <= now,
               or_(CrmTask.lease_until.is_(None), CrmTask.lease_until < now),
               CrmSync.state == "ready", CrmSync.record_id.is_not(None))
        .order_by(CrmTask.next_attempt_at, CrmTask.id).limit(limit)).all()
    if not rows:
        return []
    leased = set(session.scalars(
        update(CrmTask).where(CrmTask.id.in_([r.id for r in rows]),
                              or_(CrmTask.lease_until.is_(None), CrmTask.lease_until < now))
        .values(lease_until=now + timedelta(seconds=lease_seconds)).returning(CrmTask.id)))
    return [Taken(r.id, r.lead_id, r.event_id, r.body, r.record_id, r.attempts) for r in rows if r.id in leased]


def written(session: Session, task_id: int, record_id: str | None, now: datetime) -> None:
    session.execute(update(CrmTask).where(CrmTask.id == task_id).values(
        status="written", record_id=record_id, next_attempt_at=None, lease_until=None, written_at=now,
        last_error=None))


def refused(session: Session, task_id: int, why: str, now: datetime) -> None:
    session.execute(update(CrmTask).where(CrmTask.id == task_id).values(
        status="refused", next_attempt_at=None, lease_until=None, attempts=CrmTask.attempts + 1,
        last_error=why[:MAX_ERROR]))


def retry(session: Session, ids: list[int], at: datetime, error: str, count: bool = True) -> None:
    if not ids:
        return
    values = dict(next_attempt_at=at, lease_until=None, last_error=error[:MAX_ERROR])
    if count:
        values["attempts"] = CrmTask.attempts + 1
    session.execute(update(CrmTask).where(CrmTask.id.in_(ids)).values(**values))


def due_by(session: Session, destination_id: int, at: datetime) -> int:
    """Records and Tasks due by `at` (a Task waiting for its lead's record is not due)."""
    tasks = session.scalar(
        select(func.count()).select_from(CrmTask)
        .join(CrmSync, and_(CrmSync.lead_id == CrmTask.lead_id, CrmSync.destination_id == CrmTask.destination_id))
        .where(CrmTask.destination_id == destination_id, CrmTask.next_attempt_at <= at, CrmSync.state == "ready"))
    return crm_sync.due_by(session, destination_id, at) + tasks


def next_due(session: Session, destination_id: int) -> datetime | None:
    records = crm_sync.next_due(session, destination_id)
    tasks = session.scalar(select(func.min(CrmTask.next_attempt_at)).where(CrmTask.destination_id == destination_id))
    return min((x for x in (records, tasks) if x is not None), default=None)


def status(session: Session, destination_id: int | None, now: datetime) -> dict:
    """Where the write-back stands (`salesforce status`, /healthz): records found, not found and refused with
    the last error of each kind, records and Tasks pending (`tasks_waiting`: Tasks of leads whose record is not
    found, until their next change), the oldest pending age."""
    base = crm_sync.status(session, destination_id, now)
    if destination_id is None:
        return {**base, "found": 0, "tasks_pending": 0, "tasks_waiting": 0, "tasks_written": 0, "tasks_refused": 0,
                "last_not_found": None, "last_refused": None, "last_retry": None, "last_task_refused": None}
    sync = select(func.count()).select_from(CrmSync).where(CrmSync.destination_id == destination_id)

    def last(*where) -> str | None:
        return session.scalar(select(CrmSync.last_error).where(CrmSync.destination_id == destination_id, *where)
                              .order_by(CrmSync.updated_at.desc()).limit(1))

    tasks = dict(session.execute(select(CrmTask.status, func.count()).where(CrmTask.destination_id == destination_id)
                                 .group_by(CrmTask.status)).all())
    # A pending Task whose lead's record is not found waits for the lead's next change, not for Salesforce:
    # counted apart, so that "pending" falls to 0 once Salesforce has everything it can take.
    record_known = and_(CrmSync.lead_id == CrmTask.lead_id, CrmSync.destination_id == CrmTask.destination_id,
                        CrmSync.state != "not_found")
    due = select(CrmTask).join(CrmSync, record_known).where(CrmTask.destination_id == destination_id,
                                                             CrmTask.status == "pending").subquery()
    tasks_due = session.scalar(select(func.count()).select_from(due))
    oldest_task = session.scalar(select(func.min(due.c.created_at)))
    oldest = base["oldest_pending_seconds"]
    if oldest_task is not None:
        oldest = max(oldest or 0, int((now - oldest_task).total_seconds()))
    return {**base, "oldest_pending_seconds": oldest,
            "found": session.scalar(sync.where(CrmSync.state == "ready")),
            "tasks_pending": tasks_due, "tasks_waiting": tasks.get("pending", 0) - tasks_due,
            "tasks_written": tasks.get("written", 0),
            "tasks_refused": tasks.get("refused", 0),
            "last_not_found": last(CrmSync.state == "not_found"),
            "last_refused": last(CrmSync.state == "ready", CrmSync.next_attempt_at.is_(None), CrmSync.attempts > 0),
            "last_retry": last(CrmSync.next_attempt_at.is_not(None), CrmSync.attempts > 0),
            "last_task_refused": session.scalar(select(CrmTask.last_error).where(
                CrmTask.destination_id == destination_id, CrmTask.status == "refused")
                .order_by(CrmTask.id.desc()).limit(1))}
