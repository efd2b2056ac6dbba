"""Signed Slack requests end to end: signatures, retries, races, not-a-fit, escaping."""
from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select

from blocks.ids import ActionId, BlockId, CallbackId
from models.tables import AuditEvent
from standin import slack_requests
from tests.conftest import HANDOFF, MANAGER, MARKETING, card_of, new_card, wait_until


def audit_count(db, action) -> int:
    with db.begin() as s:
        return s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action))


def test_bad_signatures_get_401_and_change_nothing(app, slack, db):
    lead_id = new_card(app, slack)
    body = slack_requests.block_action(ActionId.CLAIM, str(lead_id), "UREP1", HANDOFF)
    forged = slack_requests.signed_headers("not-the-secret", body)
    assert app.request("/slack/events", body, forged)[0] == 401
    assert app.request("/slack/events", body, {"Content-Type": "application/x-www-form-urlencoded"})[0] == 401
    assert app.slack_post(body, timestamp=int(time.time()) - 6 * 60)[0] == 401
    tampered = slack_requests.signed_headers("test-signing-secret", body)
    assert app.request("/slack/events", body.replace("UREP1", "UREP9"), tampered)[0] == 401
    app.drain()
    assert card_of(app, lead_id).claimed_by is None
    assert slack.calls_to("chat.update") == [] and slack.calls_to("chat.postEphemeral") == []
    # and the same body, properly signed and fresh, works
    assert app.slack_post(body)[0] == 200
    assert wait_until(lambda: card_of(app, lead_id).claimed_by == "UREP1")


def test_a_slack_retry_takes_effect_once(app, slack, db):
    lead_id = new_card(app, slack)
    body = slack_requests.block_action(ActionId.CLAIM, str(lead_id), "UREP1", HANDOFF)
    assert app.slack_post(body)[0] == 200
    slack.wait_calls("chat.update", 1)
    status, _ = app.slack_post(body, headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
    assert status == 200
    app.drain()
    time.sleep(0.3)
    assert len(slack.calls_to("chat.update")) == 1
    assert slack.calls_to("chat.postEphemeral") == []
    assert audit_count(db, "claimed") == 1


def test_fifty_concurrent_claims_one_owner(app, slack, db):
    lead_id = new_card(app, slack)
    users = [f"UREP{i:03d}" for i in range(50)]
    bodies = [slack_requests.block_action(ActionId.CLAIM, str(lead_id), u, HANDOFF) for u in users]
    with ThreadPoolExecutor(50) as pool:
        statuses = list(pool.map(lambda b: app.slack_post(b)[0], bodies))
    assert statuses == [200] * 50
    ephemerals = slack.wait_calls("chat.postEphemeral", 49, timeout=30)
    owner = card_of(app, lead_id).claimed_by
    assert owner in users
    assert len(ephemerals) == 49
    assert {c.params["user"] for c in ephemerals} == set(users) - {owner}
    assert all(f"<@{owner}>" in c.params["text"] for c in ephemerals)
    assert len(slack.wait_calls("chat.update", 1)) == 1
    assert audit_count(db, "claimed") == 1
    time.sleep(0.3)
    assert len(slack.calls_to("chat.update")) == 1


def test_outside_text_shows_literally(app, slack):
    evil = "<!channel> *Free* <https://x.test|click>"
    new_card(app, slack, name=evil, company=evil, title="&amp; <@U999>", attributes={"note": evil})
    post = slack.calls_to("chat.postMessage")[0]
    blocks = post.params["blocks"]

    def texts(obj, kind=None):
        if isinstance(obj, dict):
            if obj.get("type") in ("mrkdwn", "plain_text") and "text" in obj:
                yield obj["type"], obj["text"]
            for v in obj.values():
                yield from texts(v)
        elif isinstance(obj, list):
            for v in obj:
                yield from texts(v)

    found = list(texts(blocks))
    assert any(kind == "plain_text" and evil in text for kind, text in found)
    for kind, text in found:
        if kind == "mrkdwn":
            assert "<!channel>" not in text and "<https://x.test" not in text and "<@U999>" not in text
    assert "<!channel>" not in post.params["text"] and "&lt;!channel&gt;" in post.params["text"]


def test_card_blocks_are_valid_block_kit(app, slack):
    from slack_sdk.models.blocks import Block

    new_card(app, slack, name="Aiko", company="ACME", attributes={f"k{i}": "v" * 300 for i in range(20)})
    for b in slack.calls_to("chat.postMessage")[0].params["blocks"]:
        Block.parse(b).validate_json()


def submit_disqualify(app, lead_id, user, reason="competitor", note=None):
    values = {}
    if reason:
        values.update(slack_requests.select_value(BlockId.REASON, "value", reason))
    values.update(slack_requests.text_value(BlockId.NOTE, "value", note))
    return app.slack_post(slack_requests.view_submission(CallbackId.DISQUALIFY, str(lead_id), user, values))


def test_not_a_fit_from_the_card(app, slack, db):
    lead_id = new_card(app, slack, company="Rival Inc", source="ads")
    app.click(ActionId.DISQUALIFY, lead_id, "UREP1")
    opened = slack.wait_calls("views.open", 1)
    view = opened[0].params["view"]
    assert view["callback_id"] == CallbackId.DISQUALIFY and view["private_metadata"] == str(lead_id)

    status, body = submit_disqualify(app, lead_id, "UREP1", reason=None)
    assert status == 200 and body["response_action"] == "errors" and BlockId.REASON in body["errors"]
    assert card_of(app, lead_id).disqualified_at is None

    status, body = submit_disqualify(app, lead_id, "UREP1", note="they sell <!here> the same thing")
    assert status == 200 and body in ("", None, {})
    lead = card_of(app, lead_id)
    assert lead.disqualify_reason == "competitor" and lead.claimed_by == "UREP1" and lead.claimed_at
    posts = slack.wait_calls("chat.postMessage", 2)
    feedback = [c for c in posts if c.params["channel"] == MARKETING]
    assert len(feedback) == 1
    dump = json.dumps(feedback[0].params["blocks"])
    assert "Competitor" in dump and "they sell <!here> the same thing" in dump and "plain_text" in dump
    assert "permalink" not in dump and "/archives/" in dump
    assert len(slack.wait_calls("chat.update", 1)) == 1

    # someone else submits a modal they opened earlier: a clear message, nothing changes
    status, body = submit_disqualify(app, lead_id, "UREP2", reason="spam")
    assert body["response_action"] == "errors" and "closed" in body["errors"][BlockId.REASON]
    assert card_of(app, lead_id).disqualify_reason == "competitor"
    assert audit_count(db, "disqualified") == 1


def test_only_owner_or_manager_can_disqualify_a_claimed_lead(app, slack, db):
    lead_id = new_card(app, slack)
    app.click(ActionId.CLAIM, lead_id, "UREP1")
    slack.wait_calls("chat.update", 1)
    app.click(ActionId.DISQUALIFY, lead_id, "UREP2")
    eph = slack.wait_calls("chat.postEphemeral", 1)
    assert eph[0].params["user"] == "UREP2" and "<@UREP1>" in eph[0].params["text"]
    assert slack.calls_to("views.open") == []
    status, body = submit_disqualify(app, lead_id, "UREP2")
    assert body["response_action"] == "errors"
    status, body = submit_disqualify(app, lead_id, MANAGER)
    assert status == 200 and card_of(app, lead_id).disqualified_at is not None


def test_claim_of_unknown_lead_is_explained(app, slack):
    app.click(ActionId.CLAIM, 99999, "UREP1")
    eph = slack.wait_calls("chat.postEphemeral", 1)
    assert "no longer exists" in eph[0].params["text"]


def test_japanese_texts(make_app, slack):
    app = make_app(LANGUAGE="ja")
    lead_id = new_card(app, slack, company="佐藤工業")
    post = slack.calls_to("chat.postMessage")[0]
    assert "新しいMQL" in json.dumps(post.params["blocks"], ensure_ascii=False)
    assert "担当する" in json.dumps(post.params["blocks"], ensure_ascii=False)
    app.click(ActionId.CLAIM, lead_id, "UREP1")
    app.click(ActionId.CLAIM, lead_id, "UREP2")
    eph = slack.wait_calls("chat.postEphemeral", 1)
    assert "担当しています" in eph[0].params["text"]


def test_kpi_command_is_private_and_for_managers(app):
    def kpi(text, user):
        status, body = app.slack_post(slack_requests.slash_command("/kpi", text, user, HANDOFF))
        assert status == 200
        # a plain-text answer to a slash command is shown only to the person who typed it
        assert isinstance(body, str) or body.get("response_type", "ephemeral") == "ephemeral"
        return body if isinstance(body, str) else body["text"]

    assert "sales managers" in kpi("", "UREP1")
    assert "/kpi week" in kpi("help", MANAGER)
    answer = kpi("weak", MANAGER)
    assert "`weak`" in answer and "/kpi week" in answer
