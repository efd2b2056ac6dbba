"""SQLite's writer turn across processes (models/db.py WriterTurn): a process writing back to back does not
starve another one, a wait gives up in time, and a turn that arrives after its asker gave up is passed on."""
from __future__ import annotations

import select
import subprocess
import sys
import textwrap
import time

import pytest
from sqlalchemy import text

from models.db import Database, DatabaseUnavailable, WriterTurn
from tests.conftest import ROOT, wait_until

HAMMER = textwrap.dedent("""
    import sys, threading, time
    sys.path.insert(0, {root!r})
    from sqlalchemy import text
    from models.db import Database
    db = Database({url!r})
    with db.begin() as s:
        s.execute(text("CREATE TABLE IF NOT EXISTS hammer (n INTEGER)"))
    stop = threading.Event()
    def work():
        while not stop.is_set():
            with db.begin() as s:  # back to back, each holding the write lock a little while
                s.execute(text("INSERT INTO hammer VALUES (1)"))
                time.sleep(0.005)
    threads = [threading.Thread(target=work) for _ in range(4)]
    for th in threads:
        th.start()
    print("hammering", flush=True)
    sys.stdin.read()  # until the test closes our stdin
    stop.set()
    for th in threads:
        th.join()
""")

HOLD = textwrap.dedent("""
    import fcntl, os, sys
    fd = os.open({path!r}, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    print("holding", flush=True)
    sys.stdin.read()
""")


def start(script: str) -> subprocess.Popen:
    """The script in a process of its own, once it says it has begun (failing, not hanging, if it cannot)."""
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    ready, _, _ = select.select([proc.stdout], [], [], 20)
    if not ready:
        proc.kill()
        proc.wait()
        pytest.fail("the other process never got going (the turn was not passed on?)")
    assert proc.stdout.readline().strip() in ("hammering", "holding")
    return proc


def finish(proc: subprocess.Popen) -> None:
    proc.stdin.close()
    proc.wait(30)


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'turns.db'}"


def test_a_process_writing_back_to_back_does_not_starve_another(sqlite_url):
    hammer = start(HAMMER.format(root=str(ROOT), url=sqlite_url))
    db = Database(sqlite_url, wait_seconds=5)
    try:
        done = 0
        for _ in range(40):  # each would give up (DatabaseUnavailable) after 5 s without a turn
            with db.begin() as s:
                s.execute(text("SELECT count(*) FROM hammer")).scalar()
            done += 1
        assert hammer.poll() is None  # all of them went through while the other process kept writing
    finally:
        finish(hammer)
        db.dispose()
    assert done == 40


def test_a_wait_gives_up_in_time_and_a_late_turn_is_passed_on(tmp_path):
    path = str(tmp_path / "x.db-writer")
    holder = start(HOLD.format(path=path))
    turn = WriterTurn(path)
    try:
        assert turn.acquire(0.2) is False  # the other process holds it
    finally:
        finish(holder)
    # The turn that reached this process after the asker gave up was let go: another process can take it.
    again = start(HOLD.format(path=path))
    finish(again)
    assert turn.acquire(5) is True
    turn.release()


def test_a_database_waiting_for_the_turn_answers_unavailable(sqlite_url, tmp_path):
    db = Database(sqlite_url, wait_seconds=0.3)
    holder = start(HOLD.format(path=f"{tmp_path / 'turns.db'}-writer"))
    try:
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailable), db.begin() as s:
            s.execute(text("SELECT 1"))
        assert time.monotonic() - started < 10  # (bounded: it gave up instead of waiting for ever)
    finally:
        finish(holder)
    assert wait_until(lambda: _works(db), timeout=10)
    db.dispose()


def _works(db) -> bool:
    try:
        with db.begin() as s:
            return s.execute(text("SELECT 1")).scalar() == 1
    except DatabaseUnavailable:
        return False
