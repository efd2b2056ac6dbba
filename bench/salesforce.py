"""Salesforce write-back: the API calls and the wall time of 10,000 lead updates, against the floor and against
the same calls made directly with simple-salesforce.

    python -m bench.salesforce [LEADS [ROUNDS]]        (SQLite; BENCH_POSTGRES_URL adds PostgreSQL)

The lane (outbox/salesforce.py `SalesforceWriter`, built as runtime.py `salesforce_writer` builds it, with the
Slack owners' emails given by a table instead of `users.info`) writes to the Salesforce stand-in over HTTPS, in a
process of its own. Each lead is an MQL claimed by one of 5 reps through models/leads.py `claim` (each claim's own
event and write-back bump, 500 claims a transaction), which is not timed; the lane's `drain` is.

*Found*: each lead's Lead is already known (its `crm_sync` row `ready` with the Lead's id, the MQL written), so
each claim is one record to write: 10,000 / 200 per sObject Collections call = 50 calls at least.

*By email*: nothing is known yet (the claim is the lead's first change: its row in `lookup`), so each Lead is
first found by SOQL on its email, as many emails a query as keep its URI under Salesforce's limit, then written.

*Direct*: the calls the lane made, taken from what the stand-in recorded (each SOQL query's text and each
write's body, in the order they arrived), made again with simple-salesforce on a plain requests session, one
at a time, with no database: one token, then the queries (`query_all`) and the writes (`restful`).

Each run has a stand-in of its own, filled the same way (so its records have the same ids), and each round a
fresh database; lane and direct take turns going first. The stand-in's `Call` records the REST calls; the
token's is not counted (Salesforce does not count it either).
"""
from __future__ import annotations

import contextlib
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
from sqlalchemy import select
from sqlalchemy.engine import make_url

from bench.common import fresh_postgres, fresh_sqlite
from handlers.services import utcnow
from models import crm_sync, leads
from models import salesforce as mapping
from models.db import Database
from models.events import status_of
from models.tables import CrmSync, Lead
from outbox.salesforce import Connection, Owners, SalesforceWriter
from runtime import quiet_garbage_collector
from settings import load_settings, normalize_database_url
from standin.salesforce import TOKEN_PATH, SalesforceStandIn

LEADS = 10_000
REPS = 5
ROUNDS = 3
CHUNK = 5_000  # leads a bulk insert
CLAIMS_A_TRANSACTION = 500
DRAIN_TIMEOUT = 900.0
CALLS_AIM, TIME_AIM = 1.1, 1.5
ISSUE_BY_EMAIL = 100  # "about 100" calls per 10,000 updates found by email (issue 15)
FOUND, BY_EMAIL = "found", "by email"
# The claims' instant, in the past (so every change is due for the lane's clock) and the same in every run (so
# every run writes the same bodies).
T0 = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)
REP_IDS = [f"UREP{k}" for k in range(REPS)]
REP_EMAILS = {rep: f"rep{k}@bench.example" for k, rep in enumerate(REP_IDS)}


def email(i: int) -> str:
    return f"lead{i}@bench.example"


def rep_of(i: int) -> str:
    return REP_IDS[i % REPS]


@contextlib.contextmanager
def trusting(ca_file: str):
    """REQUESTS_CA_BUNDLE set to the stand-in's CA for this process (as docs/salesforce.md has a test org's CA
    trusted), put back as it was afterwards."""
    before = os.environ.get("REQUESTS_CA_BUNDLE")
    os.environ["REQUESTS_CA_BUNDLE"] = ca_file
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("REQUESTS_CA_BUNDLE", None)
        else:
            os.environ["REQUESTS_CA_BUNDLE"] = before


def wiped(db_url: str) -> str:
    """`db_url` emptied: a SQLite file removed, a PostgreSQL schema dropped and made again."""
    url = make_url(normalize_database_url(db_url))
    if url.get_backend_name() == "sqlite":
        path = Path(url.database)
        return fresh_sqlite(path.parent, path.name)
    return fresh_postgres(db_url)


def filled(n: int) -> tuple[SalesforceStandIn, list[str], dict[str, str]]:
    """A stand-in with Handoff's fields granted, a User per rep and a Lead per lead (lead i's email is
    `email(i)`); its Lead ids in lead order and the reps' User ids. Filled the same way every time, so every
    stand-in gives its records the same ids."""
    sf = SalesforceStandIn().start()
    sf.grant_all()
    users = {rep: sf.add_user(address) for rep, address in REP_EMAILS.items()}
    record_ids = [sf.add_lead(email(i), LastName=f"Lead {i}", Company=f"Company {i % 997}") for i in range(n)]
    sf.calls.clear()
    return sf, record_ids, users


def _serve(n: int, pipe) -> None:
    """The stand-in's own process: filled, then answering the bench's questions until told to stop."""
    sf, record_ids, users = filled(n)
    pipe.send((sf.url, sf.ca_file, sf.client_id, sf.client_secret, record_ids, users))
    try:
        while True:
            ask, arg = pipe.recv()
            if ask == "stop":
                break
            pipe.send(list(sf.calls) if ask == "calls" else [sf.record(i) for i in arg])
    finally:
        sf.stop()
        pipe.send("stopped")


class RemoteStandIn:
    """The Salesforce stand-in in a process of its own, as Salesforce is to Handoff: its work does not share
    this process's interpreter with the lane's (or the direct client's). What the bench reads of it (`calls`,
    `record`) comes through a pipe."""

    def __init__(self, n: int):
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(n, child), daemon=True)
        self._process.start()
        (self.url, self.ca_file, self.client_id, self.client_secret, self.record_ids,
         self.users) = self._pipe.recv()

    @property
    def calls(self) -> list:
        self._pipe.send(("calls", None))
        return self._pipe.recv()

    def records(self, record_ids: list[str]) -> list[dict]:
        self._pipe.send(("records", record_ids))
        return self._pipe.recv()

    def stop(self) -> None:
        self._pipe.send(("stop", None))
        self._pipe.recv()
        self._process.join(10)


def standin(n: int) -> tuple[RemoteStandIn, list[str], dict[str, str]]:
    sf = RemoteStandIn(n)
    return sf, sf.record_ids, sf.users


def fill(db_url: str, n: int, scenario: str, record_ids: list[str], login_url: str) -> tuple[Database, int]:
    """n MQLs, each claimed by a rep. Found: each lead's Lead known and its MQL written before the claim."""
    db = Database(db_url)
    db.migrate()
    mql_at = T0 - timedelta(hours=1)
    with db.begin() as s:
        destination = crm_sync.configure(s, crm_sync.SALESFORCE, login_url, mql_at)
    with db.engine.begin() as conn:
        for start in range(0, n, CHUNK):
            part = range(start, min(n, start + CHUNK))
            conn.execute(Lead.__table__.insert(), [
                dict(id=i + 1, email=email(i), email_norm=email(i), company=f"Company {i % 997}", source="bench",
                     score=80, attributes={}, created_at=mql_at, updated_at=mql_at, mql_at=mql_at,
                     claim_due=T0 + timedelta(hours=3), contact_due=T0 + timedelta(hours=8)) for i in part])
            if scenario == FOUND:
                conn.execute(CrmSync.__table__.insert(), [
                    dict(lead_id=i + 1, destination_id=destination, want=1, written=1, state="ready",
                         record_id=record_ids[i], attempts=0, next_attempt_at=None, updated_at=mql_at,
                         looked_again=False) for i in part])
    for start in range(0, n, CLAIMS_A_TRANSACTION):
        with db.begin() as s:
            for i in range(start, min(n, start + CLAIMS_A_TRANSACTION)):
                leads.claim(s, lead_id=i + 1, user=rep_of(i), now=T0)
    with db.begin() as s:
        due = crm_sync.due_by(s, destination, utcnow())
        states = set(s.scalars(select(CrmSync.state).where(CrmSync.destination_id == destination)))
    assert due == n and states == {"ready" if scenario == FOUND else "lookup"}, (due, states)
    return db, destination


def lane(db: Database, destination: int, sf: RemoteStandIn) -> dict:
    """Drain the lane until nothing is due; its seconds, passes and the REST calls the stand-in recorded."""
    settings = load_settings(_env_file=None, DATABASE_URL=db.url, HANDOFF_CHANNEL="C0BENCH",
                             MARKETING_CHANNEL="C0MKT", SALESFORCE_LOGIN_URL=sf.url, SALESFORCE_CLIENT_ID=sf.client_id,
                             SALESFORCE_CLIENT_SECRET=sf.client_secret, SALESFORCE_MATCH="email")
    with trusting(sf.ca_file):
        connection = Connection(settings.SALESFORCE_LOGIN_URL, settings.SALESFORCE_CLIENT_ID,
                                settings.SALESFORCE_CLIENT_SECRET, settings.SALESFORCE_API_BUDGET)
        writer = SalesforceWriter(db, destination, connection, settings.SALESFORCE_MATCH,
                                  settings.SALESFORCE_STATUS_MAP, Owners(REP_EMAILS.get), settings.LANGUAGE,
                                  settings.tz, now=utcnow)
        passes = 0
        run_pass = writer.run_pass

        def counted() -> float:
            nonlocal passes
            passes += 1
            return run_pass()
        writer.run_pass = counted
        try:
            started = time.perf_counter()
            # until a minute from now: a record found in this drain is due at the moment it was found
            left = writer.drain(utcnow() + timedelta(minutes=1), DRAIN_TIMEOUT)
            seconds = time.perf_counter() - started
        finally:
            writer.join(0)
            connection.http.close()
    assert left == 0, f"{left} changes still due after {DRAIN_TIMEOUT:.0f} s"
    calls = sorted((c for c in sf.calls if c.path != TOKEN_PATH), key=lambda c: c.arrived)  # one read of them
    bad = [(c.method, c.path, c.status) for c in calls if c.status != 200]
    assert not bad, f"the lane's calls that did not answer 200: {bad[:5]}"
    return {"seconds": seconds, "passes": passes, "calls": calls, "status_map": settings.SALESFORCE_STATUS_MAP}


def replayable(calls) -> list[tuple[str, object]]:
    """The lane's calls as the direct run makes them: ("query", SOQL) or ("write", body), in order."""
    out = []
    for c in calls:
        path = c.path.rstrip("/")
        if c.method == "GET" and path.endswith("/query") and "q" in c.query:
            out.append(("query", c.query["q"]))
        elif c.method == "PATCH" and path.endswith("/composite/sobjects"):
            out.append(("write", c.body))
        else:
            raise AssertionError(f"a call the direct run does not make: {c.method} {c.path}")
    return out


def direct(sf: RemoteStandIn, replay: list[tuple[str, object]]) -> float:
    """The same calls with simple-salesforce directly, one at a time, no database: a token (client credentials,
    with requests), then each query and write in order. Its seconds."""
    from simple_salesforce import Salesforce

    with trusting(sf.ca_file):
        session = requests.Session()
        try:
            started = time.perf_counter()
            answer = session.post(f"{sf.url}{TOKEN_PATH}", timeout=20, data={
                "grant_type": "client_credentials", "client_id": sf.client_id, "client_secret": sf.client_secret})
            answer.raise_for_status()
            token = answer.json()
            client = Salesforce(instance_url=token["instance_url"], session_id=token["access_token"],
                                version=mapping.API_VERSION, session=session)
            results = []
            for kind, what in replay:
                if kind == "query":
                    client.query_all(what)
                else:
                    results.append(client.restful("composite/sobjects", method="PATCH", json=what))
            seconds = time.perf_counter() - started
        finally:
            session.close()
    failed = sum(not r.get("success") for result in results for r in result)
    assert failed == 0, f"{failed} records refused in the direct run"
    return seconds


def check(db: Database, destination: int, sf: RemoteStandIn, record_ids: list[str], users: dict[str, str],
          status_map: dict[str, str]) -> None:
    """Every lead's row found its Lead and has its latest change written; every Lead shows the lead's status
    (and the Lead Status the map gives it) and is owned by its rep's User. Raises otherwise."""
    with db.begin() as s:
        stored = {lead.id: lead for lead in s.scalars(select(Lead))}
        rows = {r.lead_id: r for r in s.scalars(select(CrmSync).where(CrmSync.destination_id == destination))}
    wrong = []
    for i, (record_id, got) in enumerate(zip(record_ids, sf.records(record_ids), strict=True)):
        lead, row = stored[i + 1], rows.get(i + 1)
        status, owner = status_of(lead), users[lead.owner]
        if row is None or row.record_id != record_id or row.written != row.want or row.next_attempt_at is not None:
            wrong.append((i, "crm_sync", None if row is None else (row.state, row.record_id, row.want, row.written)))
        elif (got.get("Handoff_Status__c"), got.get("OwnerId")) != (status, owner) or \
                got.get("Status") != status_map.get(status, got.get("Status")) or got.get("Handoff_Owner__c") != lead.owner:
            wrong.append((i, "Lead", got.get("Handoff_Status__c"), got.get("OwnerId"), got.get("Status")))
    assert not wrong, f"{len(wrong)} of {len(record_ids)} leads not as Handoff has them, e.g. {wrong[:3]}"


def kinds(calls) -> dict[str, int]:
    """The REST calls by what they were: lookups (Lead and Contact queries), owner queries (User), writes."""
    out = {"lookups": 0, "owners": 0, "writes": 0}
    for c in calls:
        if c.method == "PATCH":
            out["writes"] += 1
        elif " FROM User " in c.query.get("q", ""):
            out["owners"] += 1
        else:
            out["lookups"] += 1
    return out


def floor(scenario: str, n: int, sf: RemoteStandIn) -> dict:
    """The fewest calls that do it. Found: a write per 200 records. By email: the Lead queries a URI-bound batching
    of all n emails at once needs (the lane's own SELECT, `email_queries`, on this host's URI), the writes, and
    the one query for the reps' Users."""
    writes = math.ceil(n / mapping.COLLECTION)
    if scenario == FOUND:
        return {"floor": writes}
    prefix = len(f"{sf.url}/services/data/v{mapping.API_VERSION}/query/?")
    queries = mapping.email_queries("Lead", mapping.LEAD_COLUMNS, [email(i) for i in range(n)], prefix)
    return {"floor": len(queries) + writes + 1, "floor_lookups": len(queries),
            "emails_per_query": max(len(chunk) for _, chunk in queries)}


def scenario_run(db_url: str, n: int, scenario: str, rounds: int) -> dict:
    """`rounds` rounds of the lane and the direct run, taking turns going first, a fresh database each round."""
    out: dict = {"updates": n, "lane_s": [], "direct_s": [], "ratios": [], "first": [], "calls": [], "passes": [],
                 "kinds": []}
    replay, ids = None, None
    for rnd in range(rounds):
        db_url = wiped(db_url)
        lane_first = rnd % 2 == 0 or replay is None
        sf, record_ids, users = standin(n)
        try:
            ids = ids or (record_ids, users)
            assert (record_ids, users) == ids, "a stand-in gave its records other ids"
            db, destination = fill(db_url, n, scenario, record_ids, sf.url)
            try:
                if not lane_first:
                    out["direct_s"].append(direct_run(n, ids, replay))
                ran = lane(db, destination, sf)
                check(db, destination, sf, record_ids, users, ran["status_map"])
                replay = replayable(ran["calls"])
                if lane_first:
                    out["direct_s"].append(direct_run(n, ids, replay))
            finally:
                db.dispose()
            out.setdefault("floor", floor(scenario, n, sf))
        finally:
            sf.stop()
        out["lane_s"].append(ran["seconds"])
        out["ratios"].append(ran["seconds"] / out["direct_s"][-1])
        out["first"].append("lane" if lane_first else "direct")
        out["calls"].append(len(ran["calls"]))
        out["passes"].append(ran["passes"])
        out["kinds"].append(kinds(ran["calls"]))
        print(f"    {scenario}, round {rnd + 1}: lane {ran['seconds']:.2f} s ({ran['passes']} passes, "
              f"{len(ran['calls'])} calls {kinds(ran['calls'])}), direct {out['direct_s'][-1]:.2f} s, "
              f"{out['first'][-1]} first", flush=True)
    out.update(out.pop("floor"))
    return out


def direct_run(n: int, ids: tuple[list[str], dict[str, str]], replay: list[tuple[str, object]]) -> float:
    """`direct` against a stand-in of its own, filled as the lane's was (so the recorded calls name its records)."""
    sf, record_ids, users = standin(n)
    try:
        assert (record_ids, users) == ids, "a stand-in gave its records other ids"
        return direct(sf, replay)
    finally:
        sf.stop()


def measure(db_url: str, n: int = LEADS, rounds: int = ROUNDS) -> dict:
    """Both scenarios on `db_url` (emptied before each round), in a process whose collector is quieted as the
    delivery process's is (runtime.py `quiet_garbage_collector`)."""
    quiet_garbage_collector()
    return {"leads": n, "rounds": rounds, FOUND: scenario_run(db_url, n, FOUND, rounds),
            BY_EMAIL: scenario_run(db_url, n, BY_EMAIL, rounds)}


def _row(label: str, r: dict, by_email: bool) -> str:
    calls = max(r["calls"])
    lane_s, direct_s, ratio = (statistics.median(r[k]) for k in ("lane_s", "direct_s", "ratios"))
    per_call = calls / r["floor"]
    rounds = ", ".join(f"{ratio:.2f} ({first} first)" for ratio, first in zip(r["ratios"], r["first"], strict=True))
    k = r["kinds"][0]
    made = f"{calls} ({k['lookups']} lookups, {k['owners']} User, {k['writes']} writes)"
    if min(r["calls"]) != calls:
        made += f", {min(r['calls'])}–{calls} by round"
    floor = (f"{r['floor']} ({r['floor_lookups']} lookups of ≤ {r['emails_per_query']} emails, "
             f"{math.ceil(r['updates'] / mapping.COLLECTION)} writes, 1 User)") if by_email else str(r["floor"])
    extra = f" {calls * 10_000 / r['updates'] / ISSUE_BY_EMAIL:.2f} |" if by_email else ""
    return (f"| {label} | {r['updates']:,} | {made} | {floor} | {per_call:.2f} |{extra} "
            f"{'yes' if per_call <= CALLS_AIM else 'no'} | {lane_s:.2f} | "
            f"{direct_s:.2f} | {ratio:.2f} | {'yes' if ratio <= TIME_AIM else 'no'} | {rounds} |")


def section(results: list[tuple[str, dict]]) -> list[str]:
    """The "Salesforce write-back" section of BENCHMARKS.md."""
    n, rounds = results[0][1]["leads"], results[0][1]["rounds"]
    head = ("| database | updates | API calls | floor | calls / floor |{} ≤ {:g}× | lane s | "
            "direct s | lane / direct | ≤ {:g}× | lane / direct by round |")
    found = [_row(label, r[FOUND], False) for label, r in results]
    by_email = [_row(label, r[BY_EMAIL], True) for label, r in results]
    return ["## Salesforce write-back",
            f"{n:,} MQLs, each claimed by one of {REPS} reps through `models/leads.py` `claim` (each claim's own "
            f"event and write-back bump, {CLAIMS_A_TRANSACTION} a transaction; not timed), then the lane "
            "(`outbox/salesforce.py`, built as `runtime.py` builds it) drained until nothing is due "
            "(`SalesforceWriter.drain`, timed), against the Salesforce stand-in over HTTPS in a process of its own "
            "(as Salesforce is to Handoff), a Lead there for every lead and a User for every rep (the reps' Slack emails come from a table, not "
            "`users.info`). *API calls* are the REST calls the stand-in recorded, the token's not counted "
            "(Salesforce does not count it either). *Direct* makes the lane's calls again with simple-salesforce on "
            "a plain requests session, one at a time and with no database: a token, then each SOQL query "
            "(`query_all`) and each sObject Collections body (`restful`, PATCH) exactly as the stand-in recorded "
            "them from the lane's run, in the order they arrived. Each run has a stand-in of its own, filled alike "
            f"(the same record ids), and each round a fresh database; {rounds} rounds, lane and direct taking "
            "turns going first: *lane s*, *direct s* and *lane / direct* are the medians of the rounds, the last the "
            "figure. After each lane run every Lead is checked: "
            "`Handoff_Status__c` the lead's status, `Status` as `SALESFORCE_STATUS_MAP` maps it, `OwnerId` the "
            f"rep's User, and every lead's latest change recorded written. Aims (issue 15): calls within "
            f"{CALLS_AIM:g}× the floor, wall time within {TIME_AIM:g}× of direct. The lane runs in a process whose collector is quieted after start, as the delivery process's "
            "is (`runtime.py` `quiet_garbage_collector`). The lane's time includes its "
            "database work (leasing each part, settling it), which it does while its other calls are in flight "
            "(two at once); the stand-in's work (parsing SOQL, applying writes) is in both times alike.\n",
            f"*Found*: each lead's Lead already known (its `crm_sync` row `ready` with the Lead's id, the MQL "
            f"written), so the claim is one record to write: the floor is {n:,} / {mapping.COLLECTION} per call.\n",
            head.format("", CALLS_AIM, TIME_AIM), "|---|---|---|---|---|---|---|---|---|---|---|", *found, "",
            "*By email*: the claim is each lead's first change (its `crm_sync` row in `lookup`), so each Lead is "
            "first found by SOQL on its email (`lead123@bench.example`), then written. The floor: the Lead queries "
            f"that batching all {n:,} emails at once needs with each query's URI under Salesforce's limit "
            "(`models/salesforce.py` `email_queries`, the lane's own SELECT, this host's URL), the writes, and one "
            f"query for the reps' Users. *Calls / {ISSUE_BY_EMAIL}* is the calls per 10,000 updates against the issue's "
            f"\"about {ISSUE_BY_EMAIL}\".\n",
            head.format(f" calls / {ISSUE_BY_EMAIL} |", CALLS_AIM, TIME_AIM),
            "|---|---|---|---|---|---|---|---|---|---|---|---|", *by_email, ""]


def main(argv: list[str]) -> int:
    n = int(argv[0]) if argv else LEADS
    rounds = int(argv[1]) if len(argv) > 1 else ROUNDS
    tmp = Path(tempfile.mkdtemp(prefix="handoff-bench-salesforce-"))
    runs = [("SQLite", fresh_sqlite(tmp, "salesforce.db"))]
    pg = os.environ.get("BENCH_POSTGRES_URL")
    if pg:
        runs.append(("PostgreSQL", fresh_postgres(pg)))
    results = []
    try:
        for label, db_url in runs:
            t0 = time.monotonic()
            print(f"[{label}] Salesforce write-back: {n:,} updates, found and by email …", flush=True)
            result = measure(db_url, n, rounds)
            results.append((label, result))
            print(f"[{label}] done in {time.monotonic() - t0:.0f} s", flush=True)
        print("\n".join(section(results)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
