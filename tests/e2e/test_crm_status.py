"""Status from the CRM (docs/crm-status.md), end to end: POST /hooks/status as a CRM sends it, the Slack stand-in
recording what the app sends."""
from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import func, select

from blocks.ids import ActionId
from jobs.scheduler import sla_sweep
from models.tables import AuditEvent, Event, Lead, OutboxMessage, SlaTimer
from tests.conftest import MARKETING, FakeClock, jst, wait_until

REP, REP2 = "UREP1", "UREP2"
MQL_AT = jst(2026, 11, 30, 10, 0)


def setup(make_app, **settings):
    clock = FakeClock(MQL_AT)
    app = make_app(now=clock, EVENT_WEBHOOK_URLS="http://127.0.0.1:9/hook", EVENT_WEBHOOK_SECRET="whsec_" + "A" * 32,
                   **settings)
    status, body = app.post_leads({"email": "aya@acme.co.jp", "external_id": "crm-1", "score": 88,
                                   "company": "Acme", "name": "Aya", "source": "webinar"})
    assert status == 201
    app.drain()
    return app, clock, body["id"]


def lead(db, lead_id) -> Lead:
    with db.begin() as s:
        return s.get(Lead, lead_id)


def events_of(db, lead_id) -> list[dict]:
    with db.begin() as s:
        return [e.body for e in s.scalars(select(Event).where(Event.lead_id == lead_id).order_by(Event.id))]


def timers(db, lead_id) -> int:
    with db.begin() as s:
        return s.scalar(select(func.count()).select_from(SlaTimer).where(SlaTimer.lead_id == lead_id))


def last_card(slack) -> str:
    return json.dumps(slack.calls_to("chat.update")[-1].params["blocks"], ensure_ascii=False)


def test_an_sql_from_the_crm_is_the_buttons_transition_with_the_crm_as_actor(make_app, slack, db):
    app, clock, lead_id = setup(make_app)
    clock.set(jst(2026, 11, 30, 11, 0))
    status, body = app.post_status({"external_id": "crm-1", "status": "sql", "at": "2026-11-30T10:40:00+09:00",
                                    "by": REP, "note": "budget confirmed"})
    assert status == 200 and body == {"results": [{"id": lead_id, "applied": True, "why": None}]}
    row = lead(db, lead_id)
    at = jst(2026, 11, 30, 10, 40)
    assert (row.claimed_at, row.claimed_by, row.sql_at, row.qualified_by) == (at, REP, at, REP)
    assert row.contacted_at is None  # the CRM's SQL does not stamp the first contact
    assert row.crm_marked == "claimed,sql"
    assert timers(db, lead_id) == 0  # the claim, contact and outcome clocks all stopped
    bodies = events_of(db, lead_id)
    assert [b["type"] for b in bodies] == ["lead.mql", "lead.claimed", "lead.sql"]  # the implied claim first
    for b in bodies[1:]:
        assert b["data"]["actor"] is None and b["data"]["source"] == "crm"
    with db.begin() as s:
        actors = s.execute(select(AuditEvent.action, AuditEvent.actor, AuditEvent.detail)
                           .where(AuditEvent.lead_id == lead_id, AuditEvent.actor == "crm")).all()
    assert [a for a, _, _ in actors] == ["claimed", "sql"] and actors[1][2]["by"] == REP
    app.drain()
    assert len(slack.calls_to("chat.update")) == 1  # one card update for the claim and the SQL it came with
    card = last_card(slack)
    assert "SQL since" in card and "marked in the CRM" in card and f"<@{REP}>" in card


def test_only_forward_and_once(make_app, slack, db):
    app, clock, lead_id = setup(make_app)
    clock.set(jst(2026, 11, 30, 11, 0))
    first = {"email": "AYA@acme.co.jp", "status": "contacted", "by": REP}
    assert app.post_status(first)[1]["results"][0]["applied"] is True
    updates_before = len(slack.calls_to("chat.update"))
    app.drain()
    cards = len(slack.calls_to("chat.update"))
    assert cards > updates_before or cards >= 1
    status, body = app.post_status(first)  # the same update again: nothing changes
    assert status == 200 and body["results"] == [{"id": lead_id, "applied": False, "why": "not newer"}]
    status, body = app.post_status({"email": "aya@acme.co.jp", "status": "contacted"})
    assert body["results"][0]["why"] == "not newer"
    assert app.post_status({"external_id": "crm-1", "status": "won"})[1]["results"][0]["applied"] is True
    for later in ("sql", "lost", "disqualified", "contacted"):  # a closed lead moves no more
        assert app.post_status({"external_id": "crm-1", "status": later})[1]["results"][0]["why"] == "not newer"
    row = lead(db, lead_id)
    assert row.won_at is not None and row.sql_at == row.won_at and row.lost_at is None
    with db.begin() as s:
        actions = list(s.scalars(select(AuditEvent.action).where(AuditEvent.actor == "crm").order_by(AuditEvent.id)))
    assert actions == ["claimed", "contacted", "won"]  # the won entry names the SQL it implies
    app.drain()
    assert len(slack.calls_to("chat.update")) == cards + 1  # the won card; the refused updates queued nothing


def test_a_batch_reports_unknown_leads_without_failing_the_others(make_app, slack, db):
    app, _clock, lead_id = setup(make_app)
    status, body = app.post_status({"updates": [
        {"external_id": "nobody", "status": "sql"},
        {"email": "aya@acme.co.jp", "status": "contacted", "by": REP},
        {"email": "aya@acme.co.jp", "status": "sql"},
    ]})
    assert status == 200
    assert body["results"] == [{"id": None, "applied": False, "why": "unknown lead"},
                               {"id": lead_id, "applied": True, "why": None},
                               {"id": lead_id, "applied": True, "why": None}]
    row = lead(db, lead_id)
    assert row.contacted_at is not None and row.sql_at is not None and row.claimed_by == REP


def test_an_invalid_update_refuses_the_whole_batch(make_app, slack, db):
    app, _clock, lead_id = setup(make_app)
    cases = [
        ({"updates": [{"external_id": "crm-1", "status": "sql"}, {"external_id": "crm-1", "status": "maybe"}]},
         "updates[1].status"),
        ({"updates": [{"status": "sql"}]}, "updates[0].external_id"),
        ({"external_id": "crm-1", "status": "sql", "at": "yesterday"}, "at"),
        ({"external_id": "crm-1", "status": "sql", "by": "Aya Sato"}, "by"),
        ({"email": "not-an-email", "status": "won"}, "email"),
        ({"updates": []}, "updates"),
        ({"updates": [{"external_id": "crm-1", "status": "sql"}] * 501}, "updates"),
        ({"external_id": "crm-1"}, "status"),
        ({"hs_lead_status": "CONNECTED"}, "hs_object_id"),
    ]
    for payload, field in cases:
        status, body = app.post_status(payload)
        assert status == 422 and field in [e["field"] for e in body["errors"]], (payload, body)
    assert app.post_status({"external_id": "crm-1", "status": "sql"}, token="wrong")[0] == 401
    assert app.request("/hooks/status", b"{nope", {"Authorization": "Bearer test-hook-token"})[0] == 400
    row = lead(db, lead_id)
    assert row.claimed_at is None and row.sql_at is None
    with db.begin() as s:
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.actor == "crm")) == 0


def test_a_loss_from_the_crm_reaches_marketing_with_its_reason(make_app, slack, db):
    app, clock, lead_id = setup(make_app)
    clock.set(jst(2026, 11, 30, 12, 0))
    _status, body = app.post_status({"external_id": "crm-1", "status": "lost", "reason": "went with a cheaper vendor",
                                    "note": "maybe next year"})
    assert body["results"][0]["applied"] is True
    row = lead(db, lead_id)
    assert row.lost_reason == "other" and row.outcome_note == "went with a cheaper vendor\nmaybe next year"
    assert row.claimed_at == row.lost_at and row.claimed_by is None  # nobody named: claimed by nobody in Slack
    app.drain()
    posts = [c for c in slack.calls_to("chat.postMessage") if c.params.get("channel") == MARKETING]
    assert len(posts) == 1
    text = json.dumps(posts[0].params["blocks"], ensure_ascii=False)
    assert "marked in the CRM" in text and "cheaper vendor" in text
    card = last_card(slack)
    assert "someone in the CRM" in card and "None" not in card
    lost = [b for b in events_of(db, lead_id) if b["type"] == "lead.lost"][0]
    assert lost["data"]["reason"] == "other" and lost["data"]["source"] == "crm"
    # a reason code is kept as the code, and the lead, closed, takes no other close
    app.post_leads({"email": "b@globex.example", "external_id": "crm-2", "score": 90})
    _, body = app.post_status({"updates": [{"external_id": "crm-2", "status": "disqualified", "reason": "SPAM"},
                                           {"external_id": "crm-1", "status": "disqualified", "reason": "spam"}]})
    assert [r["applied"] for r in body["results"]] == [True, False] and body["results"][1]["why"] == "not newer"
    second = lead(db, body["results"][0]["id"])
    assert second.disqualify_reason == "spam" and second.outcome_note is None


def test_at_is_kept_between_the_mql_and_now(make_app, slack, db):
    app, clock, lead_id = setup(make_app)
    second = app.post_leads({"email": "b@globex.example", "external_id": "crm-2", "score": 90})[1]["id"]
    now = jst(2026, 11, 30, 11, 0)
    clock.set(now)
    app.post_status({"external_id": "crm-1", "status": "contacted", "at": "2026-11-29T09:00:00+09:00", "by": REP})
    row = lead(db, lead_id)
    assert row.contacted_at == MQL_AT and row.claimed_at == MQL_AT  # before the MQL: the MQL's instant
    app.post_status({"external_id": "crm-1", "status": "sql", "at": "2027-01-01T00:00:00Z"})
    assert lead(db, lead_id).sql_at == now  # after now: now
    # between the MQL and now, `at` is kept as sent, even before a stage recorded in Slack
    app.click(ActionId.CLAIM, second, REP)
    assert wait_until(lambda: lead(db, second).claimed_at == now)
    app.post_status({"external_id": "crm-2", "status": "contacted", "at": "2026-11-30T10:45:00+09:00"})
    assert lead(db, second).contacted_at == jst(2026, 11, 30, 10, 45)


def test_by_an_email_is_the_slack_user_with_that_email(make_app, slack, db):
    slack.add_user(REP2, "ken", email="Ken@Acme-Sales.example")
    app, _clock, lead_id = setup(make_app)
    _, body = app.post_status({"external_id": "crm-1", "status": "contacted", "by": "ken@acme-sales.example"})
    assert body["results"][0]["applied"] is True
    assert lead(db, lead_id).claimed_by == REP2
    assert slack.calls_to("users.lookupByEmail")[-1].params["email"] == "ken@acme-sales.example"
    # an email Slack does not know: claimed by nobody, the email kept in the audit
    app.post_leads({"email": "b@globex.example", "external_id": "crm-2", "score": 90})
    _status, body = app.post_status({"external_id": "crm-2", "status": "contacted", "by": "nobody@globex.example"})
    second = body["results"][0]["id"]
    assert lead(db, second).claimed_by is None and lead(db, second).claimed_at is not None
    with db.begin() as s:
        detail = s.scalar(select(AuditEvent.detail).where(AuditEvent.lead_id == second, AuditEvent.action == "claimed"))
    assert detail["by"] == "nobody@globex.example"


def test_hubspot_workflow_bodies_map_lead_status_and_lifecycle_stage(make_app, slack, db):
    app, _clock, lead_id = setup(make_app)
    status, body = app.post_status({"hs_object_id": "crm-1", "hs_lead_status": "NEW", "email": "aya@acme.co.jp"})
    assert status == 200 and body["results"] == [{"id": lead_id, "applied": False, "why": "no status"}]
    status, body = app.post_status({"vid": 555, "properties": {"email": {"value": "aya@acme.co.jp"},
                                                               "hs_lead_status": {"value": "CONNECTED"},
                                                               "lifecyclestage": {"value": "opportunity"}}})
    assert body["results"] == [{"id": lead_id, "applied": True, "why": None}]
    row = lead(db, lead_id)
    assert row.sql_at is not None and row.contacted_at is None  # the later stage (sql) won
    status, body = app.post_status({"hs_object_id": "crm-1", "hs_lead_status": "BAD_TIMING"})
    assert body["results"][0]["applied"] is True and lead(db, lead_id).lost_reason == "timing"


def test_a_crm_status_stops_the_nags(make_app, slack, db):
    app, clock, lead_id = setup(make_app)
    app.post_status({"external_id": "crm-1", "status": "contacted", "by": REP})
    with db.begin() as s:
        ladders = set(s.scalars(select(SlaTimer.kind).where(SlaTimer.lead_id == lead_id)))
    assert ladders == {"outcome"}  # claim and contact done; the outcome is what is still awaited
    clock.set(MQL_AT + timedelta(days=1))
    sla_sweep(app.runtime.services)
    with db.begin() as s:
        reminders = [o.payload.get("action") for o in s.scalars(select(OutboxMessage).where(OutboxMessage.lead_id == lead_id))
                     if o.kind == "reminder"]
    assert not any(a and a.startswith(("claim", "contact")) for a in reminders), reminders


def test_a_click_after_the_crm_sees_the_crm_s_state(make_app, slack, db):
    app, _clock, lead_id = setup(make_app)
    app.post_status({"external_id": "crm-1", "status": "sql", "by": REP})
    app.click(ActionId.SQL, lead_id, REP)
    assert wait_until(lambda: any("already" in c.params.get("text", "").lower()
                                  for c in slack.calls_to("chat.postEphemeral")))
    assert lead(db, lead_id).sql_at is not None


# No echo: the write-back to HubSpot and HubSpot's workflow webhook back, run against the HubSpot stand-in --------
def workflow_fires(app, hubspot, contact) -> dict:
    """What a HubSpot workflow "when lead status or lifecycle stage changes → send a webhook" posts: the contact's
    chosen properties, flat, as HubSpot holds them now."""
    props = hubspot.contact(contact)
    body = {"hs_object_id": contact, "email": props.get("email"),
            **{k: props[k] for k in ("hs_lead_status", "lifecyclestage") if props.get(k)}}
    status, answer = app.post_status(body)
    assert status == 200, answer
    return answer["results"][0]


def written(db, lead_id) -> bool:
    from models.tables import CrmSync

    with db.begin() as s:
        row = s.scalars(select(CrmSync).where(CrmSync.lead_id == lead_id)).first()
        return row is not None and row.next_attempt_at is None and row.written == row.want


def test_write_back_and_status_in_never_loop(make_app, hubspot, slack, db):
    contact = hubspot.add_contact("aya@acme.co.jp", lifecyclestage="lead")
    clock = FakeClock(MQL_AT)
    app = make_app(now=clock, HUBSPOT_TOKEN=hubspot.token, HUBSPOT_API_URL=hubspot.url)
    _, body = app.post_leads({"email": "aya@acme.co.jp", "score": 88, "name": "Aya"})
    lead_id = body["id"]
    app.drain()
    assert wait_until(lambda: written(db, lead_id))
    clock.set(jst(2026, 11, 30, 10, 30))
    app.click(ActionId.CLAIM, lead_id, REP)
    assert wait_until(lambda: hubspot.contact(contact).get("hs_lead_status") == "IN_PROGRESS")
    app.click(ActionId.SQL, lead_id, REP)  # Handoff writes OPEN_DEAL and salesqualifiedlead
    assert wait_until(lambda: hubspot.contact(contact).get("lifecyclestage") == "salesqualifiedlead")
    assert wait_until(lambda: written(db, lead_id))
    writes = len(hubspot.calls_to("/contacts/batch/update"))
    for _ in range(3):  # the workflow fires on what Handoff wrote: ignored, so nothing is written again
        assert workflow_fires(app, hubspot, contact) == {"id": lead_id, "applied": False, "why": "echo"}
    app.drain()
    assert wait_until(lambda: written(db, lead_id))
    assert len(hubspot.calls_to("/contacts/batch/update")) == writes

    # An undo: Handoff holds "contacted" again and writes CONNECTED, never the stage backwards; HubSpot keeps
    # salesqualifiedlead, which Handoff wrote earlier: the workflow's body is still only an echo.
    app.click(ActionId.UNDO, lead_id, REP)
    assert wait_until(lambda: hubspot.contact(contact).get("hs_lead_status") == "CONNECTED")
    assert hubspot.contact(contact)["lifecyclestage"] == "salesqualifiedlead"
    assert wait_until(lambda: written(db, lead_id))
    assert workflow_fires(app, hubspot, contact)["why"] == "echo"
    assert lead(db, lead_id).sql_at is None

    # A rep changes the lead status in HubSpot itself: that is news, applied once, written back, then an echo.
    hubspot.edit_contact(contact, hs_lead_status="UNQUALIFIED")
    result = workflow_fires(app, hubspot, contact)
    assert result == {"id": lead_id, "applied": True, "why": None}
    assert lead(db, lead_id).disqualified_at is not None
    app.drain()
    assert wait_until(lambda: written(db, lead_id) and hubspot.contact(contact).get("handoff_status") == "disqualified")
    assert workflow_fires(app, hubspot, contact)["why"] in ("echo", "not newer")


def test_kpis_count_what_the_crm_recorded(make_app, slack, db):
    from models.kpi import compute, parse_period

    app, clock, _ = setup(make_app)
    app.post_leads({"email": "b@globex.example", "external_id": "crm-2", "score": 90})
    app.post_leads({"email": "c@initech.example", "external_id": "crm-3", "score": 90})
    clock.set(jst(2026, 11, 30, 15, 0))
    _, body = app.post_status({"updates": [
        {"external_id": "crm-1", "status": "contacted", "at": "2026-11-30T10:30:00+09:00", "by": REP},
        {"external_id": "crm-2", "status": "sql", "at": "2026-11-30T14:30:00+09:00"},
        {"external_id": "crm-3", "status": "won", "at": "2026-11-30T11:00:00+09:00", "by": REP2}]})
    assert all(r["applied"] for r in body["results"])
    settings = app.runtime.services.settings
    week = parse_period("week", "2026-W49", jst(2026, 12, 1, 9, 0), settings.tz)
    with db.begin() as s:
        report = compute(s, week, jst(2026, 12, 1, 9, 0), settings.clock)
    assert (report["mqls"], report["claimed"], report["contacted"], report["sqls"], report["won"]) == (3, 3, 1, 2, 1)
    assert report["claimed_in_sla"] == 2  # claimed at 10:30 and 11:00 (within the 60 minutes); 14:30 is not
    assert report["by_rep"][REP]["claimed"] == 1 and report["by_rep"][REP2]["claimed"] == 1


def test_slack_failing_the_email_lookup_still_applies_the_update(make_app, slack, db):
    slack.add_user(REP2, "ken", email="ken@acme-sales.example")
    app, _clock, lead_id = setup(make_app)
    slack.fail_next(1, 500, method="users.lookupByEmail")
    _, body = app.post_status({"external_id": "crm-1", "status": "contacted", "by": "ken@acme-sales.example"})
    assert body["results"][0]["applied"] is True
    row = lead(db, lead_id)
    assert row.contacted_at is not None and row.claimed_by is None  # unresolved: nobody in Slack, not lost
    with db.begin() as s:
        detail = s.scalar(select(AuditEvent.detail).where(AuditEvent.lead_id == lead_id, AuditEvent.action == "claimed"))
    assert detail["by"] == "ken@acme-sales.example"
    app.post_leads({"email": "b@globex.example", "external_id": "crm-2", "score": 90})
    _, body = app.post_status({"external_id": "crm-2", "status": "contacted", "by": "ken@acme-sales.example"})
    assert lead(db, body["results"][0]["id"]).claimed_by == REP2  # Slack answers again: found (a failure is not kept)


def test_a_slow_slack_holds_a_batch_for_the_lookup_budget_at_most(make_app, slack, db, monkeypatch):
    from handlers.status_hook import SlackDirectory

    monkeypatch.setattr(SlackDirectory, "BUDGET", 0.3)
    app, _clock, _ = setup(make_app)
    slack.slow_down("users.lookupByEmail", 0.2)
    updates = []
    for i in range(6):
        app.post_leads({"email": f"p{i}@globex.example", "external_id": f"g-{i}", "score": 90})
        updates.append({"external_id": f"g-{i}", "status": "contacted", "by": f"rep{i}@globex.example"})
    _, body = app.post_status({"updates": updates})
    assert all(r["applied"] for r in body["results"])
    assert len(slack.calls_to("users.lookupByEmail")) <= 3  # 0.3 s of 0.2 s calls: two, then no more asked
