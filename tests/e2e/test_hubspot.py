"""HubSpot write-back end to end (docs/hubspot.md), through the official client against the HubSpot stand-in,
which enforces HubSpot's rules: token, 100 inputs a batch, unknown properties, the rolling rate limit."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from blocks.ids import ActionId
from models.tables import CrmSync, Lead
from outbox.hubspot import RollingLimit
from standin import slack_requests
from tests.conftest import EVENT_SECRET, HANDOFF, FakeClock, jst, wait_until
from tests.e2e.test_outcomes import submit

REP = "UREP1"


def start(make_app, hubspot, **settings):
    clock = FakeClock(jst(2026, 11, 30, 10, 0))
    app = make_app(now=clock, HUBSPOT_TOKEN=hubspot.token, HUBSPOT_API_URL=hubspot.url, **settings)
    return app, clock


def new_mql(app, email="hs@example.com", **fields) -> int:
    status, body = app.post_leads({"email": email, "score": 85, "name": "Aya", **fields})
    assert status == 201, body
    app.drain()
    return body["id"]


def click(app, action_id, lead_id, user=REP):
    status, _ = app.slack_post(slack_requests.block_action(action_id, str(lead_id), user, HANDOFF))
    assert status == 200


def sync_row(db, lead_id) -> CrmSync:
    with db.begin() as s:
        return s.scalars(select(CrmSync).where(CrmSync.lead_id == lead_id)).first()


def settled(db, lead_id) -> bool:
    row = sync_row(db, lead_id)
    return row is not None and row.next_attempt_at is None


def db_lead(db, lead_id) -> Lead:
    with db.begin() as s:
        return s.get(Lead, lead_id)


def test_every_change_lands_on_the_contact(make_app, hubspot, slack, db):
    contact = hubspot.add_contact("HS@example.com", lifecyclestage="lead")
    app, clock = start(make_app, hubspot)
    lead_id = new_mql(app)
    assert wait_until(lambda: hubspot.contact(contact).get("handoff_status") == "mql")
    # the card's link follows as soon as the card is posted, before the lead's next change
    assert wait_until(lambda: hubspot.contact(contact).get("handoff_card_url", "").startswith("https://"))
    clock.set(jst(2026, 11, 30, 10, 20))
    click(app, ActionId.CLAIM, lead_id)
    assert wait_until(lambda: hubspot.contact(contact).get("handoff_status") == "claimed")
    got = hubspot.contact(contact)
    assert got["handoff_owner"] == REP and got["hs_lead_status"] == "IN_PROGRESS"
    assert got["handoff_claimed_at"] == "2026-11-30T01:20:00Z" and got["handoff_claim_sla_met"] == "true"
    assert got["handoff_card_url"].startswith("https://handoff-demo.slack.invalid/archives/C0HANDOFF/p")
    clock.set(jst(2026, 12, 1, 16, 0))
    status, _ = submit(app, "lead_lost", lead_id, REP, reason="budget", note="froze spending until April")
    assert status == 200
    assert wait_until(lambda: hubspot.contact(contact).get("handoff_status") == "lost")
    got = hubspot.contact(contact)
    assert got["hs_lead_status"] == "BAD_TIMING" and got["handoff_lost_reason"] == "budget"
    assert got["handoff_feedback_note"] == "froze spending until April"
    assert got["lifecyclestage"] == "lead"  # a loss does not move the stage
    reads = hubspot.calls_to("/contacts/batch/read")
    assert len(reads) == 1 and reads[0].body["idProperty"] == "email"  # the contact is found once
    assert sync_row(db, lead_id).record_id == contact


def test_the_lifecycle_stage_only_moves_forward(make_app, hubspot, slack, db):
    ahead = hubspot.add_contact("ahead@example.com", lifecyclestage="lead")
    behind = hubspot.add_contact("behind@example.com", lifecyclestage="lead")
    app, _clock = start(make_app, hubspot)
    first, second = new_mql(app, "ahead@example.com"), new_mql(app, "behind@example.com")
    for lead_id in (first, second):
        click(app, ActionId.CLAIM, lead_id)
        assert wait_until(lambda lid=lead_id: db_lead(db, lid).claimed_at is not None)
    assert wait_until(lambda: settled(db, first) and settled(db, second))
    hubspot_write(hubspot, ahead, lifecyclestage="opportunity")  # someone in HubSpot moves it ahead meanwhile
    for lead_id in (first, second):
        click(app, ActionId.SQL, lead_id)
    assert wait_until(lambda: hubspot.contact(behind).get("hs_lead_status") == "OPEN_DEAL"
                      and hubspot.contact(ahead).get("hs_lead_status") == "OPEN_DEAL")
    assert hubspot.contact(behind)["lifecyclestage"] == "salesqualifiedlead"
    assert hubspot.contact(ahead)["lifecyclestage"] == "opportunity"
    assert "salesqualifiedlead" not in hubspot.history(ahead, "lifecyclestage")  # never even sent

    click(app, ActionId.WON, second)
    assert wait_until(lambda: hubspot.contact(behind).get("lifecyclestage") == "customer")
    click(app, ActionId.UNDO, second)  # back to sql in Handoff; the contact stays a customer
    assert wait_until(lambda: hubspot.contact(behind).get("handoff_status") == "sql")
    assert hubspot.history(behind, "lifecyclestage")[-1] == "customer"


def hubspot_write(hubspot, contact_id, **properties):
    from hubspot.crm.contacts import BatchInputSimplePublicObjectBatchInput, SimplePublicObjectBatchInput

    from outbox.hubspot import make_client

    make_client(hubspot.token, hubspot.url).crm.contacts.batch_api.update(BatchInputSimplePublicObjectBatchInput(
        inputs=[SimplePublicObjectBatchInput(id=contact_id, properties=properties)]))


def test_a_contact_hubspot_does_not_know_is_recorded_and_skipped(make_app, hubspot, slack, db):
    app, clock = start(make_app, hubspot)
    lead_id = new_mql(app, "nobody@example.com")
    assert wait_until(lambda: sync_row(db, lead_id) and sync_row(db, lead_id).state == "not_found")
    assert sync_row(db, lead_id).last_error == "no HubSpot contact with this email"
    calls = len(hubspot.calls)
    clock.set(clock.at + timedelta(hours=1))
    app.runtime.services.notify()
    assert not wait_until(lambda: len(hubspot.calls) > calls, timeout=0.5)  # not retried in a loop
    _status, body = app.request("/healthz", method="GET")
    assert body["hubspot_not_found"] == 1 and body["hubspot_pending"] == 0
    contact = hubspot.add_contact("nobody@example.com")  # the marketing tool's sync created it later
    click(app, ActionId.CLAIM, lead_id)  # the next change looks again
    assert wait_until(lambda: hubspot.contact(contact).get("handoff_status") == "claimed")


def test_many_changes_while_hubspot_is_down_become_one_write_of_the_latest_state(make_app, hubspot, receivers,
                                                                                 slack, db):
    a, _ = receivers
    contacts = [hubspot.add_contact(f"c{i}@example.com") for i in range(5)]
    app, clock = start(make_app, hubspot, EVENT_WEBHOOK_URLS=a.url, EVENT_WEBHOOK_SECRET=EVENT_SECRET)
    leads = [new_mql(app, f"c{i}@example.com") for i in range(5)]
    assert wait_until(lambda: all(settled(db, lead_id) for lead_id in leads))
    hubspot.down()
    for lead_id in leads:  # three changes each, one after the other
        for action, stamp in ((ActionId.CLAIM, "claimed_at"), (ActionId.CONTACTED, "contacted_at"),
                              (ActionId.SQL, "sql_at")):
            click(app, action, lead_id)
            assert wait_until(lambda lid=lead_id, f=stamp: getattr(db_lead(db, lid), f) is not None)
    # HubSpot down delays nothing else: the cards and the events go on
    assert wait_until(lambda: len(a.events()) == 5 * 4)  # mql, claimed, contacted, sql
    assert wait_until(lambda: len(slack.calls_to("chat.update")) >= 15)
    assert wait_until(lambda: sync_row(db, leads[0]).attempts >= 1)
    assert "connection" in sync_row(db, leads[0]).last_error
    hubspot.up()
    before = len([c for c in hubspot.calls_to("/contacts/batch/update") if c.status == 200])
    clock.set(clock() + timedelta(minutes=10))
    app.runtime.services.hubspot.paused_until = 0.0  # as if the backoff had run out
    app.runtime.services.notify()
    assert wait_until(lambda: all(hubspot.contact(c).get("handoff_status") == "sql" for c in contacts))
    for contact in contacts:  # claimed and contacted were coalesced away; nothing older came after newer
        history = hubspot.history(contact, "handoff_status")
        assert [s for n, s in enumerate(history) if n == 0 or history[n - 1] != s] == ["mql", "sql"]
    updates = [c for c in hubspot.calls_to("/contacts/batch/update") if c.status == 200]
    assert len(updates) - before == 1  # fifteen changes of five leads: one batch of their latest states


def test_429s_are_waited_out_and_the_rate_limit_is_kept(make_app, hubspot, slack, db):
    hubspot.limit(requests=5, seconds=1.0)
    for i in range(30):
        hubspot.add_contact(f"r{i}@example.com")
    app, clock = start(make_app, hubspot)
    app.runtime.services.hubspot.limit = RollingLimit(requests=5, seconds=1.0)  # the stand-in's, scaled down
    clock.run()  # waiting out a 429 takes real time
    hubspot.inject_429(2)
    for i in range(30):
        new_mql(app, f"r{i}@example.com")
        click(app, ActionId.CLAIM, db_lead_id(db, f"r{i}@example.com"))
    assert wait_until(lambda: all((hubspot.contact_by_email(f"r{i}@example.com") or {}).get("handoff_status")
                                  == "claimed" for i in range(30)), timeout=30)
    assert hubspot.throttled == 2  # the two injected; ours never went over the limit
    assert hubspot.max_in_window(1.0) <= 5


def db_lead_id(db, email) -> int:
    with db.begin() as s:
        return s.scalar(select(Lead.id).where(Lead.email_norm == email))


def test_external_id_is_the_record_id(make_app, hubspot, slack, db):
    contact = hubspot.add_contact("ext@example.com")
    app, _clock = start(make_app, hubspot, HUBSPOT_MATCH="external_id")
    lead_id = new_mql(app, "other-address@example.com", external_id=contact)
    assert wait_until(lambda: hubspot.contact(contact).get("handoff_status") == "mql")
    assert not hubspot.calls_to("/contacts/batch/read")  # nothing to look up
    stray = new_mql(app, "stray@example.com", external_id="crm-123")
    assert wait_until(lambda: sync_row(db, stray) and sync_row(db, stray).state == "not_found")
    assert sync_row(db, lead_id).record_id == contact


def test_hubspot_setup_from_the_command_line(hubspot, slack, db, capsys, monkeypatch):
    from bot import main

    hubspot.reset()  # no properties yet
    env = dict(HUBSPOT_TOKEN=hubspot.token, HUBSPOT_API_URL=hubspot.url, DATABASE_URL=db.url)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert main(["hubspot-setup"]) == 0
    out = capsys.readouterr().out
    assert "created handoff\n" in out and "created handoff_status" in out and out.count("created") == 12
    assert hubspot.property("handoff_claim_sla_met")["type"] == "bool"
    assert main(["hubspot-setup"]) == 0
    assert capsys.readouterr().out.count("exists already") == 12
    monkeypatch.setenv("HUBSPOT_TOKEN", "pat-na1-wrong")
    assert main(["hubspot-setup"]) == 2
    assert "refused HUBSPOT_TOKEN (HTTP 401)" in capsys.readouterr().err
    monkeypatch.delenv("HUBSPOT_TOKEN")
    assert main(["hubspot-setup"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "HUBSPOT_TOKEN is not set" in err



def test_a_value_hubspot_refuses_holds_back_only_its_own_lead(make_app, hubspot, slack, db):
    hubspot.set_options("hs_lead_status", ["NEW", "OPEN", "IN_PROGRESS", "CONNECTED", "OPEN_DEAL", "UNQUALIFIED"])
    contacts = [hubspot.add_contact(f"v{i}@example.com") for i in range(6)]
    app, clock = start(make_app, hubspot, LOST_REASONS="budget,other")
    leads = [new_mql(app, f"v{i}@example.com") for i in range(6)]
    for lead_id in leads:
        click(app, ActionId.CLAIM, lead_id)
        assert wait_until(lambda lid=lead_id: db_lead(db, lid).claimed_at is not None)
    assert wait_until(lambda: all(settled(db, lead_id) for lead_id in leads))
    hubspot.down()  # so the next changes go out together, in one batch
    submit(app, "lead_lost", leads[0], REP, reason="budget")  # BAD_TIMING: this portal has no such status
    for lead_id in leads[1:]:
        click(app, ActionId.CONTACTED, lead_id)
    assert wait_until(lambda: all(db_lead(db, lid).contacted_at for lid in leads[1:]) and db_lead(db, leads[0]).lost_at)
    assert wait_until(lambda: sync_row(db, leads[1]).attempts >= 1)
    hubspot.up()
    clock.set(clock() + timedelta(minutes=10))
    app.runtime.services.hubspot.paused_until = 0.0
    app.runtime.services.notify()
    assert wait_until(lambda: all(hubspot.contact(c).get("hs_lead_status") == "CONNECTED" for c in contacts[1:]))
    assert wait_until(lambda: all(settled(db, lead_id) for lead_id in leads))  # HubSpot answered, then we settle
    refused = sync_row(db, leads[0])
    assert "BAD_TIMING was not one of the allowed options" in refused.last_error
    assert hubspot.contact(contacts[0])["handoff_status"] == "claimed"  # nothing of the refused write landed
    _status, body = app.request("/healthz", method="GET")
    assert body["hubspot_refused"] == 1 and body["hubspot_pending"] == 0
    calls = len(hubspot.calls)
    assert not wait_until(lambda: len(hubspot.calls) > calls, timeout=0.5)  # not retried until its next change
    hubspot.set_options("hs_lead_status", ["IN_PROGRESS", "CONNECTED", "OPEN_DEAL", "UNQUALIFIED", "BAD_TIMING"])
    click(app, ActionId.QUALITY_BAD, leads[0])  # the lead's next change
    assert wait_until(lambda: hubspot.contact(contacts[0]).get("handoff_status") == "lost")
    assert hubspot.contact(contacts[0])["handoff_mql_quality"] == "not_ready"


def test_without_hubspot_setup_writes_wait_and_nothing_is_set_aside(make_app, hubspot, slack, db):
    hubspot.reset()  # a portal where `bot.py hubspot-setup` was never run
    contact = hubspot.add_contact("nosetup@example.com")
    app, clock = start(make_app, hubspot)
    lead_id = new_mql(app, "nosetup@example.com")
    assert wait_until(lambda: (sync_row(db, lead_id).last_error or "").find("PROPERTY_DOESNT_EXIST") >= 0)
    row = sync_row(db, lead_id)
    assert row.next_attempt_at is not None and row.state == "ready"  # waiting for the fix, not set aside
    from outbox.hubspot import make_client, setup

    setup(make_client(hubspot.token, hubspot.url))  # the admin runs hubspot-setup
    clock.set(clock() + timedelta(minutes=16))
    app.runtime.services.hubspot.paused_until = 0.0
    app.runtime.services.notify()
    assert wait_until(lambda: hubspot.contact(contact).get("handoff_status") == "mql")
