"""The click queue's rows: recorded before Slack is answered, taken in order, marked done when applied.

What a click does is decided by handlers/clicks.py; this module only stores and hands out the rows. See
docs/http.md (clicks) for why a click is queued rather than worked on where it arrived.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, func, select, update
from sqlalchemy.orm import Session

from models.requests import KEEP
from models.tables import Click


@dataclass(frozen=True)
class Pending:
    id: int
    action_id: str
    user_id: str
    body: dict
    request_id: str | None
    received_at: datetime


def record(where: Session | Connection, *, request_key: str, action_id: str, user_id: str, body: dict,
           request_id: str | None, now: datetime, applied: bool = False) -> bool:
    """Keep a click to apply (or, `applied`, one being applied in this transaction); False when this request
    was recorded before (Slack sent it again). One statement, built once per dialect: on PostgreSQL this is
    all a click's answer waits for (handlers/clicks.py)."""
    conn = where.connection() if isinstance(where, Session) else where
    return conn.execute(_record_statement(conn.dialect.name), {
        "request_key": request_key, "action_id": action_id, "user_id": user_id, "body": body,
        "request_id": request_id, "received_at": now, "done_at": now if applied else None}).first() is not None


@functools.cache
def _record_statement(dialect: str):
    from sqlalchemy.dialects import postgresql, sqlite

    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = Click.__table__
    return insert(table).on_conflict_do_nothing(index_elements=["request_key"]).returning(table.c.id)


def take(session: Session, limit: int) -> list[Pending]:
    """The oldest clicks not yet applied, locked for this transaction (another process's are skipped)."""
    rows = session.execute(select(Click.id, Click.action_id, Click.user_id, Click.body, Click.request_id,
                                  Click.received_at)
                           .where(Click.done_at.is_(None)).order_by(Click.id).limit(limit)
                           .with_for_update(skip_locked=True)).all()
    return [Pending(*row) for row in rows]


def done(session: Session, ids: list[int], now: datetime) -> None:
    if ids:
        session.execute(update(Click).where(Click.id.in_(ids)).values(done_at=now)
                        .execution_options(synchronize_session=False))


def pending(session: Session) -> tuple[int, datetime | None]:
    """How many clicks wait to be applied, and when the oldest of them came."""
    count, oldest = session.execute(select(func.count(), func.min(Click.received_at))
                                    .where(Click.done_at.is_(None))).one()
    return count, oldest


def prune(session: Session, now: datetime) -> int:
    """Forget applied clicks older than a day (Slack retries within minutes); pending ones are never pruned."""
    return session.execute(delete(Click).where(Click.done_at < now - KEEP)).rowcount
