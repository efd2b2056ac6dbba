"""Slack requests already handled: a retried delivery is recognised and dropped."""
from __future__ import annotations

import random
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from models.db import insert_ignore
from models.tables import ProcessedRequest

KEEP = timedelta(days=1)  # Slack retries within minutes; a day is plenty


def first_time(session: Session, key: str, now: datetime) -> bool:
    """Record the request; False when it was seen before."""
    if random.random() < 0.01:
        prune(session, now)
    return insert_ignore(session, ProcessedRequest, {"key": key, "received_at": now})


def prune(session: Session, now: datetime) -> int:
    return session.execute(delete(ProcessedRequest).where(ProcessedRequest.received_at < now - KEEP)).rowcount
