"""Engine, sessions and migrations: one place for all database access."""
from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger("handoff.db")
T = TypeVar("T")
# PostgreSQL's "try the transaction again" answers: deadlock_detected, serialization_failure.
RETRY_SQLSTATES = {"40P01", "40001"}


def sqlstate(exc: BaseException) -> str | None:
    orig = getattr(exc, "orig", None)
    return getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)


def is_race(exc: BaseException) -> bool:
    """A transaction that lost a race with another one and will succeed when run again."""
    return isinstance(exc, IntegrityError) or (isinstance(exc, DBAPIError) and sqlstate(exc) in RETRY_SQLSTATES)


def is_unavailable(exc: BaseException) -> bool:
    """The database can't be reached or can't take the write now (down, restarting, locked for longer
    than busy_timeout): the request may be sent again later, nothing of it was kept (docs/failures.md)."""
    if isinstance(exc, (DatabaseUnavailable, PoolTimeout)):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, OperationalError) and not is_race(exc):
        return True
    return isinstance(exc, DBAPIError) and type(getattr(exc, "orig", None)).__name__ in {
        "InterfaceError", "AdminShutdown", "CannotConnectNow", "ConnectionFailure"}


def is_transient(exc: BaseException) -> bool:
    """Worth sending again later: the database was away, or the transaction lost a race it kept losing."""
    return is_unavailable(exc) or is_race(exc)


class DatabaseUnavailable(Exception):
    """The database did not let this request in within its wait (another process holds SQLite's write lock)."""


class WriterTurn:
    """SQLite's one writer at a time, handed out in turn among the processes on this host.

    SQLite makes a writer that finds the database locked sleep and look again, longer each time (up to 100 ms);
    next to a busy process that begins its next transaction microseconds after the last one ended, the sleeper
    may never find the gap: while a burst of leads came in, `serve`'s delivery process (outbox/process.py)
    sent nothing at all. So every transaction first takes an exclusive `flock` on a file beside the
    database: the kernel wakes a waiting process the moment the holder lets go. A process that does not use
    it (a `sqlite3` shell) still meets SQLite's own lock and busy wait.

    The blocking `flock` is made by one thread per process, so that the transaction asking can give up after
    `wait_seconds` like any other wait for the database; a turn that arrives after it gave up is passed on.
    """

    def __init__(self, path: str):
        # Two open files, so two locks even within this process: the transaction's own try, and the waiter's.
        self._mine = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        self._waiters = os.open(path, os.O_RDWR)
        self._holding: int | None = None  # which of the two holds the turn for the running transaction
        self._cond = threading.Condition()
        self._asked = self._held = False  # asked: a transaction waits for the turn; held: the waiter got it
        threading.Thread(target=self._wait_for_turns, name="sqlite-writer-turn", daemon=True).start()

    def acquire(self, timeout: float) -> bool:
        """Called by one thread at a time (the holder of the process's own lock)."""
        try:
            fcntl.flock(self._mine, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass
        else:
            self._holding = self._mine
            return True
        with self._cond:
            self._asked = True
            self._cond.notify_all()
            got = self._cond.wait_for(lambda: self._held, timeout)
            self._asked = self._held = False
        if got:
            self._holding = self._waiters
        return got

    def release(self) -> None:
        fd, self._holding = self._holding, None
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def _wait_for_turns(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._asked and not self._held)
            fcntl.flock(self._waiters, fcntl.LOCK_EX)  # the blocking wait, outside the condition's lock
            with self._cond:
                if self._asked:
                    self._held = True
                    self._cond.notify_all()
                    continue
            fcntl.flock(self._waiters, fcntl.LOCK_UN)  # the transaction gave up meanwhile: pass the turn on


class Database:
    def __init__(self, url: str, wait_seconds: float = 10.0):
        self.url = url
        # How long a transaction waits for the database (a connection, SQLite's write lock) before giving up
        # with an error `is_unavailable` recognises: a bounded wait, so that a webhook is answered 503 in time.
        self.wait_seconds = wait_seconds
        self.engine = make_engine(url, wait_seconds)
        self.Session = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite has one writer at a time; queueing writers of this process on a lock is far
        # fairer and faster than letting them spin in SQLite's busy handler. Other processes
        # still wait on busy_timeout.
        self._sqlite_lock = threading.RLock() if self.is_sqlite else None
        # ... and other processes on this host in turn with them (a file database only).
        path = self.engine.url.database if self.is_sqlite else None
        self._turn = WriterTurn(f"{path}-writer") if path and path != ":memory:" and "mode=memory" not in url else None
        self._depth = threading.local()  # this thread's nested begin()s: the turn is taken by the outermost
        self._quick: Database | None = None
        self._quick_lock = threading.Lock()

    def quick(self, seconds: float) -> Database:
        """This database with waits of at most `seconds` (a connection, the SQLite turn, a silent network):
        for writes that must finish or give up within a deadline, such as a click's before Slack's 3 s."""
        if self.is_sqlite and self._turn is None:  # an in-memory database: another engine would be another one
            return self
        with self._quick_lock:
            if self._quick is None:
                self._quick = Database(self.url, wait_seconds=seconds)
            return self._quick

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextlib.contextmanager
    def begin(self):
        """A transaction: committed when the block ends, rolled back on any error."""
        with self.writer_turn(), self.Session.begin() as session:
            yield session

    @contextlib.contextmanager
    def begin_core(self):
        """A transaction on a bare Connection (no ORM session): for the one-statement writes of a hot path."""
        with self.writer_turn(), self.engine.begin() as conn:
            yield conn

    @contextlib.contextmanager
    def autocommit(self):
        """A Connection whose every statement commits by itself (PostgreSQL): for a hot path's write of one
        statement, which is atomic on its own. A transaction around it costs two more round trips (BEGIN,
        COMMIT), and each is a wait for the interpreter's lock on a busy web process: a claim's answer is
        such a write (handlers/clicks.py, BENCHMARKS.md). On SQLite, `begin_core` (its writer turn)."""
        if self.is_sqlite:
            with self.begin_core() as conn:
                yield conn
            return
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            yield conn

    @contextlib.contextmanager
    def writer_turn(self):
        """On SQLite, this thread's turn as the one writer, among this process's threads and then among the
        host's processes (WriterTurn); raises DatabaseUnavailable after `wait_seconds`. Nothing on PostgreSQL."""
        if self._sqlite_lock is None:
            yield
            return
        deadline = time.monotonic() + self.wait_seconds
        if not self._sqlite_lock.acquire(timeout=self.wait_seconds):
            raise DatabaseUnavailable(f"no turn at the SQLite write lock within {self.wait_seconds:g} s")
        depth = getattr(self._depth, "n", 0)
        try:
            if depth == 0 and self._turn is not None and \
                    not self._turn.acquire(max(0.0, deadline - time.monotonic())):
                raise DatabaseUnavailable(f"another process kept SQLite's write turn for {self.wait_seconds:g} s")
            self._depth.n = depth + 1
            try:
                yield
            finally:
                self._depth.n = depth
                if depth == 0 and self._turn is not None:
                    self._turn.release()
        finally:
            self._sqlite_lock.release()

    def transact(self, work: Callable[..., T], attempts: int = 5) -> T:
        """`work(session)` in a transaction, run again (up to `attempts` times) when it lost a race:
        a unique insert another request made first, or a PostgreSQL deadlock or serialization failure."""
        for attempt in range(1, attempts + 1):
            try:
                with self.begin() as session:
                    return work(session)
            except DBAPIError as exc:
                if attempt == attempts or not is_race(exc):
                    raise
                log.info("transaction raced another one (%s); running it again", sqlstate(exc) or "unique")
                time.sleep(random.uniform(0, 0.01 * 2 ** attempt))
        raise AssertionError("unreachable")

    def migrate(self) -> None:
        with self.writer_turn():
            migrate(self.engine)

    def ping(self) -> bool:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True

    def dispose(self) -> None:
        self.engine.dispose()
        if self._quick is not None:
            self._quick.dispose()


READS = ("SELECT", "SAVEPO", "RELEAS")  # how the statements that change no row begin (SAVEPOINT, RELEASE)


def count_writes(engine: Engine) -> None:
    """Count, per connection, the statements that changed rows or may have (`writes`; a conditional UPDATE
    that matched none is not one): so that work refused before it changed anything can keep its savepoint
    instead of rolling back to it (handlers/clicks.py). psycopg forgets every prepared statement of a
    connection on any ROLLBACK, a savepoint's too, and then plans them all again."""
    @event.listens_for(engine, "after_cursor_execute")
    def _count(conn, cursor, statement, _params, _context, _executemany):
        if statement.lstrip()[:6].upper() not in READS and cursor.rowcount != 0:  # -1: not known
            conn.info["writes"] = conn.info.get("writes", 0) + 1


def writes(session: Session) -> int:
    """How many statements that changed rows (or may have) the session's connection sent (`count_writes`)."""
    return session.connection().info.get("writes", 0)


def wrote_nothing_since(session: Session, before: int) -> bool:
    """Whether, since `writes(session)` was `before`, no statement changed rows and nothing waits to be flushed."""
    return writes(session) == before and not (session.new or session.dirty or session.deleted)


def make_engine(url: str, wait_seconds: float = 10.0) -> Engine:
    # hide_parameters: an error's message never carries the row's values (emails, names) into the logs.
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": wait_seconds, "check_same_thread": False},
                               pool_size=20, max_overflow=20, pool_timeout=wait_seconds, hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            # Let SQLAlchemy issue BEGIN itself so that it can be BEGIN IMMEDIATE:
            # a writer takes the lock up front instead of failing on upgrade.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={int(wait_seconds * 1000)}")
            # Reports read a month of leads scattered over the table: let each connection keep 16 MB of
            # pages and read the file through a memory map instead of a system call per page.
            cur.execute("PRAGMA cache_size=-16384")
            cur.execute("PRAGMA mmap_size=268435456")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        count_writes(engine)
        return engine
    # A server that is down refuses at once; one that vanished from the network (a cut link, a failover) must
    # not hang a request either: bounded connect, and TCP gives up on a silent peer (libpq parameters).
    wait_ms = int(wait_seconds * 1000)
    connect_args = {"connect_timeout": max(1, int(wait_seconds)), "tcp_user_timeout": wait_ms,
                    "keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 3}
    engine = create_engine(url, pool_size=20, max_overflow=20, pool_timeout=wait_seconds,
                           connect_args=connect_args, hide_parameters=True)
    ping_after_idle(engine)
    count_writes(engine)
    return engine


PING_AFTER_IDLE = 1.0  # seconds a pooled PostgreSQL connection may rest before it is checked at checkout


def ping_after_idle(engine: Engine) -> None:
    """Check a pooled connection before use only when it has rested (PING_AFTER_IDLE): one that went stale
    while idle (the server restarted, a failover, a cut link) is replaced before a request meets it, as
    `pool_pre_ping` does, without that ping's round trip on every checkout of a busy pool, where a
    connection back from its last use milliseconds ago tells as much (a claim's answer is one INSERT: the
    ping was a third of it). A connection that breaks while in use fails its statement, and SQLAlchemy then
    discards every connection of the pool made before it, as with pre-ping."""
    from sqlalchemy.exc import DisconnectionError

    @event.listens_for(engine, "checkin")
    def _rested_from(_dbapi_conn, record):
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_rested(dbapi_conn, record, _proxy):
        since = record.info.pop("idle_since", None)
        if since is None or time.monotonic() - since < PING_AFTER_IDLE:  # new, or just used
            return
        try:
            alive = engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:  # the pool makes a new connection (and retries) on DisconnectionError
            raise DisconnectionError(f"a pooled connection went stale: {type(exc).__name__}") from exc
        if alive is False:
            raise DisconnectionError("a pooled connection went stale")


def alembic_config(engine_or_url):
    from alembic.config import Config

    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    if isinstance(engine_or_url, str):
        cfg.set_main_option("sqlalchemy.url", engine_or_url.replace("%", "%%"))
    return cfg


def migrate(engine: Engine) -> None:
    from alembic import command

    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # Two processes starting at once must not both create the tables.
            conn.execute(text("SELECT pg_advisory_xact_lock(7462011)"))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")



def upsert_insert(session: Session):
    """The `insert` of the session's dialect, which has ON CONFLICT (SQLite and PostgreSQL)."""
    if session.bind.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def insert_ignore(session: Session, model, values: dict) -> bool:
    """INSERT that does nothing on a unique conflict, on SQLite and PostgreSQL. True when inserted."""
    pk = list(model.__table__.primary_key.columns)[0]
    stmt = upsert_insert(session)(model).values(**values).on_conflict_do_nothing().returning(pk)
    return session.connection().execute(stmt).first() is not None


def insert_ignore_many(session: Session, model, rows: list[dict], count: bool = True) -> int | None:
    """`insert_ignore` for many rows (all with the same keys): a few multi-row statements, not one per row.
    Returns how many were inserted (`count`; else None, with no RETURNING)."""
    if not rows:
        return 0
    stmt = upsert_insert(session)(model.__table__).on_conflict_do_nothing()
    if not count:
        session.connection().execute(stmt, rows)
        return None
    pk = list(model.__table__.primary_key.columns)[0]
    return len(session.connection().execute(stmt.returning(pk), rows).all())
