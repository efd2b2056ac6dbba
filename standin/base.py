"""What every local stand-in shares: an HTTP server in a daemon thread, started and stopped as a context
manager, and a way to wait for something it recorded (standin/server.py, hubspot.py, receiver.py)."""
from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from typing import Self


class QuietServer(ThreadingHTTPServer):
    """A stand-in's server: a client that hung up before its answer (it timed out, as tests of slow services
    make it) is what a real service meets too, not an error of the stand-in; any other error is printed."""

    daemon_threads = True
    request_queue_size = 128  # a real service takes a burst of connections; socketserver's 5 drops SYNs (1 s waits)

    def handle_error(self, request, client_address) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):  # BrokenPipeError, ConnectionResetError, …
            return
        super().handle_error(request, client_address)


class LocalServer:
    """Subclasses set `server`, `_cond` (over their lock) and `_thread = None` in their constructor."""

    server: ThreadingHTTPServer
    _cond: threading.Condition
    _thread: threading.Thread | None
    thread_name = "standin"
    poll_seconds = 0.5  # how soon serve_forever notices stop()

    def _listen(self, host: str, port: int, handler) -> None:
        """Bind the server (port 0: any free one); it serves once started."""
        self.server = QuietServer((host, port), handler)
        self._thread = None

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Self:
        if self._thread is None:
            self._thread = threading.Thread(target=self.server.serve_forever, args=(self.poll_seconds,),
                                            name=self.thread_name, daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop_serving()
        self.server.server_close()

    def _stop_serving(self) -> None:
        # shutdown() blocks for ever when serve_forever is not running, and a shutdown asked while it is not
        # would stop the next serve_forever at once: only ask the loop that is running.
        thread, self._thread = self._thread, None
        if thread is not None:
            self.server.shutdown()
            thread.join()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def serve_until_interrupted(self) -> int:
        """Run alone in the foreground (`python -m standin.…`): print the url, serve until Ctrl-C."""
        print(self.url, flush=True)
        try:
            self.server.serve_forever()
        except KeyboardInterrupt:
            pass
        return 0

    def _wait_until(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Block (holding `_cond` while checking) until `condition()` or `timeout` seconds; notified on record."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not condition():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True
