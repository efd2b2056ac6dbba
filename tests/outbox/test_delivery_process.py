"""`serve` sends from a second process (outbox/process.py): woken at once, started again when it dies, and
never left running when `serve` is gone."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from outbox.process import DELIVERY_NICE, DeliveryProcess
from tests.conftest import wait_until
from tests.outbox.test_outbox import ok_posts, post_mql, serve, serve_env


def children(pid: int) -> list[int]:
    """The live processes whose parent is `pid` (Linux)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid and stat[0] != "Z":
                found.append(int(entry.name))
    return found


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


def health(env) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{env['PORT']}/healthz", timeout=5) as resp:
        return json.loads(resp.read())


def stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.slow
def test_cards_go_out_from_the_delivery_process_which_is_started_again_when_it_dies(db, slack):
    env = serve_env(db, slack)
    proc = serve(env)
    try:
        assert wait_until(lambda: health(env)["delivery_process"] == "running", timeout=20)
        (child,) = wait_until(lambda: children(proc.pid), timeout=10)
        # answering comes first: the delivery process yields the CPU to the web process when both want it
        assert os.getpriority(os.PRIO_PROCESS, child) == os.getpriority(os.PRIO_PROCESS, proc.pid) + DELIVERY_NICE
        post_mql(env, "first@example.com")
        assert len(slack.wait_calls("chat.postMessage", 1, timeout=20)) == 1

        os.kill(child, signal.SIGKILL)
        assert wait_until(lambda: gone(child), timeout=10)
        post_mql(env, "second@example.com")  # accepted while nothing sends: it waits in the outbox
        assert len(slack.wait_calls("chat.postMessage", 2, timeout=30)) == 2
        (again,) = children(proc.pid)
        assert again != child
        assert wait_until(lambda: health(env)["delivery_process"] == "running", timeout=20)
    finally:
        code = stop(proc)
    assert code == 0
    output = proc.stdout.read().decode()
    assert "the delivery process exited (code -9)" in output
    assert len(ok_posts(slack)) == 2


@pytest.mark.slow
def test_the_delivery_process_stops_when_serve_is_killed(db, slack):
    env = serve_env(db, slack)
    proc = serve(env)
    (child,) = wait_until(lambda: children(proc.pid), timeout=10)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert wait_until(lambda: gone(child), timeout=15), "the delivery process outlived serve"


@pytest.mark.slow
def test_sigterm_stops_both_processes(db, slack):
    env = serve_env(db, slack)
    proc = serve(env)
    (child,) = wait_until(lambda: children(proc.pid), timeout=10)
    assert stop(proc) == 0
    assert gone(child)


def test_waking_never_blocks_the_web_process(tmp_path):
    """A delivery process too busy to read (here: one that never reads) costs the web process nothing."""
    script = tmp_path / "deaf.py"
    script.write_text("import sys, time\ntime.sleep(60)\n")
    delivery = DeliveryProcess([sys.executable, str(script)]).start()
    try:
        started = time.monotonic()
        for _ in range(200_000):  # far more than a pipe holds
            delivery.notify()
        assert time.monotonic() - started < 30  # (a blocked write would never return)
        assert delivery.alive
    finally:
        delivery.stop(timeout=5)
    assert not delivery.alive
    delivery.notify()  # after stop: nothing to wake, and no error


def test_a_delivery_process_that_keeps_dying_is_started_again_until_serve_stops(tmp_path, monkeypatch):
    import outbox.process as process

    monkeypatch.setattr(process, "FIRST_RESTART", 0.05)
    script = tmp_path / "dies.py"
    script.write_text("raise SystemExit(3)\n")
    delivery = DeliveryProcess([sys.executable, str(script)]).start()
    try:
        assert wait_until(lambda: delivery.restarts >= 3, timeout=20)
    finally:
        delivery.stop(timeout=5)
    restarts = delivery.restarts
    time.sleep(0.3)
    assert delivery.restarts == restarts  # stopped means stopped: no start after stop()
