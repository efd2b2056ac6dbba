"""The CRM write-back queue (docs/hubspot.md): coalescing by `want`, and instants in any time zone."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update

from models import crm_sync
from models.tables import CrmSync, Destination, Lead
from tests.conftest import JST, add_lead, jst


def setup_row(db) -> tuple[int, int]:
    add_lead(db, mql=jst(2026, 11, 30, 10))
    with db.begin() as s:
        dest = crm_sync.configure(s, crm_sync.HUBSPOT, "http://crm.invalid", jst(2026, 11, 30, 10))
        lead_id = s.query(Lead.id).scalar()
        crm_sync.bump(s, lead_id=lead_id, now=jst(2026, 11, 30, 10))
    return dest, lead_id


def test_a_change_during_a_write_leaves_the_row_due_at_that_instant_in_any_zone(db):
    dest, lead_id = setup_row(db)
    tokyo_wall_time = datetime(2026, 11, 30, 19, 0, tzinfo=JST)  # an aware instant that is not in UTC
    with db.begin() as s:
        taken = crm_sync.take(s, dest, "lookup", tokyo_wall_time, 10)
        crm_sync.found_many(s, dest, [(lead_id, "101", None)], tokyo_wall_time)
        crm_sync.bump(s, lead_id=lead_id, now=tokyo_wall_time)  # the lead changes while it is being written
        crm_sync.written_many(s, dest, [(lead_id, taken[0].want, {"handoff_status": "mql"}, None)], tokyo_wall_time)
    with db.begin() as s:
        row = s.get(CrmSync, (lead_id, dest))
        assert row.want == 2 and row.written == 1
        assert row.next_attempt_at == tokyo_wall_time  # due again now, not nine hours from now
    with db.begin() as s:
        taken = crm_sync.take(s, dest, "ready", tokyo_wall_time, 10)
        crm_sync.written_many(s, dest, [(lead_id, taken[0].want, {"handoff_status": "mql"}, None)], tokyo_wall_time)
    with db.begin() as s:
        assert s.get(CrmSync, (lead_id, dest)).next_attempt_at is None  # nothing left to do


def test_a_contact_not_found_is_looked_for_again_at_the_next_change_only(db):
    dest, lead_id = setup_row(db)
    at = jst(2026, 11, 30, 11)
    with db.begin() as s:
        crm_sync.take(s, dest, "lookup", at, 10)
        crm_sync.not_found_many(s, dest, [lead_id], "no HubSpot contact with this email", at)
    with db.begin() as s:
        assert crm_sync.take(s, dest, "lookup", jst(2026, 12, 30), 10) == []  # not in a loop
        crm_sync.bump(s, lead_id=lead_id, now=jst(2026, 12, 30))
    with db.begin() as s:
        assert [t.lead.id for t in crm_sync.take(s, dest, "lookup", jst(2026, 12, 30), 10)] == [lead_id]


def test_only_an_owning_process_turns_a_crm_on_or_off(db):
    at = jst(2026, 11, 30, 10)
    with db.begin() as s:
        on = crm_sync.configure(s, crm_sync.HUBSPOT, "http://crm.invalid", at)
        assert crm_sync.configure(s, crm_sync.HUBSPOT, None, at, reconcile=False) is None  # a one-off command
        assert s.get(Destination, on).active  # … left it on
        assert crm_sync.configure(s, crm_sync.HUBSPOT, "http://crm.invalid", at, reconcile=False) == on
        crm_sync.configure(s, crm_sync.HUBSPOT, None, at)  # serve without HUBSPOT_TOKEN
        assert not s.get(Destination, on).active


def due_leads(db, n: int, at: datetime) -> tuple[int, list[int]]:
    """n MQLs, each with its row due at HubSpot from `at`: the destination's id and the leads' ids in order."""
    for _ in range(n):
        add_lead(db, mql=at)
    with db.begin() as s:
        dest = crm_sync.configure(s, crm_sync.HUBSPOT, "http://crm.invalid", at)
        ids = list(s.scalars(select(Lead.id).order_by(Lead.id)))
        crm_sync.bump_many(s, ids, [dest], at)
    return dest, ids


def test_many_leads_settle_in_one_statement_each_with_its_own_values(db):
    at = jst(2026, 11, 30, 10)
    dest, ids = due_leads(db, 3, at)
    with db.begin() as s:
        crm_sync.found_many(s, dest, [(ids[0], "101", None), (ids[1], "102", "lead"), (ids[2], "103", None)], at)
        taken = crm_sync.take(s, dest, "ready", at, 10)
        assert [t.record_id for t in taken] == ["101", "102", "103"] and taken[1].remote_stage == "lead"
        crm_sync.bump(s, lead_id=ids[2], now=at)  # the third changes while it is being written
        crm_sync.written_many(s, dest, [(t.lead.id, t.want, {"n": t.record_id}, "lead") for t in taken], at)
    with db.begin() as s:
        rows = [s.get(CrmSync, (i, dest)) for i in ids]
        assert [r.written for r in rows] == [1, 1, 1] and [r.sent for r in rows] == [{"n": "101"}, {"n": "102"},
                                                                                      {"n": "103"}]
        assert [r.next_attempt_at for r in rows] == [None, None, at]


def test_a_lease_takes_the_oldest_due_rows_once_until_it_ends(db):
    dest, ids = due_leads(db, 5, jst(2026, 11, 30, 10))
    with db.begin() as s:
        for k, lead_id in enumerate(reversed(ids)):  # the last lead is due first (a row's time is its first bump's)
            s.execute(update(CrmSync).where(CrmSync.lead_id == lead_id)
                      .values(next_attempt_at=jst(2026, 11, 30, 10, k)))
    later = jst(2026, 11, 30, 11)
    with db.begin() as s:
        first = [t.lead.id for t in crm_sync.take(s, dest, "lookup", later, 2, light=crm_sync.FINDING_COLUMNS)]
        second = [t.lead.id for t in crm_sync.take(s, dest, "lookup", later, 10, light=True)]
        assert crm_sync.take(s, dest, "lookup", later, 10) == []  # all leased
        assert crm_sync.take(s, dest, "ready", later, 10) == []  # another state is another queue
    assert first == [ids[4], ids[3]] and second == [ids[2], ids[1], ids[0]]
    with db.begin() as s:  # a lease that ended (its process died): the rows are taken again, oldest first
        again = crm_sync.take(s, dest, "lookup", jst(2026, 11, 30, 11, 2), 10)
    assert [t.lead.id for t in again] == list(reversed(ids)) and all(t.lead.email for t in again)


def test_concurrent_leases_never_share_a_row(db):
    import threading

    dest, _ = due_leads(db, 60, jst(2026, 11, 30, 10))
    got: list[list[int]] = []
    start = threading.Barrier(4)

    def lane():
        start.wait()
        mine = []
        while True:
            with db.begin() as s:
                taken = crm_sync.take(s, dest, "lookup", jst(2026, 11, 30, 11), 7, light=crm_sync.FINDING_COLUMNS)
            if not taken:
                break
            mine += [t.lead.id for t in taken]
        got.append(mine)

    threads = [threading.Thread(target=lane) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    every = [lead_id for mine in got for lead_id in mine]
    assert len(got) == 4 and len(every) == len(set(every)) == 60
