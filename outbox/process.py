"""The delivery process: what `serve` sends (Slack, events, HubSpot) and its jobs run beside the web process.

A Python process runs one thread at a time. When the web process also signed webhooks, wrote to HubSpot and
posted cards, every delivery took the interpreter from the clicks and the webhooks being answered, and a burst
of leads was answered, and delivered, at half the speed (BENCHMARKS.md). So `serve` starts a second process,
`python bot.py deliver`, that runs the Slack sender, one lane per event endpoint, the HubSpot writer and the
scheduler (unless SCHEDULER=off); the web process only answers and commits.

- Waking: the web process wakes the delivery process through a pipe after each commit that queued something
  (one byte; a full pipe means it is awake already). Rows queued by anyone else (the clock, a command) are
  found by each sender's own poll, as before.
- Supervised: if the delivery process dies, `serve` logs it and starts another (1 s later, up to 30 s apart
  while it keeps dying); nothing is lost meanwhile, the rows wait in the database. If `serve` dies, the
  delivery process sees the pipe close and stops by itself, so no orphan keeps sending.
- Several processes may deliver at once (more web hosts, a clock): every row is leased before it is sent.

See docs/operating.md.
"""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ops import metrics

log = logging.getLogger("handoff.delivery")
ROOT = Path(__file__).resolve().parent.parent
FIRST_RESTART, MAX_RESTART = 1.0, 30.0  # seconds before starting a delivery process that died, doubling
HEALTHY_AFTER = 60.0  # a process that ran this long before dying is started again after FIRST_RESTART
# The delivery process runs at a lower CPU priority than the web process: when the cores are busy, answering
# Slack within its 3 s and taking webhooks come first, and sending what they queued comes a moment later.
DELIVERY_NICE = 5
# What a byte on the wake pipe asks for: everything to look for work (a commit queued messages or events), or
# only the click queue (handlers/clicks.py; a click was written down, and nothing is to be sent until it is
# applied). Waking every sender for each of fifty clicks a second made each of them query the database for
# nothing, taking the database from the clicks being answered.
WAKE_ALL, WAKE_CLICKS = b"\0", b"c"


class DeliveryProcess:
    """The `bot.py deliver` child of a `serve` process, woken through a pipe and started again if it dies."""

    def __init__(self, command: list[str] | None = None, on_state: Callable[[str], None] | None = None):
        self.command = command or [sys.executable, str(ROOT / "bot.py"), "deliver"]
        self.proc: subprocess.Popen | None = None
        # One wake pipe for the life of `serve`, handed to each delivery process started: pre-forked web workers
        # (prefork.py) hold its write end from their start, so it must outlive a delivery process that dies.
        self._wake_fd: int | None = None
        self._wake_read: int | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None
        self.restarts = 0
        self.ready = threading.Event()  # the running process said it is sending (set again after each start)
        self.on_state = on_state  # told `starting`, `running` or `restarting` as it changes (for web workers)

    # The web side ---------------------------------------------------------------------
    def notify(self, what: bytes = WAKE_ALL) -> None:
        """Something was committed for delivery (`what`: WAKE_ALL, or WAKE_CLICKS for a click to apply only):
        wake the delivery process (never blocks)."""
        fd = self._wake_fd
        if fd is None:
            return
        try:
            os.write(fd, what)
        except OSError:  # full: awake already; closed: the process is being started again
            pass

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def state(self) -> str:
        """What /healthz says: `running`, `starting` (not sending yet) or `restarting` (it died)."""
        if not self.alive:
            return "restarting"
        return "running" if self.ready.is_set() else "starting"

    @property
    def wake_fd(self) -> int | None:
        """The pipe's write end, for processes that wake it too (pre-forked web workers inherit it)."""
        return self._wake_fd

    def _tell(self, state: str) -> None:
        if self.on_state is not None:
            try:
                self.on_state(state)
            except OSError:
                log.exception("could not publish the delivery process's state")

    # Running ----------------------------------------------------------------------------
    def start(self) -> DeliveryProcess:
        self._spawn()
        self._supervisor = threading.Thread(target=self._supervise, name="delivery-supervisor", daemon=True)
        self._supervisor.start()
        return self

    def _spawn(self) -> None:
        if self._wake_read is None:
            self._wake_read, write_fd = os.pipe()
            os.set_blocking(write_fd, False)
            self._wake_fd = write_fd
        ready_read, ready_write = os.pipe()
        self.ready.clear()
        try:
            proc = subprocess.Popen([*self.command, "--wake-fd", str(self._wake_read), "--ready-fd", str(ready_write)],
                                    pass_fds=(self._wake_read, ready_write), cwd=ROOT)
        finally:
            os.close(ready_write)  # the child holds its own copy
        with self._lock:
            self.proc = proc
        self._tell("starting")
        threading.Thread(target=self._await_ready, args=(ready_read,), name="delivery-ready", daemon=True).start()
        log.info("delivery process started (pid %d)", proc.pid)

    def _await_ready(self, fd: int) -> None:
        try:
            if os.read(fd, 1):
                self.ready.set()
                self._tell("running")
        finally:
            os.close(fd)

    def _supervise(self) -> None:
        pause = FIRST_RESTART
        while not self._stopping.is_set():
            started = time.monotonic()
            code = self.proc.wait()
            metrics.process_gone(self.proc.pid)  # what it counted stays counted (ops/metrics.py)
            if self._stopping.is_set():
                return
            if time.monotonic() - started >= HEALTHY_AFTER:
                pause = FIRST_RESTART
            log.error("the delivery process exited (code %s); starting it again in %.0f s; what it had not "
                      "sent waits in the database", code, pause)
            self._tell("restarting")
            if self._stopping.wait(pause):
                return
            pause = min(pause * 2, MAX_RESTART)
            try:
                self._spawn()
                self.restarts += 1
            except OSError:
                log.exception("could not start the delivery process")

    def stop(self, timeout: float = 25.0) -> None:
        """Ask the delivery process to finish what it is sending and stop (SIGTERM), then wait for it."""
        self._stopping.set()
        proc = self.proc
        if proc is not None and proc.poll() is None:
            terminate(proc, timeout, "the delivery process")
        with self._lock:
            fds, self._wake_fd, self._wake_read = (self._wake_fd, self._wake_read), None, None
        for fd in fds:
            if fd is not None:
                os.close(fd)


def terminate(proc: subprocess.Popen, timeout: float, name: str) -> None:
    """SIGTERM `proc` (it finishes what it acknowledged and stops), wait up to `timeout` s, then kill it."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        log.warning("%s did not stop within %.0f s; killing it", name, timeout)
        proc.kill()
        proc.wait()


class DeliveryHandle:
    """The delivery process as a pre-forked web worker sees it (prefork.py): `serve` started it, the
    worker inherited the wake pipe's write end, and `serve` publishes its state in a small file."""

    def __init__(self, wake_fd: int, state_path: str):
        self._wake_fd, self.state_path = wake_fd, state_path

    def notify(self, what: bytes = WAKE_ALL) -> None:
        try:
            os.write(self._wake_fd, what)
        except OSError:  # full: awake already
            pass

    @property
    def state(self) -> str:
        try:
            with open(self.state_path, encoding="ascii") as f:
                return f.read().strip() or "starting"
        except OSError:
            return "starting"


def publish_state(path: str, state: str) -> None:
    """Write `state` to `path` at once (a reader sees the old or the new state, never half of one)."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write(state)
    os.replace(tmp, path)


# The delivery side ----------------------------------------------------------------------
def say_ready(fd: int | None) -> None:
    """In the delivery process, once its senders run: tell `serve` (its /healthz says `running` from then)."""
    if fd is not None:
        os.write(fd, b"R")
        os.close(fd)


def listen_for_wakes(fd: int, wake: Callable[[bytes], None], parent_gone: Callable[[], None],
                     name: str = "delivery-wake") -> threading.Thread:
    """Call `wake(the bytes)` for every burst of bytes on the pipe `fd`, and `parent_gone` at its end (every
    writer is gone). The delivery process's wake pipe; also a pre-fork master's lifeline to `serve`
    (prefork.py)."""
    def run():
        try:
            while burst := os.read(fd, 65536):
                wake(burst)
        except OSError:
            pass
        parent_gone()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread
