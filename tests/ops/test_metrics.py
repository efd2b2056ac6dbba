"""GET /metrics of a real `bot.py serve`: what its web and delivery processes counted, added up across them
(multiprocess mode), and the queues read from the database at scrape time (docs/operating.md#metrics)."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from slack_sdk import WebClient
from sqlalchemy import func, select

from models import outbox as queue
from models.tables import EventDelivery, OutboxMessage
from ops import metrics
from tests.conftest import EVENT_SECRET, HANDOFF, ROOT, FakeClock, make_settings, wait_until
from tests.ops.serving import click, post_lead, value
from tests.outbox.test_delivery_process import children
from tests.outbox.test_outbox import serve_env

TOKEN = "metrics-0123456789abcdef"
FAMILIES = {  # the parser names a counter's family without its `_total`
    "handoff_outbox_pending", "handoff_outbox_oldest_seconds", "handoff_slack_calls", "handoff_http_request_seconds",
    "handoff_sla_breaches", "handoff_events_pending", "handoff_job_seconds",
}


@pytest.mark.slow
def test_every_family_and_the_delivery_process_slack_calls_scraped_from_the_web_process(served, slack):
    s = served(METRICS_TOKEN=TOKEN)
    # The token guard: nothing without it, or with another, or another scheme; the same in constant time.
    for headers in (None, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
                    {"Authorization": f"Bearer {TOKEN}x"}, {"Authorization": TOKEN}):
        status, answer_headers, body = s.get("/metrics", headers)
        assert status == 401 and b"handoff_" not in body, headers
        assert answer_headers["WWW-Authenticate"].startswith("Bearer")
    assert s.get("/healthz")[0] == 200  # the token guards /metrics only

    first = s.scrape(TOKEN)
    assert FAMILIES <= first.keys(), sorted(first)
    assert first["handoff_slack_calls"].type == "counter" and first["handoff_http_request_seconds"].type == "histogram"
    assert value(first, "handoff_database_up") == 1
    assert value(first, "handoff_slack_calls", "handoff_slack_calls_total", method="auth.test", outcome="ok") >= 1
    assert value(first, "handoff_slack_calls", "handoff_slack_calls_total", method="chat.postMessage") is None
    for job in metrics.JOBS:  # every known series exists from the start, at 0 with SCHEDULER=off
        assert value(first, "handoff_job_seconds", "handoff_job_seconds_count", job=job) == 0
    for kind in ("claim", "contact"):
        assert value(first, "handoff_sla_breaches", "handoff_sla_breaches_total", kind=kind) == 0

    # The card: Slack first answers 429, then takes it. A claim click: the card is updated. Both calls are made
    # by the delivery process; the web process only answers.
    slack.fail_next(1, 429, method="chat.postMessage", retry_after=1)
    lead_id = post_lead(s, "metrics@example.com")
    assert len(slack.wait_calls("chat.postMessage", 1, timeout=20)) == 1
    status, _, _ = click(s, "lead_claim", lead_id)
    assert status == 200
    assert len(slack.wait_calls("chat.update", 1, timeout=20)) == 1
    for path in ("/wp-login.php", "/slack/events/../../etc/passwd", "/metrics?x=1", "/healthz/extra"):
        s.get(path)

    def calls(method, outcome):
        return value(s.scrape(TOKEN), "handoff_slack_calls", "handoff_slack_calls_total", method=method,
                     outcome=outcome)
    assert wait_until(lambda: calls("chat.update", "ok") == 1, timeout=10, every=0.2)
    after = s.scrape(TOKEN)
    assert value(after, "handoff_slack_calls", "handoff_slack_calls_total", method="chat.postMessage",
                 outcome="ok") == 1
    assert value(after, "handoff_slack_calls", "handoff_slack_calls_total", method="chat.postMessage",
                 outcome="ratelimited") == 1
    assert value(after, "handoff_http_request_seconds", "handoff_http_request_seconds_count",
                 route="/slack/events") == 1
    assert value(after, "handoff_http_request_seconds", "handoff_http_request_seconds_count",
                 route="/hooks/leads") == 1
    assert value(after, "handoff_http_request_seconds", "handoff_http_request_seconds_sum",
                 route="/slack/events") > 0
    # A scanner's paths are one route, `other`: no label is made from what a client sends.
    routes = {x.labels["route"] for x in after["handoff_http_request_seconds"].samples}
    assert routes == {"/slack/events", "/hooks/leads", "/hooks/status", "/hooks/privacy", "/healthz", "/metrics", "other"}
    assert value(after, "handoff_http_request_seconds", "handoff_http_request_seconds_count", route="other") >= 2

    # The delivery process dies and is started again: what it counted is still counted.
    (child,) = children(s.proc.pid)
    os.kill(child, signal.SIGKILL)
    assert wait_until(lambda: json.loads(s.get("/healthz")[2])["delivery_process"] == "running"
                      and children(s.proc.pid) != [child], timeout=30, every=0.2)
    again = s.scrape(TOKEN)
    for method in ("chat.postMessage", "chat.update"):
        assert value(again, "handoff_slack_calls", "handoff_slack_calls_total", method=method, outcome="ok") == 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_the_queue_gauges_are_the_database_at_scrape_time(served, slack, db):
    # Slack refuses every post and the event endpoint is down: what is queued stays queued.
    s = served(EVENT_WEBHOOK_URLS=f"http://127.0.0.1:{free_port()}/hook", EVENT_WEBHOOK_SECRET=EVENT_SECRET)
    slack.fail_next(10_000, 500, method="chat.postMessage")
    empty = s.scrape()  # no METRICS_TOKEN: open
    assert value(empty, "handoff_outbox_pending") == 0 and value(empty, "handoff_outbox_oldest_seconds") == 0
    assert value(empty, "handoff_events_pending") == 0
    assert value(empty, "handoff_clicks_pending") == 0 and value(empty, "handoff_clicks_oldest_seconds") == 0

    post_lead(s, "one@example.com")
    post_lead(s, "two@example.com")
    slack.fail_next(10_000, 500, method="chat.postEphemeral")
    queued_at = datetime.now(UTC) - timedelta(minutes=10)
    with db.begin() as session:  # queued by another process (a clock, a command), ten minutes ago
        queue.enqueue(session, kind=queue.Kind.NOTICE, dedupe_key="notice:metrics-test", now=queued_at,
                      channel=HANDOFF, payload={"user": "UREP1", "key": "notice.contacted", "params": {}})

    def refused(method):  # the delivery process tried, Slack answered 500, and that was counted
        return value(s.scrape(), "handoff_slack_calls", "handoff_slack_calls_total", method=method,
                     outcome="http_5xx") or 0
    assert wait_until(lambda: refused("chat.postMessage") >= 2 and refused("chat.postEphemeral") >= 1, timeout=20,
                      every=0.2)

    with db.begin() as session:
        outbox_pending = session.scalar(select(func.count()).select_from(OutboxMessage)
                                        .where(OutboxMessage.status == "pending"))
        events_pending = session.scalar(select(func.count()).select_from(EventDelivery)
                                        .where(EventDelivery.status == "pending"))
    assert outbox_pending == 3 and events_pending >= 2  # two cards and the notice; each lead's events
    families = s.scrape()
    assert value(families, "handoff_outbox_pending") == outbox_pending
    assert value(families, "handoff_events_pending") == events_pending
    assert 600 <= value(families, "handoff_outbox_oldest_seconds") < 900
    health = json.loads(s.get("/healthz")[2])
    assert health["outbox_pending"] == outbox_pending and health["events_pending"] == events_pending


def run_bot(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "bot.py"), "migrate"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60,
                          env={**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path}/x.db", **env})


@pytest.mark.parametrize("token", ["has space", "tab\there", "quote\"d", "emoji🙂"])
def test_a_metrics_token_that_cannot_be_sent_is_refused_at_start_without_echoing_it(tmp_path, token):
    res = run_bot(tmp_path, METRICS_TOKEN=token)
    assert res.returncode == 2 and res.stderr.count("\n") == 1
    assert "METRICS_TOKEN is invalid" in res.stderr and token not in res.stderr


@pytest.mark.parametrize(("env", "needle"), [
    ({"METRICS_PORT": "3000"}, "METRICS_PORT is the same as PORT"),
    ({"METRICS_PORT": "8080", "PORT": "8080"}, "METRICS_PORT is the same as PORT"),
    ({"METRICS_PORT": "70000"}, "METRICS_PORT is invalid"),
    ({"METRICS_PORT": "nine"}, "METRICS_PORT is invalid"),
])
def test_a_clock_metrics_port_must_be_a_port_of_its_own(tmp_path, env, needle):
    res = run_bot(tmp_path, **env)
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and needle in res.stderr


def test_the_token_is_compared_whole():
    assert metrics.authorized(None, None) and metrics.authorized("anything", "")
    assert metrics.authorized(f"Bearer {TOKEN}", TOKEN)
    for header in (None, "", "Bearer", f"Bearer {TOKEN[:-1]}", f"bearer {TOKEN}", f"Bearer  {TOKEN}", f"{TOKEN}"):
        assert not metrics.authorized(header, TOKEN), header


@pytest.mark.slow
def test_a_clock_answers_for_its_own_jobs_and_breaches_on_metrics_port(make_app, slack, db, tmp_path):
    """A separate `clock` has no web process to be scraped through: it answers GET /metrics on METRICS_PORT."""
    around_the_clock = {"BUSINESS_HOURS": ""}  # the sweep acts whatever the hour the test runs at
    app = make_app(now=FakeClock(datetime.now(UTC) - timedelta(days=14)), **around_the_clock)
    status, _ = app.post_leads({"email": "late@example.com", "score": 90})  # an MQL two weeks old, unclaimed
    assert status == 201
    app.drain()
    port = free_port()
    env = {**serve_env(db, slack), "METRICS_PORT": str(port), "METRICS_TOKEN": TOKEN, **around_the_clock}
    with (tmp_path / "clock.log").open("wb") as log:
        proc = subprocess.Popen([sys.executable, "bot.py", "clock"], cwd=ROOT, env=env, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"

    def get(path: str, token: str | None = TOKEN):
        req = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {token}"} if token else {})
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()
        except OSError:
            return 0, ""

    def scraped():
        status, body = get("/metrics")
        return {f.name: f for f in text_string_to_metric_families(body)} if status == 200 else {}

    try:
        def swept():  # the sweep runs once at start: timed, and the missed claim deadline counted
            families = scraped()
            return families if (value(families, "handoff_job_seconds", "handoff_job_seconds_count",
                                      job="sla-sweep") or 0) >= 1 else None
        families = wait_until(swept, timeout=30, every=0.2)
        assert families, (tmp_path / "clock.log").read_text()
        assert FAMILIES <= families.keys()
        assert value(families, "handoff_sla_breaches", "handoff_sla_breaches_total", kind="claim") == 1
        assert value(families, "handoff_job_seconds", "handoff_job_seconds_sum", job="sla-sweep") > 0
        assert value(families, "handoff_slack_calls", "handoff_slack_calls_total", method="auth.test",
                     outcome="ok") >= 1
        assert get("/metrics", token=None)[0] == 401 and get("/metrics", token="wrong")[0] == 401
        assert get("/healthz")[0] == 404  # the clock answers nothing else
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
    assert code == 0


def test_each_slack_call_is_counted_by_method_and_outcome(slack, db):
    """The client every process uses counts each Web API call once, with what came of it."""
    from slack_sdk.errors import SlackApiError

    from ops.slack_client import counted
    from outbox.sender import make_client

    registry = metrics.families().registry  # this (test) process counts in memory

    def count(method: str, outcome: str) -> float:
        return registry.get_sample_value("handoff_slack_calls_total", {"method": method, "outcome": outcome}) or 0

    client = make_client(make_settings(db.url, slack.url))
    cases = [("chat.postMessage", "ok"), ("chat.postMessage", "channel_not_found"), ("chat.update", "ratelimited"),
             ("views.publish", "http_5xx"), ("chat.postEphemeral", "http_4xx"), ("auth.test", "connection")]
    before = {case: count(*case) for case in cases}

    client.chat_postMessage(channel=HANDOFF, text="hello")
    slack.delete_channel("C0GONE")
    slack.fail_next(1, 429, method="chat.update", retry_after=1)
    slack.fail_next(1, 503, method="views.publish")
    slack.fail_next(1, 404, method="chat.postEphemeral", error="not_a_code!")
    for call in (lambda: client.chat_postMessage(channel="C0GONE", text="x"),
                 lambda: client.chat_update(channel=HANDOFF, ts="1.0", text="x"),
                 lambda: client.views_publish(user_id="UREP1", view={"type": "home", "blocks": []}),
                 lambda: client.chat_postEphemeral(channel=HANDOFF, user="UREP1", text="x")):
        with pytest.raises(SlackApiError):
            call()
    nowhere = make_client(make_settings(db.url, f"http://127.0.0.1:{free_port()}/api/"))
    with pytest.raises(OSError):
        nowhere.auth_test()
    assert {case: count(*case) - before[case] for case in cases} == dict.fromkeys(cases, 1)

    # Bolt's per-request client, counted the same way, keeps the settings of the one it replaces.
    plain = WebClient(token="xoxb-test", base_url=slack.url, timeout=7, team_id="T0DEMO", retry_handlers=[])
    copy = counted(plain)
    assert (copy.token, copy.base_url, copy.timeout, copy.default_params, copy.retry_handlers) == \
        ("xoxb-test", slack.url, 7, {"team_id": "T0DEMO"}, [])
    assert counted(copy) is copy


DIRECTORY_SCRIPT = """
import os
from ops import metrics
directory = metrics.own_directory()
from prometheus_client import values
print(directory.path)
print(os.environ["PROMETHEUS_MULTIPROC_DIR"])
print(values.ValueClass.__name__)
print(sorted(os.listdir(directory.path)))
directory.release()
"""


def own_directory(tmp_path: Path, **env: str) -> list[str]:
    base = {k: v for k, v in os.environ.items() if k != metrics.ENV}
    res = subprocess.run([sys.executable, "-c", DIRECTORY_SCRIPT], cwd=ROOT, capture_output=True, text=True,
                         timeout=60, env={**base, "TMPDIR": str(tmp_path), **env})
    assert res.returncode == 0, res.stderr
    return res.stdout.splitlines()


def test_serve_counts_in_a_fresh_directory_of_its_own_and_clears_what_killed_ones_left(tmp_path):
    gone = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout)
    orphan = tmp_path / f"{metrics.PREFIX}{gone}-abc123"  # a killed serve's directory
    orphan.mkdir()
    (orphan / f"counter_{gone + 1}.db").write_bytes(b"\0" * 8)
    running = tmp_path / f"{metrics.PREFIX}{os.getpid()}-def456"  # a running serve's directory
    running.mkdir()

    path, env_path, value_class, files = own_directory(tmp_path)
    assert path == env_path and Path(path).parent == tmp_path and Path(path).name.startswith(metrics.PREFIX)
    assert value_class == "MmapedValue" and files == "[]"  # prometheus_client counts in files, from nothing
    assert not Path(path).exists()  # removed when serve stops
    assert not orphan.exists() and running.exists()

    chosen = tmp_path / "operator"  # PROMETHEUS_MULTIPROC_DIR set by hand: used, emptied, kept
    chosen.mkdir()
    (chosen / "histogram_1.db").write_bytes(b"\0" * 8)
    (chosen / "notes.txt").write_text("not ours")
    path, _, _, files = own_directory(tmp_path, PROMETHEUS_MULTIPROC_DIR=str(chosen))
    assert path == str(chosen) and files == "['notes.txt']" and chosen.exists()


EMPTY_FILE_SCRIPT = """
import os, sys
from datetime import UTC, datetime
from ops import metrics
directory = metrics.own_directory()
metrics.slack_call("chat.postMessage", "ok")
# a child process counting its first call: its file exists and is not sized yet (prometheus_client makes it so)
open(os.path.join(directory.path, "counter_999999.db"), "wb").close()

class Away:
    def begin(self):
        raise ConnectionError("no database in this test")

body, _ = metrics.exposition(Away(), lambda: datetime.now(UTC))
sys.stdout.write(body.decode())
directory.release()
"""


def test_a_scrape_while_a_process_is_making_its_file_still_answers(tmp_path):
    # prometheus_client creates a process's file before sizing it; its own reader fails on the 0-byte file,
    # which made a scrape racing a delivery process's first Slack call answer 500.
    base = {k: v for k, v in os.environ.items() if k != metrics.ENV}
    res = subprocess.run([sys.executable, "-c", EMPTY_FILE_SCRIPT], cwd=ROOT, capture_output=True, text=True,
                         timeout=60, env={**base, "TMPDIR": str(tmp_path)})
    assert res.returncode == 0, res.stderr
    scraped = {f.name: f for f in text_string_to_metric_families(res.stdout)}
    assert value(scraped, "handoff_slack_calls", "handoff_slack_calls_total", method="chat.postMessage",
                 outcome="ok") == 1
    assert value(scraped, "handoff_database_up") == 0
