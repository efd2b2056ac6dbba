"""The text catalog is complete in both languages; block builders give what we expect, by value."""
from __future__ import annotations

import re
import string
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest
from slack_sdk.models.blocks import Block

from blocks import card as card_blocks
from blocks import home as home_blocks
from blocks import outcome as outcome_blocks
from blocks import reminders as reminder_blocks
from blocks.format import duration, escape, local_time
from blocks.ids import ActionId
from blocks.texts import CATALOG, t
from models.clock import BusinessClock
from models.tables import Lead

TOKYO = ZoneInfo("Asia/Tokyo")
CLOCK = BusinessClock(TOKYO, (time(9), time(18)), frozenset(range(5)), "JP")


def fields(text: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(text) if f}


@pytest.mark.parametrize("key", sorted(CATALOG))
def test_every_text_in_both_languages_with_the_same_placeholders(key):
    entry = CATALOG[key]
    assert set(entry) == {"en", "ja"} and entry["en"].strip() and entry["ja"].strip()
    assert fields(entry["en"]) == fields(entry["ja"])


def test_no_user_facing_literal_outside_the_catalog():
    """Block builders take their words from the catalog: no quoted prose in them."""
    import ast
    import inspect

    for module in (card_blocks, outcome_blocks, reminder_blocks, home_blocks):
        tree = ast.parse(inspect.getsource(module))
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.FunctionDef)) and node.body
                      and isinstance(node.body[0], ast.Expr)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                assert not re.search(r"[A-Za-z]+ [a-z]+ [a-z]+", node.value), node.value


def lead(**kw) -> Lead:
    mql = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)  # 10:00 JST
    base = dict(id=7, email="a@example.com", name="Aiko Sato", company="Sato Kogyo", title="CTO", source="webinar",
                score=85, attributes={"visited": "pricing"}, mql_at=mql,
                claim_due=CLOCK.add_minutes(mql, 240), contact_due=CLOCK.add_minutes(mql, 540))
    base.update(kw)
    return Lead(**base)


def test_unclaimed_card():
    text, blocks = card_blocks.card(lead(), "en", CLOCK)
    assert text == "New MQL: Sato Kogyo (Aiko Sato), score 85. Claim by Tue 24 Nov 14:00 JST."
    assert blocks[0] == {"type": "header", "text": {"type": "plain_text", "text": "New MQL: Sato Kogyo", "emoji": False}}
    actions = blocks[-1]
    assert actions["type"] == "actions"
    assert [(e["action_id"], e["value"]) for e in actions["elements"]] == [(ActionId.CLAIM, "7"),
                                                                             (ActionId.DISQUALIFY, "7")]
    for b in blocks:
        Block.parse(b).validate_json()


def test_claimed_card_says_who_and_how_fast():
    claimed = lead(claimed_at=datetime(2026, 11, 24, 1, 12, tzinfo=UTC), claimed_by="UREP1")
    _, blocks = card_blocks.card(claimed, "en", CLOCK)
    assert blocks[-2]["elements"][0]["text"] == \
        ":white_check_mark: Claimed by <@UREP1> · 12 min after handoff (within SLA)"
    late = lead(claimed_at=datetime(2026, 11, 25, 1, 0, tzinfo=UTC), claimed_by="UREP1")
    _, blocks = card_blocks.card(late, "ja", CLOCK)
    assert blocks[-2]["elements"][0]["text"] == ":white_check_mark: <@UREP1> さんが担当 · 引き渡しから9時間0分(SLA超過)"


def test_formatting_helpers():
    assert escape("<!channel> & <@U1>") == "&lt;!channel&gt; &amp; &lt;@U1&gt;"
    assert duration(12.4, "en") == "12 min" and duration(125, "en") == "2 h 5 min" and duration(61, "ja") == "1時間1分"
    at = datetime(2026, 11, 24, 5, 0, tzinfo=UTC)
    assert local_time(at, TOKYO, "en") == "Tue 24 Nov 14:00 JST"
    assert local_time(at, TOKYO, "ja") == "11月24日(火) 14:00 JST"


REASONS = ("duplicate", "spam", "custom_code")


def test_reason_modals_and_submission():
    view = outcome_blocks.modal("disqualified", lead(company="<b>"), "ja", REASONS)
    assert view["callback_id"] == "lead_disqualify" and view["private_metadata"] == "7"
    assert "&lt;b&gt;" in view["blocks"][0]["text"]["text"]
    labels = [o["text"]["text"] for o in view["blocks"][1]["element"]["options"]]
    assert labels == ["重複", "スパム・虚偽", "custom_code"]  # a configured code without a label shows as given
    lost = outcome_blocks.modal("lost", lead(), "en", ("budget", "timing"))
    assert lost["callback_id"] == "lead_lost" and lost["title"]["text"] == "Lost"
    values = {"reason": {"value": {"selected_option": {"value": "duplicate"}}}, "note": {"value": {"value": "  "}}}
    assert outcome_blocks.read_submission(values, REASONS) == ("duplicate", None)
    values["reason"]["value"]["selected_option"]["value"] = "made-up"
    assert outcome_blocks.read_submission(values, REASONS)[0] is None


def test_owner_controls_follow_the_lead():
    claimed = lead(claimed_at=datetime(2026, 11, 24, 2, 0, tzinfo=UTC), claimed_by="UREP1")
    ids = [e["action_id"] for e in card_blocks.owner_controls(claimed, "en")]
    assert ids == [ActionId.CONTACTED, ActionId.SQL, ActionId.WON, ActionId.LOST, ActionId.DISQUALIFY]
    claimed.contacted_at = claimed.sql_at = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
    ids = [e["action_id"] for e in card_blocks.owner_controls(claimed, "en")]
    assert ids == [ActionId.WON, ActionId.LOST, ActionId.DISQUALIFY, ActionId.UNDO]
    claimed.lost_at, claimed.lost_reason = claimed.sql_at, "budget"
    assert [e["action_id"] for e in card_blocks.owner_controls(claimed, "en")] == [ActionId.UNDO]
    _text, blocks = card_blocks.card(claimed, "en", CLOCK)
    status = " ".join(e["text"] for e in blocks[-2]["elements"])
    assert "Lost" in status and "No budget" in status and "SQL since" in status  # the history stays visible


def test_t_formats_and_falls_back():
    assert t("notice.already_claimed", "ja", user="U1") == "このリードはすでに <@U1> さんが担当しています。"
    assert t("api.body_shape", "en") == 'expected a lead object or {"leads": [...]}'
