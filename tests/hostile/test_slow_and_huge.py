"""Issue 8, "Slow and huge requests": slow-header connections do not starve genuine clicks, and a body over
the limit is refused by the server before anything reads it into memory."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest

from standin import slack_requests
from tests.conftest import HANDOFF, HOOK_TOKEN, ROOT, SECRET, wait_until

SLACK_DEADLINE = 3.0  # Slack gives up on an answer after 3 s
SLOW_CONNECTIONS = 200
HUGE = 50 * 1024 * 1024
MEMORY_BUDGET_MB = 100


def signed_click(base: str, lead_id: int, user: str) -> tuple[int | str, float]:
    """One genuine signed Claim click; its status (or the error) and how long the answer took."""
    body = slack_requests.block_action("lead_claim", str(lead_id), user, HANDOFF)
    req = urllib.request.Request(base + "/slack/events", data=body.encode(),
                                 headers=slack_requests.signed_headers(SECRET, body))
    started = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=SLACK_DEADLINE) as resp:
            status = resp.status
    except urllib.error.HTTPError as err:
        status = err.code
    except OSError as exc:  # timed out: Slack would have shown the user an error
        status = repr(exc)
    return status, time.monotonic() - started


class SlowHeaders:
    """Connections that send a partial request line and headers, then one byte a second, and never finish."""

    def __init__(self, port: int, count: int):
        self.socks = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(count)]
        for s in self.socks:
            s.sendall(b"POST /slack/events HTTP/1.1\r\nHost: handoff\r\nX-Slow: ")
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._drip, daemon=True)
        self.thread.start()

    def _drip(self):
        while not self.stop.wait(1.0):
            for s in self.socks:
                try:
                    s.send(b"a")
                except OSError:
                    pass

    def close(self):
        self.stop.set()
        self.thread.join(5)
        for s in self.socks:
            s.close()


def test_genuine_clicks_are_answered_within_3s_while_200_connections_send_headers_slowly(app):
    status, body = app.post_leads({"email": "slow@example.com", "score": 90})
    assert status == 201
    port = int(app.base.rsplit(":", 1)[1])
    slow = SlowHeaders(port, SLOW_CONNECTIONS)
    try:
        time.sleep(1.5)  # the server has seen them all and they have dripped at least once
        answers = [signed_click(app.base, body["id"], f"UREP{i}") for i in range(5)]
    finally:
        slow.close()
    assert all(status == 200 and took < SLACK_DEADLINE for status, took in answers), answers


# A real `bot.py serve`, whose memory is measured -------------------------------------------------------------
def _status_kb(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")


class PeakMemory:
    """The most memory (MB) the process held above its resident size at start, while the block ran."""

    def __init__(self, pid: int):
        self.pid, self.peak_kb, self.stop = pid, 0, threading.Event()

    def __enter__(self):
        self.base_kb = _status_kb(self.pid, "VmRSS")
        try:  # reset the kernel's high-water mark, so it covers exactly this block
            with open(f"/proc/{self.pid}/clear_refs", "w") as f:
                f.write("5")
            self.hwm = True
        except OSError:
            self.hwm = False
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self):
        while not self.stop.wait(0.005):
            self.peak_kb = max(self.peak_kb, _status_kb(self.pid, "VmRSS"))

    def __exit__(self, *exc):
        time.sleep(0.2)
        self.stop.set()
        self.thread.join(5)
        if self.hwm:
            self.peak_kb = max(self.peak_kb, _status_kb(self.pid, "VmHWM"))
        self.grown_mb = max(0, self.peak_kb - self.base_kb) / 1024


def send_huge(port: int, path: str, chunked: bool) -> str:
    """POST a 50 MB body without any credentials; what the server answered, or that it closed the connection."""
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {HUGE}"
    head = (f"POST {path} HTTP/1.1\r\nHost: handoff\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            f"{framing}\r\n\r\n").encode()
    block = b"a" * 65536
    piece = b"%x\r\n%s\r\n" % (len(block), block) if chunked else block
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        try:
            s.sendall(head)
            for _ in range(HUGE // len(block)):
                s.sendall(piece)
            if chunked:
                s.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server stopped reading and closed: read what it said before that, if anything
        try:
            first = s.recv(200).split(b"\r\n", 1)[0].decode("latin-1")
        except OSError:
            first = ""
    return first or "closed"


@pytest.fixture
def served(db, slack):
    env = {**os.environ, "SLACK_BOT_TOKEN": "xoxb-test", "SLACK_SIGNING_SECRET": SECRET,
           "SLACK_API_URL": slack.url, "DATABASE_URL": db.url, "HANDOFF_CHANNEL": HANDOFF,
           "MARKETING_CHANNEL": "C0MARKETING", "LEAD_WEBHOOK_TOKEN": HOOK_TOKEN, "SCHEDULER": "off"}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        env["PORT"] = str(s.getsockname()[1])
    proc = subprocess.Popen([sys.executable, "bot.py", "serve"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{env['PORT']}"

    def up():
        try:
            return urllib.request.urlopen(base + "/healthz", timeout=1).status == 200
        except OSError:
            return proc.poll() is not None
    try:
        assert wait_until(up, timeout=30) and proc.poll() is None, "bot.py serve did not start"
        yield proc, int(env["PORT"]), base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("path", ["/hooks/leads", "/slack/events"])
def test_a_50mb_body_is_refused_before_it_is_read_into_memory(served, path):
    proc, port, base = served
    for chunked in (False, True):
        with PeakMemory(proc.pid) as memory:
            answer = send_huge(port, path, chunked)
        kind = "chunked" if chunked else "Content-Length"
        assert memory.grown_mb < MEMORY_BUDGET_MB, (kind, f"{memory.grown_mb:.0f} MB")
        assert answer.startswith("HTTP/1.1 413") or answer == "closed", (kind, answer)
    # the server is still serving genuine requests
    req = urllib.request.Request(base + "/hooks/leads", data=b'{"email": "after@example.com", "score": 90}',
                                 headers={"Authorization": f"Bearer {HOOK_TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 201
