"""The durable outbox: rows committed with the change that caused them.

What a row means for Slack is decided by the sender (outbox/), which renders
it from the lead as it stands when it is sent. This module only stores,
leases and settles rows, and lets people see and re-queue the ones that
failed (`python bot.py outbox list|retry`, `/healthz`).
"""
from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import Row, func, or_, select, update
from sqlalchemy.orm import Session

from models import deferred
from models.db import insert_ignore, insert_ignore_many
from models.tables import OutboxMessage


class Kind(StrEnum):
    CARD_POST = "card_post"      # the handoff card for a lead
    CARD_UPDATE = "card_update"  # re-render the card in place
    NOTICE = "notice"            # a private (ephemeral) message: payload user, key, params
    FEEDBACK = "feedback"        # the lead's feedback post to marketing
    HOME = "home"                # publish a user's App Home: payload user
    REPORT = "report"            # a /kpi report shared to a channel: payload kind, label, as_of, user
    DIGEST = "digest"            # the weekly digest: payload label, as_of
    CHART = "chart"              # the weekly digest's chart (an upload): payload label, as_of
    RETRO = "retro"              # the monthly retro agenda: payload label, as_of
    REMINDER = "reminder"        # an SLA nag, escalation or offer: payload action, step, user
    HANDOVER_CARD = "handover_card"  # the card of an SQL handed to the next team (docs/routing.md)
    REDACT = "redact"            # a sent message about an erased lead, edited to show no personal data: payload
                                 # channel, ts, of (the kind it was), docs/privacy.md


def enqueue(session: Session, *, kind: Kind, dedupe_key: str, now: datetime, channel: str | None = None,
            lead_id: int | None = None, payload: dict | None = None) -> bool:
    """Queue one message unless one with the same key exists. True when queued (inside a deferring batch: when
    the batch has not queued that key yet; the key may still exist in the table, and then it is skipped)."""
    row = dict(dedupe_key=dedupe_key, kind=str(kind), lead_id=lead_id, channel=channel, payload=payload or {},
               status="pending", attempts=0, created_at=now, next_attempt_at=now)
    batch = deferred.of(session)
    if batch is not None:
        rows = batch.part("outbox", dict, _write_deferred)
        return rows.setdefault(dedupe_key, row) is row
    session.flush()  # the lead it refers to must exist before this row
    return insert_ignore(session, OutboxMessage, row)


def _write_deferred(session: Session, rows: dict[str, dict]) -> None:
    if rows:
        insert_ignore_many(session, OutboxMessage, list(rows.values()))


def enqueue_many(session: Session, kind: Kind, rows: list[dict], now: datetime, count: bool = True) -> int | None:
    """`enqueue` for many rows of one kind (each a dict of dedupe_key, channel, lead_id and payload) in one
    statement, as a batch of new MQLs needs; a row whose key exists is skipped. Returns how many were queued
    (`count`; else None, and the statement returns nothing, which spares the driver reading a row per insert)."""
    if not rows:
        return 0
    session.flush()
    return insert_ignore_many(session, OutboxMessage, count=count, rows=[dict(
        dedupe_key=r["dedupe_key"], kind=str(kind), lead_id=r.get("lead_id"), channel=r.get("channel"),
        payload=r.get("payload") or {}, status="pending", attempts=0, created_at=now, next_attempt_at=now)
        for r in rows])


def due(session: Session, now: datetime, limit: int = 200, held_channels: Collection[str] = (),
        channel_kinds: Collection[str] = (), held_kinds: Collection[str] = ()) -> list[Row]:
    """(id, kind, channel) of pending rows whose time has come and that nobody holds, oldest first.

    Rows the sender may not send now are left out, so that a channel with a long queue cannot hide
    another's rows behind it: those of `channel_kinds` in `held_channels`, and those of `held_kinds`.
    """
    m = OutboxMessage
    query = (select(m.id, m.kind, m.channel)
             .where(m.status == "pending", m.next_attempt_at <= now, or_(m.lease_until.is_(None), m.lease_until < now)))
    if held_channels and channel_kinds:
        query = query.where(or_(m.kind.not_in(channel_kinds), m.channel.is_(None), m.channel.not_in(held_channels)))
    if held_kinds:
        query = query.where(m.kind.not_in(held_kinds))
    return list(session.execute(query.order_by(m.id).limit(limit)))


def lease(session: Session, row_id: int, now: datetime, seconds: float = 60) -> bool:
    """Take a row for sending; only one process can hold it at a time."""
    res = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == row_id, OutboxMessage.status == "pending",
               or_(OutboxMessage.lease_until.is_(None), OutboxMessage.lease_until < now))
        .values(lease_until=now + timedelta(seconds=seconds)))
    return res.rowcount == 1


def mark_sent(session: Session, row_id: int, now: datetime, ts: str | None = None, note: str | None = None,
              channel: str | None = None, detail: dict | None = None) -> None:
    """`ts` and `channel`: where Slack put the message (a DM's D… channel), for editing it later; `detail`: what
    it showed that an erasure may have to take back (the digest's overdue leads)."""
    session.execute(update(OutboxMessage).where(OutboxMessage.id == row_id).values(
        status="sent", sent_at=now, result_ts=ts, result_channel=channel, result_detail=detail, lease_until=None,
        last_error=note, attempts=OutboxMessage.attempts + 1))


def retry_later(session: Session, row_id: int, at: datetime, error: str | None, count_attempt: bool = True) -> None:
    values = dict(next_attempt_at=at, lease_until=None, last_error=error)
    if count_attempt:
        values["attempts"] = OutboxMessage.attempts + 1
    session.execute(update(OutboxMessage).where(OutboxMessage.id == row_id).values(**values))


def mark_failed(session: Session, row_id: int, error: str) -> None:
    session.execute(update(OutboxMessage).where(OutboxMessage.id == row_id).values(
        status="failed", lease_until=None, last_error=error, attempts=OutboxMessage.attempts + 1))


def counts(session: Session, since_id: int = 0) -> dict[str, int]:
    rows = session.execute(select(OutboxMessage.status, func.count()).where(OutboxMessage.id > since_id)
                           .group_by(OutboxMessage.status))
    out = {"pending": 0, "sent": 0, "failed": 0}
    out.update(dict(rows.all()))
    return out


def pending_card_post(session: Session, lead_id: int) -> bool:
    return card_post_due(session, lead_id) is not None


def card_post_due(session: Session, lead_id: int) -> datetime | None:
    """When the lead's card post is next tried, while it is still pending; None once it is sent or failed."""
    return session.scalar(select(OutboxMessage.next_attempt_at).where(
        OutboxMessage.lead_id == lead_id, OutboxMessage.kind == Kind.CARD_POST,
        OutboxMessage.status == "pending").limit(1))


def health(session: Session, now: datetime) -> dict[str, int | None]:
    """What /healthz shows: rows waiting, failed for good, retrying after an error, and the oldest wait."""
    c = counts(session)
    retrying = session.scalar(select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.status == "pending", OutboxMessage.attempts > 0))
    oldest = session.scalar(select(OutboxMessage.created_at).where(OutboxMessage.status == "pending")
                            .order_by(OutboxMessage.created_at).limit(1))
    age = None if oldest is None else max(0, int((now - oldest).total_seconds()))
    return {"pending": c["pending"], "failed": c["failed"], "retrying": retrying, "oldest_pending_seconds": age}


def unsent(session: Session, failed_only: bool = False, limit: int = 50) -> tuple[list[OutboxMessage], int]:
    """Rows not delivered (failed, or also still pending), newest first, and how many there are in all."""
    status = ["failed"] if failed_only else ["failed", "pending"]
    rows = list(session.scalars(select(OutboxMessage).where(OutboxMessage.status.in_(status))
                                .order_by(OutboxMessage.id.desc()).limit(limit)))
    total = session.scalar(select(func.count()).select_from(OutboxMessage)
                           .where(OutboxMessage.status.in_(status)))
    return rows, total


def statuses(session: Session, ids: list[int]) -> dict[int, str]:
    """The status of each of these rows that exists."""
    return dict(session.execute(select(OutboxMessage.id, OutboxMessage.status).where(OutboxMessage.id.in_(ids))).all())


def failed_ids(session: Session) -> list[int]:
    return list(session.scalars(select(OutboxMessage.id).where(OutboxMessage.status == "failed")
                                .order_by(OutboxMessage.id)))


def requeue(session: Session, ids: list[int], now: datetime) -> int:
    """Put failed rows back to pending, due now, with their attempts reset (the last error stays until the
    next attempt replaces it). Rows that are not failed are left alone; returns how many were re-queued."""
    if not ids:
        return 0
    res = session.execute(update(OutboxMessage).where(OutboxMessage.id.in_(ids), OutboxMessage.status == "failed")
                          .values(status="pending", attempts=0, next_attempt_at=now, lease_until=None))
    return res.rowcount


def queue_home(session: Session, user: str, now: datetime, token: str) -> bool:
    """Republish one person's App Home (rendered when sent, so it shows the latest state)."""
    return enqueue(session, kind=Kind.HOME, dedupe_key=f"home:{user}:{token}", now=now, channel=user,
                   payload={"user": user})
