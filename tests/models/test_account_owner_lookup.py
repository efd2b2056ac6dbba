"""The account owner's lookup (models/ownership.py `account_owners`) reads migration 0010's index of claimed
leads' email domains, on SQLite and PostgreSQL, as the statement is really sent: a database matches an indexed
expression only when the query writes it the same way (literals, not bound parameters)."""
from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import event

from models.ownership import account_owners


def test_the_lookup_reads_the_domain_index(db):
    sent = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        sent.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", capture)
    try:
        with db.begin() as session:
            account_owners(session, {"acme.co.jp", "globex.example"}, datetime(2026, 6, 1, tzinfo=UTC))
    finally:
        event.remove(db.engine, "before_cursor_execute", capture)
    statement, parameters = next((s, p) for s, p in sent if "claimed_by" in s)
    with db.engine.connect() as conn:
        cursor = conn.connection.dbapi_connection.cursor()
        if db.engine.dialect.name == "sqlite":
            cursor.execute("EXPLAIN QUERY PLAN " + statement, parameters)
        else:
            cursor.execute("SET enable_seqscan = off")  # an empty table: ask whether the index can serve at all
            cursor.execute("EXPLAIN " + statement, parameters)
        plan = " ".join(str(row) for row in cursor.fetchall())
    assert "ix_leads_email_domain" in plan, plan
