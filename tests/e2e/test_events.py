"""Events out, end to end (docs/events.md): signed requests to two receivers that verify them with the
Standard Webhooks library, every change in order, retries on the schedule, one endpoint down never in the way."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from blocks.ids import ActionId, BlockId
from jobs.scheduler import sla_sweep
from models import events
from models.tables import Event, EventDelivery, Lead
from standin import slack_requests
from tests.conftest import EVENT_SECRET, HANDOFF, MANAGER, FakeClock, jst, wait_until
from tests.e2e.test_outcomes import submit

REP = "UREP1"


def start(make_app, receivers, at=None, **settings):
    clock = FakeClock(at or jst(2026, 11, 30, 10, 0))
    urls = ",".join(r.url for r in receivers)
    app = make_app(now=clock, EVENT_WEBHOOK_URLS=urls, EVENT_WEBHOOK_SECRET=EVENT_SECRET, **settings)
    return app, clock


def new_mql(app, email="ev@example.com", **fields) -> int:
    status, body = app.post_leads({"email": email, "score": 85, "name": "Aya", "company": "Acme", **fields})
    assert status == 201, body
    app.drain()
    return body["id"]


def click(app, action_id, lead_id, user=REP):
    status, _ = app.slack_post(slack_requests.block_action(action_id, str(lead_id), user, HANDOFF))
    assert status == 200


def types(receiver, lead_id=None) -> list[str]:
    return [d.type for d in receiver.events() if lead_id is None or d.body["data"]["lead"]["id"] == lead_id]


def deliveries(db) -> list[EventDelivery]:
    with db.begin() as s:
        return list(s.scalars(select(EventDelivery).order_by(EventDelivery.id)))


def healthz(app) -> dict:
    status, body = app.request("/healthz", method="GET")
    assert status == 200
    return body


def test_every_change_reaches_every_endpoint_signed_and_in_order(make_app, receivers, slack, db):
    a, b = receivers
    app, clock = start(make_app, receivers)
    lead_id = new_mql(app)
    clock.set(jst(2026, 11, 30, 10, 20))
    click(app, ActionId.CLAIM, lead_id)
    assert wait_until(lambda: db_lead(db, lead_id).claimed_by == REP)
    clock.set(jst(2026, 12, 1, 16, 0))
    status, body = submit(app, "lead_lost", lead_id, REP, reason="budget", note="froze spending until April")
    assert status == 200 and not body
    for r in receivers:
        r.wait_count(3)
    assert types(a) == types(b) == ["lead.mql", "lead.claimed", "lead.lost"]
    assert a.ids() == b.ids()  # one id per event, the same at every endpoint
    assert not a.rejected and not b.rejected  # every request verified with the receiver's library

    mql, claimed, lost = a.events()
    assert mql.body["timestamp"] == "2026-11-30T01:00:00Z" and mql.body["data"]["actor"] is None
    assert mql.body["data"]["lead"]["status"] == "mql" and mql.body["data"]["lead"]["card_url"] is None
    assert claimed.body["data"]["actor"] == REP and claimed.body["data"]["lead"]["owner"] == REP
    assert claimed.body["data"]["lead"]["card_url"].startswith("https://handoff-demo.slack.invalid/archives/C0HANDOFF/p")
    data = lost.body["data"]
    assert data["reason"] == "budget" and data["note"] == "froze spending until April" and data["actor"] == REP
    assert data["lead"]["status"] == "lost" and data["lead"]["lost_reason"] == "budget"
    assert data["lead"]["lost_at"] == "2026-12-01T07:00:00Z" and data["lead"]["email"] == "ev@example.com"
    assert set(data["lead"]) == {"id", "external_id", "email", "name", "company", "title", "source", "score",
                                 "status", "owner", "team", "qualified_by", "mql_at", "claim_due", "claimed_at",
                                 "contacted_at", "sql_at", "won_at", "lost_at", "lost_reason", "disqualified_at",
                                 "disqualify_reason", "card_url"}
    headers = lost.headers
    assert headers["content-type"] == "application/json" and headers["webhook-id"] == lost.id
    assert headers["webhook-signature"].startswith("v1,") and headers["webhook-timestamp"].isdigit()
    assert wait_until(lambda: healthz(app)["events_pending"] == 0)  # settled once the answers are in
    assert healthz(app)["events_failed"] == 0


def db_lead(db, lead_id) -> Lead:
    with db.begin() as s:
        return s.get(Lead, lead_id)


def test_implied_steps_undo_and_quality_are_events_too(make_app, receivers, slack, db):
    a, _ = receivers
    app, _clock = start(make_app, receivers[:1])
    lead_id = new_mql(app)
    click(app, ActionId.CLAIM, lead_id)
    assert wait_until(lambda: db_lead(db, lead_id).claimed_at is not None)
    click(app, ActionId.WON, lead_id)
    assert wait_until(lambda: db_lead(db, lead_id).won_at is not None)
    click(app, ActionId.UNDO, lead_id)
    assert wait_until(lambda: db_lead(db, lead_id).won_at is None)
    click(app, ActionId.QUALITY_GOOD, lead_id)
    a.wait_count(7)
    assert types(a) == ["lead.mql", "lead.claimed", "lead.contacted", "lead.sql", "lead.won", "lead.reopened",
                        "lead.quality_rated"]
    reopened, rated = a.events()[-2:]
    assert reopened.body["data"]["undone"] == "won" and reopened.body["data"]["lead"]["status"] == "sql"
    assert rated.body["data"]["reason"] == "sales_ready"


def test_not_a_fit_from_an_unclaimed_card_and_a_managers_reassign(make_app, receivers, slack, db):
    a, _ = receivers
    app, _clock = start(make_app, receivers[:1])
    first, second = new_mql(app, "one@example.com"), new_mql(app, "two@example.com")
    status, _ = submit(app, "lead_disqualify", first, REP, reason="spam", note=None)
    assert status == 200
    status, _ = app.slack_post(slack_requests.users_select_action(
        ActionId.REASSIGN, f"{BlockId.REASSIGN}:{second}", "UREP2", MANAGER, MANAGER))
    assert status == 200
    a.wait_count(6)
    assert types(a, first) == ["lead.mql", "lead.claimed", "lead.disqualified"]
    assert types(a, second) == ["lead.mql", "lead.claimed", "lead.reassigned"]
    reassigned = a.by_type("lead.reassigned")[0].body["data"]
    assert reassigned["actor"] == MANAGER and reassigned["previous_owner"] is None
    assert reassigned["lead"]["owner"] == "UREP2"


def test_one_endpoint_down_delays_neither_the_other_nor_slack(make_app, receivers, slack, db):
    a, b = receivers
    a.close_port()  # connections refused, for the whole burst
    app, clock = start(make_app, receivers)
    status, _body = app.post_leads({"leads": [{"email": f"burst{i}@example.com", "score": 80} for i in range(30)]})
    assert status == 201
    assert len(b.wait_count(30)) == 30  # the other endpoint has them all, now
    assert len(slack.wait_calls("chat.postMessage", 30)) == 30  # and so has Slack
    assert wait_until(lambda: healthz(app)["events_pending"] == 30)
    waiting = [d for d in deliveries(db) if d.status == "pending"]
    assert {d.last_error.split(":")[0] for d in waiting if d.last_error} <= {"connection"}
    assert all(d.next_attempt_at > clock() for d in waiting)  # backing off, not hammering

    a.reopen_port()
    clock.set(clock() + timedelta(seconds=6))  # past the first retry
    app.runtime.services.notify()
    assert len(a.wait_count(30)) == 30
    assert sorted(a.ids()) == sorted(b.ids())
    assert wait_until(lambda: healthz(app)["events_pending"] == 0)


def test_a_lead_waits_for_its_earlier_event_while_that_one_is_retried(make_app, receivers, slack, db):
    a, _ = receivers
    a.fail_next(1, 503)
    app, clock = start(make_app, receivers[:1])
    lead_id = new_mql(app)
    assert wait_until(lambda: deliveries(db) and deliveries(db)[0].attempts == 1)
    first = deliveries(db)[0]
    assert first.status == "pending" and first.last_status == 503
    assert first.next_attempt_at == clock.at + timedelta(seconds=5)  # the first step of the schedule
    click(app, ActionId.CLAIM, lead_id)
    assert wait_until(lambda: len(deliveries(db)) == 2)
    other = new_mql(app, "other@example.com")  # another lead is not held up by this one
    assert wait_until(lambda: types(a, other) == ["lead.mql"])
    assert types(a, lead_id) == []  # the claim waits behind the mql being retried
    clock.set(clock.at + timedelta(seconds=5))
    app.runtime.services.notify()
    assert wait_until(lambda: types(a, lead_id) == ["lead.mql", "lead.claimed"])


def test_retry_after_is_honoured_and_after_72_hours_a_delivery_fails_for_good(make_app, receivers, slack, db):
    a, _ = receivers
    app, clock = start(make_app, receivers[:1])
    a.fail_next(1, 429, retry_after=120)
    lead_id = new_mql(app)
    assert wait_until(lambda: deliveries(db)[0].attempts == 1)
    assert deliveries(db)[0].next_attempt_at == clock.at + timedelta(seconds=120)

    a.answer_always(500)
    expected = [300, 1800, 7200, 18000, 36000, 36000]  # then 10 h apart until the delivery is 72 hours old
    for attempt, delay in enumerate(expected, start=2):
        clock.set(deliveries(db)[0].next_attempt_at)
        app.runtime.services.notify()
        assert wait_until(lambda n=attempt: deliveries(db)[0].attempts == n)
        assert deliveries(db)[0].next_attempt_at == clock.at + timedelta(seconds=delay)
    clock.set(jst(2026, 11, 30, 10, 0) + timedelta(hours=72))
    app.runtime.services.notify()
    assert wait_until(lambda: deliveries(db)[0].status == "failed")
    assert "72 hours" in deliveries(db)[0].last_error
    assert healthz(app)["events_failed"] == 1 and healthz(app)["events_pending"] == 0
    assert types(a, lead_id) == []


def test_another_4xx_fails_for_good_at_once_and_the_lead_goes_on(make_app, receivers, slack, db):
    a, _ = receivers
    a.fail_next(1, 410)
    app, _clock = start(make_app, receivers[:1])
    lead_id = new_mql(app)
    assert wait_until(lambda: deliveries(db)[0].status == "failed")
    assert deliveries(db)[0].last_status == 410 and deliveries(db)[0].attempts == 1
    click(app, ActionId.CLAIM, lead_id)
    assert wait_until(lambda: types(a, lead_id) == ["lead.claimed"])
    assert healthz(app)["events_failed"] == 1


def test_a_breached_sla_is_an_event_once(make_app, receivers, slack, db):
    a, _ = receivers
    app, clock = start(make_app, receivers[:1])
    lead_id = new_mql(app)
    for at in (jst(2026, 11, 30, 14, 0), jst(2026, 11, 30, 14, 1), jst(2026, 11, 30, 15, 30)):
        clock.set(at)
        sla_sweep(app.runtime.services)
    a.wait_count(2)
    assert types(a, lead_id) == ["lead.mql", "sla.claim_breached"]
    breach = a.by_type("sla.claim_breached")[0].body
    assert breach["data"]["actor"] is None and breach["data"]["lead"]["claim_due"] == "2026-11-30T05:00:00Z"


def test_a_url_taken_out_of_the_settings_stops_waiting(make_app, receivers, slack, db):
    a, b = receivers
    a.close_port()
    app, clock = start(make_app, receivers)
    new_mql(app)
    b.wait_count(1)
    assert wait_until(lambda: healthz(app)["events_pending"] == 1)
    again = make_app(now=clock, EVENT_WEBHOOK_URLS=b.url, EVENT_WEBHOOK_SECRET=EVENT_SECRET)
    assert healthz(again)["events_pending"] == 0
    failed = [d for d in deliveries(db) if d.status == "failed"]
    assert len(failed) == 1 and failed[0].last_error == "endpoint removed from EVENT_WEBHOOK_URLS"


def test_events_list_replay_and_run_job_outbox_from_the_command_line(make_app, receivers, slack, db, capsys,
                                                                    monkeypatch):
    from bot import main

    a, _ = receivers
    app, _clock = start(make_app, receivers[:1])
    lead_id = new_mql(app)
    click(app, ActionId.CLAIM, lead_id)
    a.wait_count(2)
    env = dict(SLACK_BOT_TOKEN="xoxb-test", SLACK_API_URL=slack.url, DATABASE_URL=db.url, HANDOFF_CHANNEL=HANDOFF,
               MARKETING_CHANNEL="C0MARKETING", EVENT_WEBHOOK_URLS=a.url, EVENT_WEBHOOK_SECRET=EVENT_SECRET)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert main(["events", "list"]) == 0
    listing = capsys.readouterr().out
    assert "lead.mql" in listing and "lead.claimed" in listing and "2 deliveries" in listing
    assert main(["events", "list", "--failed"]) == 0
    assert "no failed event deliveries" in capsys.readouterr().out
    assert main(["events", "replay", "--since", "2026-11-30T00:00:00+09:00", "--type", "lead.mql"]) == 0
    assert "1 deliveries queued again" in capsys.readouterr().out
    assert main(["run-job", "outbox"]) == 0  # the replay was queued now, by the wall clock
    assert "events: 1 delivered, 0 failed for good, 0 waiting for a retry" in capsys.readouterr().out
    assert main(["events", "replay", "--since", "2026-11-30T00:00:00+09:00", "--type", "lead.nope"]) == 2
    assert "is not an event type" in capsys.readouterr().err
    assert main(["events", "replay"]) == 2
    assert "usage: bot.py events" in capsys.readouterr().err
    assert len(a.deliveries) == 3 and len(a.events()) == 2  # the replay carried the same id: a duplicate
    assert a.deliveries[-1].id == a.by_type("lead.mql")[0].id


def test_the_events_are_stored_with_the_change(make_app, receivers, slack, db):
    """The event rows exist exactly when their change does: a refused claim writes none."""
    app, _clock = start(make_app, receivers[:1])
    lead_id = new_mql(app)
    click(app, ActionId.CLAIM, lead_id)
    click(app, ActionId.CLAIM, lead_id, user="UREP2")  # already claimed: refused, no event
    assert wait_until(lambda: len(slack.calls_to("chat.postEphemeral")) >= 1)
    with db.begin() as s:
        stored = [e.type for e in s.scalars(select(Event).where(Event.lead_id == lead_id).order_by(Event.id))]
    assert stored == [events.Type.MQL, events.Type.CLAIMED]
