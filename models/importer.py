"""CSV import of lead history (README, "Importing history"): validate every row, then load all in one short transaction.

All or nothing, without stopping the app: on SQLite a writer holds the one write lock of the
database, and webhooks wait for it (busy_timeout). So everything that takes time is done before that
lock is taken, and the transaction that holds it is a handful of set-based statements:

1. parse and validate every row, compute the deadlines (no database);
2. read the leads the rows name, match each row to a lead and merge what the rows set on each lead
   into its final values (a plain read: WAL readers take no lock);
3. put those values into TEMP work tables on the import's own connection (on SQLite writing TEMP
   tables takes no lock on the database; SQLAlchemy would begin with BEGIN IMMEDIATE, so this goes
   to the DBAPI connection directly);
4. one transaction: check that the leads read in 2 still have the keys they were matched by, then
   UPDATE … FROM, INSERT … SELECT and the audit rows INSERT … SELECT, all in the database engine.

What changed in between (a webhook took an email of the file, changed a matched lead's email) makes
the check or a unique index refuse step 4; it is rolled back and steps 2–4 run again, the last time
with the write lock held from the start. A kill at any point leaves nothing: the TEMP tables go with
the connection and step 4 commits at once or not at all.
"""
from __future__ import annotations

import contextlib
import csv
import io
import logging
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

from sqlalchemy import (
    JSON,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    cast,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.schema import CreateTable, DropTable

from models import privacy
from models.db import is_race
from models.leads import (
    SLACK_USER_RE,
    FieldError,
    IdentityConflict,
    LeadIn,
    Policy,
    match,
    parse_instant,
    parse_lead,
    set_deadlines,
)
from models.tables import AuditEvent, BigId, Lead

log = logging.getLogger("handoff.import")

COLUMNS = ("external_id", "email", "name", "company", "title", "source", "score", "created_at", "mql_at",
           "claimed_at", "claimed_by", "contacted_at", "sql_at", "won_at", "lost_at", "lost_reason",
           "disqualified_at", "disqualify_reason", "team")
INSTANTS = ("mql_at", "claimed_at", "contacted_at", "sql_at", "won_at", "lost_at", "disqualified_at")
AFTER_MQL = ("claimed_at", "contacted_at", "sql_at", "won_at", "lost_at", "disqualified_at")
KNOWN = frozenset(COLUMNS)
REASON_LIMIT = 100
PROGRESS_EVERY = 10_000
ATTEMPTS = 4  # the last one holds the write lock from its start
# The lead columns an import writes; the others keep their defaults (NULL) on a new lead.
WRITTEN = ("external_id", "email", "email_norm", "name", "company", "title", "source", "score", "attributes",
           "created_at", "updated_at", "mql_at", "claim_due", "contact_due", "claimed_at", "claimed_by",
           "contacted_at", "sql_at", "won_at", "lost_at", "lost_reason", "disqualified_at", "disqualify_reason",
           "team", "routed_by")
MOVING = "moving:"  # an email_norm no real one equals (no @), held for an instant by a lead whose email moves


def _indexed(table: Table) -> frozenset[str]:
    """The columns some index of `table` holds, or filters on (a partial index's WHERE)."""
    names = {c.name for c in table.c if c.primary_key or c.unique or c.index}
    for index in table.indexes:
        names.update(c.name for c in index.columns)
        for options in index.dialect_options.values():
            if options.get("where") is not None:
                names.update(w for w in re.findall(r"\w+", str(options["where"])) if w in table.c)
    for constraint in table.constraints:
        names.update(c.name for c in getattr(constraint, "columns", ()))
    return frozenset(names)


INDEXED = _indexed(Lead.__table__)


class ImportFailed(Exception):
    def __init__(self, key: str, problems: list[tuple[int, str, str, dict]], bad_rows: int = 0):
        super().__init__(key)
        self.key, self.problems, self.bad_rows = key, problems, bad_rows


class _Stale(Exception):
    """A lead read before the write transaction no longer has the keys it was matched by."""


def read_text(path: Path) -> str:
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "cp932"):  # Excel in Japan still writes Shift_JIS
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ImportFailed("cli.import.encoding", [])


def parse_row(row: dict, tz: ZoneInfo) -> tuple[tuple[LeadIn, dict] | None, list[FieldError]]:
    """One CSV row to a lead and its history, or the row's errors."""
    obj = {k: v for k, v in row.items() if k in KNOWN and v is not None and v.strip()}
    score_text = obj.get("score", "").strip()
    errors: list[FieldError] = []
    if score_text:
        try:
            obj["score"] = int(score_text)
        except ValueError:
            obj["score"] = score_text  # parse_lead reports it
    lead, errs = parse_lead(obj, tz)
    errors.extend(errs)
    history: dict = {}
    for name in INSTANTS:
        if name in obj:
            value = parse_instant(obj[name], tz)
            if value is None:
                errors.append(FieldError(name, "field.datetime"))
            history[name] = value
    if "claimed_by" in obj:
        if not SLACK_USER_RE.match(obj["claimed_by"].strip()):
            errors.append(FieldError("claimed_by", "field.slack_user"))
        history["claimed_by"] = obj["claimed_by"].strip()
    if "team" in obj:
        history["team"] = obj["team"].strip()
        if "mql_at" not in obj:
            errors.append(FieldError("team", "field.team_needs_mql"))
    for name in ("lost_reason", "disqualify_reason"):
        if name in obj:
            if len(obj[name].strip()) > REASON_LIMIT:
                errors.append(FieldError(name, "field.too_long", {"max": REASON_LIMIT}))
            history[name] = obj[name].strip()
    mql_at = history.get("mql_at")
    for name in AFTER_MQL:
        if mql_at and history.get(name) and history[name] < mql_at:
            errors.append(FieldError(name, "field.order"))
    if errors:
        return None, errors
    return (lead, history), []


@dataclass(slots=True)
class _Row:
    line: int
    item: LeadIn
    history: dict  # what the row sets besides the lead's fields, deadlines included


def _validated(path: Path, tz: ZoneInfo, policy: Policy, progress) -> list[_Row]:
    """Every row parsed and checked, its deadlines computed; any bad row and ImportFailed names them all."""
    if not path.is_file():
        raise ImportFailed("cli.import.no_file", [])
    reader = csv.DictReader(io.StringIO(read_text(path), newline=""))
    header = [h.strip() for h in (reader.fieldnames or [])]
    reader.fieldnames = header
    if "email" not in header or "score" not in header:
        raise ImportFailed("cli.import.no_header", [])
    problems = [(1, h, "field.unknown_column", {}) for h in header if h not in COLUMNS]
    bad_rows = 1 if problems else 0
    rows: list[_Row] = []
    deadlines: dict[tuple, tuple[datetime, datetime]] = {}  # history often repeats instants
    for n, row in enumerate(reader, start=1):
        parsed, errors = parse_row(row, tz)
        if not errors:
            errors = _route(*parsed, policy)
        if errors:
            bad_rows += 1
            problems.extend((reader.line_num, e.field, e.key, e.params) for e in errors)
        elif not problems:
            item, history = parsed
            mql_at = history.get("mql_at")
            if mql_at is not None:
                team = policy.teams.get(history.get("team")) if policy.teams is not None else None
                key = (mql_at, history.get("team"))
                if key not in deadlines:
                    lead = SimpleNamespace(mql_at=mql_at)
                    set_deadlines(lead, policy, team)
                    deadlines[key] = lead.claim_due, lead.contact_due
                history["claim_due"], history["contact_due"] = deadlines[key]
            rows.append(_Row(reader.line_num, item, history))
        if progress and n % PROGRESS_EVERY == 0:
            progress(n)
    if problems:
        raise ImportFailed("cli.import.invalid", problems, bad_rows)
    return rows


def _route(item: LeadIn, history: dict, policy: Policy) -> list[FieldError]:
    """With a routing file, the team of a row that has mql_at: its `team` column, else the rules in force
    (never the account owner: docs/routing.md); the errors of a `team` that names none."""
    teams = policy.teams.by_id if policy.teams is not None and policy.teams.routing is not None else None
    team = history.get("team")
    if teams is None:
        return [FieldError("team", "field.team_no_routing")] if team is not None else []
    if team is not None:
        if team not in teams:
            return [FieldError("team", "field.team", {"teams": ", ".join(teams)})]
        history["routed_by"] = "import"
    elif history.get("mql_at") is not None:
        lead = SimpleNamespace(email=item.email, source=item.source or "other", score=item.score,
                               company=item.company, title=item.title, external_id=item.external_id,
                               attributes=item.attributes or {})
        route = policy.route(lead)
        history["team"], history["routed_by"] = route.team.id, route.why
    return []


# Planning: which row is which lead, and what each lead ends up as ---------------------------------
class _Target:
    """What `match` needs of a lead (id, external_id, email_norm), for a stored lead or one this file
    creates, with the values the file's rows set on it."""

    __slots__ = ("email_norm", "external_id", "id", "line", "old_email_norm", "old_external_id", "ref", "values")

    def __init__(self, id_, external_id, email_norm, line=None):
        self.id, self.external_id, self.email_norm = id_, external_id, email_norm
        self.old_email_norm, self.old_external_id = email_norm, external_id
        self.line, self.ref = line, None  # a new lead: the line that creates it, its place among the new ones
        self.values: dict = {}


@dataclass
class _Plan:
    new: list[_Target] = field(default_factory=list)
    updates: list[_Target] = field(default_factory=list)
    targets: list[_Target] = field(default_factory=list)  # one per row
    email_moves: bool = False  # an updated lead takes an email another updated lead gives up

    @property
    def created(self) -> int:
        return len(self.new)

    @property
    def updated(self) -> int:
        return len(self.targets) - len(self.new)


def _plan(rows: list[_Row], stored: list[tuple], now: datetime) -> _Plan:
    """Each row matched in file order, as if they came one after the other; conflicts raise ImportFailed."""
    by_ext: dict[str, _Target] = {}
    by_email: dict[str, _Target] = {}
    for id_, external_id, email_norm in sorted(stored):
        lead = _Target(id_, external_id, email_norm)
        if external_id:
            by_ext[external_id] = lead
        by_email[email_norm] = lead
    plan = _Plan()
    problems: list[tuple[int, str, str, dict]] = []
    for row in rows:
        item = row.item
        try:
            lead = match(item, by_ext, by_email)
        except IdentityConflict as conflict:
            owner = by_email[item.email.lower()]
            problems.append((row.line, conflict.field, conflict.key,
                             {"id": owner.id if owner.id is not None else f"line {owner.line}"}))
            continue
        if lead is None:
            lead = _Target(None, None, None, line=row.line)
            lead.values = dict(source="other", attributes={}, created_at=item.created_at or now)
            plan.new.append(lead)
        _apply(lead.values, item, row.history, now)
        lead.external_id = lead.values.get("external_id", lead.external_id)
        lead.email_norm = lead.values["email_norm"]
        if lead.external_id:
            by_ext[lead.external_id] = lead
        by_email[lead.email_norm] = lead
        plan.targets.append(lead)
    if problems:
        raise ImportFailed("cli.import.invalid", problems, len({line for line, *_ in problems}))
    plan.updates = sorted({id(t): t for t in plan.targets if t.id is not None}.values(), key=lambda t: t.id)
    moved = [t for t in plan.updates if t.email_norm != t.old_email_norm]
    given_up = {t.old_email_norm for t in moved}
    plan.email_moves = any(t.email_norm in given_up for t in moved)
    return plan


def _apply(values: dict, item: LeadIn, history: dict, now: datetime) -> None:
    """What one row sets on its lead. Never None: a value left out keeps what the lead has."""
    for name in ("name", "company", "title", "source", "external_id"):
        value = getattr(item, name)
        if value is not None:
            values[name] = value
    values.update(email=item.email, email_norm=item.email.lower(), score=item.score, updated_at=now)
    if item.created_at is not None:
        values["created_at"] = item.created_at
    values.update(history)


# Work tables ------------------------------------------------------------------------------------
class _Staging:
    """The import's TEMP tables, on the one connection the whole import uses.

    Outside the write transaction, statements go to the DBAPI connection on SQLite: each one is its
    own read (or TEMP-only write) and takes no lock on the database. Inside it (`locked`), they go
    through SQLAlchemy like every other statement of that transaction.
    """

    def __init__(self, conn):
        self.conn, self.dialect = conn, conn.dialect
        self.sqlite = self.dialect.name == "sqlite"
        self.locked = False
        schema = "temp" if self.sqlite else "pg_temp"
        lead_cols = Lead.__table__.c
        md = MetaData()
        # Distinct keys, sorted: appended, not indexed (the join probes the leads' unique indexes).
        self.emails = Table("handoff_import_emails", md, Column("email_norm", String(320)), schema=schema)
        self.exts = Table("handoff_import_exts", md, Column("external_id", String(200)), schema=schema)
        # `id` of a new lead: its place among the new ones on SQLite (the ids follow the largest one, taken
        # in the write transaction), on PostgreSQL the id drawn from the sequence.
        self.new = Table("handoff_import_new", md, Column("id", BigId, primary_key=True),
                         *(Column(c, lead_cols[c].type) for c in WRITTEN), schema=schema)
        self.updates = Table("handoff_import_updates", md, Column("id", BigId, primary_key=True),
                             Column("old_email_norm", String(320)), Column("old_external_id", String(200)),
                             *(Column(c, lead_cols[c].type) for c in WRITTEN), schema=schema)
        self.rows = Table("handoff_import_rows", md, Column("line", Integer, primary_key=True),
                          Column("lead_id", BigId), Column("new_id", BigId), schema=schema)
        self.tables = (self.emails, self.exts, self.new, self.updates, self.rows)

    @property
    def raw(self):
        return self.conn.connection.driver_connection

    def run(self, stmt, params: dict | None = None) -> list:
        """One statement; its rows. Outside the write transaction on SQLite, statements without parameters."""
        if self.locked:
            result = self.conn.execute(stmt, params or {})
            return result.all() if result.returns_rows else []
        if self.sqlite:
            compiled = stmt.compile(dialect=self.dialect)
            assert not params and not compiled.params, "the DBAPI path takes statements without parameters"
            with contextlib.closing(self.raw.cursor()) as cur:
                cur.execute(str(compiled))
                return cur.fetchall()
        result = self.conn.execute(stmt, params or {})
        rows = result.all() if result.returns_rows else []
        self.conn.commit()
        return rows

    def create(self) -> None:
        self.drop()
        for table in self.tables:
            self.run(CreateTable(table))

    def drop(self) -> None:
        if self.conn.in_transaction():
            self.conn.rollback()
        for table in self.tables:
            self.run(DropTable(table, if_exists=True))

    def fill(self, table: Table, rows: Iterable[Sequence], progress=None) -> None:
        """Empty `table` and insert `rows`: Python values (as for the lead columns) in the table's column order,
        in lists where a column's value is converted (instants, JSON): they are converted in place.

        The values are converted as SQLAlchemy binds them (aware instants to naive UTC, JSON to text), then
        go to the driver in bulk: executemany on SQLite (through SQLAlchemy it would begin with BEGIN
        IMMEDIATE, the write lock), COPY on PostgreSQL.
        """
        self.run(table.delete())
        names = [c.name for c in table.c]
        convert = [(i, _memo(p) if not isinstance(c.type, JSON) else p) for i, c in enumerate(table.c)
                   if (p := c.type.dialect_impl(self.dialect).bind_processor(self.dialect)) is not None]
        into = f"{table.schema}.{table.name} ({', '.join(names)})"
        raw = self.raw
        try:
            with contextlib.closing(raw.cursor()) as cur:
                if not self.sqlite:
                    with cur.copy(f"COPY {into} FROM STDIN") as copy:
                        for chunk in _converted(rows, convert, progress):
                            for values in chunk:
                                copy.write_row(values)
                else:
                    if not self.locked:
                        cur.execute("BEGIN")  # deferred, and only TEMP tables written: no lock on the database
                    sql = f"INSERT INTO {into} VALUES ({', '.join('?' * len(names))})"
                    for chunk in _converted(rows, convert, progress):
                        cur.executemany(sql, chunk)
            if not self.locked:
                raw.commit()
        except BaseException:
            if not self.locked:
                raw.rollback()
            raise


def _converted(rows: Iterable[Sequence], convert: list, progress) -> Iterator[list]:
    """`rows` in chunks, each value that needs it converted; `progress` told after each chunk."""
    rows, done = iter(rows), 0
    while chunk := list(islice(rows, PROGRESS_EVERY)):
        for values in chunk if convert else ():
            for i, proc in convert:
                if values[i] is not None:
                    values[i] = proc(values[i])
        yield chunk
        done += len(chunk)
        if progress:
            progress(done)


def _memo(proc):
    """`proc` remembering its answers: the same instants come back on many rows (`now` on every one)."""
    seen: dict = {}

    def convert(value):
        if value not in seen:
            seen[value] = proc(value)
        return seen[value]
    return convert


def _stored(st: _Staging) -> list[tuple]:
    """(id, external_id, email_norm) of every stored lead a row names by email or external_id."""
    leads = Lead.__table__
    cols = (leads.c.id, leads.c.external_id, leads.c.email_norm)
    query = select(*cols).join_from(st.emails, leads, leads.c.email_norm == st.emails.c.email_norm).union(
        select(*cols).join_from(st.exts, leads, leads.c.external_id == st.exts.c.external_id))
    return [tuple(r) for r in st.run(query)]


def _prepare(st: _Staging, rows: list[_Row], now: datetime, progress) -> _Plan:
    """Read, plan and stage: the work of the import that needs no write lock."""
    plan = _plan(rows, _stored(st), now)
    if st.sqlite:  # ids follow the largest one, taken in the write transaction
        refs = range(1, len(plan.new) + 1)
    else:  # drawn now; the numbers of an import that fails are never used, like a failed INSERT's
        refs = [r[0] for r in st.run(text("SELECT nextval(pg_get_serial_sequence('leads', 'id')) "
                                          "FROM generate_series(1, :n)"), {"n": len(plan.new)})] if plan.new else []
    for lead, ref in zip(plan.new, refs, strict=True):
        lead.ref = ref
    st.fill(st.new, ([lead.ref, *map(lead.values.get, WRITTEN)] for lead in plan.new))
    st.fill(st.updates, ([t.id, t.old_email_norm, t.old_external_id, *map(t.values.get, WRITTEN)]
                         for t in plan.updates))
    st.fill(st.rows, ((row.line, t.id, t.ref) for row, t in zip(rows, plan.targets, strict=True)), progress=progress)
    return plan


def _write(st: _Staging, plan: _Plan, now: datetime, file_name: str) -> None:
    """The write transaction's statements: set-based, done by the database engine."""
    conn, leads, audit = st.conn, Lead.__table__, AuditEvent.__table__
    new, upd, rows = st.new, st.updates, st.rows
    if plan.updates:
        written = {name for t in plan.updates for name in t.values}
        plain = [name for name in WRITTEN if name in written and name not in INDEXED]
        indexed = [name for name in WRITTEN if name in written and name in INDEXED]
        # Every matched lead, if it still has the keys it was matched by (the same statement locks it on
        # PostgreSQL): the columns no index holds, cheap to write on every row.
        same_keys = (leads.c.id == upd.c.id, leads.c.email_norm == upd.c.old_email_norm,
                     leads.c.external_id.is_not_distinct_from(upd.c.old_external_id))
        held = conn.execute(update(leads).where(*same_keys).values(
            {name: func.coalesce(upd.c[name], leads.c[name]) for name in plain}))
        if held.rowcount != len(plan.updates):
            raise _Stale()
        if plan.email_moves:  # free every email that moves first: the unique index checks row by row
            conn.execute(update(leads).where(leads.c.id.in_(select(upd.c.id).where(
                upd.c.email_norm != upd.c.old_email_norm))).values(
                email_norm=literal(MOVING) + cast(leads.c.id, String)))
        # Indexed columns only on the leads where one of them changes: writing a column rewrites its index
        # entries even for the value it had, and an import of history mostly confirms what is stored.
        if indexed:
            conn.execute(update(leads).where(leads.c.id == upd.c.id, or_(*(
                and_(upd.c[name].is_not(None), leads.c[name].is_distinct_from(upd.c[name])) for name in indexed)))
                .values({name: func.coalesce(upd.c[name], leads.c[name]) for name in indexed}))
    base = 0
    if plan.new:
        if st.sqlite:
            base = conn.execute(select(func.coalesce(func.max(leads.c.id), 0))).scalar_one()
        inserted = conn.execute(insert(leads).from_select(
            ["id", *WRITTEN], select((new.c.id + base).label("id"), *(new.c[name] for name in WRITTEN))
            .order_by(new.c.id)))
        if inserted.rowcount not in (-1, len(plan.new)):
            raise _Stale()
    conn.execute(insert(audit).from_select(
        ["lead_id", "at", "actor", "action", "detail"],
        select(func.coalesce(rows.c.lead_id, rows.c.new_id + base), literal(now, audit.c.at.type),
               literal("import"), literal("imported"), literal({"file": file_name}, audit.c.detail.type))
        .order_by(rows.c.line)))


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, _Stale):
        return True
    if isinstance(exc, DBAPIError) and is_race(exc):
        return True
    return isinstance(exc, OperationalError) and "locked" in str(exc.orig)  # SQLite: busy_timeout ran out


def _unsuppressed(db, rows: list[_Row]) -> list[_Row]:
    """The rows whose email was not erased with suppression (docs/privacy.md): the others are left out, as the
    webhook leaves them out, and only their number is logged."""
    with db.begin() as session:
        blocked = privacy.suppressed(session, [row.item.email for row in rows])
    if not blocked:
        return rows
    kept = [row for row in rows if row.item.email not in blocked]
    log.warning("import: %d row(s) of suppressed emails left out (docs/privacy.md)", len(rows) - len(kept))
    return kept


def import_csv(db, path: str | Path, policy: Policy, tz: ZoneInfo, now: datetime, progress=None) -> tuple[int, int]:
    """Validate every row first; any bad row and nothing is imported. Returns (created, updated)."""
    path = Path(path)
    started = time.perf_counter()
    rows = _unsuppressed(db, _validated(path, tz, policy, progress))
    validated = time.perf_counter()
    with db.engine.connect() as conn:
        st = _Staging(conn)
        try:
            st.create()
            emails = sorted({row.item.email.lower() for row in rows})
            st.fill(st.emails, ((e,) for e in emails))
            st.fill(st.exts, ((x,) for x in sorted({r.item.external_id for r in rows} - {None})))
            for attempt in range(1, ATTEMPTS + 1):
                last = attempt == ATTEMPTS
                try:
                    if not last:
                        plan = _prepare(st, rows, now, progress)
                    prepared = time.perf_counter()
                    with conn.begin():  # on SQLite: BEGIN IMMEDIATE, the write lock
                        if last:  # nothing can change under it (on PostgreSQL the row locks and indexes hold)
                            st.locked = True
                            plan = _prepare(st, rows, now, progress)
                        _write(st, plan, now, path.name)
                    done = time.perf_counter()
                    log.info("import of %d rows: %d created, %d updated; validated in %.1f s, prepared in %.1f s, "
                             "written in one transaction of %.2f s", len(rows), plan.created, plan.updated,
                             validated - started, prepared - validated, done - prepared)
                    return plan.created, plan.updated
                except Exception as exc:
                    if last or not _retryable(exc):
                        raise
                    log.info("import: leads it names changed during attempt %d (%s); preparing again",
                             attempt, type(exc).__name__)
                finally:
                    st.locked = False
        finally:
            try:
                st.drop()
            except DBAPIError as exc:  # the connection is gone with them, or the next import drops them first
                log.warning("import: its work tables were not dropped: %s", type(exc).__name__)
    raise AssertionError("unreachable")
