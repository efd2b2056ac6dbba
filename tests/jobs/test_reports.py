"""/kpi in Slack, the weekly digest with its chart, and the monthly retro, end to end."""
from __future__ import annotations

import json
import threading

from blocks.ids import ActionId, BlockId, CallbackId
from jobs import reports
from jobs.scheduler import monthly_retro, weekly_digest
from models.tables import ActionItem, KpiTarget, Lead
from standin import slack_requests
from tests.conftest import HANDOFF, MANAGER, TOKYO_CLOCK, FakeClock, add_lead, jst

REP = "UREP1"


def kpi(app, text, user=MANAGER):
    status, body = app.slack_post(slack_requests.slash_command("/kpi", text, user, HANDOFF))
    assert status == 200
    return body if isinstance(body, dict) else {"text": body}  # Bolt answers a text-only ack as plain text


def seeded(db):
    """A week (2026-W48) of handoffs with known numbers."""
    a = jst(2026, 11, 24, 10)
    add_lead(db, mql=a, score=85, source="webinar", claimed_at=jst(2026, 11, 24, 10, 30), claimed_by=REP,
        contacted_at=jst(2026, 11, 24, 12), sql_at=jst(2026, 11, 26, 10))
    add_lead(db, mql=a, score=64, source="ads", claimed_at=jst(2026, 11, 24, 17), claimed_by="UREP2",
        contacted_at=jst(2026, 11, 25, 11), lost_at=jst(2026, 11, 27, 15), lost_reason="budget")
    add_lead(db, mql=jst(2026, 11, 25, 9), score=72, source="ads")
    add_lead(db, mql=jst(2026, 11, 17, 10), score=90, source="webinar", claimed_at=jst(2026, 11, 17, 10, 5),
        claimed_by=REP)  # the week before


def test_kpi_week_report_and_share(make_app, slack, db):
    seeded(db)
    app = make_app(now=FakeClock(jst(2026, 11, 30, 8, 0)))
    body = kpi(app, "week 2026-W48")
    text = json.dumps(body["blocks"], ensure_ascii=False)
    assert "2026-W48" in text and "MQLs *3*" in text and "(+200% vs previous)" in text
    assert "No budget: 1" in text and "<@UREP1>" in text and "Unclaimed past the deadline now: *1*" in text
    share = [e for b in body["blocks"] if b["type"] == "actions" for e in b["elements"]][0]
    assert share["action_id"] == ActionId.KPI_SHARE
    app.slack_post(slack_requests.block_action(ActionId.KPI_SHARE, share["value"], MANAGER, HANDOFF,
                                               block_id=BlockId.KPI_ACTIONS))
    post = slack.wait_calls("chat.postMessage", 1)[0]
    assert post.params["channel"] == HANDOFF and "MQLs *3*" in json.dumps(post.params["blocks"], ensure_ascii=False)
    assert "Shared by <@UMANAGER1>" in json.dumps(post.params["blocks"])


def test_kpi_subcommands_and_refusals(make_app, slack, db):
    seeded(db)
    app = make_app(now=FakeClock(jst(2026, 11, 30, 8, 0)))
    assert "for sales managers" in kpi(app, "week", user=REP)["text"]
    assert "`2026-W60` is not a week" in kpi(app, "week 2026-W60")["text"]
    assert "I did not understand `weak`" in kpi(app, "weak")["text"]
    rep = json.dumps(kpi(app, f"rep <@{REP}|aya>")["blocks"])
    assert "<@UREP1> this month: 2 claimed, 2 within SLA" in rep
    source = json.dumps(kpi(app, "source")["blocks"])
    assert "webinar" in source and "MQL quality by source" in source
    plan = kpi(app, "plan 12m 1m 0.25 0.5")["text"]
    assert "*12* deals" in plan and "*48* SQLs" in plan and "*96* MQLs" in plan
    assert "last 90 days" not in plan
    actual = kpi(app, "plan 12m 1m 0.25")["text"]  # MQL→SQL from the last 90 days: 1 SQL of 4 MQLs
    assert "*192* MQLs" in actual and "last 90 days" in actual
    assert "not an amount" in kpi(app, "plan lots 1m")["text"]
    assert "Targets for 2026-11" in kpi(app, "target mqls 120")["text"]
    listing = kpi(app, "target claim_sla_rate 90%")["text"]
    assert "claim_sla_rate: 90.0%" in listing and "mqls: 120" in listing
    assert "has no target" in kpi(app, "target happiness 3")["text"]
    with db.begin() as s:
        assert s.get(KpiTarget, ("2026-11", "claim_sla_rate")).value == 0.9


def test_weekly_digest_posts_once_with_its_chart(make_app, slack, db):
    seeded(db)
    clock = FakeClock(jst(2026, 11, 30, 8, 59))
    app = make_app(now=clock)
    services = app.runtime.services
    assert reports.digest_due(clock(), TOKYO_CLOCK).period.label == "2026-W47"  # W48's is due at 09:00
    clock.set(jst(2026, 11, 30, 9, 0))
    results = []
    threads = [threading.Thread(target=lambda: results.append(weekly_digest(services))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False, False, True]
    assert weekly_digest(services) is False  # a re-run
    app.drain()
    posts = slack.calls_to("chat.postMessage")
    assert len(posts) == 1
    text = json.dumps(posts[0].params["blocks"], ensure_ascii=False)
    assert "Weekly handoff digest — 2026-W48" in text and "Overdue now" in text and "No budget" in text
    assert len(slack.files) == 1 and slack.files[0]["bytes"][:8] == b"\x89PNG\r\n\x1a\n"
    assert slack.files[0]["channel"] == HANDOFF and slack.files[0]["title"] == "handoff-2026-W48.png"
    assert slack.calls_to("files.getUploadURLExternal") and slack.calls_to("files.completeUploadExternal")


def test_a_digest_missed_during_downtime_goes_once_for_its_week(make_app, slack, db):
    app = make_app(now=FakeClock(jst(2026, 12, 2, 15, 0)))  # back on Wednesday
    assert weekly_digest(app.runtime.services) is True
    app.drain()
    assert "2026-W48" in slack.calls_to("chat.postMessage")[0].params["text"]
    assert weekly_digest(app.runtime.services) is False


def test_monthly_retro_once_with_targets_items_and_threshold_advice(make_app, slack, db):
    # November: the 60-69 band converts far worse than the rest
    for _ in range(12):
        add_lead(db, mql=jst(2026, 11, 10, 10), score=62, source="ads", claimed_at=jst(2026, 11, 10, 10, 20),
            claimed_by=REP)
    for _ in range(10):
        add_lead(db, mql=jst(2026, 11, 11, 10), score=88, source="webinar", claimed_at=jst(2026, 11, 11, 10, 20),
            claimed_by=REP, contacted_at=jst(2026, 11, 11, 11), sql_at=jst(2026, 11, 12, 11))
    with db.begin() as s:
        s.add(KpiTarget(month="2026-11", metric="mqls", value=20, set_by=MANAGER, set_at=jst(2026, 11, 1)))
        s.add(ActionItem(retro_month="2026-10", text="Call webinar leads within 1 h", added_by=MANAGER,
                         added_at=jst(2026, 11, 2, 10)))
    clock = FakeClock(jst(2026, 12, 1, 9, 59))  # Tuesday 1 Dec is the first business day
    app = make_app(now=clock)
    services = app.runtime.services
    assert reports.retro_due(clock(), TOKYO_CLOCK).period.label == "2026-10"
    clock.set(jst(2026, 12, 1, 10, 0))
    assert monthly_retro(services) is True and monthly_retro(services) is False
    app.drain()
    post = slack.calls_to("chat.postMessage")[0]
    text = json.dumps(post.params["blocks"], ensure_ascii=False)
    assert "Monthly handoff retro — 2026-11" in text
    assert ":white_check_mark: mqls: 22 (target 20)" in text
    assert "Call webinar leads within 1 h" in text
    assert "consider raising MQL_SCORE_THRESHOLD from 60 to 70" in text and "60-69" in text
    assert "Best source: webinar" in text and "Weakest source: ads" in text

    add_button = [e for b in post.params["blocks"] if b["type"] == "actions" for e in b["elements"]][0]
    assert add_button["action_id"] == ActionId.RETRO_ADD_ITEM and add_button["value"] == "2026-11"
    app.slack_post(slack_requests.block_action(ActionId.RETRO_ADD_ITEM, "2026-11", MANAGER, HANDOFF))
    view = slack.wait_calls("views.open", 1)[0].params["view"]
    assert view["callback_id"] == CallbackId.RETRO_ITEM
    values = slack_requests.text_value(BlockId.ITEM, "value", "Raise the threshold to 70 for a month")
    status, body = app.slack_post(slack_requests.view_submission(CallbackId.RETRO_ITEM, "2026-11", MANAGER, values))
    assert status == 200
    empty = slack_requests.text_value(BlockId.ITEM, "value", "  ")
    status, body = app.slack_post(slack_requests.view_submission(CallbackId.RETRO_ITEM, "2026-11", MANAGER, empty))
    assert body["response_action"] == "errors"
    with db.begin() as s:
        assert [i.text for i in s.query(ActionItem).filter_by(retro_month="2026-11")] == [
            "Raise the threshold to 70 for a month"]


def test_run_job_weekly_digest_from_the_command_line(slack, db, monkeypatch):
    from bot import main

    for k, v in dict(SLACK_BOT_TOKEN="xoxb-test", SLACK_API_URL=slack.url, DATABASE_URL=db.url,
                     HANDOFF_CHANNEL=HANDOFF, MARKETING_CHANNEL="C0MARKETING").items():
        monkeypatch.setenv(k, v)
    assert main(["run-job", "weekly-digest", "--at", "2026-11-30T09:00:00+09:00"]) == 0
    assert main(["run-job", "weekly-digest", "--at", "2026-11-30T10:00:00+09:00"]) == 0
    assert len(slack.calls_to("chat.postMessage")) == 1 and len(slack.files) == 1
    assert main(["run-job", "monthly-retro", "--at", "2026-12-01T10:00:00+09:00"]) == 0
    assert "2026-11" in slack.calls_to("chat.postMessage")[-1].params["text"]
    with db.begin() as s:
        assert s.query(Lead).count() == 0
