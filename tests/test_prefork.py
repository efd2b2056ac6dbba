"""`serve` with WEB_CONCURRENCY=2 (prefork.py): two web processes on one port, one delivery process for
both, claims with one owner across processes, a worker that dies replaced, and nothing left running when
`serve` stops or is killed; two `clock` processes post each report once."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import urllib.request

import pytest
from sqlalchemy import func, select

from models.tables import Lead, OutboxMessage
from standin import slack_requests
from tests.conftest import HANDOFF, ROOT, SECRET, wait_until
from tests.outbox.test_delivery_process import children, gone, health, stop
from tests.outbox.test_outbox import post_mql, serve, serve_env

pytestmark = pytest.mark.slow


def prefork_env(db, slack) -> dict[str, str]:
    return {**serve_env(db, slack), "WEB_CONCURRENCY": "2"}


def said(proc) -> str:
    """The end of what `serve` has written so far (its output is a pipe), without waiting for more."""
    os.set_blocking(proc.stdout.fileno(), False)
    return (proc.stdout.read() or b"").decode("utf-8", "replace")[-4000:]


def asked_who_am_i(slack) -> int:
    """The auth.test calls Slack received, answered or refused."""
    return len(slack.calls_to("auth.test")) + sum(c.method == "auth.test" for c in slack.rejected)


def web_workers(serve_pid: int) -> tuple[int, list[int]]:
    """(the arbiter, its workers) under a `serve`: the child of serve that has children of its own."""
    for pid in children(serve_pid):
        kids = children(pid)
        if kids:
            return pid, kids
    return 0, []


def answering(env, times: int = 40) -> set[int]:
    """The web processes that answered `times` fresh connections to /healthz."""
    return {health(env)["process"] for _ in range(times)}


def click(env, lead_id: int, user: str) -> int:
    body = slack_requests.block_action("lead_claim", str(lead_id), user, HANDOFF)
    req = urllib.request.Request(f"http://127.0.0.1:{env['PORT']}/slack/events", data=body.encode(),
                                 headers=slack_requests.signed_headers(SECRET, body))
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status


def test_two_web_processes_answer_and_share_one_delivery_process(db, slack):
    env = prefork_env(db, slack)
    proc = serve(env)
    try:
        arbiter, workers = wait_until(lambda: web_workers(proc.pid)[1] and web_workers(proc.pid), timeout=30)
        assert len(workers) == 2
        assert len(children(proc.pid)) == 2  # the web arbiter and one delivery process, whatever N is
        assert wait_until(lambda: answering(env) == set(workers), timeout=20), answering(env)
        assert wait_until(lambda: health(env)["delivery_process"] == "running", timeout=20)

        for i in range(6):  # webhooks answered by either process wake the one delivery process
            post_mql(env, f"lead{i}@example.com")
        assert len(slack.wait_calls("chat.postMessage", 6, timeout=30)) == 6
    finally:
        code = stop(proc)
    assert code == 0
    assert all(gone(pid) for pid in [arbiter, *workers])


def test_a_card_clicked_by_many_reps_across_processes_has_one_owner(db, slack):
    env = prefork_env(db, slack)
    proc = serve(env)
    try:
        for i in range(3):
            post_mql(env, f"race{i}@example.com")
        assert len(slack.wait_calls("chat.postMessage", 3, timeout=30)) == 3
        # serve checked the token once; a worker answering its first clicks asks Slack nothing: were it to ask
        # now (Slack failing, or slow under a burst) those clicks would be answered 500
        slack.fail_next(100, 500, method="auth.test")
        asked_before = asked_who_am_i(slack)
        with db.begin() as s:
            ids = list(s.scalars(select(Lead.id).order_by(Lead.id)))
        statuses, errors, threads = [], [], []

        def clicking(lead_id: int, rep: str) -> None:
            try:
                statuses.append(click(env, lead_id, rep))
            except OSError as exc:  # an error status, or no answer: kept, with what serve said meanwhile
                errors.append(repr(exc))
        for lead_id in ids:
            for rep in range(8):  # 8 reps at once on each card, spread over both web processes
                threads.append(threading.Thread(target=clicking, args=(lead_id, f"UREP{rep:04d}")))
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors or statuses != [200] * len(threads):
            print(said(proc))  # in full under "Captured stdout", where an assertion's message is cut short
        assert not errors and statuses == [200] * len(threads), errors
        assert asked_who_am_i(slack) == asked_before

        def claimed():
            with db.begin() as s:
                return all(owner is not None for owner in s.scalars(select(Lead.claimed_by)))
        assert wait_until(claimed, timeout=30)
        # each card shows its one owner: refusals go to the others privately, never as a second card update
        assert wait_until(lambda: len(slack.calls_to("chat.postEphemeral")) >= 3 * 7, timeout=30)
        with db.begin() as s:
            cards = s.execute(select(Lead.card_ts, Lead.claimed_by)).all()
        for ts, owner in cards:
            assert wait_until(lambda ts=ts: [c for c in slack.calls_to("chat.update") if c.params.get("ts") == ts])
            updates = [c for c in slack.calls_to("chat.update") if c.params.get("ts") == ts]
            assert owner in json.dumps(updates[-1].params)
    finally:
        stop(proc)


def test_a_worker_that_dies_is_replaced_and_serving_goes_on(db, slack):
    env = prefork_env(db, slack)
    proc = serve(env)
    try:
        arbiter, workers = wait_until(lambda: web_workers(proc.pid)[1] and web_workers(proc.pid), timeout=30)
        os.kill(workers[0], signal.SIGKILL)
        assert wait_until(lambda: gone(workers[0]), timeout=10)
        post_mql(env, "during@example.com")  # the other worker answers meanwhile
        replaced = wait_until(lambda: (kids := children(arbiter)) and len(kids) == 2 and workers[0] not in kids
                              and kids, timeout=30)
        assert wait_until(lambda: answering(env) == set(replaced), timeout=30)
        assert len(slack.wait_calls("chat.postMessage", 1, timeout=30)) == 1
    finally:
        assert stop(proc) == 0


def test_killing_serve_leaves_nothing_running(db, slack):
    env = prefork_env(db, slack)
    proc = serve(env)
    _, workers = wait_until(lambda: web_workers(proc.pid)[1] and web_workers(proc.pid), timeout=30)
    everyone = [*children(proc.pid), *workers]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert wait_until(lambda: all(gone(pid) for pid in everyone), timeout=45), \
        [pid for pid in everyone if not gone(pid)]


def test_a_wrong_setting_is_one_line_before_anything_starts(db, slack):
    env = {**serve_env(db, slack), "WEB_CONCURRENCY": "0"}
    out = subprocess.run([sys.executable, "bot.py", "serve"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2
    assert "WEB_CONCURRENCY" in out.stderr and "1 to 32" in out.stderr
    assert "Traceback" not in out.stderr


def test_two_clock_processes_post_one_digest_and_one_retro(db, slack, tmp_path):
    """Any number of `clock` processes: each runs the report jobs at start, each has its own outbox sender, and
    the week's digest (with its chart) and the month's retro still go out once."""
    from prometheus_client.parser import text_string_to_metric_families

    from tests.ops.serving import value
    from tests.outbox.test_outbox import free_port

    ports = [free_port(), free_port()]
    logs = [tmp_path / f"clock{i}.log" for i in range(2)]
    procs = []
    for port, path in zip(ports, logs, strict=True):
        with path.open("wb") as log:
            procs.append(subprocess.Popen([sys.executable, "bot.py", "clock"], cwd=ROOT, stdout=log, stderr=log,
                                          env={**serve_env(db, slack), "METRICS_PORT": str(port)}))

    def ran_reports(port: int) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
                families = {f.name: f for f in text_string_to_metric_families(resp.read().decode())}
        except OSError:
            return False
        return all((value(families, "handoff_job_seconds", "handoff_job_seconds_count", job=job) or 0) >= 1
                   for job in ("weekly-digest", "monthly-retro"))

    def all_sent() -> bool:
        with db.begin() as s:
            return not s.scalar(select(func.count()).select_from(OutboxMessage)
                                .where(OutboxMessage.status != "sent"))

    try:
        assert wait_until(lambda: all(ran_reports(p) for p in ports), timeout=60, every=0.2), \
            [path.read_text()[-2000:] for path in logs]
        assert wait_until(all_sent, timeout=30)
        posts = [c.params["text"] for c in slack.calls_to("chat.postMessage")]
        assert len(posts) == 2 and len(slack.files) == 1, posts
        with db.begin() as s:
            kinds = sorted(s.scalars(select(OutboxMessage.kind)))
        assert kinds == ["chart", "digest", "retro"]  # the chart is uploaded as a row of its own
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        codes = [proc.wait(30) for proc in procs]
    assert codes == [0, 0]
