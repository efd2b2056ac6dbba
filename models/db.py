"""Engine, sessions and migrations: one place for all database access."""
from __future__ import annotations

import contextlib
import logging
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

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextlib.contextmanager
    def begin(self):
        """A transaction: committed when the block ends, rolled back on any error."""
        if self._sqlite_lock is None:
            with self.Session.begin() as session:
                yield session
            return
        if not self._sqlite_lock.acquire(timeout=self.wait_seconds):
            raise DatabaseUnavailable(f"no turn at the SQLite write lock within {self.wait_seconds:g} s")
        try:
            with self.Session.begin() as session:
                yield session
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
        migrate(self.engine)

    def ping(self) -> bool:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True

    def dispose(self) -> None:
        self.engine.dispose()


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

        return engine
    # A server that is down refuses at once; one that vanished from the network (a cut link, a failover) must
    # not hang a request either: bounded connect, and TCP gives up on a silent peer (libpq parameters).
    wait_ms = int(wait_seconds * 1000)
    connect_args = {"connect_timeout": max(1, int(wait_seconds)), "tcp_user_timeout": wait_ms,
                    "keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 3}
    return create_engine(url, pool_size=20, max_overflow=20, pool_pre_ping=True, pool_timeout=wait_seconds,
                         connect_args=connect_args, hide_parameters=True)


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



def insert_ignore(session: Session, model, values: dict) -> bool:
    """INSERT that does nothing on a unique conflict, on SQLite and PostgreSQL. True when inserted."""
    if session.bind.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    pk = list(model.__table__.primary_key.columns)[0]
    stmt = insert(model).values(**values).on_conflict_do_nothing().returning(pk)
    return session.connection().execute(stmt).first() is not None
