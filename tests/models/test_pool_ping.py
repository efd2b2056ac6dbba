"""A pooled PostgreSQL connection that went stale while resting is replaced before use (models/db.py
`ping_after_idle`), without a ping on every checkout of a busy pool."""
from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from models import db as dbmod
from models.db import Database


@pytest.fixture
def pg(db):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's pool")
    fresh = Database(db.url, wait_seconds=2)
    yield fresh
    fresh.dispose()


def kill_pooled_connection(database: Database) -> None:
    """End, from outside, the server process behind the pool's one resting connection."""
    with database.engine.connect() as conn:
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
    killer = create_engine(database.engine.url)
    try:
        with killer.begin() as conn:
            assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
    finally:
        killer.dispose()


def test_a_rested_connection_that_went_stale_is_replaced_before_use(pg, monkeypatch):
    monkeypatch.setattr(dbmod, "PING_AFTER_IDLE", 0.0)  # every connection counts as rested
    kill_pooled_connection(pg)
    assert pg.ping()  # checked out, found dead by the ping, replaced: the caller never sees it


def test_a_connection_just_used_is_not_pinged_so_a_break_meets_the_statement(pg, monkeypatch):
    monkeypatch.setattr(dbmod, "PING_AFTER_IDLE", 3600.0)  # every connection counts as just used
    kill_pooled_connection(pg)
    with pytest.raises(DBAPIError) as caught:
        pg.ping()
    assert caught.value.connection_invalidated  # and the pool drops it (and every older one) for the next
    assert pg.ping()
