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
    # The index alone answers (migration 0011): no row of the table is read per lead of the company, and each
    # company is one probe, newest claim first, stopped at the first (PostgreSQL's Limit per wanted domain).
    if db.engine.dialect.name == "sqlite":
        assert "SEARCH leads USING COVERING INDEX ix_leads_email_domain" in plan, plan
        assert "CORRELATED SCALAR SUBQUERY" in plan, plan
    else:
        assert "Index Only Scan Backward using ix_leads_email_domain" in plan, plan
        assert "Limit" in plan and "Nested Loop" in plan, plan


def test_each_company_is_owned_by_whoever_claimed_its_latest_lead_in_the_window(db):
    def lead(email: str, rep: str | None, claimed: datetime | None, team: str | None = None) -> dict:
        return {"email": email, "email_norm": email, "source": "web", "score": 50, "attributes": {},
                "created_at": NOW, "updated_at": NOW, "mql_at": NOW, "claimed_at": claimed, "claimed_by": rep,
                "team": team}

    june = datetime(2026, 6, 10, tzinfo=UTC)
    rows = [lead("a@acme.co.jp", "UOLD", datetime(2026, 6, 2, tzinfo=UTC)),
            lead("b@acme.co.jp", "UNEW", june, "field"),                           # the latest claim
            lead("c@acme.co.jp", None, None),                                      # not claimed: not an owner
            lead("d@globex.example", "UFIRST", june),
            lead("e@globex.example", "USECOND", june, "inside"),                   # same instant: the later lead
            lead("f@initech.example", "UGONE", datetime(2026, 5, 1, tzinfo=UTC)),  # before the window
            # a company whose many leads are all before its latest claim
            *(lead(f"p{i}@umbrella.example", f"U{i:04d}", datetime(2026, 6, 1, 1, tzinfo=UTC)) for i in range(300)),
            lead("last@umbrella.example", "ULAST", datetime(2026, 6, 19, tzinfo=UTC))]
    with db.begin() as session:
        session.execute(insert(Lead), rows)
    wanted = {"acme.co.jp", "globex.example", "initech.example", "umbrella.example", "nobody.example"}
    with db.begin() as session:
        owners = account_owners(session, wanted, datetime(2026, 6, 1, tzinfo=UTC))
    assert {domain: (o.user, o.team) for domain, o in owners.items()} == {
        "acme.co.jp": ("UNEW", "field"), "globex.example": ("USECOND", "inside"), "umbrella.example": ("ULAST", None)}
    with db.begin() as session:
        assert account_owners(session, set(), NOW) == {}
