"""The click queue (handlers/clicks.py). On PostgreSQL a click is written down before Slack hears 200 and
applied once, in order, by whichever process applies clicks, so it survives a process that dies between the
answer and the work. On SQLite the answer comes first and the web process writes the click down and applies it
in one transaction. Either way a click is applied once, keeps no personal data, and a refusal is private."""
from __future__ import annotations

import json
import threading
from urllib.parse import parse_qs

import pytest
from sqlalchemy import select, text, update

from blocks.ids import ActionId
from models.tables import AuditEvent, Click, Lead
from ops import metrics
from runtime import build_runtime
from standin import slack_requests
from tests.conftest import HANDOFF, Client, card_of, make_settings, new_card, wait_until


def served_without_applying(db, slack):
    """A web process whose clicks nobody applies yet (as if it died right after answering Slack)."""
    rt = build_runtime(make_settings(db.url, slack.url), db=db)
    server = rt.start_http(host="127.0.0.1", port=0)
    return Client(f"http://127.0.0.1:{server.effective_port}", rt, slack), server


def needs_postgres(db):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("on SQLite the web process applies a click as it writes it down (handlers/clicks.py)")


def stored_clicks(db):
    with db.begin() as s:
        return list(s.scalars(select(Click).order_by(Click.id)))


def lead_via(web, email: str = "x@example.com") -> int:
    status, body = web.post_leads({"email": email, "score": 80})
    assert status == 201
    return body["id"]


def test_an_answered_click_is_in_the_table_and_applied_by_the_next_process(make_app, slack, db):
    needs_postgres(db)
    web, server = served_without_applying(db, slack)
    try:
        lead_id = lead_via(web)
        status, _ = web.click(ActionId.CLAIM, lead_id, "UREP1")
        assert status == 200
        assert web.runtime.listeners.wait_idle(10)
        [click] = stored_clicks(db)
        assert click.done_at is None and click.action_id == ActionId.CLAIM and click.user_id == "UREP1"
        assert card_of(web, lead_id).claimed_by is None  # answered, not yet applied: nothing lost if it dies now
        status, health = web.request("/healthz", method="GET")
        assert status == 200 and health["clicks_pending"] == 1 and health["clicks_oldest_pending_seconds"] >= 0
        body, _ = metrics.exposition(db, web.runtime.services.now)
        assert b"\nhandoff_clicks_pending 1.0\n" in body
    finally:
        server.close()
    app = make_app()  # the next process to start applies what was left
    assert wait_until(lambda: card_of(app, lead_id).claimed_by == "UREP1")
    assert stored_clicks(db)[0].done_at is not None
    assert slack.wait_calls("chat.postMessage", 1) and slack.wait_calls("chat.update", 1)


def test_on_sqlite_the_web_process_applies_the_click_it_answered(slack, db):
    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's way")
    web, server = served_without_applying(db, slack)
    try:
        lead_id = lead_via(web)
        assert web.click(ActionId.CLAIM, lead_id, "UREP1")[0] == 200
        assert web.runtime.listeners.wait_idle(10)
        [click] = stored_clicks(db)
        assert click.done_at is not None and card_of(web, lead_id).claimed_by == "UREP1"
    finally:
        server.close()


def test_the_same_request_sent_again_is_recorded_and_applied_once(app, slack, db):
    lead_id = new_card(app, slack)
    body = slack_requests.block_action(ActionId.CONTACTED, str(lead_id), "UREP1", HANDOFF)
    app.click(ActionId.CLAIM, lead_id, "UREP1")
    assert wait_until(lambda: card_of(app, lead_id).claimed_by == "UREP1")
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(app.slack_post(body)[0])) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert answers == [200] * 4
    assert app.runtime.settle(10)
    assert [c.action_id for c in stored_clicks(db)] == [ActionId.CLAIM, ActionId.CONTACTED]
    assert len(slack.calls_to("chat.postEphemeral")) <= 1  # one "contact logged", never "already contacted"
    assert wait_until(lambda: len(slack.calls_to("chat.postEphemeral")) == 1)
    assert "already" not in slack.calls_to("chat.postEphemeral")[0].params["text"].lower()


def test_what_is_kept_of_a_click_carries_no_message_and_no_view_blocks(app, slack, db):
    lead_id = new_card(app, slack)
    payload = json.loads(parse_qs(slack_requests.block_action(ActionId.CLAIM, str(lead_id), "UREP1", HANDOFF))
                         ["payload"][0])
    payload["message"]["blocks"] = [{"type": "section", "text": {"type": "mrkdwn", "text": "Hanako Secret"}}]
    payload["user"]["name"] = "hanako.secret"
    app.slack_post("payload=" + json.dumps(payload))
    assert app.runtime.settle(10)
    [click] = stored_clicks(db)
    kept = json.dumps(click.body)
    assert "Hanako" not in kept and "hanako" not in kept and "message" not in click.body
    assert click.body["user"] == {"id": "UREP1"} and click.body["actions"][0]["value"] == str(lead_id)


def test_a_batch_applies_each_lead_in_click_order(make_app, slack, db):
    needs_postgres(db)
    web, server = served_without_applying(db, slack)
    try:
        first = lead_via(web)
        second = lead_via(web, "y@example.com")
        web.click(ActionId.CLAIM, first, "UREP2")
        web.click(ActionId.CLAIM, second, "UREP1")
        web.click(ActionId.CLAIM, first, "UREP1")
        assert web.runtime.listeners.wait_idle(10)
    finally:
        server.close()
    assert [c.user_id for c in stored_clicks(db)] == ["UREP2", "UREP1", "UREP1"]
    app = make_app()
    assert wait_until(lambda: all(c.done_at for c in stored_clicks(db)))
    assert card_of(app, first).claimed_by == "UREP2"  # the first click on it wins, as it came first
    assert card_of(app, second).claimed_by == "UREP1"
    refusals = slack.wait_calls("chat.postEphemeral", 1)
    assert refusals[0].params["user"] == "UREP1" and "<@UREP2>" in refusals[0].params["text"]


def test_a_click_queued_for_work_this_version_does_not_know_is_answered_and_settled(app, slack, db):
    lead_id = new_card(app, slack)
    from datetime import UTC, datetime

    from models import clicks

    with db.begin() as s:
        clicks.record(s, request_key="k" * 64, action_id="lead_retired_button", user_id="UREP1",
                      body={"user": {"id": "UREP1"}, "channel": {"id": HANDOFF}, "trigger_id": "t1",
                            "actions": [{"action_id": "lead_retired_button", "value": str(lead_id)}]},
                      request_id=None, now=datetime.now(UTC))
    app.click(ActionId.CLAIM, lead_id, "UREP1")
    assert wait_until(lambda: all(c.done_at for c in stored_clicks(db)) and len(stored_clicks(db)) == 2)
    assert card_of(app, lead_id).claimed_by == "UREP1"
    notice = slack.wait_calls("chat.postEphemeral", 1)[0]
    assert notice.params["user"] == "UREP1"
    with db.begin() as s:
        assert s.get(Lead, lead_id).claimed_by == "UREP1"


def test_a_click_byte_on_the_wake_pipe_wakes_only_the_click_queue(db):
    """A click written down wakes the click queue alone; anything else wakes the senders."""
    from handlers.services import Services
    from outbox.process import WAKE_ALL, WAKE_CLICKS
    from tests.conftest import make_settings

    class Counter:
        def __init__(self):
            self.n = 0

        def notify(self):
            self.n += 1

    services = Services(settings=make_settings(db.url, "http://127.0.0.1:9"), db=db, sender=Counter())
    services.clicks = Counter()
    services.woken(WAKE_CLICKS * 5)
    assert (services.clicks.n, services.sender.n) == (1, 0)
    services.woken(WAKE_CLICKS + WAKE_ALL)
    assert (services.clicks.n, services.sender.n) == (2, 1)
    services.woken(WAKE_ALL * 3)
    assert (services.clicks.n, services.sender.n) == (2, 2)


def gathered(monkeypatch, wake_for: float, quiet: float = 0.05, at_most: float = 5.0) -> float:
    """Seconds `ClickQueue.gather` waited while a click woke it every 10 ms for `wake_for` seconds."""
    import time

    from handlers import clicks

    monkeypatch.setattr(clicks, "QUIET", quiet)
    monkeypatch.setattr(clicks, "GATHER_AT_MOST", at_most)
    queue, stop, done = clicks.ClickQueue(None, {}), threading.Event(), threading.Event()

    def clicking():
        until = time.monotonic() + wake_for
        while time.monotonic() < until and not done.is_set():
            queue.notify()
            done.wait(0.01)

    clicker = threading.Thread(target=clicking)
    clicker.start()
    started = time.monotonic()
    try:
        queue.gather(stop)
        return time.monotonic() - started
    finally:
        done.set()
        clicker.join()


def test_a_burst_of_clicks_is_applied_once_it_pauses(monkeypatch):
    """While clicks keep coming the queue waits (their answers come first); once they pause, it applies."""
    waited = gathered(monkeypatch, wake_for=0.3)
    assert 0.3 <= waited < 4.0


def test_clicks_that_never_pause_are_applied_after_the_longest_gather(monkeypatch):
    waited = gathered(monkeypatch, wake_for=60, at_most=0.3)
    assert 0.3 <= waited < 4.0


def attempt(app, work):
    """What `ClickQueue._attempt` answers for `work`, in a transaction of its own, and the transaction's
    session's connection's prepared statements on PostgreSQL before and after (None on SQLite)."""
    from datetime import UTC, datetime

    services = app.runtime.services

    def prepared(session):
        if services.db.engine.dialect.name != "postgresql":
            return None
        return session.execute(text("SELECT count(*) FROM pg_prepared_statements")).scalar()

    with services.db.begin() as session:
        for _ in range(6):  # psycopg prepares a statement the fifth time it is sent
            session.execute(select(Lead.id).where(Lead.id == 0)).all()
        before = prepared(session)
        notice = services.clicks._attempt(session, work, {}, {}, datetime.now(UTC))
        return notice, before, prepared(session)


def test_a_refusal_that_wrote_nothing_keeps_the_connections_prepared_statements(app, db):
    """"Already claimed" writes nothing: its savepoint is released, not rolled back to, because psycopg
    forgets every prepared statement on any ROLLBACK and half of a burst's clicks are such refusals."""
    from models.leads import AlreadyClaimed

    def refused(session, body, action, at):
        session.execute(update(Lead).where(Lead.id == 0).values(claimed_by="UREP1"))  # matches no lead
        raise AlreadyClaimed(user="UREP2")

    notice, before, after = attempt(app, refused)
    assert notice[0] == AlreadyClaimed.key
    if before is not None:
        assert before > 0 and after == before


def test_a_refusal_after_a_write_undoes_the_write(app, db):
    from models.leads import AlreadyClaimed, audit

    def wrote_then_refused(session, body, action, at):
        audit(session, lead_id=None, actor="UREP1", action="halfway", now=at)
        session.flush()
        raise AlreadyClaimed(user="UREP2")

    def added_then_refused(session, body, action, at):
        audit(session, lead_id=None, actor="UREP1", action="pending", now=at)  # not flushed yet
        raise AlreadyClaimed(user="UREP2")

    for work in (wrote_then_refused, added_then_refused):
        notice, _, _ = attempt(app, work)
        assert notice[0] == AlreadyClaimed.key
    with db.begin() as s:
        assert s.scalars(select(AuditEvent).where(AuditEvent.action.in_(["halfway", "pending"]))).all() == []
