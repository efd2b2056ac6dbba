"""One lead and one card per person, whatever arrives at once (docs/identity.md).

Concurrent webhooks against the served app: on PostgreSQL they really race (the database's unique
indexes and insert-or-get decide); on SQLite writers take turns, and the same answers must come out.
"""
from __future__ import annotations

import json
import random
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC

import pytest
from sqlalchemy import func, select, text

from models.db import Database
from models.tables import AuditEvent, Lead, OutboxMessage, SlaTimer
from tests.conftest import HANDOFF, wait_until

N = 50


def race(fn, args_list):
    """Run fn(*args) for every args at once (a barrier releases them together); return the answers."""
    barrier = threading.Barrier(len(args_list))

    def go(args):
        barrier.wait()
        return fn(*args)

    with ThreadPoolExecutor(len(args_list)) as pool:
        return list(pool.map(go, args_list))


def leads_and_cards(db):
    with db.begin() as s:
        leads = s.scalars(select(Lead)).all()
        cards = Counter(s.scalars(select(OutboxMessage.lead_id).where(OutboxMessage.kind == "card_post")))
    return leads, cards


def test_one_new_email_in_mixed_case_from_50_webhooks_is_one_lead_one_card(app, db, slack):
    spellings = ["Race.Person@Example.com", "race.person@example.com", "RACE.PERSON@EXAMPLE.COM"]
    answers = race(app.post_leads, [({"email": spellings[i % 3], "score": 90, "name": f"n{i}"},) for i in range(N)])
    assert all(status in (200, 201) for status, _ in answers), answers
    assert sum(body["created"] for _, body in answers) == 1
    assert len({body["id"] for _, body in answers}) == 1
    leads, cards = leads_and_cards(db)
    assert len(leads) == 1 and cards == {leads[0].id: 1}
    app.drain()
    assert len([c for c in slack.calls_to("chat.postMessage") if c.params.get("channel") == HANDOFF]) == 1


def test_one_new_email_in_50_concurrent_batches_is_one_lead_one_card(app, db):
    def batch(i):
        return app.post_leads({"leads": [{"email": "Batch.Person@example.com", "score": 90},
                                         {"email": f"other-{i}@example.com", "score": 10}]})
    answers = race(batch, [(i,) for i in range(N)])
    assert all(status in (200, 201) for status, _ in answers), answers
    leads, cards = leads_and_cards(db)
    assert len(leads) == N + 1
    person = [lead for lead in leads if lead.email_norm == "batch.person@example.com"]
    assert len(person) == 1 and cards == {person[0].id: 1}


def test_one_new_external_id_from_50_webhooks_is_one_lead_one_card(app, db):
    # The same CRM record, its email changing while the requests fly: one lead, one card.
    answers = race(app.post_leads, [({"external_id": "crm-77", "email": f"p{i % 5}@example.com", "score": 95},)
                                    for i in range(N)])
    assert all(status in (200, 201) for status, _ in answers), answers
    leads, cards = leads_and_cards(db)
    assert len(leads) == 1 and leads[0].external_id == "crm-77" and cards == {leads[0].id: 1}


def test_overlapping_batches_of_new_ids_all_succeed_one_lead_and_card_each(app, db):
    rng = random.Random(8)
    ids = [f"ext-{n}" for n in range(60)]
    batches = [rng.sample(ids, 20) for _ in range(100)]
    answers = race(lambda chosen: app.post_leads({"leads": [
        {"external_id": e, "email": f"{e}@Example.com", "score": 80} for e in chosen]}),
        [(b,) for b in batches[:50]])
    answers += race(lambda chosen: app.post_leads({"leads": [
        {"external_id": e, "email": f"{e}@example.COM", "score": 80} for e in chosen]}),
        [(b,) for b in batches[50:]])
    assert [status for status, _ in answers if status not in (200, 201)] == []
    leads, cards = leads_and_cards(db)
    touched = set().union(*map(set, batches))
    assert sorted(lead.external_id for lead in leads) == sorted(touched)
    assert cards == {lead.id: 1 for lead in leads}
    with db.begin() as s:
        created = Counter(s.scalars(select(AuditEvent.lead_id).where(AuditEvent.action == "created")))
        mql = Counter(s.scalars(select(AuditEvent.lead_id).where(AuditEvent.action == "mql")))
    assert set(created.values()) == {1} and set(mql.values()) == {1}


def test_the_database_refuses_a_second_lead_for_an_email(db):
    from datetime import datetime

    from sqlalchemy.exc import IntegrityError

    now = datetime.now(UTC)
    with db.begin() as s:
        s.add(Lead(email="a@x.com", email_norm="a@x.com", score=1, created_at=now, updated_at=now))
    with pytest.raises(IntegrityError):
        with db.begin() as s:
            s.add(Lead(email="A@x.com", email_norm="a@x.com", score=1, created_at=now, updated_at=now))


# The migration that merges the duplicates stored before the unique index ------------------------
@pytest.fixture
def old_db(db_url, tmp_path):
    """A database at revision 0005 (before identity was unique), on the same engine as the suite."""
    from alembic import command

    from models.db import alembic_config

    if db_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'old.db'}"
        database = Database(url)
    else:
        admin = Database(db_url)
        with admin.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS merge_test CASCADE"))
            conn.execute(text("CREATE SCHEMA merge_test"))
        admin.dispose()
        sep = "&" if "?" in db_url else "?"
        url = f"{db_url}{sep}options=-csearch_path%3Dmerge_test"
        database = Database(url)
    with database.engine.begin() as conn:
        cfg = alembic_config(url)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0005")
    yield database
    database.dispose()
    if not db_url.startswith("sqlite"):
        admin = Database(db_url)
        with admin.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS merge_test CASCADE"))
        admin.dispose()


def test_migration_merges_duplicates_into_the_oldest_and_repoints_history(old_db):
    ins = old_db.engine

    def lead(**v):
        base = dict(email=v.get("email", "dup@example.com"), email_norm="dup@example.com", source="other",
                    score=10, attributes=json.dumps({}), created_at="2026-11-01 00:00:00",
                    updated_at="2026-11-01 00:00:00")
        base.update(v)
        cols = ", ".join(base)
        with ins.begin() as c:
            return c.execute(text(f"INSERT INTO leads ({cols}) VALUES ({', '.join(':' + k for k in base)}) "
                                  "RETURNING id"), base).scalar()

    first = lead(name=None, attributes=json.dumps({"a": "1"}))
    second = lead(email="Dup@Example.com", name="Dana", external_id="crm-2", score=70,
                  updated_at="2026-11-03 00:00:00", mql_at="2026-11-03 00:00:00", claim_due="2026-11-03 01:00:00",
                  card_channel=HANDOFF, card_ts="111.222", attributes=json.dumps({"b": "2"}))
    third = lead(email="DUP@example.com", company="Kogyo", score=40, updated_at="2026-11-02 00:00:00")
    other = lead(email="else@example.com", email_norm="else@example.com")
    with ins.begin() as c:
        for lid, action in ((first, "created"), (second, "created"), (second, "mql"), (third, "created")):
            c.execute(text("INSERT INTO audit_events (lead_id, at, actor, action, detail) "
                           "VALUES (:l, '2026-11-01 00:00:00', 'webhook', :a, '{}')"), {"l": lid, "a": action})
        c.execute(text("INSERT INTO sla_timers (lead_id, kind, due_at, step, snoozes) VALUES (:l, 'claim', "
                       "'2026-11-03 01:00:00', 0, 0)"), {"l": second})
        c.execute(text("INSERT INTO sla_timers (lead_id, kind, due_at, step, snoozes) VALUES (:l, 'claim', "
                       "'2026-11-03 01:00:00', 0, 0)"), {"l": third})
        for lid, status in ((second, "sent"), (third, "pending")):
            c.execute(text("INSERT INTO outbox (dedupe_key, kind, lead_id, channel, payload, status, attempts, "
                           "created_at, next_attempt_at) VALUES (:k, 'card_post', :l, :ch, '{}', :st, 0, "
                           "'2026-11-01 00:00:00', '2026-11-01 00:00:00')"),
                      {"k": f"card:{lid}", "l": lid, "ch": HANDOFF, "st": status})

    old_db.migrate()

    with old_db.begin() as s:
        leads = {lead.id: lead for lead in s.scalars(select(Lead))}
        assert sorted(leads) == [first, other]
        kept = leads[first]
        assert (kept.name, kept.company, kept.external_id, kept.score) == ("Dana", "Kogyo", "crm-2", 70)
        assert kept.attributes == {"a": "1", "b": "2"}
        assert (kept.card_ts, kept.mql_at is not None) == ("111.222", True)  # the card that was posted
        assert Counter(s.scalars(select(AuditEvent.lead_id))) == {first: 5}  # 4 re-pointed + "merged"
        merged = s.scalars(select(AuditEvent).where(AuditEvent.action == "merged")).one()
        assert merged.detail["merged_ids"] == [second, third]
        assert [t.lead_id for t in s.scalars(select(SlaTimer))] == [first]
        rows = {r.dedupe_key: r for r in s.scalars(select(OutboxMessage))}
        assert rows[f"card:{second}"].lead_id == first and rows[f"card:{second}"].status == "sent"
        assert rows[f"card:{third}"].status == "failed"  # it would have posted a second card
        assert s.scalar(select(func.count()).select_from(Lead)) == 2


def test_after_the_merge_new_webhooks_find_the_one_lead(make_app, db):
    app = make_app()
    status, body = app.post_leads({"email": "Solo@example.com", "score": 20})
    assert status == 201
    status, again = app.post_leads({"email": "solo@EXAMPLE.com", "score": 90})
    assert status == 200 and again["id"] == body["id"] and again["status"] == "mql"
    assert wait_until(lambda: leads_and_cards(db)[1] == {body["id"]: 1})
