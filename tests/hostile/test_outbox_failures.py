"""Issue 8: an outbox row the destination refuses for good is failed and visible, never retried for ever
and never holding up its lane; `bot.py outbox list|retry` shows and re-queues the failures.

The sender runs by hand here (its background thread is stopped) against a clock the test moves, so every
retry and backoff comes due at once, without waiting.
"""
from __future__ import annotations

import logging
import subprocess
import sys
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from bot import main
from handlers.services import utcnow
from models import outbox as queue
from models.kpi import parse_period
from models.leads import claim
from models.outbox import Kind
from models.tables import Lead, OutboxMessage
from outbox.sender import RENDER_ATTEMPTS, SETUP_GIVE_UP
from standin.server import BlockError, check_blocks
from tests.conftest import HANDOFF, MANAGER, ROOT, FakeClock, stop_sender, utc

START = utc(2026, 11, 30, 1, 0)  # Monday 10:00 in Tokyo


@pytest.fixture
def clock():
    return FakeClock(START)


@pytest.fixture
def app(make_app, clock):
    """The app served, with the outbox sent only when the test runs a pass."""
    client = make_app(now=clock)
    stop_sender(client)
    return client


def run_passes(app, clock, n: int = 1, step: timedelta = timedelta(hours=1)) -> None:
    """n sender passes, the clock moving `step` after each (so every backoff has come due)."""
    for _ in range(n):
        app.runtime.services.sender.run_pass()
        clock.set(clock() + step)


def rows(db, kind: str | None = None) -> list[OutboxMessage]:
    with db.begin() as s:
        q = select(OutboxMessage).order_by(OutboxMessage.id)
        if kind:
            q = q.where(OutboxMessage.kind == kind)
        found = list(s.scalars(q))
        s.expunge_all()
        return found


def new_mql(app, email: str) -> int:
    status, body = app.post_leads({"email": email, "score": 90, "company": "Acme"})
    assert status == 201, body
    return body["id"]


def healthz(app) -> dict:
    status, body = app.request("/healthz", method="GET")
    assert status == 200, body
    return body


# Refused for good: failed at once, and the lane goes on ----------------------------------------------
@pytest.mark.parametrize("error", ["channel_not_found", "is_archived", "invalid_blocks", "invalid_blocks_format",
                                   "invalid_arguments", "msg_too_long", "no_text", "restricted_action"])
def test_a_row_slack_refuses_for_good_fails_at_once_and_the_next_one_goes(app, slack, db, clock, error):
    slack.fail_next(1, 200, method="chat.postMessage", error=error)
    first = new_mql(app, "one@example.com")
    second = new_mql(app, "two@example.com")
    run_passes(app, clock, 1)  # one pass settles both: the refused row holds up nothing behind it
    refused, posted = rows(db, Kind.CARD_POST)
    assert (refused.lead_id, refused.status, refused.attempts) == (first, "failed", 1)
    assert error in refused.last_error
    assert (posted.lead_id, posted.status) == (second, "sent")
    assert len(slack.calls_to("chat.postMessage")) == 1
    health = healthz(app)
    assert (health["outbox_failed"], health["outbox_pending"]) == (1, 0)


def test_a_deleted_channel_fails_the_card_at_once_and_other_channels_go_on(app, slack, db, clock):
    """The stand-in answers like Slack: a deleted (or mistyped) channel is channel_not_found; an archived
    one is_archived. Before: channel_not_found was retried for two days."""
    slack.delete_channel(HANDOFF)
    lead = new_mql(app, "gone@example.com")
    with db.begin() as s:
        queue.enqueue(s, kind=Kind.NOTICE, dedupe_key="dm", now=clock(), channel=MANAGER,
                      payload={"user": MANAGER, "dm": True, "key": "kpi.refused", "params": {}})
    run_passes(app, clock, 1)
    card, dm = rows(db)
    assert (card.lead_id, card.status, card.attempts) == (lead, "failed", 1)
    assert "channel_not_found" in card.last_error
    assert dm.status == "sent"
    with db.begin() as s:
        assert s.get(Lead, lead).card_ts is None


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")
def test_the_standin_refuses_what_slack_refuses_and_says_why(app, slack, db, clock):
    """Slack explains invalid_blocks with a json-pointer; a channel that is not an id is channel_not_found."""
    from slack_sdk.errors import SlackApiError

    too_long = [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]
    with pytest.raises(BlockError, match=r"must be less than 3001 characters \[json-pointer:/blocks/0/text/text\]"):
        check_blocks(too_long, 50)
    client = app.runtime.services.sender.client
    with pytest.raises(SlackApiError) as refused:
        client.chat_postMessage(channel=HANDOFF, text="x", blocks=too_long)
    assert refused.value.response["error"] == "invalid_blocks"
    assert "json-pointer:/blocks/0/text/text" in refused.value.response["response_metadata"]["messages"][0]
    with pytest.raises(SlackApiError) as refused:
        client.chat_postMessage(channel=HANDOFF, text="")
    assert refused.value.response["error"] == "no_text"
    slack.archive_channel("C0ARCHIVED")
    with pytest.raises(SlackApiError) as refused:
        client.chat_postMessage(channel="C0ARCHIVED", text="x")
    assert refused.value.response["error"] == "is_archived"

    with db.begin() as s:  # a private notice to a channel value that is not a Slack id (e.g. tampered)
        queue.enqueue(s, kind=Kind.NOTICE, dedupe_key="n", now=clock(), channel="not a channel",
                      payload={"user": MANAGER, "dm": False, "key": "kpi.refused", "params": {}})
    run_passes(app, clock, 1)
    (row,) = rows(db)
    assert row.status == "failed" and "channel_not_found" in row.last_error and row.attempts == 1


def test_an_update_of_a_card_that_is_gone_fails_at_once(app, slack, db, clock):
    lead = new_mql(app, "deleted-card@example.com")
    run_passes(app, clock, 1)
    post = slack.calls_to("chat.postMessage")[0]
    with db.begin() as s:
        ts = s.get(Lead, lead).card_ts
    with slack._lock:  # someone deleted the card message in Slack
        slack.messages.pop((post.params["channel"], ts))
    with db.begin() as s:
        claim(s, lead_id=lead, user="UREP1", now=clock())
    run_passes(app, clock, 1)
    (upd,) = rows(db, Kind.CARD_UPDATE)
    assert (upd.status, upd.attempts) == ("failed", 1) and "message_not_found" in upd.last_error


# Cannot be rendered: a few attempts, then failed, logged once ------------------------------------------
def test_a_row_that_cannot_be_rendered_fails_after_a_few_attempts_logged_once(app, slack, db, clock, caplog):
    """A tampered Share button value became a report row whose period does not exist. Before: retried for ever."""
    as_of = clock().isoformat()
    with pytest.raises(Exception) as raised:
        parse_period("week", "9999-W99", clock(), app.runtime.settings.tz)
    with db.begin() as s:
        queue.enqueue(s, kind=Kind.REPORT, dedupe_key="share:tampered", now=clock(), channel=HANDOFF,
                      payload={"kind": "week", "label": "9999-W99", "as_of": as_of, "user": MANAGER})
        queue.enqueue(s, kind=Kind.REPORT, dedupe_key="share:fine", now=clock(), channel=HANDOFF,
                      payload={"kind": "week", "label": "2026-W48", "as_of": as_of, "user": MANAGER})
    caplog.set_level(logging.DEBUG, logger="handoff.outbox")
    run_passes(app, clock, 1)
    bad, good = rows(db)
    assert good.status == "sent"  # not held up by the row before it in the channel
    assert (bad.status, bad.attempts) == ("pending", 1)
    run_passes(app, clock, 10)
    bad, _ = rows(db)
    assert (bad.status, bad.attempts) == ("failed", RENDER_ATTEMPTS)
    assert bad.last_error == f"render: {type(raised.value).__name__}: {raised.value}"
    logged = [r for r in caplog.records if r.levelno >= logging.WARNING and f"row {bad.id} " in r.getMessage()]
    assert len(logged) == 1 and logged[0].levelno == logging.ERROR and logged[0].exc_info
    assert len(slack.calls_to("chat.postMessage")) == 1


def test_a_card_update_does_not_wait_for_ever_for_a_card_post_that_failed(app, slack, db, clock):
    """A card that cannot be rendered (a corrupted lead) fails; its update and the next card still go.
    Before: the post was retried for ever and the update waited for it for ever."""
    broken = new_mql(app, "broken@example.com")
    with db.begin() as s:
        s.execute(update(Lead).where(Lead.id == broken).values(attributes=["not", "an", "object"]))
        claim(s, lead_id=broken, user="UREP1", now=clock())
    fine = new_mql(app, "fine@example.com")
    run_passes(app, clock, 1)
    assert [(r.lead_id, r.status) for r in rows(db, Kind.CARD_POST)] == [(broken, "pending"), (fine, "sent")]
    run_passes(app, clock, RENDER_ATTEMPTS + 2)
    post, _ = rows(db, Kind.CARD_POST)
    assert post.status == "failed" and post.last_error.startswith("render: AttributeError")
    (upd,) = rows(db, Kind.CARD_UPDATE)
    assert upd.status == "sent" and "no card" in upd.last_error  # settled: there is no card to update
    assert slack.calls_to("chat.update") == []
    assert healthz(app)["outbox_pending"] == 0


# Token-wide errors: slow retries, visible, bounded -------------------------------------------------------
def test_a_broken_token_is_retried_slowly_visibly_then_failed_and_holds_nothing_for_ever(app, slack, db, clock):
    slack.fail_next(10_000, 200, error="invalid_auth")  # every call, until an admin fixes the token
    lead = new_mql(app, "token@example.com")
    with db.begin() as s:
        claim(s, lead_id=lead, user="UREP1", now=clock())
    run_passes(app, clock, 3)
    post, upd = rows(db)
    assert post.status == "pending" and post.attempts >= 1 and post.last_error == "invalid_auth"
    assert upd.status == "pending" and upd.attempts == 0  # waiting for the card, not failing
    health = healthz(app)
    assert health["outbox_pending"] == 2 and health["outbox_retrying"] == 1
    assert health["outbox_oldest_pending_seconds"] == int((clock() - START).total_seconds())
    clock.set(START + SETUP_GIVE_UP + timedelta(minutes=1))
    run_passes(app, clock, 2, step=timedelta(minutes=1))
    post, upd = rows(db)
    assert post.status == "failed" and post.last_error == "invalid_auth"
    assert upd.status == "sent"  # no longer waits for a post that will never come
    health = healthz(app)
    assert (health["outbox_pending"], health["outbox_failed"], health["outbox_oldest_pending_seconds"]) == (0, 1, None)


# The commands -----------------------------------------------------------------------------------------
def cli(monkeypatch, capsys, db, *argv, lang: str = "en"):
    monkeypatch.setenv("DATABASE_URL", db.url)
    monkeypatch.setenv("LANGUAGE", lang)
    code = main(["outbox", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_outbox_list_and_retry(app, slack, db, clock, monkeypatch, capsys):
    slack.delete_channel(HANDOFF)
    first, second = new_mql(app, "a@example.com"), new_mql(app, "b@example.com")
    with db.begin() as s:
        queue.enqueue(s, kind=Kind.NOTICE, dedupe_key="waits", now=clock(), channel=HANDOFF,
                      payload={"user": MANAGER, "key": "kpi.refused", "params": {}})
        s.execute(update(OutboxMessage).where(OutboxMessage.dedupe_key == "waits")
                  .values(next_attempt_at=clock() + timedelta(days=1)))
    run_passes(app, clock, 1)
    a, b, waiting = rows(db)
    assert (a.status, b.status, waiting.status) == ("failed", "failed", "pending")

    code, out, _ = cli(monkeypatch, capsys, db, "list")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 5 and "last error" in lines[0]
    assert [int(line.split()[0]) for line in lines[1:4]] == [waiting.id, b.id, a.id]  # newest first
    assert f"card_post    {HANDOFF}" in lines[3] and f" {first} " in lines[3] and "channel_not_found" in lines[3]
    assert "2026-11-30 10:00" in lines[3]  # created, in the team's time zone
    assert "3 of 3 shown" in lines[4]
    code, out, _ = cli(monkeypatch, capsys, db, "list", "--failed", "--limit", "1")
    assert code == 0 and str(b.id) in out and "1 of 2 shown, newest first (--limit N for more)" in out and "pending" not in out
    code, out, _ = cli(monkeypatch, capsys, db, "list", "--failed", lang="ja")
    assert code == 0 and "最後のエラー" in out and "失敗" in out

    # bad usage: one line, exit 2, nothing changed
    for argv in (["retry"], ["retry", "x"], ["retry", "--all-failed", str(a.id)], ["retry", str(waiting.id)],
                 ["retry", str(a.id), "999999"], ["list", "--limit", "0"], ["list", str(a.id)], ["frob"], []):
        code, out, err = cli(monkeypatch, capsys, db, *argv)
        assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and err.startswith("error: "), argv
    assert [r.status for r in rows(db)] == ["failed", "failed", "pending"]

    slack.reset()  # the admin restored the channel
    code, out, _ = cli(monkeypatch, capsys, db, "retry", str(a.id))
    assert code == 0 and f"#{a.id}" in out and "1 back in the queue" in out
    a = rows(db)[0]
    assert (a.status, a.attempts, a.lease_until) == ("pending", 0, None) and a.next_attempt_at <= utcnow()
    assert "channel_not_found" in a.last_error  # what happened stays until the next attempt
    clock.set(utcnow() + timedelta(minutes=1))  # the command ran on the real clock: due now
    run_passes(app, clock, 1)
    a, b, _ = rows(db)
    assert a.status == "sent" and b.status == "failed"
    with db.begin() as s:
        assert s.get(Lead, first).card_ts == a.result_ts
    code, out, _ = cli(monkeypatch, capsys, db, "retry", "--all-failed")
    assert code == 0 and f"#{b.id}" in out
    run_passes(app, clock, 1)
    assert [r.status for r in rows(db, Kind.CARD_POST)] == ["sent", "sent"]
    assert len(slack.calls_to("chat.postMessage")) == 2
    with db.begin() as s:
        assert s.get(Lead, second).card_ts
    code, out, _ = cli(monkeypatch, capsys, db, "list", "--failed")
    assert code == 0 and out.strip() == "outbox: no message failed"


def test_outbox_command_in_a_real_process(db):
    env = {"DATABASE_URL": db.url, "PATH": "/usr/bin:/bin", "LANGUAGE": "ja"}
    run = lambda *a: subprocess.run([sys.executable, "bot.py", "outbox", *a], cwd=ROOT, env=env,
                                    capture_output=True, text=True, timeout=120)
    ok = run("list", "--failed")
    assert ok.returncode == 0 and ok.stdout.strip() == "outbox: 失敗したメッセージはありません"
    bad = run("retry", "12x")
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        "error: '12x' は outbox のメッセージIDではありません(`bot.py outbox list` が表示する整数です)"]
