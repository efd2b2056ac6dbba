"""SLA enforcement end to end: the sweep at explicit instants, signed clicks, the stand-in's record."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

from sqlalchemy import func, select

from blocks.ids import ActionId
from jobs.scheduler import sla_sweep
from models.tables import AuditEvent, Lead, OutboxMessage, SlaTimer
from standin import slack_requests
from tests.conftest import HANDOFF, MANAGER, ROOT, SECRET, FakeClock, jst, make_settings, wait_until

REP, REP2, REP3 = "UREP1", "UREP2", "UREP3"


def start(make_app, at, **settings):
    clock = FakeClock(at)
    app = make_app(now=clock, **settings)
    return app, clock


def new_lead(app, slack, email="lead@example.com", score=90, **fields):
    status, body = app.post_leads({"email": email, "score": score, "company": "Acme", "name": "Aya", **fields})
    assert status in (200, 201), body
    app.drain()
    return body["id"]


def sweep(app, clock, at):
    clock.set(at)
    res = sla_sweep(app.runtime.services)
    app.drain()
    return res


def posts(slack, channel=None):
    return [c for c in slack.calls_to("chat.postMessage") if channel is None or c.params["channel"] == channel]


def thread_replies(slack):
    return [c for c in posts(slack, HANDOFF) if c.params.get("thread_ts")]


def text_of(call) -> str:
    return call.params["text"] + json.dumps(call.params.get("blocks"), ensure_ascii=False)


def lead(db, lead_id) -> Lead:
    with db.begin() as s:
        return s.get(Lead, lead_id)


def audits(db, action):
    with db.begin() as s:
        return s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action))


def timers(db, lead_id):
    with db.begin() as s:
        return {t.kind: (t.step, t.due_at) for t in s.scalars(select(SlaTimer).where(SlaTimer.lead_id == lead_id))}


def click(app, action_id, value, user, channel=HANDOFF):
    status, _ = app.slack_post(slack_requests.block_action(action_id, str(value), user, channel))
    assert status == 200


def test_the_claim_ladder_step_by_step(make_app, slack, db):
    app, clock = start(make_app, jst(2026, 11, 30, 10, 0))  # a Monday
    lead_id = new_lead(app, slack)
    card_ts = lead(db, lead_id).card_ts

    assert sweep(app, clock, jst(2026, 11, 30, 11, 59)).sent == 0
    sweep(app, clock, jst(2026, 11, 30, 12, 0))
    replies = thread_replies(slack)
    assert len(replies) == 1 and replies[0].params["thread_ts"] == card_ts
    assert "2 h 0 min left to claim" in replies[0].params["text"]
    sweep(app, clock, jst(2026, 11, 30, 12, 30))  # run again: nothing new
    assert len(thread_replies(slack)) == 1

    sweep(app, clock, jst(2026, 11, 30, 13, 12))
    assert "48 min left" in thread_replies(slack)[-1].params["text"]
    sweep(app, clock, jst(2026, 11, 30, 14, 0))
    due = thread_replies(slack)[-1]
    assert "deadline" in due.params["text"] and f"<@{MANAGER}>" in due.params["text"]
    sweep(app, clock, jst(2026, 11, 30, 15, 0))
    dms = posts(slack, MANAGER)
    assert len(dms) == 1
    select_el = [e for b in dms[0].params["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert select_el[0]["type"] == "users_select" and select_el[0]["action_id"] == ActionId.REASSIGN
    assert len(thread_replies(slack)) == 3 and timers(db, lead_id) == {}
    assert audits(db, "reminded") == 2 and audits(db, "claim_overdue") == 1 and audits(db, "escalated") == 1
    sweep(app, clock, jst(2026, 12, 1, 10, 0))
    assert len(posts(slack)) == 5  # the card, 3 replies, 1 DM: nothing more, ever


def test_a_week_of_downtime_sends_only_the_latest_step(make_app, slack, db):
    app, clock = start(make_app, jst(2026, 11, 30, 10, 0))
    new_lead(app, slack)
    res = sweep(app, clock, jst(2026, 12, 7, 9, 30))
    assert res.actions == {"claim_escalate": 1}
    assert thread_replies(slack) == [] and len(posts(slack, MANAGER)) == 1


def test_nothing_reaches_people_at_night_and_the_morning_gets_it_once(make_app, slack, db):
    app, clock = start(make_app, jst(2026, 11, 30, 15, 0))
    lead_id = new_lead(app, slack)  # 50 % at 17:00, 80 % at 09:12 Tuesday
    assert sweep(app, clock, jst(2026, 11, 30, 22, 0)).sent == 0
    assert timers(db, lead_id)["claim"][1] == jst(2026, 12, 1, 9, 0)  # parked until the opening
    assert sweep(app, clock, jst(2026, 12, 1, 3, 0)).looked_at == 0  # not even looked at at 3 am
    sweep(app, clock, jst(2026, 12, 1, 9, 0))
    sweep(app, clock, jst(2026, 12, 1, 9, 1))
    replies = thread_replies(slack)
    assert len(replies) == 1 and "left to claim" in replies[0].params["text"]


def test_the_weekend_and_the_jp_holiday_stop_the_ladder(make_app, slack, db):
    app, clock = start(make_app, jst(2026, 11, 20, 17, 0))  # Friday; Monday 23rd is a holiday
    lead_id = new_lead(app, slack)
    assert lead(db, lead_id).claim_due == jst(2026, 11, 24, 12, 0)
    for at in (jst(2026, 11, 21, 11, 0), jst(2026, 11, 22, 15, 0), jst(2026, 11, 23, 10, 0)):
        assert sweep(app, clock, at).sent == 0
    sweep(app, clock, jst(2026, 11, 24, 10, 0))
    assert len(thread_replies(slack)) == 1 and "2 h 0 min left" in thread_replies(slack)[0].params["text"]


def test_a_claim_stops_the_claim_ladder_and_starts_the_contact_ladder(make_app, slack, db):
    app, clock = start(make_app, jst(2026, 11, 30, 10, 0))
    lead_id = new_lead(app, slack)
    clock.set(jst(2026, 11, 30, 10, 30))
    click(app, ActionId.CLAIM, lead_id, REP)
    assert wait_until(lambda: lead(db, lead_id).claimed_by == REP)
    assert set(wait_until(lambda: timers(db, lead_id))) == {"contact"}
    assert sweep(app, clock, jst(2026, 11, 30, 14, 0)).sent == 0  # the claim deadline: no claim nag
    sweep(app, clock, jst(2026, 11, 30, 14, 30))
    dm = posts(slack, REP)
    assert len(dm) == 1 and "left to log first contact" in dm[0].params["text"]
    actions = [e["action_id"] for b in dm[0].params["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert actions == [ActionId.CONTACTED, ActionId.SNOOZE, ActionId.SNOOZE]
    assert thread_replies(slack) == []


def test_snooze_repeats_once_and_is_bounded(make_app, slack, db):
    app, clock = start(make_app, jst(2026, 11, 30, 10, 0))
    lead_id = new_lead(app, slack)
    click(app, ActionId.CLAIM, lead_id, REP)
    assert wait_until(lambda: "contact" in timers(db, lead_id))
    sweep(app, clock, jst(2026, 11, 30, 14, 30))
    assert len(posts(slack, REP)) == 1

    clock.set(jst(2026, 11, 30, 14, 40))
    click(app, ActionId.SNOOZE, f"{lead_id}:1h", REP, channel="DREP1")
    assert wait_until(lambda: timers(db, lead_id)["contact"][1] == jst(2026, 11, 30, 15, 40))
    assert sweep(app, clock, jst(2026, 11, 30, 15, 39)).sent == 0
    sweep(app, clock, jst(2026, 11, 30, 15, 40))
    again = posts(slack, REP)
    assert len(again) == 2 and "Snoozed reminder" in again[1].params["text"]
    sweep(app, clock, jst(2026, 11, 30, 16, 0))
    assert len(posts(slack, REP)) == 2

    clock.set(jst(2026, 11, 30, 16, 10))
    click(app, ActionId.SNOOZE, f"{lead_id}:tomorrow", REP, channel="DREP1")
    assert wait_until(lambda: timers(db, lead_id)["contact"][1] == jst(2026, 12, 1, 9, 0))
    click(app, ActionId.SNOOZE, f"{lead_id}:1h", REP, channel="DREP1")  # a third: over the limit of 2
    notices = slack.wait_calls("chat.postEphemeral", 3)
    # the second snooze's own notice is queued after its commit, so it may arrive after the refusal
    assert any("already snoozed this lead 2 times" in n.params["text"] for n in notices)
    assert timers(db, lead_id)["contact"][1] == jst(2026, 12, 1, 9, 0) and audits(db, "snoozed") == 2
    # the held 80 % step goes at the morning opening; the deadline then reaches the managers
    sweep(app, clock, jst(2026, 12, 1, 9, 0))
    assert "left to log first contact" in posts(slack, REP)[-1].params["text"] and len(posts(slack, REP)) == 3
    sweep(app, clock, jst(2026, 12, 1, 10, 0))
    assert "logged no contact" in posts(slack, MANAGER)[-1].params["text"]


def test_someone_else_cannot_snooze_or_log_contact(make_app, slack, db):
    app, _clock = start(make_app, jst(2026, 11, 30, 10, 0))
    lead_id = new_lead(app, slack)
    click(app, ActionId.CLAIM, lead_id, REP)
    assert wait_until(lambda: "contact" in timers(db, lead_id))
    click(app, ActionId.SNOOZE, lead_id, REP2)
    click(app, ActionId.CONTACTED, lead_id, REP2)
    notices = slack.wait_calls("chat.postEphemeral", 2)
    assert all("Only the lead's owner" in n.params["text"] for n in notices)
    assert lead(db, lead_id).contacted_at is None and audits(db, "snoozed") == 0


def test_logging_contact_stops_the_contact_ladder_and_starts_the_outcome_reminder(make_app, slack, db):
    app, clock = start(make_app, jst(2026, 11, 30, 10, 0))
    lead_id = new_lead(app, slack)
    click(app, ActionId.CLAIM, lead_id, REP)
    assert wait_until(lambda: "contact" in timers(db, lead_id))
    clock.set(jst(2026, 11, 30, 11, 0))
    click(app, ActionId.CONTACTED, lead_id, REP, channel="DREP1")
    assert wait_until(lambda: "outcome" in timers(db, lead_id))
    assert set(timers(db, lead_id)) == {"outcome"}
    assert "First contact logged" in slack.wait_calls("chat.postEphemeral", 1)[0].params["text"]
    click(app, ActionId.CONTACTED, lead_id, REP, channel="DREP1")  # a double click
    notices = slack.wait_calls("chat.postEphemeral", 2)
    assert "already logged" in notices[-1].params["text"] and audits(db, "contacted") == 1
    assert sweep(app, clock, jst(2026, 12, 1, 10, 0)).sent == 0  # contact deadline: nothing, it is done
    assert sweep(app, clock, jst(2026, 12, 7, 10, 59)).sent == 0
    sweep(app, clock, jst(2026, 12, 7, 11, 0))  # five business days later
    dm = posts(slack, REP)
    assert len(dm) == 1 and "no outcome is recorded" in dm[0].params["text"]
    assert wait_until(lambda: any("Contact logged" in json.dumps(c.params["blocks"]) for c in slack.calls_to("chat.update")))


def test_a_reminder_queued_while_slack_fails_arrives_once(make_app, slack, db):
    app, clock = start(make_app, jst(2026, 11, 30, 10, 0))
    app.runtime.services.sender.backoff_base = 0.05
    new_lead(app, slack)
    slack.fail_next(2, 500, method="chat.postMessage")
    slack.fail_next(1, 429, method="chat.postMessage", retry_after=1)
    clock.set(jst(2026, 11, 30, 12, 0))
    assert sla_sweep(app.runtime.services).sent == 1
    clock.run()  # the retries need time to pass
    app.drain(15)
    assert len(thread_replies(slack)) == 1
    sweep(app, clock, jst(2026, 11, 30, 12, 1))
    assert len(thread_replies(slack)) == 1


def test_a_reminder_that_went_stale_while_queued_is_never_sent(make_app, slack, db):
    app, clock = start(make_app, jst(2026, 11, 30, 10, 0))
    lead_id = new_lead(app, slack)
    slack.fail_next(1, 500, method="chat.postMessage")
    app.runtime.services.sender.backoff_base = 1.0
    clock.set(jst(2026, 11, 30, 12, 0))
    sla_sweep(app.runtime.services)  # queued; the first attempt fails
    clock.run()
    slack.wait_for(lambda calls: True, 0.5)
    click(app, ActionId.CLAIM, lead_id, REP)
    assert wait_until(lambda: lead(db, lead_id).claimed_by == REP)
    app.drain(10)
    assert thread_replies(slack) == []
    with db.begin() as s:
        row = s.scalars(select(OutboxMessage).where(OutboxMessage.kind == "reminder")).one()
        assert row.status == "sent" and "no longer relevant" in row.last_error


def test_two_sweeps_at_once_send_each_message_once(make_app, slack, db):
    app, clock = start(make_app, jst(2026, 11, 30, 10, 0))
    for i in range(30):
        new_lead(app, slack, email=f"l{i}@example.com")
    clock.set(jst(2026, 11, 30, 13, 12))
    results = []
    threads = [threading.Thread(target=lambda: results.append(sla_sweep(app.runtime.services)))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    app.drain()
    assert sum(r.sent for r in results) == 30 and sum(r.errors for r in results) == 0
    assert len(thread_replies(slack)) == 30  # the 80 % step, once each; never the stale 50 %


def test_two_sweep_processes_send_each_message_once(make_app, slack, db):
    app, _clock = start(make_app, jst(2026, 11, 30, 10, 0))
    for i in range(40):
        new_lead(app, slack, email=f"p{i}@example.com")
    env = {**os.environ, "SLACK_BOT_TOKEN": "xoxb-test", "SLACK_SIGNING_SECRET": SECRET,
           "SLACK_API_URL": slack.url, "DATABASE_URL": db.url, "HANDOFF_CHANNEL": HANDOFF,
           "MARKETING_CHANNEL": "C0MARKETING", "MANAGER_IDS": MANAGER, "OUTBOX_CHANNEL_RATE": "1000",
           "OUTBOX_CHANNEL_BURST": "1000"}
    cmd = [sys.executable, "bot.py", "run-job", "sla-sweep", "--at", "2026-11-30T15:00:00+09:00"]
    procs = [subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert len(posts(slack, MANAGER)) == 40  # the escalation step only, once per lead
    assert thread_replies(slack) == []


def test_reassign_is_for_managers(make_app, slack, db):
    app, clock = start(make_app, jst(2026, 11, 30, 10, 0))
    lead_id = new_lead(app, slack)
    sweep(app, clock, jst(2026, 11, 30, 15, 0))
    pick = slack_requests.users_select_action(ActionId.REASSIGN, f"reassign:{lead_id}", REP2, REP, "DREP1")
    assert app.slack_post(pick)[0] == 200
    notice = slack.wait_calls("chat.postEphemeral", 1)[0]
    assert "Only sales managers" in notice.params["text"] and lead(db, lead_id).claimed_by is None

    pick = slack_requests.users_select_action(ActionId.REASSIGN, f"reassign:{lead_id}", REP2, MANAGER, "DMANAGER")
    assert app.slack_post(pick)[0] == 200
    assert wait_until(lambda: lead(db, lead_id).claimed_by == REP2)
    app.drain()
    assert "gave you" in posts(slack, REP2)[0].params["text"]
    assert set(timers(db, lead_id)) == {"contact"} and audits(db, "reassigned") == 1
    assert any(f"<@{REP2}>" in json.dumps(c.params["blocks"]) for c in slack.calls_to("chat.update"))


def test_round_robin_skips_the_away_and_returns_unclaimed_offers(make_app, slack, db):
    rr = dict(ASSIGNMENT="round-robin", SALES_REP_IDS=f"{REP},{REP2},{REP3}")
    app, clock = start(make_app, jst(2026, 11, 30, 10, 0), **rr)
    status, _ = app.slack_post(slack_requests.slash_command("/handoff", f"ooo <@{REP2}|rep2> until 2026-12-04",
                                                            MANAGER, HANDOFF))
    assert status == 200
    ids = [new_lead(app, slack, email=f"rr{i}@example.com") for i in range(2)]
    assert [lead(db, i).offered_to for i in ids] == [REP, REP3]
    assert "offered to you first" in posts(slack, REP)[0].params["text"]
    click(app, ActionId.CLAIM, ids[0], REP2)  # not theirs while the offer runs
    assert "offered first to" in slack.wait_calls("chat.postEphemeral", 1)[0].params["text"]
    assert lead(db, ids[0]).claimed_by is None

    # a restart keeps the rotation: the next lead goes to REP (REP2 still away)
    app2, _ = start(make_app, jst(2026, 11, 30, 10, 5), **rr)
    third = new_lead(app2, slack, email="rr3@example.com")
    assert lead(db, third).offered_to == REP

    sweep(app, clock, jst(2026, 11, 30, 10, 35))  # the 30-minute windows are over
    assert all(lead(db, i).offered_to is None for i in ids)
    assert sum("did not claim this lead in time" in r.params["text"] for r in thread_replies(slack)) == 3
    click(app, ActionId.CLAIM, ids[0], REP2)
    assert wait_until(lambda: lead(db, ids[0]).claimed_by == REP2)


def test_round_robin_with_everyone_away_goes_to_the_channel(make_app, slack, db):
    app, _clock = start(make_app, jst(2026, 11, 30, 10, 0), ASSIGNMENT="round-robin", SALES_REP_IDS=REP)
    app.slack_post(slack_requests.slash_command("/handoff", "ooo until 2026-12-01", REP, HANDOFF))
    lead_id = new_lead(app, slack)
    assert lead(db, lead_id).offered_to is None and audits(db, "offer_skipped") == 1


def test_handoff_command_answers(make_app, slack, db):
    app, _ = start(make_app, jst(2026, 11, 30, 10, 0))

    def say(text, user=REP):
        status, body = app.slack_post(slack_requests.slash_command("/handoff", text, user, HANDOFF))
        assert status == 200
        return body["text"] if isinstance(body, dict) else body

    assert "Usage" in say("")
    assert "not a date" in say("ooo until tomorrow")
    assert "already past" in say("ooo until 2026-11-01")
    assert "Only sales managers" in say(f"ooo <@{REP2}> until 2026-12-04")
    assert "through 2026-12-04" in say("ooo until 2026-12-04")
    assert f"<@{REP}>" in say("ooo")
    assert "back in the office" in say("ooo off")
    assert "Nobody is out of office" in say("ooo")
    assert "did not understand" in say("vacation")


def test_run_job_sla_sweep_from_the_command_line(slack, db, monkeypatch):
    from bot import main

    settings = make_settings(db.url, slack.url)
    from runtime import build_runtime

    rt = build_runtime(settings, db=db, now=lambda: jst(2026, 11, 30, 10, 0))
    from models.intake import ingest
    from models.leads import LeadIn

    with db.begin() as s:
        ingest(s, [LeadIn(email="cli@example.com", score=95)], jst(2026, 11, 30, 10, 0), rt.services.policy)
    rt.services.sender.drain(10)
    env = dict(SLACK_BOT_TOKEN="xoxb-test", SLACK_API_URL=slack.url, DATABASE_URL=db.url,
               HANDOFF_CHANNEL=HANDOFF, MARKETING_CHANNEL="C0MARKETING", MANAGER_IDS=MANAGER)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert main(["run-job", "sla-sweep", "--at", "2026-11-30T12:00:00+09:00"]) == 0
    assert len(thread_replies(slack)) == 1
