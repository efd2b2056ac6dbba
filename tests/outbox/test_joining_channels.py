"""Issue 11: posting into a public channel Handoff was never invited to works, for messages and for the weekly
chart upload: on `not_in_channel` the sender joins the channel (conversations.join) and sends again at once,
once. A private channel cannot be joined: the row's error and the log say to invite Handoff.

Through the real app and the Slack stand-in (which answers as Slack does about membership and scopes). The
sender runs by hand here against a clock the test moves, so a retry comes due without waiting.
"""
from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import select

from jobs.scheduler import weekly_digest
from models.outbox import Kind
from models.tables import Lead, OutboxMessage
from tests.conftest import HANDOFF, FakeClock, jst, stop_sender

START = jst(2026, 11, 30, 9, 0)  # Monday 09:00 in Tokyo: the weekly digest is due


@pytest.fixture
def clock():
    return FakeClock(START)


@pytest.fixture
def app(make_app, clock):
    """The app served, with the outbox sent only when the test runs a pass."""
    client = make_app(now=clock)
    stop_sender(client)
    return client


def run_passes(app, clock, n: int = 1) -> None:
    for _ in range(n):
        app.runtime.services.sender.run_pass()
        clock.set(clock() + timedelta(hours=1))


def rows(db, kind: str) -> list[OutboxMessage]:
    with db.begin() as s:
        found = list(s.scalars(select(OutboxMessage).where(OutboxMessage.kind == kind).order_by(OutboxMessage.id)))
        s.expunge_all()
        return found


def new_mql(app, email: str) -> int:
    status, body = app.post_leads({"email": email, "score": 90})
    assert status == 201, body
    return body["id"]


def methods(slack) -> list[tuple[str, bool]]:
    """Every Web API call in order, with whether Slack took it."""
    calls = [(c.at, c.method, True) for c in slack.calls] + [(c.at, c.method, False) for c in slack.rejected]
    return [(method, ok) for _, method, ok in sorted(calls, key=lambda c: c[0]) if method != "auth.test"]


def test_a_card_for_a_public_channel_handoff_is_not_in_joins_it_and_posts(app, slack, db, clock):
    slack.add_channel(HANDOFF, name="sales-handoff", member=False)
    first = new_mql(app, "one@example.com")
    run_passes(app, clock)
    assert methods(slack) == [("chat.postMessage", False), ("conversations.join", True), ("chat.postMessage", True)]
    assert slack.is_member(HANDOFF)
    (card,) = rows(db, Kind.CARD_POST)
    assert (card.status, card.attempts) == ("sent", 1)
    with db.begin() as s:
        assert s.get(Lead, first).card_ts
    new_mql(app, "two@example.com")  # a member now: no second join
    run_passes(app, clock)
    assert [m for m, _ in methods(slack)].count("conversations.join") == 1
    assert [r.status for r in rows(db, Kind.CARD_POST)] == ["sent", "sent"]


def test_the_weekly_chart_upload_joins_the_digest_channel(make_app, slack, db, clock):
    """The issue's case: chat:write.public let the digest in, but an upload needs membership."""
    slack.set_scopes(slack.default_scopes | {"chat:write.public"})
    slack.add_channel("C0DIGEST", name="sales-weekly", member=False)
    app = make_app(now=clock, DIGEST_CHANNEL="C0DIGEST")
    stop_sender(app)
    assert weekly_digest(app.runtime.services) is True
    run_passes(app, clock)
    assert [r.status for r in rows(db, Kind.DIGEST)] == ["sent"]
    (chart,) = rows(db, Kind.CHART)
    assert (chart.status, chart.attempts) == ("sent", 1)
    assert len(slack.files) == 1 and slack.files[0]["channel"] == "C0DIGEST"
    refusals = [c for c in slack.rejected if c.method == "files.completeUploadExternal"]
    assert len(refusals) == 1 and refusals[0].params["channel_id"] == "C0DIGEST"
    assert [c.params["channel"] for c in slack.calls_to("conversations.join")] == ["C0DIGEST"]


def test_the_digest_post_joins_and_its_chart_follows(make_app, slack, db, clock):
    slack.add_channel("C0DIGEST", name="sales-weekly", member=False)
    app = make_app(now=clock, DIGEST_CHANNEL="C0DIGEST")
    stop_sender(app)
    weekly_digest(app.runtime.services)
    run_passes(app, clock)
    assert {r.status for r in rows(db, Kind.DIGEST) + rows(db, Kind.CHART)} == {"sent"}
    assert len(slack.calls_to("conversations.join")) == 1 and slack.files[0]["channel"] == "C0DIGEST"


def test_a_private_channel_handoff_is_not_in_fails_naming_the_invite(make_app, slack, db, clock, caplog):
    slack.add_channel("GPRIVATE1", name="deals", private=True, member=False)
    app = make_app(now=clock, HANDOFF_CHANNEL="GPRIVATE1")
    stop_sender(app)
    caplog.set_level(logging.INFO, logger="handoff.outbox")
    new_mql(app, "hidden@example.com")
    run_passes(app, clock)
    (card,) = rows(db, Kind.CARD_POST)
    assert card.status == "failed" and "channel_not_found" in card.last_error
    assert "GPRIVATE1 is a private channel Handoff is not in: type `/invite @Handoff` in that channel" in card.last_error
    assert any("/invite @Handoff" in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)
    assert slack.calls_to("conversations.join") == []  # nothing to join: Slack does not even show it


def test_a_private_c_channel_names_both_causes(make_app, slack, db, clock):
    slack.add_channel("C0SECRET", private=True, member=False)
    app = make_app(now=clock, HANDOFF_CHANNEL="C0SECRET", LANGUAGE="ja")
    stop_sender(app)
    new_mql(app, "secret@example.com")
    run_passes(app, clock)
    (card,) = rows(db, Kind.CARD_POST)
    assert card.status == "failed" and "C0SECRET は削除されたか ID が誤っています" in card.last_error
    assert "`/invite @Handoff`" in card.last_error


def test_not_in_channel_about_a_private_channel_is_not_joined_but_explained(make_app, slack, db, clock):
    """Should Slack answer not_in_channel about a private channel (an invited bot removed since), Handoff does not
    try to join: the row waits for an invitation, saying so."""
    app = make_app(now=clock, HANDOFF_CHANNEL="GPRIVATE2")
    stop_sender(app)
    slack.fail_next(1, 200, method="chat.postMessage", error="not_in_channel")
    new_mql(app, "removed@example.com")
    run_passes(app, clock)
    (card,) = rows(db, Kind.CARD_POST)
    assert card.status == "pending" and card.last_error.startswith("not_in_channel: GPRIVATE2 is a private channel")
    assert slack.calls_to("conversations.join") == []
    run_passes(app, clock)  # invited meanwhile: the slow retry goes through
    assert rows(db, Kind.CARD_POST)[0].status == "sent"


def test_without_channels_join_the_row_says_which_scope_or_invite(app, slack, db, clock):
    slack.set_scopes(slack.default_scopes - {"channels:join"})
    slack.add_channel(HANDOFF, member=False)
    new_mql(app, "noscope@example.com")
    run_passes(app, clock)
    (card,) = rows(db, Kind.CARD_POST)
    assert card.status == "pending" and "without the channels:join scope" in card.last_error
    assert [c.params.get("channel") for c in slack.rejected if c.method == "conversations.join"] == [HANDOFF]


def test_joined_but_still_refused_is_tried_once_not_in_a_loop(app, slack, db, clock):
    slack.add_channel(HANDOFF, member=False)
    slack.fail_next(2, 200, method="chat.postMessage", error="not_in_channel")
    new_mql(app, "stubborn@example.com")
    app.runtime.services.sender.run_pass()
    assert [m for m, _ in methods(slack)] == ["chat.postMessage", "conversations.join", "chat.postMessage"]
    (card,) = rows(db, Kind.CARD_POST)
    assert (card.status, card.last_error) == ("pending", "not_in_channel")  # a setup error: retried slowly


def test_joining_an_archived_channel_fails_the_row(app, slack, db, clock):
    slack.add_channel(HANDOFF, member=False)
    slack.fail_next(1, 200, method="chat.postMessage", error="not_in_channel")  # archived meanwhile
    slack.fail_next(1, 200, method="conversations.join", error="is_archived")
    new_mql(app, "archived@example.com")
    run_passes(app, clock)
    (card,) = rows(db, Kind.CARD_POST)
    assert card.status == "failed" and "is_archived" in card.last_error
