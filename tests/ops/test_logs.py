"""LOG_FORMAT=json: every line a real `bot.py serve` writes (both processes, stdout and stderr) is one JSON
object; each request has an id, sent back, on its access line and on the lines of its lazy work
(docs/operating.md#logs)."""
from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import threading

import pytest

from ops import logs
from tests.conftest import HOOK_TOKEN, ROOT, SECRET
from tests.ops.serving import click

EMAIL, NAME = "Kojin.Joho@Example.co.jp", "秘密 花子"


@pytest.mark.slow
def test_json_lines_only_and_the_claim_work_carries_the_click_request_id(served, slack, db):
    s = served(LOG_FORMAT="json", METRICS_TOKEN="metrics-token-0123456789")
    status, _, body = s.request("/hooks/leads", json.dumps({"email": EMAIL, "name": NAME, "score": 95}).encode(),
                                {"Authorization": f"Bearer {HOOK_TOKEN}", "Content-Type": "application/json"})
    assert status == 201
    lead_id = json.loads(body)["id"]
    assert slack.wait_calls("chat.postMessage", 1, timeout=20)

    status, headers, _ = click(s, "lead_claim", lead_id, headers={"X-Request-Id": "edge-7f3a-claim"})
    assert status == 200 and headers["X-Request-Id"] == "edge-7f3a-claim"  # a sane incoming id is kept
    assert slack.wait_calls("chat.update", 1, timeout=20)
    status, headers, _ = click(s, "lead_claim", lead_id, user="UREP2", headers={"X-Request-Id": "x" * 129})
    made = headers["X-Request-Id"]  # one that is not sane is replaced by one made here
    assert status == 200 and made != "x" * 129 and len(made) == 32 and int(made, 16) >= 0
    assert slack.wait_calls("chat.postEphemeral", 1, timeout=20)  # "already claimed by …", its lazy work's
    status, headers, _ = s.get("/nowhere/" + EMAIL)
    assert status == 404 and headers["X-Request-Id"]
    assert s.get("/metrics")[0] == 401
    assert s.stop() == 0

    out, err = s.lines()
    assert out and err
    objects = []
    for line in out + err:  # every line, of both processes, is one JSON object
        obj = json.loads(line)
        assert isinstance(obj, dict) and {"time", "level", "logger", "message", "pid"} <= obj.keys(), line
        assert obj["time"].endswith("Z") and obj["level"] in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
        objects.append(obj)
    serving = [json.loads(line) for line in out if "is serving on port" in line]
    assert len(serving) == 1 and serving[0]["logger"] == "handoff"
    assert len({o["pid"] for o in objects}) >= 2  # the delivery process's lines are JSON too

    def lines_for(rid):
        return [o for o in objects if o.get("request_id") == rid]

    claim = lines_for("edge-7f3a-claim")
    access = [o for o in claim if o["logger"] == "handoff.access"]
    assert len(access) == 1
    assert access[0]["method"] == "POST" and access[0]["route"] == "/slack/events" and access[0]["status"] == 200
    assert isinstance(access[0]["duration_ms"], float)
    work = [o for o in claim if o.get("work") == "claim_lead"]  # the click queue's work (docs/http.md#clicks):
    assert len(work) == 1 and work[0]["logger"] == "handoff.slack"
    in_web_process = db.engine.dialect.name == "sqlite"  # on SQLite the web process, else the delivery process
    assert (work[0]["pid"] == access[0]["pid"]) is in_web_process
    second = lines_for(made)
    assert {o["logger"] for o in second} >= {"handoff.access", "handoff.slack"}
    nowhere = [o for o in objects if o["logger"] == "handoff.access" and o["status"] == 404]
    assert len(nowhere) == 1 and nowhere[0]["route"] == "other"  # the path itself is not written
    every = [o for o in objects if o["logger"] == "handoff.access"]
    assert len({o["request_id"] for o in every}) == len(every)  # each request its own id

    # No personal data, token or body in any line.
    text = "\n".join(out + err)
    for secret in (EMAIL, EMAIL.lower(), NAME, HOOK_TOKEN, SECRET, "metrics-token-0123456789", "payload="):
        assert secret not in text, secret


def test_an_invalid_log_format_is_refused_at_start_with_its_name(tmp_path):
    res = subprocess.run([sys.executable, str(ROOT / "bot.py"), "migrate"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=60,
                         env={**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path}/x.db", "LOG_FORMAT": "xml"})
    assert res.returncode == 2 and res.stderr.count("\n") == 1
    assert res.stderr.startswith("error: LOG_FORMAT is invalid") and "text or json" in res.stderr


def test_a_command_that_cannot_start_says_so_in_json(tmp_path):
    res = subprocess.run([sys.executable, str(ROOT / "bot.py"), "migrate"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=60,
                         env={**os.environ, "DATABASE_URL": "postgres://nobody:pw@127.0.0.1:1/none",
                              "LOG_FORMAT": "JSON"})
    assert res.returncode == 2
    lines = [json.loads(line) for line in res.stderr.splitlines()]
    assert lines[-1]["level"] == "ERROR" and "cannot reach the database" in lines[-1]["message"]
    assert "pw" not in res.stderr


@pytest.mark.parametrize(("header", "kept"), [
    ("0f8fe4d2-5a4b-4c1e-9d7e-3b2a1c0d9e8f", True),  # a UUID, as load balancers set
    ("Root=1-67891233-abcdef012345678912345678", True),
    ("a" * 128, True),
    ("a" * 129, False),
    ("", False),
    ("two words", False),
    ('"quoted"', False),
    ("-leading-dash", False),
    ("ünïcode", False),
])
def test_an_incoming_request_id_is_kept_only_when_sane(header, kept):
    rid = logs.request_id_from(header)
    assert (rid == header) is kept
    if not kept:
        assert len(rid) == 32 and int(rid, 16) >= 0


def record(message: str, exc_info=None, **extra) -> logging.LogRecord:
    rec = logging.LogRecord("handoff.test", logging.ERROR, __file__, 1, message, None, exc_info)
    rec.__dict__.update(extra)
    return rec


def test_a_traceback_is_inside_the_json_object_and_emails_are_masked():
    try:
        raise ValueError(f"duplicate key {EMAIL}")
    except ValueError:
        rec = record("insert of %s failed", exc_info=sys.exc_info())
    rec.args = (EMAIL,)
    token = logs.REQUEST_ID.set("req-1")
    try:
        logs.RequestIdFilter().filter(rec)
    finally:
        logs.REQUEST_ID.reset(token)
    line = logs.JsonFormatter().format(rec)
    assert "\n" not in line
    obj = json.loads(line)
    assert obj["request_id"] == "req-1" and obj["message"] == "insert of <email> failed"
    assert "Traceback" in obj["exception"] and "ValueError: duplicate key <email>" in obj["exception"]
    assert EMAIL not in line


def test_text_lines_carry_the_request_id_only_within_a_request():
    formatter = logs.TextFormatter()
    outside = record("plain")
    logs.RequestIdFilter().filter(outside)
    assert " handoff.test: plain" in formatter.format(outside)
    token = logs.REQUEST_ID.set("req-2")
    try:
        inside = record("in a request")
        logs.RequestIdFilter().filter(inside)
    finally:
        logs.REQUEST_ID.reset(token)
    assert " handoff.test [req-2]: in a request" in formatter.format(inside)


def test_work_handed_to_another_thread_keeps_the_request_id():
    seen = []
    token = logs.REQUEST_ID.set("req-3")
    try:
        work = logs.in_request_context(lambda: seen.append(logs.current_request_id()))
    finally:
        logs.REQUEST_ID.reset(token)
    bare = threading.Thread(target=lambda: seen.append(logs.current_request_id()))
    carried = threading.Thread(target=work)
    for th in (bare, carried):
        th.start()
        th.join()
    assert seen == [None, "req-3"]


def test_the_start_line_is_a_json_object_in_json(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr(logs, "_format", "json")
    logs.announce("Handoff is serving on port 3000", stream)
    obj = json.loads(stream.getvalue())
    assert obj["message"] == "Handoff is serving on port 3000" and obj["level"] == "INFO"
    monkeypatch.setattr(logs, "_format", "text")
    stream = io.StringIO()
    logs.announce("Handoff is serving on port 3000", stream)
    assert stream.getvalue() == "Handoff is serving on port 3000\n"


def test_the_scheduler_library_writes_only_what_went_wrong():
    """APScheduler's per-run INFO lines (two a minute for the sweep) are not written; its failures are."""
    import logsafe

    logsafe.configure()
    scheduler = logging.getLogger("apscheduler.executors.default")
    assert not scheduler.isEnabledFor(logging.INFO)
    assert scheduler.isEnabledFor(logging.WARNING)
    assert logging.getLogger("handoff.clock").level == logging.NOTSET  # Handoff's own loggers keep the root's level
