"""Salesforce write-back end to end (docs/salesforce.md): the app served, driven by Slack's requests and the lead
webhook, writing through simple-salesforce over HTTPS to the Salesforce stand-in, which enforces Salesforce's
rules (OAuth client credentials, SOQL escaping and the URI limit, sObject Collections' per-record errors,
restricted picklists, field-level security, Sforce-Limit-Info, expired sessions)."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from blocks.ids import ActionId
from models.tables import CrmSync, CrmTask, Lead
from standin import slack_requests
from tests.conftest import HANDOFF, FakeClock, jst, salesforce_settings, wait_until
from tests.e2e.test_outcomes import submit

REP = "UREP1"
REP_EMAIL = "aya.sato@example.co.jp"


def start(make_app, sf, slack, **settings):
    slack.add_user(REP, name="Aya Sato", email=REP_EMAIL)
    clock = FakeClock(jst(2026, 11, 30, 10, 0))
    app = make_app(now=clock, **salesforce_settings(sf, **settings))
    return app, clock


def new_mql(app, email="sf@example.com", **fields) -> int:
    status, body = app.post_leads({"email": email, "score": 85, "name": "Kenji", **fields})
    assert status == 201, body
    return body["id"]


def click(app, action_id, lead_id, user=REP):
    status, _ = app.slack_post(slack_requests.block_action(action_id, str(lead_id), user, HANDOFF))
    assert status == 200


def sync_row(db, lead_id) -> CrmSync | None:
    with db.begin() as s:
        return s.scalars(select(CrmSync).where(CrmSync.lead_id == lead_id)).first()


def tasks_of(db, lead_id) -> list[CrmTask]:
    with db.begin() as s:
        return list(s.scalars(select(CrmTask).where(CrmTask.lead_id == lead_id).order_by(CrmTask.id)))


def settled(db, lead_id) -> bool:
    row = sync_row(db, lead_id)
    return row is not None and row.next_attempt_at is None and all(
        t.next_attempt_at is None for t in tasks_of(db, lead_id))


def db_lead(db, lead_id) -> Lead:
    with db.begin() as s:
        return s.get(Lead, lead_id)


def queries(sf) -> list[str]:
    """The SOQL that looked for records (not for the owners' Users)."""
    return [c.query["q"] for c in sf.calls_to("/query") if "q" in c.query and " FROM User " not in c.query["q"]]


def test_every_change_lands_on_the_lead_and_each_outcome_in_its_activity(make_app, salesforce, slack, db):
    lead = salesforce.add_lead("SF@example.com", LastName="Tanaka")
    owner = salesforce.add_user(REP_EMAIL)
    app, clock = start(make_app, salesforce, slack)
    lead_id = new_mql(app)
    assert wait_until(lambda: salesforce.record(lead).get("Handoff_Status__c") == "mql")
    assert wait_until(lambda: (salesforce.record(lead).get("Handoff_Card_URL__c") or "").startswith("https://"))
    assert salesforce.record(lead)["Status"] == "Open - Not Contacted"  # mql is not in the default map
    clock.set(jst(2026, 11, 30, 10, 20))
    click(app, ActionId.CLAIM, lead_id)
    assert wait_until(lambda: salesforce.record(lead).get("Handoff_Status__c") == "claimed")
    got = salesforce.record(lead)
    assert got["Status"] == "Working - Contacted" and got["OwnerId"] == owner  # the Slack owner's User
    assert got["Handoff_Owner__c"] == REP and got["Handoff_Claim_SLA_Met__c"] is True
    assert got["Handoff_Claimed_At__c"].startswith("2026-11-30T01:20:00")
    clock.set(jst(2026, 12, 1, 16, 0))
    status, _ = submit(app, "lead_lost", lead_id, REP, reason="budget", note="froze spending until April")
    assert status == 200
    assert wait_until(lambda: salesforce.record(lead).get("Handoff_Status__c") == "lost")
    got = salesforce.record(lead)
    assert got["Status"] == "Closed - Not Converted" and got["Handoff_Lost_Reason__c"] == "budget"
    assert got["Handoff_Feedback_Note__c"] == "froze spending until April"
    assert wait_until(lambda: len(salesforce.tasks()) == 1)
    task = salesforce.tasks()[0]
    assert task["WhoId"] == lead and task["Status"] == "Completed" and task["ActivityDate"] == "2026-12-01"
    assert task["Subject"] == "Handoff: lost: No budget" and task["Description"] == "froze spending until April"
    assert task["Handoff_Event_Id__c"].startswith("evt_")
    lookups = [q for q in queries(salesforce) if "FROM Lead WHERE Email IN" in q]
    assert len(lookups) == 1  # found once, then written by id
    assert sync_row(db, lead_id).record_id == lead


def test_a_retried_task_is_still_one_task(make_app, salesforce, slack, db):
    lead = salesforce.add_lead("retry@example.com")
    app, clock = start(make_app, salesforce, slack)
    lead_id = new_mql(app, "retry@example.com")
    click(app, ActionId.CLAIM, lead_id)
    assert wait_until(lambda: salesforce.record(lead).get("Handoff_Status__c") == "claimed")
    # Salesforce makes the Task, and the answer is lost on the way back: the call is made again
    salesforce.drop_after_commit(1, path="/composite/sobjects/Task/Handoff_Event_Id__c")
    click(app, ActionId.SQL, lead_id)
    services = app.runtime.services
    assert wait_until(lambda: len(salesforce.calls_to("/composite/sobjects/Task/Handoff_Event_Id__c")) >= 1)
    clock.set(clock.at + timedelta(minutes=10))  # past the backoff
    assert services.salesforce.drain(clock(), timeout=10) == 0
    assert len(salesforce.calls_to("/composite/sobjects/Task/Handoff_Event_Id__c")) == 2
    # an SQL from a claim is a contact made too: two outcomes, each one Task however often it was sent
    assert sorted(t["Subject"] for t in salesforce.tasks()) == ["Handoff: first contact made",
                                                                 "Handoff: qualified (SQL)"]
    assert [t.status for t in tasks_of(db, lead_id)] == ["written", "written"]


def test_emails_with_quotes_find_their_record_and_inject_nothing(make_app, salesforce, slack, db):
    quoted = salesforce.add_lead("o'brien@example.com")
    slashed = salesforce.add_lead("back\\slash@example.com")
    other = salesforce.add_lead("victim@example.com")
    app, _clock = start(make_app, salesforce, slack)
    lead_id = new_mql(app, "O'Brien@example.com")
    new_mql(app, "back\\slash@example.com")
    # an email made to close the quote and widen the query: escaped, it is just an email nobody has
    sly = new_mql(app, "x'or'email!='@example.com")
    assert wait_until(lambda: salesforce.record(quoted).get("Handoff_Status__c") == "mql")
    assert wait_until(lambda: salesforce.record(slashed).get("Handoff_Status__c") == "mql")
    assert wait_until(lambda: sync_row(db, sly) is not None and sync_row(db, sly).state == "not_found")
    assert salesforce.record(other).get("Handoff_Status__c") is None
    assert sync_row(db, lead_id).record_id == quoted
    assert any("o\\'brien@example.com" in q for q in queries(salesforce))


def test_long_emails_are_found_in_queries_that_stay_under_the_uri_limit(make_app, salesforce, slack, db):
    emails = [f"{'a' * 60}.{i}.{'b' * 60}@{'c' * 50}.example.com" for i in range(300)]
    for email in emails:
        salesforce.add_lead(email)
    app, _clock = start(make_app, salesforce, slack)
    status, body = app.post_leads({"leads": [{"email": e, "score": 85, "name": f"n{i}"} for i, e in enumerate(emails)]})
    assert status == 201, body
    ids = [r["id"] for r in body["leads"]]
    assert wait_until(lambda: all(sync_row(db, i) is not None and sync_row(db, i).state == "ready" for i in ids),
                      timeout=20)
    lookups = salesforce.calls_to("/query")
    assert all(c.status == 200 for c in lookups)  # none refused for its length (414, or 431 with the headers)
    assert 3 <= len([q for q in queries(salesforce) if "FROM Lead" in q]) <= 5  # ~180 bytes an email


def test_of_several_records_the_open_lead_then_the_converted_leads_contact_then_a_contact(make_app, salesforce,
                                                                                           slack, db):
    old_open = salesforce.add_lead("many@example.com")
    new_open = salesforce.add_lead("many@example.com")
    done = salesforce.add_lead("many@example.com")
    salesforce.convert(done)
    converted = salesforce.add_lead("conv@example.com")
    contact_of = salesforce.convert(converted)
    only_contact = salesforce.add_contact("contact@example.com")
    app, _clock = start(make_app, salesforce, slack)
    many, conv, cont = (new_mql(app, e) for e in ("many@example.com", "conv@example.com", "contact@example.com"))
    assert wait_until(lambda: all(settled(db, i) and sync_row(db, i).state == "ready" for i in (many, conv, cont)))
    assert sync_row(db, many).record_id == new_open  # the most recently modified open Lead
    assert salesforce.record(new_open)["Handoff_Status__c"] == "mql"
    assert salesforce.record(old_open).get("Handoff_Status__c") is None
    assert sync_row(db, conv).record_id == contact_of
    assert salesforce.record(contact_of)["Handoff_Status__c"] == "mql"
    assert sync_row(db, cont).record_id == only_contact
    assert "Status" not in salesforce.history(only_contact)[-1]  # a Contact has no Lead Status


def test_a_lead_salesforce_does_not_know_yet_is_looked_up_again_at_its_next_change(make_app, salesforce, slack, db):
    app, clock = start(make_app, salesforce, slack)
    lead_id = new_mql(app, "later@example.com")
    slack.wait_calls("chat.postMessage", 1)  # the card's link is a change too: looked for again then
    assert wait_until(lambda: db_lead(db, lead_id).card_url and settled(db, lead_id))
    assert sync_row(db, lead_id).state == "not_found"
    assert sync_row(db, lead_id).last_error == "no Salesforce Lead or Contact with this email"
    asked = len(queries(salesforce))
    clock.set(clock.at + timedelta(hours=1))
    app.runtime.services.notify()
    app.runtime.services.salesforce.drain(clock(), timeout=5)
    assert len(queries(salesforce)) == asked  # not retried in a loop
    lead = salesforce.add_lead("later@example.com")  # the marketing tool's sync made the Lead meanwhile
    click(app, ActionId.CLAIM, lead_id)
    assert wait_until(lambda: salesforce.record(lead).get("Handoff_Status__c") == "claimed")


def test_a_lead_converted_after_it_was_found_is_written_through_its_contact(make_app, salesforce, slack, db):
    lead = salesforce.add_lead("convert@example.com")
    app, _clock = start(make_app, salesforce, slack)
    lead_id = new_mql(app, "convert@example.com")
    assert wait_until(lambda: salesforce.record(lead).get("Handoff_Status__c") == "mql")
    contact = salesforce.convert(lead)  # the rep converts it in Salesforce
    click(app, ActionId.CLAIM, lead_id)
    assert wait_until(lambda: salesforce.record(contact).get("Handoff_Status__c") == "claimed")
    assert sync_row(db, lead_id).record_id == contact
    assert salesforce.record(lead)["Handoff_Status__c"] == "mql"  # the converted Lead is read-only


def test_a_deleted_record_is_looked_up_once_then_skipped(make_app, salesforce, slack, db):
    lead = salesforce.add_lead("deleted@example.com")
    app, _clock = start(make_app, salesforce, slack)
    lead_id = new_mql(app, "deleted@example.com")
    assert wait_until(lambda: (salesforce.record(lead).get("Handoff_Card_URL__c") or "").startswith("https://"))
    assert wait_until(lambda: settled(db, lead_id))
    salesforce.delete(lead)
    before = len(queries(salesforce))
    click(app, ActionId.CLAIM, lead_id)
    assert wait_until(lambda: sync_row(db, lead_id).state == "not_found")
    assert len(queries(salesforce)) == before + 2  # looked up again once (Leads, then Contacts), no more
    row = sync_row(db, lead_id)
    assert row.next_attempt_at is None and row.looked_again


def test_a_locked_row_is_retried_alone(make_app, salesforce, slack, db):
    first, second = salesforce.add_lead("one@example.com"), salesforce.add_lead("two@example.com")
    app, clock = start(make_app, salesforce, slack)
    a, b = new_mql(app, "one@example.com"), new_mql(app, "two@example.com")
    assert wait_until(lambda: settled(db, a) and settled(db, b))
    salesforce.lock_row(first, times=1)
    click(app, ActionId.CLAIM, a)
    click(app, ActionId.CLAIM, b)
    assert wait_until(lambda: salesforce.record(second).get("Handoff_Status__c") == "claimed")
    assert wait_until(lambda: (sync_row(db, a).last_error or "").startswith("UNABLE_TO_LOCK_ROW"))
    clock.set(clock.at + timedelta(seconds=10))
    app.runtime.services.salesforce.drain(clock(), timeout=5)
    assert salesforce.record(first)["Handoff_Status__c"] == "claimed"


def test_a_value_the_org_refuses_is_recorded_with_its_field_until_the_next_change(make_app, salesforce, slack, db):
    lead = salesforce.add_lead("picky@example.com")
    app, _clock = start(make_app, salesforce, slack, SALESFORCE_STATUS_MAP="claimed=Qualifying")
    lead_id = new_mql(app, "picky@example.com")
    assert wait_until(lambda: settled(db, lead_id))
    writes = len(salesforce.calls_to("/composite/sobjects"))
    click(app, ActionId.CLAIM, lead_id)
    assert wait_until(lambda: "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST" in (sync_row(db, lead_id).last_error or ""))
    row = sync_row(db, lead_id)
    assert "Status='Qualifying'" in row.last_error and row.next_attempt_at is None
    assert len(salesforce.calls_to("/composite/sobjects")) == writes + 1  # not retried
    assert salesforce.record(lead)["Handoff_Status__c"] == "mql"
    status, health = app.request("/healthz", method="GET")
    assert status == 200 and health["salesforce_refused"] == 1


def test_an_expired_session_gets_a_new_token_and_nothing_is_lost(make_app, salesforce, slack, db):
    lead = salesforce.add_lead("expire@example.com")
    app, _clock = start(make_app, salesforce, slack)
    lead_id = new_mql(app, "expire@example.com")
    assert wait_until(lambda: salesforce.record(lead).get("Handoff_Status__c") == "mql")
    tokens = len(salesforce.calls_to("/services/oauth2/token"))
    salesforce.expire_sessions()
    click(app, ActionId.CLAIM, lead_id)
    assert wait_until(lambda: salesforce.record(lead).get("Handoff_Status__c") == "claimed")
    assert len(salesforce.calls_to("/services/oauth2/token")) == tokens + 1


def test_salesforce_out_of_requests_pauses_salesforce_alone(make_app, salesforce, slack, db):
    lead = salesforce.add_lead("limit@example.com")
    salesforce.set_usage(100_000, 100_000)
    app, clock = start(make_app, salesforce, slack)
    lead_id = new_mql(app, "limit@example.com")
    assert wait_until(lambda: "REQUEST_LIMIT_EXCEEDED" in ((sync_row(db, lead_id) or CrmSync()).last_error or ""))
    assert slack.wait_calls("chat.postMessage", 1)  # the card went all the same
    paused = app.runtime.services.salesforce.paused_until
    assert paused > 0
    salesforce.set_usage(10, 100_000)  # a new day
    clock.set(clock.at + timedelta(minutes=10))
    app.runtime.services.salesforce.drain(clock(), timeout=5)
    assert salesforce.record(lead)["Handoff_Status__c"] == "mql"


def test_at_the_budget_one_call_every_five_minutes(make_app, salesforce, slack, db):
    leads = [salesforce.add_lead(f"b{i}@example.com") for i in range(3)]
    app, clock = start(make_app, salesforce, slack, SALESFORCE_API_BUDGET="0.5")
    lane = app.runtime.services.salesforce
    first = new_mql(app, "b0@example.com")
    assert wait_until(lambda: (salesforce.record(leads[0]).get("Handoff_Card_URL__c") or "").startswith("https"))
    assert wait_until(lambda: settled(db, first))
    app.runtime.stop.set()  # the lane's passes are run here from now on
    lane.notify()
    lane.thread.join(10)
    ticks = [1000.0]
    lane.connection.monotonic = lambda: ticks[0]
    salesforce.set_usage(60_000, 100_000)  # other integrations spent past Handoff's half
    second, third = new_mql(app, "b1@example.com"), new_mql(app, "b2@example.com")
    lane.run_pass()
    assert lane.connection.over_budget()  # the lookup's answer said so: that call was the last for now
    assert [sync_row(db, i).state for i in (second, third)] == ["ready", "ready"]
    calls = len(salesforce.calls)
    for _ in range(5):
        ticks[0] += 50
        clock.set(clock.at + timedelta(seconds=50))
        lane.paused_until = 0.0
        lane.run_pass()
    assert len(salesforce.calls) == calls  # nothing while over the budget
    _status, health = app.request("/healthz", method="GET")
    assert health["salesforce_pending"] == 2
    ticks[0] += 51  # five minutes after the last call: one call, to see whether usage fell
    clock.set(clock.at + timedelta(seconds=51))
    lane.paused_until = 0.0
    lane.run_pass()
    assert len(salesforce.calls) == calls + 1
    salesforce.set_usage(100, 100_000)  # it fell (a new day)
    ticks[0] += 301
    clock.set(clock.at + timedelta(seconds=301))
    lane.paused_until = 0.0
    lane.run_pass()
    assert salesforce.record(leads[2])["Handoff_Status__c"] == "mql"
    _status, health = app.request("/healthz", method="GET")
    assert health["salesforce_pending"] == 0


def test_an_untrusted_certificate_is_refused(make_app, salesforce, slack, db, monkeypatch):
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    salesforce.add_lead("tls@example.com")
    app, _clock = start(make_app, salesforce, slack)
    lead_id = new_mql(app, "tls@example.com")
    assert wait_until(lambda: "certificate" in ((sync_row(db, lead_id) or CrmSync()).last_error or ""))
    assert not salesforce.calls  # no request got through the handshake


def test_external_ids_are_record_ids_and_need_no_lookup(make_app, salesforce, slack, db):
    lead = salesforce.add_lead("ext@example.com")
    gone = salesforce.add_lead("gone@example.com")
    app, _clock = start(make_app, salesforce, slack, SALESFORCE_MATCH="external_id")
    a = new_mql(app, "ext@example.com", external_id=lead)
    b = new_mql(app, "gone@example.com", external_id=gone[:15])
    c = new_mql(app, "none@example.com", external_id="crm-42")
    assert wait_until(lambda: salesforce.record(lead).get("Handoff_Status__c") == "mql")
    assert wait_until(lambda: salesforce.record(gone).get("Handoff_Status__c") == "mql")
    assert not queries(salesforce)
    assert wait_until(lambda: sync_row(db, c).state == "not_found")
    salesforce.delete(gone)
    click(app, ActionId.CLAIM, b)
    assert wait_until(lambda: sync_row(db, b).state == "not_found")
    assert len(queries(salesforce)) == 1  # looked for once by id
    assert sync_row(db, a).state == "ready"


def test_salesforce_status_says_where_the_write_back_stands(make_app, salesforce, slack, db, monkeypatch, capsys):
    from bot import main

    found = salesforce.add_lead("found@example.com")
    salesforce.add_lead("picky@example.com")
    salesforce.set_picklist("Lead", "Status", ["Open - Not Contacted", "Working - Contacted"],
                            inactive=["Closed - Not Converted"])
    app, _clock = start(make_app, salesforce, slack)
    a, b, c = (new_mql(app, e) for e in ("found@example.com", "missing@example.com", "picky@example.com"))
    assert wait_until(lambda: all(settled(db, i) for i in (a, b, c)))
    status, _ = submit(app, "lead_disqualify", c, REP, reason="spam")
    assert status == 200
    assert wait_until(lambda: "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST" in (sync_row(db, c).last_error or ""))
    # the not-a-fit's Task goes after the records, in the same pass: the report is read once it is written
    assert wait_until(lambda: [t.status for t in tasks_of(db, c)] == ["written"])
    assert salesforce.record(found)["Handoff_Status__c"] == "mql"
    for name, value in salesforce_settings(salesforce, DATABASE_URL=db.url).items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    assert main(["salesforce", "status"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "records: 2 found, 1 not found, 1 refused (until their next change)"
    assert out[1:3] == ["pending: nothing to write",
                        "Tasks: 1 written, 0 refused, 0 waiting for a lead's record to be found"]  # the not-a-fit's Task
    assert "  last not found: no Salesforce Lead or Contact with this email" in out
    refused = next(line for line in out if line.startswith("  last refusal: "))
    assert "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST Status='Closed - Not Converted'" in refused
    assert out[-1].startswith("API usage: ") and out[-1].endswith("Handoff stops at 80% (SALESFORCE_API_BUDGET)")
    assert main(["salesforce", "nonsense"]) == 2
    assert "usage: bot.py salesforce status" in capsys.readouterr().err


def test_the_owner_is_the_active_user_with_the_slack_owners_email_or_left_as_it_is(make_app, salesforce, slack, db):
    mine, theirs, nobodys = (salesforce.add_lead(f"{n}@example.com") for n in ("mine", "theirs", "nobodys"))
    seeded_owner = salesforce.record(nobodys)["OwnerId"]
    me = salesforce.add_user(REP_EMAIL.upper())  # Salesforce compares emails without case
    salesforce.add_user("ken@example.co.jp", active=False)  # left the company
    slack.add_user("UREP2", name="Ken", email="ken@example.co.jp")
    slack.add_user("UREP3", name="Mei")  # no email Slack will show
    app, _clock = start(make_app, salesforce, slack)
    ids = [new_mql(app, f"{n}@example.com") for n in ("mine", "theirs", "nobodys")]
    for lead_id, user in zip(ids, (REP, "UREP2", "UREP3"), strict=True):
        click(app, ActionId.CLAIM, lead_id, user=user)
    assert wait_until(lambda: all(salesforce.record(r).get("Handoff_Status__c") == "claimed"
                                  for r in (mine, theirs, nobodys)))
    assert salesforce.record(mine)["OwnerId"] == me
    assert salesforce.record(theirs)["OwnerId"] == seeded_owner  # an inactive User is nobody's owner
    assert salesforce.record(nobodys)["OwnerId"] == seeded_owner
    assert salesforce.record(theirs)["Handoff_Owner__c"] == "UREP2"


def test_a_dropped_answer_and_a_slow_write_never_leave_an_older_state(make_app, salesforce, slack, db):
    lead = salesforce.add_lead("slow@example.com")
    app, clock = start(make_app, salesforce, slack)
    lead_id = new_mql(app, "slow@example.com")
    assert wait_until(lambda: (salesforce.record(lead).get("Handoff_Card_URL__c") or "").startswith("https://"))
    assert wait_until(lambda: settled(db, lead_id))
    salesforce.drop_after_commit(1, path="/composite/sobjects")  # written, then the answer is lost
    salesforce.slow_down("/composite/sobjects", 0.5)
    click(app, ActionId.CLAIM, lead_id)
    assert wait_until(lambda: salesforce.record(lead).get("Handoff_Status__c") == "claimed")
    status, _ = submit(app, "lead_lost", lead_id, REP, reason="timing")  # while the claim is being written again
    assert status == 200
    clock.set(clock.at + timedelta(minutes=10))  # past the backoff of the lost answer
    lane = app.runtime.services.salesforce
    assert wait_until(lambda: lane.drain(clock(), timeout=5) == 0 and settled(db, lead_id), timeout=20)
    assert salesforce.record(lead)["Handoff_Status__c"] == "lost"
    states = [h.get("Handoff_Status__c") for h in salesforce.history(lead)]
    assert all(state == "lost" for state in states[states.index("lost"):])  # never the claim after the loss
    assert [t["Subject"] for t in salesforce.tasks()] == ["Handoff: lost: Bad timing"]


def test_run_job_outbox_writes_what_salesforce_could_not_take_while_down(make_app, salesforce, slack, db, capsys,
                                                                         monkeypatch):
    from bot import main

    lead = salesforce.add_lead("later@example.com")
    salesforce.down()
    app, _clock = start(make_app, salesforce, slack)
    lead_id = new_mql(app, "later@example.com")
    assert wait_until(lambda: (sync_row(db, lead_id) or CrmSync()).last_error)  # waiting out the outage
    app.runtime.stop.set()
    app.runtime.services.salesforce.notify()
    app.runtime.services.salesforce.thread.join(10)
    salesforce.up()
    for name, value in salesforce_settings(salesforce, SLACK_BOT_TOKEN="xoxb-test", SLACK_API_URL=slack.url,
                                           DATABASE_URL=db.url, HANDOFF_CHANNEL=HANDOFF,
                                           MARKETING_CHANNEL="C0MARKETING").items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    assert main(["run-job", "outbox", "--at", "2026-12-30T10:00:00+09:00"]) == 0  # past any backoff
    out = capsys.readouterr().out
    assert "Salesforce: 0 records and 0 Tasks still to write, 0 not found, 0 refused" in out
    assert salesforce.record(lead)["Handoff_Status__c"] == "mql"


def test_a_session_expiring_in_the_middle_of_a_batch_loses_nothing(make_app, salesforce, slack, db):
    emails = [f"{'m' * 60}.{i}.{'n' * 60}@{'o' * 50}.example.com" for i in range(300)]  # several queries' worth
    for address in emails:
        salesforce.add_lead(address)
    salesforce.slow_down("/query", 0.2)
    app, _clock = start(make_app, salesforce, slack)
    tokens = len(salesforce.calls_to("/services/oauth2/token"))
    status, body = app.post_leads({"leads": [{"email": e, "score": 85, "name": f"n{i}"} for i, e in enumerate(emails)]})
    assert status == 201, body
    assert wait_until(lambda: len(salesforce.calls_to("/query")) >= 1)
    salesforce.expire_sessions()  # between the batch's queries
    ids = [r["id"] for r in body["leads"]]
    assert wait_until(lambda: all((sync_row(db, i) or CrmSync()).state == "ready" and settled(db, i) for i in ids),
                      timeout=30)
    assert len(salesforce.calls_to("/services/oauth2/token")) > tokens
    assert all(c.status in (200, 401) for c in salesforce.calls_to("/query"))
    assert sum(c.status == 401 for c in salesforce.calls) >= 1  # it did expire under the lane
