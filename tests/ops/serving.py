"""A real `bot.py serve` (its web process and its delivery process) for the tests of /metrics and the logs:
its stdout and stderr kept in files, each read once it has stopped."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from standin import slack_requests
from tests.conftest import HANDOFF, HOOK_TOKEN, ROOT, SECRET, wait_until
from tests.outbox.test_outbox import serve_env


class Served:
    def __init__(self, db, slack, tmp_path: Path, **extra: str):
        self.env = {**serve_env(db, slack), **extra}
        self.base = f"http://127.0.0.1:{self.env['PORT']}"
        self.stdout_path, self.stderr_path = tmp_path / "serve.out", tmp_path / "serve.err"
        self._out, self._err = self.stdout_path.open("wb"), self.stderr_path.open("wb")
        self.proc = subprocess.Popen([sys.executable, "bot.py", "serve"], cwd=ROOT, env=self.env,
                                     stdout=self._out, stderr=self._err)

        def up():
            if self.proc.poll() is not None:
                return True
            try:
                return self.get("/healthz")[0] == 200
            except OSError:
                return False
        assert wait_until(up, timeout=30) and self.proc.poll() is None, self.stderr_path.read_text()

    def request(self, path: str, data: bytes | None = None, headers: dict | None = None):
        """(status, headers, body) of one request; an error status is an answer too."""
        req = urllib.request.Request(self.base + path, data=data, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.headers, err.read()

    def get(self, path: str, headers: dict | None = None):
        return self.request(path, headers=headers)

    def scrape(self, token: str | None = None) -> dict:
        """GET /metrics, parsed by prometheus_client's own parser: {family name: family}."""
        status, headers, body = self.get("/metrics", {"Authorization": f"Bearer {token}"} if token else None)
        assert status == 200, body
        assert headers["Content-Type"].startswith("text/plain")
        return {f.name: f for f in text_string_to_metric_families(body.decode())}

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()
        self._err.close()
        return self.proc.returncode

    def lines(self) -> tuple[list[str], list[str]]:
        """After `stop`: the lines written on stdout and on stderr (by both processes)."""
        return (self.stdout_path.read_text("utf-8").splitlines(), self.stderr_path.read_text("utf-8").splitlines())

    def json_lines(self) -> list[dict]:
        out, err = self.lines()
        return [json.loads(line) for line in out + err]


def value(families: dict, family: str, sample: str | None = None, **labels) -> float | None:
    """The value of one sample (by default the family's own name) with these labels; None when there is none."""
    name = sample or family
    for s in families[family].samples if family in families else []:
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    return None


def post_lead(s: Served, email: str, **fields) -> int:
    status, _, body = s.request("/hooks/leads", json.dumps({"email": email, "score": 90, **fields}).encode(),
                                {"Authorization": f"Bearer {HOOK_TOKEN}", "Content-Type": "application/json"})
    assert status == 201, body
    return json.loads(body)["id"]


def click(s: Served, action_id: str, lead_id: int, user: str = "UREP1", headers: dict | None = None):
    """A button click, signed as Slack signs it; (status, headers, body)."""
    body = slack_requests.block_action(action_id, str(lead_id), user, HANDOFF)
    return s.request("/slack/events", body.encode(), {**slack_requests.signed_headers(SECRET, body), **(headers or {})})
