"""The outbox: Slack rate limits, errors and a killed process lose nothing and send nothing twice."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from sqlalchemy import select

from models.tables import Lead, OutboxMessage
from outbox.sender import TokenBucket
from tests.conftest import HANDOFF, HOOK_TOKEN, ROOT, SECRET, wait_until


def ok_posts(slack):
    return list(slack.calls_to("chat.postMessage"))


def test_429_and_500_still_deliver_exactly_once(app, slack, db):
    app.runtime.services.sender.backoff_base = 0.05
    slack.fail_next(2, 429, method="chat.postMessage", retry_after=1)
    slack.fail_next(3, 500, method="chat.postMessage")
    started = time.monotonic()
    status, body = app.post_leads({"email": "r@example.com", "score": 90})
    assert status == 201
    assert len(slack.wait_calls("chat.postMessage", 1, timeout=20)) == 1
    assert time.monotonic() - started >= 2  # Retry-After was honoured twice
    assert len([c for c in slack.rejected if c.method == "chat.postMessage"]) == 5
    time.sleep(0.5)
    assert len(ok_posts(slack)) == 1
    with db.begin() as s:
        row = s.scalars(select(OutboxMessage)).one()
        assert row.status == "sent" and row.attempts == 4  # 3 errors + the success; 429s are not attempts
        assert s.get(Lead, body["id"]).card_ts == row.result_ts


def test_a_refused_payload_fails_for_good_and_the_rest_goes_on(app, slack, db):
    slack.fail_next(1, 200, method="chat.postMessage", error="invalid_blocks")
    _, first = app.post_leads({"email": "one@example.com", "score": 90})
    _, _second = app.post_leads({"email": "two@example.com", "score": 90})
    counts = app.drain()
    assert counts == {"pending": 0, "sent": 1, "failed": 1}
    assert len(ok_posts(slack)) == 1
    with db.begin() as s:
        failed = s.scalars(select(OutboxMessage).where(OutboxMessage.status == "failed")).one()
        assert "invalid_blocks" in failed.last_error and failed.lead_id == first["id"]


def test_card_update_waits_for_the_card(app, slack, db):
    """A claim committed before the card was posted still ends with one card showing the owner."""
    slack.fail_next(2, 500, method="chat.postMessage")
    app.runtime.services.sender.backoff_base = 0.2
    _, body = app.post_leads({"email": "early@example.com", "score": 90})
    with db.begin() as s:
        from models.leads import claim

        claim(s, lead_id=body["id"], user="UREP1", now=app.runtime.services.now())
    app.drain(15)
    posts = ok_posts(slack)
    assert len(posts) == 1 and "<@UREP1>" in str(posts[0].params["blocks"])
    updates = slack.calls_to("chat.update")
    assert len(updates) == 1 and updates[0].params["ts"] == posts[0].params.get("ts", updates[0].params["ts"])


def test_paced_per_channel():
    bucket = TokenBucket(rate=10, burst=3)
    t = 100.0
    sent = []
    while len(sent) < 30:
        wait = bucket.wait_time(t)
        if wait:
            t += wait
            continue
        bucket.take(t)
        sent.append(t)
    assert sent[2] == 100.0  # the burst goes at once
    assert sent[-1] == pytest.approx(100.0 + 27 / 10)  # then 10 per second


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_env(db, slack) -> dict[str, str]:
    return {**os.environ, "SLACK_BOT_TOKEN": "xoxb-test", "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": slack.url, "DATABASE_URL": db.url, "HANDOFF_CHANNEL": HANDOFF,
            "MARKETING_CHANNEL": "C0MARKETING", "LEAD_WEBHOOK_TOKEN": HOOK_TOKEN, "SCHEDULER": "off",
            "PORT": str(free_port())}


def serve(env) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "bot.py", "serve"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{env['PORT']}/healthz"

    def up():
        try:
            return urllib.request.urlopen(url, timeout=1).status == 200
        except OSError:
            return False
    assert wait_until(up, timeout=30), proc.stdout.read1().decode() if proc.poll() is not None else "not up"
    return proc


def post_mql(env, email: str) -> None:
    req = urllib.request.Request(f"http://127.0.0.1:{env['PORT']}/hooks/leads",
                                 data=f'{{"email": "{email}", "score": 90}}'.encode(),
                                 headers={"Authorization": f"Bearer {HOOK_TOKEN}", "Content-Type": "application/json"})
    assert urllib.request.urlopen(req, timeout=10).status == 201


@pytest.mark.slow
def test_killed_process_sends_the_queued_card_after_restart_once(db, slack):
    env = serve_env(db, slack)
    slack.fail_next(10_000, 500, method="chat.postMessage")  # Slack is down for posting
    proc = serve(env)
    try:
        post_mql(env, "k@example.com")
        assert wait_until(lambda: slack.rejected, timeout=10)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert ok_posts(slack) == []
    slack.reset()  # Slack is back
    proc = serve(env)
    try:
        assert len(slack.wait_calls("chat.postMessage", 1, timeout=60)) == 1
        time.sleep(1.5)
        assert len(ok_posts(slack)) == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)


@pytest.mark.slow
def test_sigterm_finishes_the_work_of_an_acknowledged_click(db, slack):
    """A deploy (SIGTERM) right after Slack got its 200 still does what the click asked for, then exits 0."""
    from standin import slack_requests

    env = serve_env(db, slack)
    base = f"http://127.0.0.1:{env['PORT']}"
    proc = serve(env)
    try:
        post_mql(env, "t@example.com")
        assert slack.wait_calls("chat.postMessage", 1, timeout=20)
        with db.begin() as s:
            lead_id = s.scalars(select(Lead.id)).one()

        def click(action_id):
            body = slack_requests.block_action(action_id, str(lead_id), "UREP1", HANDOFF)
            r = urllib.request.Request(f"{base}/slack/events", data=body.encode(),
                                       headers=slack_requests.signed_headers(SECRET, body))
            assert urllib.request.urlopen(r, timeout=10).status == 200

        click("lead_claim")

        def claimed():
            with db.begin() as s:
                return s.get(Lead, lead_id).claimed_by == "UREP1"
        assert wait_until(claimed, timeout=10)
        slack.slow_down("views.open", 2.0)  # the modal's Slack call is still running when the deploy comes
        click("lead_lost")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    opened = slack.calls_to("views.open")
    assert len(opened) == 1 and opened[0].params["view"]["callback_id"] == "lead_lost"
