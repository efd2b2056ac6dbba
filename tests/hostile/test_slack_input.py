"""Hostile Slack input (issue 8): properly signed requests that are malformed, tampered, oversized or replayed.

Each gets a clear answer (a 4xx, an empty 200, a per-field error in the modal, or a private notice) and
changes nothing; nothing is logged at ERROR; no outbox row is left that cannot be sent.
"""
from __future__ import annotations

import json
import logging
from urllib.parse import parse_qs, urlencode

import pytest
from sqlalchemy import func, select

from blocks import digest as digest_blocks
from blocks import outcome as outcome_blocks
from blocks.ids import ActionId, BlockId, CallbackId
from models.tables import ActionItem, AuditEvent, KpiTarget, Lead, OutboxMessage, OutOfOffice
from standin import slack_requests
from tests.conftest import HANDOFF, MANAGER, FakeClock, card_of, jst, new_card, wait_until

REP = "UREP1"
NOW = jst(2026, 11, 30, 10, 0)  # a Monday, inside business hours


# Helpers ------------------------------------------------------------------------------------------------
def form(payload) -> str:
    return urlencode({"payload": payload if isinstance(payload, str) else json.dumps(payload)})


def payload_of(body: str) -> dict:
    return json.loads(parse_qs(body)["payload"][0])


def click(action_id=ActionId.CLAIM, value="1", user=REP, block_id=BlockId.CARD_ACTIONS) -> dict:
    return payload_of(slack_requests.block_action(action_id, value, user, HANDOFF, block_id=block_id))


def submission(callback_id=CallbackId.DISQUALIFY, metadata="1", user=REP, reason="competitor", note=None) -> dict:
    values = {}
    if reason is not None:
        values.update(slack_requests.select_value(BlockId.REASON, outcome_blocks.VALUE, reason))
    values.update(slack_requests.text_value(BlockId.NOTE, outcome_blocks.VALUE, note))
    return payload_of(slack_requests.view_submission(callback_id, metadata, user, values))


def command(text: str, user: str | None = MANAGER, name="/kpi") -> str:
    fields = parse_qs(slack_requests.slash_command(name, text, user or "UX", HANDOFF))
    body = {k: v[0] for k, v in fields.items()}
    if user is None:
        body.pop("user_id")
    return urlencode(body)


def counts(db) -> dict[str, int]:
    with db.begin() as s:
        return {t.__tablename__: s.scalar(select(func.count()).select_from(t))
                for t in (Lead, AuditEvent, OutboxMessage, KpiTarget, ActionItem)}


def settled(app):
    """Let acknowledged work finish and the outbox send what it queued."""
    assert app.runtime.settle(10)
    app.drain()


def outbox_rows(db) -> list[OutboxMessage]:
    with db.begin() as s:
        return list(s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def no_errors_logged(caplog):
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not bad, [(r.name, r.getMessage(), r.exc_info and r.exc_info[0]) for r in bad]


def kpi(app, text, user=MANAGER) -> str:
    status, body = app.slack_post(command(text, user))
    assert status == 200, body
    if isinstance(body, dict):
        assert body.get("response_type", "ephemeral") == "ephemeral"
        return body.get("text", "") + json.dumps(body.get("blocks") or [])
    return body


@pytest.fixture
def card(make_app, slack):
    app = make_app(now=FakeClock(NOW))
    return app, new_card(app, slack)


# 1. Malformed signed requests ------------------------------------------------------------------------------
def _without(obj: dict, *path):
    *parents, last = path
    for key in parents:
        obj = obj[key]
    obj.pop(last)


def _set(payload: dict, path: tuple, value) -> dict:
    obj = payload
    for key in path[:-1]:
        obj = obj[key]
    obj[path[-1]] = value
    return payload


def _event_without_user():
    envelope = json.loads(slack_requests.app_home_opened(REP))
    envelope["event"].pop("user")
    return json.dumps(envelope)


def _event_not_an_object():
    envelope = json.loads(slack_requests.app_home_opened(REP))
    envelope["event"] = "app_home_opened"
    return json.dumps(envelope)


MALFORMED = {
    "actions_empty": lambda lid: form(_set(click(value=str(lid)), ("actions",), [])),
    "actions_missing": lambda lid: form({k: v for k, v in click(value=str(lid)).items() if k != "actions"}),
    "actions_not_objects": lambda lid: form(_set(click(value=str(lid)), ("actions",), ["lead_claim"])),
    "action_value_not_a_string": lambda lid: form(_set(click(value=str(lid)), ("actions", 0, "value"), lid)),
    "payload_list": lambda lid: form("[]"),
    "payload_null": lambda lid: form("null"),
    "payload_number": lambda lid: form("5"),
    "payload_broken_json": lambda lid: form('{"type": "block_actions", "actions": [{'),
    "json_body_broken": lambda lid: '{"type": "event_callback", ',
    "team_not_an_object": lambda lid: form(_set(click(value=str(lid)), ("team",), 5)),
    "channel_not_an_object": lambda lid: form(_set(click(value=str(lid)), ("channel",), "C1")),
    "block_actions_without_user": lambda lid: form({k: v for k, v in click(value=str(lid)).items() if k != "user"}),
    "block_actions_user_not_an_id": lambda lid: form(_set(click(value=str(lid)), ("user", "id"), "<!channel>")),
    "view_submission_without_state": lambda lid: form(
        {**submission(metadata=str(lid)), "view": {k: v for k, v in submission()["view"].items() if k != "state"}}),
    "view_submission_without_view": lambda lid: form(
        {k: v for k, v in submission(metadata=str(lid)).items() if k != "view"}),
    "view_submission_values_not_an_object": lambda lid: form(
        _set(submission(metadata=str(lid)), ("view", "state", "values"), [])),
    "view_submission_without_user": lambda lid: form(
        {k: v for k, v in submission(metadata=str(lid)).items() if k != "user"}),
    "retro_item_without_state": lambda lid: form(
        {**submission(CallbackId.RETRO_ITEM, "2026-11", MANAGER),
         "view": {k: v for k, v in submission(CallbackId.RETRO_ITEM, "2026-11").items() if k != "state"}}),
    "kpi_without_user": lambda lid: command("target mqls 100", user=None),
    "handoff_without_user": lambda lid: command("ooo until 2026-12-24", user=None, name="/handoff"),
    "event_without_user": lambda lid: _event_without_user(),
    "event_not_an_object": lambda lid: _event_not_an_object(),
    "nul_in_a_note": lambda lid: form(submission(metadata=str(lid), note="see \x00 attached")),
    "lone_surrogate_in_a_note": lambda lid: form(submission(metadata=str(lid), note="bad \ud800 text")),
}


def test_malformed_signed_requests_get_a_clear_answer_and_change_nothing(card, slack, db, caplog):
    app, lead_id = card
    settled(app)
    before = counts(db)
    slack.reset()
    caplog.set_level(logging.WARNING)
    for case, body_of in MALFORMED.items():  # one app for all: the file stays fast
        status, body = app.slack_post(body_of(lead_id))
        assert 400 <= status < 500 or (status == 200 and body in ("", None, {})), (case, status, body)
        settled(app)
        assert counts(db) == before, case
        assert card_of(app, lead_id).claimed_by is None and card_of(app, lead_id).disqualified_at is None, case
        assert slack.calls_to("chat.postEphemeral") == [] and slack.calls_to("views.open") == [], case
        no_errors_logged(caplog)


def test_unsigned_garbage_is_still_401(card):
    app, _ = card
    for body in (form("[]"), form("{broken"), form("null")):
        headers = slack_requests.signed_headers("not-the-secret", body)
        assert app.request("/slack/events", body, headers)[0] == 401


# 1 and 3. private_metadata and reasons that are not what the modal was opened with -------------------------
def test_tampered_private_metadata_is_refused_in_the_modal(card, slack, db, caplog):
    app, lead_id = card
    settled(app)
    before = counts(db)
    caplog.set_level(logging.WARNING)
    for metadata in ("abc", "9" * 30, str(2**63), "-1", "0", "1.5", " 7", "", "99999"):
        status, body = app.slack_post(form(submission(metadata=metadata)))
        assert status == 200 and body["response_action"] == "errors", (metadata, body)
        message = body["errors"][BlockId.REASON]
        assert "not valid anymore" in message or "no longer exists" in message, (metadata, message)
    settled(app)
    assert counts(db) == before and card_of(app, lead_id).disqualified_at is None
    no_errors_logged(caplog)


def test_a_reason_that_was_not_offered_is_refused(card, db):
    app, lead_id = card
    settled(app)
    before = counts(db)
    for reason in ("hacked", "<!channel>", "budget"):  # budget is a Lost reason, not a Not-a-fit one
        _status, body = app.slack_post(form(submission(metadata=str(lead_id), reason=reason)))
        assert body["response_action"] == "errors" and BlockId.REASON in body["errors"]
    settled(app)
    assert counts(db) == before


# 3. Button values --------------------------------------------------------------------------------------------
def _notices(slack) -> list[str]:
    return [c.params["text"] for c in slack.calls_to("chat.postEphemeral")]


def test_a_tampered_lead_button_is_explained_and_changes_nothing(card, slack, db, caplog):
    app, lead_id = card
    settled(app)
    before = counts(db)
    caplog.set_level(logging.WARNING)
    values = ("abc", "9" * 30, str(2**63), "-5", "0", "1e3", "<!channel>", " 1", "")
    for action_id, value in [(ActionId.CLAIM, v) for v in values] + [(ActionId.WON, "x"), (ActionId.UNDO, "-1")]:
        slack.reset()
        assert app.slack_post(form(click(action_id, value=value)))[0] == 200
        settled(app)
        notices = slack.wait_calls("chat.postEphemeral", 1)
        assert "not valid anymore" in notices[0].params["text"], (value, notices[0].params["text"])
    after = counts(db)
    assert after["leads"] == before["leads"] and after["audit_events"] == before["audit_events"]
    assert {r.status for r in outbox_rows(db)} == {"sent"}
    assert card_of(app, lead_id).claimed_by is None
    no_errors_logged(caplog)


def test_a_tampered_snooze_choice_or_user_is_explained(card, slack, db, caplog):
    app, lead_id = card
    app.click(ActionId.CLAIM, lead_id, REP)
    settled(app)
    caplog.set_level(logging.WARNING)
    before = counts(db)
    slack.reset()
    app.slack_post(form(click(ActionId.SNOOZE, value=f"{lead_id}:forever", block_id=f"remind_actions:{lead_id}")))
    assert wait_until(lambda: len(_notices(slack)) == 1)
    assert "not valid anymore" in _notices(slack)[0]
    # a manager "picks" something that is not a Slack user
    body = payload_of(slack_requests.users_select_action(ActionId.REASSIGN, f"reassign:{lead_id}", "U1> <!channel",
                                                         MANAGER, HANDOFF))
    app.slack_post(form(body))
    assert wait_until(lambda: len(_notices(slack)) == 2)
    assert "<!channel" not in _notices(slack)[1] and "Pick a person" in _notices(slack)[1]
    settled(app)
    after = counts(db)
    assert after["audit_events"] == before["audit_events"] and card_of(app, lead_id).claimed_by == REP
    no_errors_logged(caplog)


SHARES = (
    "year:2026:2026-11-30T01:00:00+00:00",             # not a kind of report
    "month:2026-13:2026-11-30T01:00:00+00:00",         # not a month
    "week:9999-W52:2026-11-30T01:00:00+00:00",         # a week that cannot be computed
    "week:2026-w48:2026-11-30T01:00:00+00:00",         # not the label we write
    "month:2026-11:yesterday",                          # not an instant
    "month:2026-11:2026-11-30T01:00:00",                # an instant without an offset
    "month:2026-11:9999-12-31T00:00:00+00:00",          # after now: the report is not reproducible
    "month:2026-11:0001-01-01T00:00:00+14:00",          # cannot be represented
    "month",
    "",
)


def test_a_tampered_share_button_queues_nothing_that_cannot_be_sent(card, slack, db, caplog):
    app, _ = card
    settled(app)
    before = counts(db)
    caplog.set_level(logging.WARNING)
    for n, value in enumerate(SHARES, start=1):
        slack.reset()
        app.slack_post(form(click(ActionId.KPI_SHARE, value=value, user=MANAGER, block_id=BlockId.KPI_ACTIONS)))
        settled(app)
        assert wait_until(lambda: _notices(slack)), value
        assert "not valid anymore" in _notices(slack)[0], value
        assert slack.calls_to("chat.postMessage") == [], value
        rows = outbox_rows(db)
        assert [r.kind for r in rows[before["outbox"]:]] == ["notice"] * n and {r.status for r in rows} == {"sent"}
    no_errors_logged(caplog)


def test_a_genuine_share_button_still_posts(card, slack, db):
    app, _ = card
    settled(app)
    slack.reset()
    answer = app.slack_post(command("month"))[1]
    share = [e for b in answer["blocks"] if b["type"] == "actions" for e in b["elements"]][0]
    app.slack_post(form(click(ActionId.KPI_SHARE, value=share["value"], user=MANAGER, block_id=BlockId.KPI_ACTIONS)))
    post = slack.wait_calls("chat.postMessage", 1)[0]
    assert post.params["channel"] == HANDOFF and "Shared by" in json.dumps(post.params["blocks"])


def test_a_tampered_retro_button_opens_nothing(card, slack, db):
    app, _ = card
    settled(app)
    for value in ("2026-13", "0001-01", "<!channel>", "x" * 5000, ""):
        slack.reset()
        app.slack_post(form(click(ActionId.RETRO_ADD_ITEM, value=value, user=MANAGER, block_id=BlockId.KPI_ACTIONS)))
        settled(app)
        assert wait_until(lambda: _notices(slack)) and "not valid anymore" in _notices(slack)[0], value
        assert slack.calls_to("views.open") == [], value
    app.slack_post(form(click(ActionId.RETRO_ADD_ITEM, value="2026-11", user=MANAGER, block_id=BlockId.KPI_ACTIONS)))
    assert slack.wait_calls("views.open", 1)[0].params["view"]["private_metadata"] == "2026-11"


def retro_item(metadata: str, text: str, user=MANAGER) -> str:
    values = slack_requests.text_value(BlockId.ITEM, "value", text)
    return slack_requests.view_submission(CallbackId.RETRO_ITEM, metadata, user, values)


def test_retro_items_check_their_month_and_their_length(card, db):
    app, _ = card
    for metadata in ("2026-13", "0001-01", "<!channel>", ""):
        status, body = app.slack_post(retro_item(metadata, "call the webinar leads first"))
        assert body["response_action"] == "errors" and "not valid anymore" in body["errors"][BlockId.ITEM]
    status, body = app.slack_post(retro_item("2026-11", "x" * 501))
    assert body["response_action"] == "errors" and "500" in body["errors"][BlockId.ITEM]
    assert counts(db)["action_items"] == 0
    status, body = app.slack_post(retro_item("2026-11", "x" * 500))
    assert status == 200 and body in ("", None, {})
    assert counts(db)["action_items"] == 1


# 4. Free text has limits -----------------------------------------------------------------------------------
def test_a_huge_note_is_refused_with_the_limit_and_nothing_is_stored(card, slack, db, caplog):
    app, lead_id = card
    settled(app)
    before = counts(db)
    caplog.set_level(logging.WARNING)
    status, body = app.slack_post(form(submission(metadata=str(lead_id), note="n" * 200_000)))
    assert status == 200 and body["response_action"] == "errors"
    assert "1000" in body["errors"][BlockId.NOTE] or "1,000" in body["errors"][BlockId.NOTE]
    settled(app)
    assert counts(db) == before and card_of(app, lead_id).disqualified_at is None
    status, body = app.slack_post(form(submission(metadata=str(lead_id), note="n" * outcome_blocks.NOTE_MAX)))
    assert status == 200 and body in ("", None, {})
    assert card_of(app, lead_id).disqualified_at is not None
    no_errors_logged(caplog)


def _inputs(obj):
    if isinstance(obj, dict):
        if obj.get("type") == "plain_text_input":
            yield obj
        for v in obj.values():
            yield from _inputs(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _inputs(v)


def test_every_text_input_has_a_max_length():
    lead = Lead(id=7, email="a@example.com", company="ACME", name="Aiko", score=80, source="ads")
    views = [outcome_blocks.modal(o, lead, "en", ("other",)) for o in ("lost", "disqualified")]
    views.append(digest_blocks.item_modal("2026-11", "en"))
    found = [i for v in views for i in _inputs(v)]
    assert len(found) == 3 and all(0 < i.get("max_length", 0) <= 3000 for i in found)


# 2. /kpi with numbers and periods out of range ------------------------------------------------------------
OUT_OF_RANGE = (
    "week 9999-W52", "week 0001-W01", "month 0001-01", "month 9999-12", "week 2026-W99", "month ２０２６-11",
    "plan " + "9" * 400 + " 1m 0.25 0.5", "plan 12m " + "9" * 400 + " 0.25 0.5",
    "plan 12m 1m 0." + "0" * 320 + "1 0.5", "plan 12m 0.0000001 0.0001 0.0001", "plan nan 1m 0.2 0.2",
    "plan 12m 1m 1e-5 0.5", "plan 12m 1m -0.5 0.5",
    "target mqls 1e999", "target mqls -5", "target mqls " + "9" * 400, "target mqls inf",
    "target claim_sla_rate 1e-400", "target claim_sla_rate nan", "target mqls 100 0001-01",
    "target mqls 100 9999-12",
)


def test_kpi_out_of_range_gets_a_private_usage_message(card, db, caplog):
    app, _ = card
    caplog.set_level(logging.WARNING)
    for text in OUT_OF_RANGE:
        answer = kpi(app, text)
        assert "/kpi week" in answer, (text[:40], answer)  # the usage, after what was wrong
        assert len(answer) < 2000 and "9" * 100 not in answer  # what was typed is quoted back clipped
    assert "out of range" in kpi(app, "plan " + "9" * 400 + " 1m 0.25 0.5")
    assert counts(db)["kpi_targets"] == 0
    no_errors_logged(caplog)


# 5. A replayed slash command takes effect once -------------------------------------------------------------
def test_a_replayed_kpi_target_changes_nothing(card, db):
    app, _ = card
    first = command("target mqls 100")
    stamp = int(__import__("time").time())
    assert "mqls: 100" in app.slack_post(first, timestamp=stamp)[1]
    assert "mqls: 200" in kpi(app, "target mqls 200")
    status, body = app.slack_post(first, timestamp=stamp)  # the very same signed request again
    assert status == 200
    text = body if isinstance(body, str) else body["text"]
    assert "already" in text and "mqls: 200" in text
    with db.begin() as s:
        assert s.get(KpiTarget, ("2026-11", "mqls")).value == 200
    # a failed command recorded nothing, so the same words typed again (a new request) still work
    assert "has no target" in kpi(app, "target happiness 3")
    assert "mqls: 300" in kpi(app, "target mqls 300")


# 6. Outside strings are escaped everywhere they are shown ---------------------------------------------------
def test_kpi_source_escapes_lead_sources(make_app, slack, db):
    app = make_app(now=FakeClock(NOW))
    evil = "<!channel> <http://evil|click>"
    new_card(app, slack, source=evil)
    shown = kpi(app, "source")
    assert "<!channel>" not in shown and "<http://evil" not in shown
    assert "&lt;!channel&gt;" in shown


# Socket Mode: no route, so the same rule runs as Bolt middleware -------------------------------------------
def test_socket_mode_applies_the_same_shape_rule():
    from slack_bolt.request import BoltRequest

    from handlers.middleware import CheckShape, shape_problem

    good, empty = click(value="1"), _set(click(value="1"), ("actions",), [])
    assert shape_problem(good) is None and shape_problem(empty) == "block_actions without actions"
    calls = []
    for body, expected in ((good, None), (_set(submission(), ("view", "state"), None), 400)):
        req = BoltRequest(body=body, mode="socket_mode")
        resp = CheckShape().process(req=req, resp=None, next=lambda: calls.append(1))
        assert (resp.status if resp is not None else None) == expected
    assert calls == [1]


def test_a_replayed_handoff_ooo_changes_nothing(make_app, db):
    app = make_app(now=FakeClock(NOW))
    first = command("ooo until 2026-12-10", user=REP, name="/handoff")
    stamp = int(__import__("time").time())
    assert "2026-12-10" in str(app.slack_post(first, timestamp=stamp)[1])
    assert app.slack_post(command("ooo off", user=REP, name="/handoff"))[0] == 200
    status, body = app.slack_post(first, timestamp=stamp)  # the very same signed request again
    assert status == 200 and "already" in str(body)
    with db.begin() as s:
        assert s.scalars(select(OutOfOffice).where(OutOfOffice.user_id == REP)).first() is None
