"""Personal data benchmark (docs/privacy.md): erasing one person, and the retention job, among 1,000,000 leads.

    python -m bench.privacy [TOTAL]      (SQLite; BENCH_POSTGRES_URL adds PostgreSQL)

Writes its section of BENCHMARKS.md (replacing the one there); `make bench` includes it too.

TOTAL leads (default 1,000,000) are filled with core bulk inserts, most of them MQLs with a card, most of those
claimed; every card's post is in the outbox and every lead's event delivered to one endpoint, as an installation
keeps them (`history`). PEOPLE of them, spread over the id range, have what a person who went through Handoff has
elsewhere: audit rows, events (bodies carrying their email and name), their card's post, a sent reminder DM (kept
with its D… conversation) and a sent feedback post. STALE others (one in a hundred) had their last activity more
than RETENTION_DAYS ago, each with a card, two audit rows and a sent reminder DM; the rest were active in the
last year.

*Erase*: each of the PEOPLE erased by email, one at a time, as `privacy erase` does (`erase_person` in one
`Database.transact`, the commit included in the time). *Retention*: `retention_batch` in a transaction of its
own until it finds nothing stale, as the `retention` job does (jobs/scheduler.py). After each, what was done is
read back: every lead erased, and the Slack edits it had to queue queued.
"""
from __future__ import annotations

import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from bench.common import filled_database, fresh_postgres, fresh_sqlite, machine, put_section, revision
from models import privacy
from models.db import Database
from models.tables import AuditEvent, Destination, Event, EventDelivery, Lead, OutboxMessage

NOW = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)  # Monday 12:00 in Tokyo
RETENTION_DAYS = 365
PEOPLE = 20  # erased one at a time
STALE = 10_000  # stale leads (among 1,000,000: one in a hundred), erased by retention
CHUNK = 20_000
ERASE_AIM = 1.0  # seconds for one person, commit included
RETENTION_AIM = 1_000  # leads erased per second by the retention job
# PostgreSQL writes the load out after it (its checkpoints, spread over tens of seconds on a default server),
# competing for the same two cores and disk as the measures: those start this long after it.
SETTLE_S = 60
SOURCES = ("webinar", "ads", "organic", "event", "partner")
TITLES = ("CEO", "CTO", "Head of IT", "Marketing Manager", "Engineer")
EMPTY = dict.fromkeys(("external_id", "mql_at", "claim_due", "contact_due", "claimed_at", "claimed_by",
                       "contacted_at", "team", "card_channel", "card_ts"))  # every row carries every column


def layout(total: int) -> tuple[list[int], set[int]]:
    """The ids of the people erased one at a time (spread over the range) and of the stale leads."""
    people = [1 + k * total // PEOPLE + total // (2 * PEOPLE) for k in range(PEOPLE)]
    step = max(2, total // STALE)
    stale = {i + 1 for i in range(37 % step, total, step)} - set(people)
    return people, stale


def email_of(i: int) -> str:
    return f"Lead{i}@Bench.example"  # as marketing sent it; email_norm is the lower-cased


def ts_of(at: datetime, n: int) -> str:
    return f"{at.timestamp():.0f}.{n % 1_000_000:06d}"


def fill(db: Database, total: int) -> None:
    rng = random.Random(17)
    people, stale = layout(total)
    people_set = set(people)
    leads_t = Lead.__table__
    with db.engine.begin() as conn:
        conn.execute(Destination.__table__.insert(), [{"kind": "webhook", "url": "https://events.bench.example/in",
                                                       "active": True, "created_at": NOW - timedelta(days=800)}])
        for first in range(0, total, CHUNK):
            leads, audits, outbox, events = [], [], [], []
            for i in range(first + 1, min(total, first + CHUNK) + 1):
                old = i in stale
                created = NOW - timedelta(days=400 + rng.random() * 600) if old else \
                    NOW - timedelta(days=3 + rng.random() * 357)
                email = email_of(i)
                score = rng.randint(20, 100)
                row = dict(EMPTY, id=i, email=email, email_norm=email.lower(), name=f"Person {i}",
                           company=f"Company {i % 50_000}", title=TITLES[i % len(TITLES)], score=score,
                           source=SOURCES[i % len(SOURCES)], created_at=created, updated_at=created,
                           attributes={"employees": str(rng.choice((50, 300, 2000))), "region": "kanto"})
                if i % 4:
                    row["external_id"] = f"crm-{i}"
                if score >= 40 or old or i in people_set:  # most are MQLs; every stale lead and person has a card
                    row.update(mql_at=created, claim_due=created + timedelta(hours=4),
                               contact_due=created + timedelta(hours=9), team="inside-sales",
                               card_channel="C0HANDOFF", card_ts=ts_of(created, i))
                    if rng.random() < 0.7:
                        claimed = created + timedelta(minutes=rng.randint(5, 240))
                        row.update(claimed_at=claimed, claimed_by=f"U0REP{i % 30:02d}", updated_at=claimed)
                        if rng.random() < 0.6:
                            row["contacted_at"] = row["updated_at"] = claimed + timedelta(hours=rng.randint(1, 48))
                leads.append(row)
                if old:
                    audits += related_audits(row, 2)
                    outbox.append(reminder(row))
                elif i in people_set:
                    audits += related_audits(row, 5)
                    outbox += [card_post(row), reminder(row), feedback(row)]
                    events += related_events(row, 3)
            conn.execute(leads_t.insert(), leads)
            if audits:
                conn.execute(AuditEvent.__table__.insert(), audits)
            if outbox:
                conn.execute(OutboxMessage.__table__.insert(), outbox)
            for ev in events:  # a few: each with its delivery to the endpoint, already sent
                row_id = conn.execute(Event.__table__.insert().returning(Event.id), ev).scalar_one()
                conn.execute(EventDelivery.__table__.insert(), {
                    "event_row": row_id, "destination_id": 1, "lead_id": ev["lead_id"], "status": "sent",
                    "attempts": 1, "created_at": ev["occurred_at"], "next_attempt_at": ev["occurred_at"],
                    "delivered_at": ev["occurred_at"], "last_status": 200})
        history(conn, people)
    if db.engine.dialect.name == "postgresql":
        # As autovacuum leaves the tables after a bulk load: statistics and the visibility map.
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("SELECT setval(pg_get_serial_sequence('leads', 'id'), (SELECT max(id) FROM leads))")
            for table in ("leads", "audit_events", "outbox", "events", "event_deliveries"):
                conn.exec_driver_sql(f"VACUUM ANALYZE {table}")


def history(conn, people: list[int]) -> None:
    """What every other lead left behind, as an installation keeps it (nothing prunes the outbox, events or
    deliveries): its card's post (sent), and its event (the body the lead with its email, as events carry it)
    delivered to the endpoint. Made by the database (INSERT … SELECT), a row per lead."""
    others = ", ".join(str(i) for i in people)
    empty = "CAST('{}' AS JSON)" if conn.dialect.name == "postgresql" else "'{}'"
    conn.exec_driver_sql(
        "INSERT INTO outbox (dedupe_key, kind, lead_id, channel, payload, status, attempts, created_at, "
        "next_attempt_at, sent_at, result_ts, result_channel) SELECT 'card:' || id, 'card_post', id, card_channel, "
        f"{empty}, 'sent', 1, created_at, created_at, created_at, card_ts, card_channel FROM leads "
        f"WHERE card_ts IS NOT NULL AND id NOT IN ({others}) ORDER BY id")
    body = ("'{\"type\": \"lead.created\", \"data\": {\"lead\": {\"id\": ' || id || ', \"email\": \"' || email "
            "|| '\", \"name\": \"' || name || '\"}}}'")
    if conn.dialect.name == "postgresql":
        body = f"CAST({body} AS JSON)"
    conn.exec_driver_sql(
        "INSERT INTO events (event_id, type, lead_id, occurred_at, body) "
        f"SELECT 'evt_bg' || id, 'lead.created', id, created_at, {body} FROM leads "
        f"WHERE id NOT IN ({others}) ORDER BY id")
    conn.exec_driver_sql(
        "INSERT INTO event_deliveries (event_row, destination_id, lead_id, status, attempts, created_at, "
        "next_attempt_at, delivered_at, last_status) SELECT id, 1, lead_id, 'sent', 1, occurred_at, occurred_at, "
        "occurred_at, 200 FROM events WHERE substr(event_id, 1, 6) = 'evt_bg' ORDER BY id")


def related_audits(lead: dict, n: int) -> list[dict]:
    actions = ("created", "mql", "claimed", "contacted", "note")
    at = lead["created_at"]
    return [{"lead_id": lead["id"], "at": at + timedelta(minutes=k), "actor": lead["claimed_by"] or "webhook",
             "action": actions[k % len(actions)],
             "detail": {"email": lead["email"], "name": lead["name"]} if k % 2 == 0 else {"score": lead["score"]}}
            for k in range(n)]


def sent(lead: dict, key: str, kind: str, channel: str, payload: dict, result_channel: str, n: int) -> dict:
    at = lead["created_at"] + timedelta(hours=n)
    return {"dedupe_key": key, "kind": kind, "lead_id": lead["id"], "channel": channel, "payload": payload,
            "status": "sent", "attempts": 1, "created_at": at, "next_attempt_at": at, "sent_at": at,
            "result_ts": ts_of(at, lead["id"]), "result_channel": result_channel}


def card_post(lead: dict) -> dict:
    return sent(lead, f"card:{lead['id']}", "card_post", "C0HANDOFF", {}, "C0HANDOFF", 0)


def reminder(lead: dict) -> dict:
    """A reminder DM to a rep: queued to the user id, sent into its D… conversation (kept as result_channel)."""
    user = lead["claimed_by"] or "U0REP00"
    return sent(lead, f"reminder:{lead['id']}:claim:0", "reminder", user,
                {"action": "remind", "step": 0, "user": user}, "D" + user[1:], 1)


def feedback(lead: dict) -> dict:
    return sent(lead, f"feedback:{lead['id']}:lost:1", "feedback", "C0MKT",
                {"outcome": "lost", "note": f"{lead['name']} of {lead['company']}: no budget"}, "C0MKT", 2)


def related_events(lead: dict, n: int) -> list[dict]:
    types = ("lead.created", "lead.mql", "lead.claimed")
    out = []
    for k in range(n):
        at = lead["created_at"] + timedelta(minutes=k)
        body = {"type": types[k % 3], "timestamp": at.isoformat().replace("+00:00", "Z"),
                "data": {"lead": {"id": lead["id"], "email": lead["email"], "name": lead["name"],
                                  "company": lead["company"], "score": lead["score"]}}}
        out.append({"event_id": f"evt_bench{lead['id']}_{k}", "type": types[k % 3], "lead_id": lead["id"],
                    "occurred_at": at, "body": body})
    return out


def queued_by_kind(db: Database) -> Counter:
    with db.begin() as s:
        return Counter(dict(s.execute(select(OutboxMessage.kind, func.count()).where(OutboxMessage.status == "pending")
                                      .group_by(OutboxMessage.kind)).all()))


def check_person(db: Database, lead_id: int) -> dict:
    """What one erasure left: the lead erased, its texts without the person, its Slack edits queued."""
    email = email_of(lead_id).lower()
    with db.begin() as s:
        lead = s.get(Lead, lead_id)
        assert lead.erased_at is not None and lead.email_norm.startswith("erased:"), lead_id
        assert lead.email == "" and lead.name is None and lead.external_id is None, lead_id
        kinds = Counter(s.scalars(select(OutboxMessage.kind).where(OutboxMessage.lead_id == lead_id,
                                                                   OutboxMessage.status == "pending")))
        assert kinds["card_update"] == 1 and s.scalar(select(func.count()).where(
            OutboxMessage.dedupe_key == f"card:{lead_id}:erased")) == 1, (lead_id, kinds)
        assert kinds["redact"] == 2, (lead_id, kinds)  # the reminder DM and the feedback post
        texts = [str(d) for d in s.scalars(select(AuditEvent.detail).where(AuditEvent.lead_id == lead_id))]
        texts += [str(b) for b in s.scalars(select(Event.body).where(Event.lead_id == lead_id))]
        texts += [str(p) for p in s.scalars(select(OutboxMessage.payload).where(OutboxMessage.lead_id == lead_id))]
        assert not [t for t in texts if email in t.lower() or f"person {lead_id}'" in t.lower()], lead_id
        erased_events = s.scalar(select(func.count()).where(Event.lead_id == lead_id, Event.type == "lead.erased"))
        assert erased_events == 1, lead_id
    return kinds


def measure(db_url: str, total: int = 1_000_000) -> dict:
    db, fill_s = filled_database(db_url, total, fill)
    people, stale = layout(total)
    measured_at = revision("models", "jobs", "migrations")
    with db.begin() as s:
        deliveries = s.scalar(select(func.count()).select_from(EventDelivery))
        outbox = s.scalar(select(func.count()).select_from(OutboxMessage))
    if db.engine.dialect.name == "postgresql":
        time.sleep(SETTLE_S)  # the checkpoints writing out the load (and its VACUUM) end before the measures begin
    # Erasure: each person alone, as `privacy erase EMAIL` does (models/privacy.py erase_person, one transaction).
    times, queued = [], Counter()
    for lead_id in people:
        started = time.perf_counter()
        done = db.transact(lambda s, lead_id=lead_id: privacy.erase_person(s, email=email_of(lead_id), how="cli",
                                                                           now=NOW))
        times.append(time.perf_counter() - started)
        assert done.lead_ids == [lead_id], (lead_id, done)
        queued += check_person(db, lead_id)
    # Retention: what the job does (jobs/scheduler.py retention), a batch to a transaction until none is stale.
    before = queued_by_kind(db)
    batches = []
    erased: list[int] = []
    started = time.perf_counter()
    while True:
        t = time.perf_counter()
        ids = db.transact(lambda s: privacy.retention_batch(s, NOW, RETENTION_DAYS))
        if not ids:
            break
        batches.append(time.perf_counter() - t)
        erased += ids
    retention_s = time.perf_counter() - started
    after = queued_by_kind(db)
    added = {k: after[k] - before[k] for k in after if after[k] != before[k]}
    assert sorted(erased) == sorted(stale), (len(erased), len(stale))
    with db.begin() as s:
        not_erased = s.scalar(select(func.count()).where(Lead.id.in_(sorted(stale)), Lead.erased_at.is_(None)))
        erased_total = s.scalar(select(func.count()).where(Lead.erased_at.is_not(None)))
        stale_claimed = s.scalar(select(func.count()).where(Lead.id.in_(sorted(stale)), Lead.claimed_by.is_not(None)))
    assert not_erased == 0 and erased_total == len(stale) + len(people), (not_erased, erased_total)
    assert added.get("card_update") == len(stale) and added.get("redact") == len(stale), added
    assert 0 < added.get("home", 0) <= stale_claimed, (added, stale_claimed)  # once per owner and batch
    db.dispose()
    return {"total": total, "fill_s": fill_s, "deliveries": deliveries, "outbox": outbox,
            "revision": measured_at, "machine": machine(), "at": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
            "people": len(people), "erase_p50_s": statistics.median(times), "erase_max_s": max(times),
            "erase_first_s": times[0], "erase_queued": dict(queued),
            "stale": len(stale), "erased": len(erased), "batches": len(batches), "retention_s": retention_s,
            "leads_per_s": len(erased) / retention_s, "batch_max_s": max(batches, default=0.0),
            "queued": added, "edits": added.get("card_update", 0) + added.get("redact", 0),
            "stale_claimed": stale_claimed}


def section(results: list[tuple[str, dict]]) -> list[str]:
    """BENCHMARKS.md's section on erasing personal data and the retention job."""
    r0 = results[0][1]
    erase_rows = [f"| {label} | {r['total']:,} | {r['people']} | {r['erase_p50_s']:.3f} | {r['erase_max_s']:.3f} | "
                  f"{r['erase_first_s']:.3f} | {'yes' if r['erase_max_s'] < ERASE_AIM else 'no'} |"
                  for label, r in results]
    retention_rows = []
    for label, r in results:
        q = r["queued"]
        others = ", ".join(f"{k} {v:,}" for k, v in sorted(q.items()) if k not in ("card_update", "redact", "home"))
        retention_rows.append(
            f"| {label} | {r['total']:,} | {r['erased']:,} | {r['batches']} | {r['retention_s']:.1f} | "
            f"{r['leads_per_s']:,.0f} | {r['batch_max_s']:.2f} | {q.get('card_update', 0):,} | {q.get('redact', 0):,} | "
            f"{r['edits']:,} | {q.get('home', 0):,}{f' ({others})' if others else ''} | "
            f"{'yes' if r['leads_per_s'] >= RETENTION_AIM and r['edits'] == 2 * r['stale'] else 'no'} |")
    return ["## Personal data: erase and retention",
            f"{r0['total']:,} leads (docs/privacy.md), filled with bulk inserts: most MQLs with a card in "
            "`C0HANDOFF`, most of those claimed, three in four with a CRM id; one webhook endpoint. Every card's "
            "post is in the outbox (sent), and every lead's event (its body carrying the email and name) delivered "
            "to the endpoint, as an installation keeps them (nothing prunes the outbox, events or deliveries): "
            f"{r0['outbox']:,} rows in `outbox` and {r0['deliveries']:,} in `event_deliveries` before the measures. "
            f"{r0['people']} people spread over the id range have what a person who went through Handoff has "
            "elsewhere: 5 audit rows, 3 events (each delivered), their card's post, a reminder DM sent into its "
            f"`D…` conversation and a feedback post to marketing. {r0['stale']:,} other leads (one in a hundred) "
            f"were last active more than {RETENTION_DAYS} days ago (created, updated and every activity time), "
            "each with a card, 2 audit rows and a sent reminder DM; every other lead was active in the last year. "
            f"On PostgreSQL the measures begin {SETTLE_S} s after the load, once the server's checkpoints have "
            "written it out (on its default settings they run for tens of seconds after a load of this size and "
            "compete with the measures for the machine's two cores and disk); SQLite is measured at once, without "
            "`ANALYZE` statistics (Handoff never gathers them), so its planner chooses as in production.\n\n"
            f"*Erase*: each of the {r0['people']} erased by email, one at a time, as `privacy erase` does: "
            "`erase_person` in one `Database.transact`, timed around the whole transaction, commit included; "
            "*first* is the first of them (nothing cached yet, as in a fresh `privacy erase` process). After each, "
            "read back: the lead marked erased (`erased_at`, `email_norm` `erased:…`, email, name and CRM id "
            "gone), none of its audit details, event bodies or outbox payloads holding its email or name, one "
            "`lead.erased` event, and its Slack edits queued: one `card_update` (`card:ID:erased`) and two `redact` "
            "(the DM and the feedback post). Aim: under 1 s per person among 1,000,000 leads.\n\n"
            f"*Retention*: `retention_batch(session, now, {RETENTION_DAYS})` (batches of "
            f"{privacy.RETENTION_BATCH}), each in its own `Database.transact` until it returns none, as the "
            "`retention` job does (jobs/scheduler.py); *s* is the whole loop, *longest batch* the longest "
            "transaction (on SQLite the time the write lock is held). Read back after: exactly the stale leads "
            "erased, no other; the outbox rows queued counted by kind: a `card_update` for each card and a "
            "`redact` for each reminder DM (together twice the stale leads), and an App Home update (`home`) for "
            "each owner of the claimed ones, once per batch. Aim: ≥ 1,000 leads/s with their edits queued. "
            f"Measured {r0['at']} at {r0['revision']} on {r0['machine']} (`python -m bench.privacy`, "
            "bench/privacy.py).\n",
            "| database | leads | people erased | erase p50 s | erase max s | first s | under 1 s |",
            "|---|---|---|---|---|---|---|", *erase_rows, "",
            "| database | leads | stale erased | batches | s | leads/s | longest batch s | card_update | redact | "
            "edits (card_update + redact) | home | ≥ 1,000/s, edits queued |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|", *retention_rows, ""]


def main(argv: list[str]) -> int:
    total = int(argv[0]) if argv else 1_000_000
    tmp = Path(tempfile.mkdtemp(prefix="handoff-privacy-"))
    targets = [("SQLite", fresh_sqlite(tmp, "privacy.db"))]
    if os.environ.get("BENCH_POSTGRES_URL"):
        targets.append(("PostgreSQL", fresh_postgres(os.environ["BENCH_POSTGRES_URL"])))
    results = []
    try:
        for label, url in targets:
            t0 = time.monotonic()
            print(f"[{label}] personal data: {PEOPLE} people erased, then {STALE:,} stale leads by the retention job, "
                  f"among {total:,} leads …", flush=True)
            r = measure(url, total)
            print(f"  {r}", flush=True)
            print(f"[{label}] done in {time.monotonic() - t0:.0f} s", flush=True)
            results.append((label, r))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    lines = section(results)
    if total == 1_000_000:  # a smaller trial run leaves BENCHMARKS.md as it is
        put_section(lines)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
