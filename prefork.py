"""`serve` with WEB_CONCURRENCY above 1: that many web processes answering on one port (docs/operating.md,
"Scaling out").

A Python process runs one thread at a time: one web process answers Slack with one core however many the host
has. With WEB_CONCURRENCY=N, `serve` runs

    bot.py serve          the supervisor: checks the settings, the database and the token once, then starts
    ├─ bot.py deliver     the delivery process (outbox/process.py): the senders and the scheduler, one for all
    └─ bot.py web         gunicorn's arbiter: binds PORT, forks N workers, starts again one that dies or hangs
       └─ N workers       each builds its own runtime after the fork and serves the shared socket with waitress

Why waitress inside gunicorn's workers: gunicorn's own sync and threaded workers give a thread to a connection
while its request arrives, so two hundred clients dripping their headers would hold every thread
(docs/failures.md); waitress reads requests in an event loop and hands its threads complete requests only, with
the limits set in `Runtime.make_server`. gunicorn brings what a pre-fork server needs and is easy to get wrong:
forking, a heartbeat that replaces a stuck worker, restarting dead ones, and a graceful stop on SIGTERM.

Wiring: every worker wakes the delivery process through the pipe it inherited from `serve`, and reads the
delivery process's state (for /healthz) from a file `serve` keeps current. The arbiter stops, gracefully,
when `serve`'s lifeline pipe closes, so a `serve` killed outright leaves no web process holding the port; the
delivery process then stops too, as every holder of its wake pipe is gone.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from gunicorn import glogging
from gunicorn.app.base import BaseApplication
from gunicorn.workers.base import Worker

from settings import Settings

log = logging.getLogger("handoff.web")
ROOT = Path(__file__).resolve().parent
HEARTBEAT = 1.0  # seconds between a worker's signs of life to the arbiter
WORKER_TIMEOUT = 30  # seconds without one before the arbiter replaces the worker
GRACEFUL_SECONDS = 30  # after SIGTERM, how long a worker may finish what it acknowledged (then it is killed)
STOP_SECONDS = GRACEFUL_SECONDS + 5  # how long `serve` waits for the web processes to stop


# serve: the supervisor ------------------------------------------------------------------------------
def serve(settings: Settings, slack_identity: dict | None, on_ready=None) -> int:
    """Run the delivery process and the pre-forked web processes until SIGTERM / Ctrl-C (KeyboardInterrupt)
    or until the web processes stop by themselves; the exit code. `slack_identity`: the token's auth.test
    answer `serve` got when it checked it, handed to every worker (ops/slack_client.py IdentifiedWebClient)."""
    from outbox.process import DeliveryProcess, publish_state, terminate

    workdir = tempfile.mkdtemp(prefix="handoff-serve-")
    state_path = os.path.join(workdir, "delivery-state")
    publish_state(state_path, "starting")
    delivery = DeliveryProcess(on_state=lambda state: publish_state(state_path, state)).start()
    lifeline_read, lifeline_write = os.pipe()
    try:
        web = subprocess.Popen(
            [sys.executable, str(ROOT / "bot.py"), "web", "--wake-fd", str(delivery.wake_fd),
             "--lifeline-fd", str(lifeline_read), "--state", state_path,
             "--identity", json.dumps(slack_identity or {})],
            pass_fds=(delivery.wake_fd, lifeline_read), cwd=ROOT)
    except OSError:
        delivery.stop()
        raise
    finally:
        os.close(lifeline_read)
    if on_ready is not None:
        on_ready()
    try:
        code = web.wait()
        log.error("the web processes stopped by themselves (code %s); stopping", code)
        return code or 1
    except KeyboardInterrupt:  # SIGTERM or Ctrl-C: the web processes finish what they acknowledged first
        terminate(web, STOP_SECONDS, "the web processes")
        return 0
    finally:
        os.close(lifeline_write)
        delivery.stop()  # after the web processes: what they queued was woken for, and is sent or waits
        for name in os.listdir(workdir):
            os.unlink(os.path.join(workdir, name))
        os.rmdir(workdir)


# bot.py web: gunicorn's arbiter ----------------------------------------------------------------------
class WebApplication(BaseApplication):
    """gunicorn's application: its settings, and in each worker (after the fork) the runtime it serves."""

    def __init__(self, settings: Settings, wake_fd: int, state_path: str, lifeline_fd: int | None,
                 slack_identity: dict | None = None):
        self.settings, self.wake_fd, self.state_path, self.lifeline_fd = settings, wake_fd, state_path, lifeline_fd
        self.slack_identity = slack_identity
        self.runtime = None
        super().__init__()

    def load_config(self) -> None:
        options = {
            "bind": [f"0.0.0.0:{self.settings.PORT}"],
            "workers": self.settings.WEB_CONCURRENCY,
            "worker_class": f"{__name__}.WaitressWorker",
            "timeout": WORKER_TIMEOUT,
            "graceful_timeout": GRACEFUL_SECONDS,
            "proc_name": "handoff-web",
            "loglevel": "info",
            "logger_class": f"{__name__}.GunicornLogs",
            "when_ready": self._when_ready,
            "child_exit": self._child_exit,
        }
        for key, value in options.items():
            self.cfg.set(key, value)

    def _when_ready(self, arbiter) -> None:
        """In the arbiter, once bound: stop gracefully when `serve` is gone."""
        from outbox.process import listen_for_wakes

        def serve_gone():
            log.warning("serve is gone; the web processes stop")
            os.kill(os.getpid(), signal.SIGTERM)

        if self.lifeline_fd is not None:
            listen_for_wakes(self.lifeline_fd, lambda _burst: None, serve_gone, name="lifeline")

    def make_server(self, sockets: list):
        return self.runtime.make_server(sockets=sockets)

    def shutdown(self) -> None:
        self.runtime.shutdown(timeout=GRACEFUL_SECONDS - 5)

    @staticmethod
    def _child_exit(arbiter, worker) -> None:
        """In the arbiter: what a worker that stopped counted stays counted (ops/metrics.py)."""
        from ops import metrics

        metrics.process_gone(worker.pid)

    def load(self):
        """In a worker, after the fork: its own database pool, Bolt and WSGI app (nothing is shared across
        the fork but the listening socket and the wake pipe)."""
        from outbox.process import DeliveryHandle
        from runtime import build_runtime, quiet_garbage_collector

        # `serve` migrated, reconciled the destinations and checked the token once, before forking: the worker
        # keeps its auth.test answer, and asks Slack nothing before answering its first request
        rt = build_runtime(self.settings, verify_token=False, reconcile=False, slack_identity=self.slack_identity)
        rt.services.delivery = DeliveryHandle(self.wake_fd, self.state_path)
        self.runtime = rt
        quiet_garbage_collector()
        return rt.http


class GunicornLogs(glogging.Logger):
    """gunicorn's own lines (workers booting, dying, replaced) go through the process's logging, so they read
    like every other line, as text or JSON (LOG_FORMAT, ops/logs.py); the workers' access lines are written
    by the app itself."""

    def setup(self, cfg) -> None:
        self.error_log.handlers.clear()
        self.error_log.propagate = True
        self.error_log.setLevel(logging.INFO)
        self.access_log.handlers.clear()
        self.access_log.propagate = False


class WaitressWorker(Worker):
    """A gunicorn worker that serves with waitress on the arbiter's sockets (see the module's docstring). Its
    application gives `make_server(sockets)` and `shutdown()` besides gunicorn's `wsgi()`."""

    def run(self) -> None:
        server = self.app.make_server([listener.sock for listener in self.sockets])
        thread = threading.Thread(target=_serve, args=(server,), name="http", daemon=True)
        thread.start()
        while self.alive and thread.is_alive():
            if self.ppid != os.getppid():  # the arbiter is gone
                log.warning("the web master is gone; worker %d stops", os.getpid())
                break
            self.notify()
            time.sleep(HEARTBEAT)
        server.close()  # no new connections; the requests being answered still are
        self.app.shutdown()


def _serve(server) -> None:
    import errno

    try:
        server.run()
    except OSError as exc:  # closed from the worker's main thread
        if exc.errno != errno.EBADF:
            raise


def run_web(settings: Settings, wake_fd: int, state_path: str, lifeline_fd: int | None,
            slack_identity: dict | None = None) -> int:
    """`bot.py web` (started by `serve`): gunicorn's arbiter until SIGTERM."""
    os.set_blocking(wake_fd, False)
    WebApplication(settings, wake_fd, state_path, lifeline_fd, slack_identity).run()
    return 0
