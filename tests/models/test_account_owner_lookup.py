"""The account owner's lookup (models/ownership.py `account_owners`) reads migration 0010's index of claimed
leads' email domains (made covering by 0011), on SQLite and PostgreSQL, as the statement is really sent: a database matches an indexed
expression only when the query writes it the same way (literals, not bound parameters). The table holds a few
thousand claimed leads from as many companies, all inside the window, with fresh statistics, so the plan is the
one a real database picks (on an empty table PostgreSQL may read any index)."""
from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import event, insert, text

from models.ownership import account_owners
from models.tables import Lead

NOW = datetime(2026, 6, 20, tzinfo=UTC)


def _claimed_leads(db, count: int) -> None:
    rows = [{"email": f"p{i}@company{i}.example", "email_norm": f"p{i}@company{i}.example", "source": "web",
             "score": 50, "attributes": {}, "created_at": NOW, "updated_at": NOW, "mql_at": NOW,
             "claimed_at": NOW, "claimed_by": f"U{i % 20:08d}"} for i in range(count)]
    with db.begin() as session:
        session.execute(insert(Lead), rows)
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE leads" if db.engine.dialect.name == "postgresql" else "ANALYZE"))


def test_the_lookup_reads_the_domain_index(db):
    _claimed_leads(db, 3000)
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
            cursor.execute("EXPLAIN " + statement, parameters)
        plan = " ".join(str(row) for row in cursor.fetchall())
    # The index alone answers (migration 0011): no row of the table is read per lead of the company.
    covering = "COVERING INDEX ix_leads_email_domain" if db.engine.dialect.name == "sqlite" else \
        "Index Only Scan using ix_leads_email_domain"
    assert covering in plan, plan
