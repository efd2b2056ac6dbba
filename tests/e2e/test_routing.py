"""Routing at MQL time (docs/routing.md), from outside: leads posted to the webhook, cards and reminders as
the Slack stand-in records them, the sweep at explicit instants, signed clicks. Each team's card goes to its
channel with why, its reminders and escalations to its people, with its SLA and its own rotation."""
from __future__ import annotations

import json
import textwrap
import threading
from datetime import timedelta

from sqlalchemy import select

from blocks.ids import ActionId
from models.tables import AssignmentState, AuditEvent, OutOfOffice
from standin import slack_requests
from tests.conftest import MANAGER, jst, wait_until
from tests.jobs.test_sla_sweep import click, lead, new_lead, posts, start, sweep, text_of

INSIDE, FIELD = "C0ISALES", "C0FSALES"
INSIDE_MGR, FIELD_MGR = "U0MGR1", "U0MGR2"
ROUTING = textwrap.dedent(f"""\
    teams:
      inside-sales:
        name: インサイドセールス
        channel: {INSIDE}
        managers: [{INSIDE_MGR}]
        reps: [UREP1, UREP2]
        assignment: round-robin
        sla_claim_minutes: 60
        sla_contact_minutes: 240
        next: field-sales
      field-sales:
        name: Field sales
        channel: {FIELD}
        managers: [{FIELD_MGR}]
        reps: [UREP7, UREP8]
        sla_claim_minutes: 480
    account_owner_days: 180
    rules:
      - when: {{score: ">=90", attributes.employees: ">=1000"}}
        team: field-sales
      - when: {{source: [webinar, seminar]}}
        team: inside-sales
      - team: inside-sales
    """)


MONDAY = jst(2026, 11, 30, 10, 0)


def routed_app(make_app, tmp_path, at=MONDAY, **settings):
    path = tmp_path / "routing.yml"
    path.write_text(ROUTING, encoding="utf-8")
    return start(make_app, at, ROUTING_FILE=str(path), **settings)


def hours(n: float):
    return MONDAY + timedelta(hours=n)


def card_in(slack, channel):
    return [c for c in posts(slack, channel) if not c.params.get("thread_ts")]


def test_each_mql_goes_to_its_teams_channel_with_its_sla_and_why(make_app, slack, db, tmp_path):
    app, _ = routed_app(make_app, tmp_path)
    big = new_lead(app, slack, email="cio@big.example", score=95, attributes={"employees": "5000"})
    small = new_lead(app, slack, email="a@small.example", score=95, source="ads")
    assert (lead(db, big).team, lead(db, big).routed_by) == ("field-sales", "rule:1")
    assert (lead(db, small).team, lead(db, small).routed_by) == ("inside-sales", "rule:3")
    # each team's SLA, in business minutes from the MQL (Monday 10:00 Tokyo)
    assert lead(db, big).claim_due == hours(8)  # 480 minutes: 18:00 the same day
    assert lead(db, small).claim_due == hours(1)  # 60 minutes
    [field_card] = card_in(slack, FIELD)
    [inside_card] = card_in(slack, INSIDE)
    assert "Team *Field sales* (routing rule 1)" in text_of(field_card)
    assert "Team *インサイドセールス* (routing rule 3)" in text_of(inside_card)
    assert card_in(slack, "C0HANDOFF") == []  # HANDOFF_CHANNEL is not a team's


def test_round_robin_turns_within_each_team_and_skips_who_is_away(make_app, slack, db, tmp_path):
    app, _ = routed_app(make_app, tmp_path)
    first = new_lead(app, slack, email="a@one.example", score=80, source="webinar")
    second = new_lead(app, slack, email="b@two.example", score=80, source="seminar")
    assert (lead(db, first).offered_to, lead(db, second).offered_to) == ("UREP1", "UREP2")
    assert lead(db, new_lead(app, slack, email="c@big.example", score=95,
                             attributes={"employees": 2000})).offered_to is None  # field-sales: first click wins
    with db.begin() as s:
        assert {r.name: r.last_user for r in s.scalars(select(AssignmentState))} == \
            {"round-robin:inside-sales": "UREP2"}
    status, _ = app.slack_post(slack_requests.slash_command("/handoff", "ooo until 2026-12-31", "UREP1", INSIDE))
    assert status == 200
    with db.begin() as s:
        assert s.get(OutOfOffice, "UREP1") is not None
    assert wait_until(lambda: lead(db, new_lead(app, slack, email="d@three.example", score=80)).offered_to == "UREP2")


def test_reminders_and_escalations_reach_the_teams_people_only(make_app, slack, db, tmp_path):
    app, clock = routed_app(make_app, tmp_path)
    big = new_lead(app, slack, email="cio@big.example", score=95, attributes={"employees": "5000"})
    card_ts = lead(db, big).card_ts
    sweep(app, clock, hours(4))  # 50 % of field-sales' 480 minutes
    [reminder] = [c for c in posts(slack, FIELD) if c.params.get("thread_ts") == card_ts]
    assert "4 h 0 min left to claim" in reminder.params["text"]
    sweep(app, clock, hours(8))  # due: the team's managers are named
    due = [c for c in posts(slack, FIELD) if c.params.get("thread_ts") == card_ts][-1]
    assert f"<@{FIELD_MGR}>" in due.params["text"] and f"<@{MANAGER}>" in due.params["text"]
    assert f"<@{INSIDE_MGR}>" not in due.params["text"]
    sweep(app, clock, hours(24))  # escalated
    assert len(posts(slack, FIELD_MGR)) == 1 and len(posts(slack, MANAGER)) == 1
    assert posts(slack, INSIDE_MGR) == []


def test_a_teams_manager_manages_its_leads_and_not_another_teams(make_app, slack, db, tmp_path):
    app, _ = routed_app(make_app, tmp_path)
    big = new_lead(app, slack, email="cio@big.example", score=95, attributes={"employees": "5000"})
    click(app, ActionId.CLAIM, big, "UREP7", channel=FIELD)
    assert wait_until(lambda: lead(db, big).claimed_by == "UREP7")
    pick = slack_requests.users_select_action(ActionId.REASSIGN, f"reassign:{big}", "UREP8", INSIDE_MGR, "DMGR1")
    assert app.slack_post(pick)[0] == 200
    notice = slack.wait_calls("chat.postEphemeral", 1)[0]
    assert "Only sales managers" in notice.params["text"] and lead(db, big).claimed_by == "UREP7"
    pick = slack_requests.users_select_action(ActionId.REASSIGN, f"reassign:{big}", "UREP8", FIELD_MGR, "DMGR2")
    assert app.slack_post(pick)[0] == 200
    assert wait_until(lambda: lead(db, big).claimed_by == "UREP8")


def test_the_account_owner_gets_the_companys_next_mql_first(make_app, slack, db, tmp_path):
    app, clock = routed_app(make_app, tmp_path)
    first = new_lead(app, slack, email="cio@acme.co.jp", score=95, attributes={"employees": "5000"})
    click(app, ActionId.CLAIM, first, "UREP8", channel=FIELD)
    assert wait_until(lambda: lead(db, first).claimed_by == "UREP8")
    free = new_lead(app, slack, email="someone@gmail.com", score=95, attributes={"employees": "5000"})
    click(app, ActionId.CLAIM, free, "UREP8", channel=FIELD)
    assert wait_until(lambda: lead(db, free).claimed_by == "UREP8")

    clock.set(hours(2))
    again = new_lead(app, slack, email="buyer@ACME.co.jp", score=80, source="webinar")  # the rules say inside
    assert (lead(db, again).team, lead(db, again).routed_by, lead(db, again).offered_to) == \
        ("field-sales", "account:UREP8", "UREP8")
    card = card_in(slack, FIELD)[-1]
    assert "Team *Field sales*: <@UREP8> owns this company's account" in text_of(card)
    assert any("UREP8" == c.params["channel"] for c in posts(slack, "UREP8"))  # told by DM
    # only they (or a manager) may claim it while the offer lasts
    click(app, ActionId.CLAIM, again, "UREP7", channel=FIELD)
    app.runtime.settle(10)
    assert lead(db, again).claimed_by is None

    other = new_lead(app, slack, email="friend@gmail.com", score=80, source="webinar")  # free mail: no owner
    assert (lead(db, other).team, lead(db, other).routed_by) == ("inside-sales", "rule:2")

    clock.set(MONDAY + timedelta(days=181))  # the owner's claim is older than account_owner_days
    late = new_lead(app, slack, email="cto@acme.co.jp", score=80, source="webinar")
    assert (lead(db, late).team, lead(db, late).routed_by) == ("inside-sales", "rule:2")


def home_of(app, slack, user) -> str:
    import json

    body = slack_requests.app_home_opened(user)
    headers = {**slack_requests.signed_headers("test-signing-secret", body), "Content-Type": "application/json"}
    assert app.request("/slack/events", body, headers)[0] == 200
    assert wait_until(lambda: user in slack.homes)
    return json.dumps(slack.homes[user], ensure_ascii=False)


def test_app_home_shows_a_teams_manager_its_queue_and_every_manager_the_rules(make_app, slack, db, tmp_path):
    app, _ = routed_app(make_app, tmp_path)
    new_lead(app, slack, email="cio@big.example", score=95, company="Bigco", attributes={"employees": "5000"})
    new_lead(app, slack, email="a@small.example", score=95, company="Smallco", source="ads")
    field_home = home_of(app, slack, FIELD_MGR)
    assert "Team: unclaimed (1)" in field_home and "Bigco" in field_home and "Smallco" not in field_home
    assert "Teams and routing rules" in field_home
    assert "inside-sales (インサイドセールス): channel C0ISALES" in field_home
    assert "1 (line 19): score &gt;=90, attributes.employees &gt;=1000 → field-sales (Field sales)" in field_home
    everyone = home_of(app, slack, MANAGER)  # MANAGER_IDS: every team's queue
    assert "Team: unclaimed (2)" in everyone and "Teams and routing rules" in everyone
    rep = home_of(app, slack, "UREP7")
    assert "Team: unclaimed" not in rep and "Teams and routing rules" not in rep


def test_a_teams_manager_sets_its_reps_away_and_not_another_teams(make_app, slack, db, tmp_path):
    app, _ = routed_app(make_app, tmp_path)

    def away(manager, rep, channel):
        command = slack_requests.slash_command("/handoff", f"ooo <@{rep}|x> until 2026-12-31", manager, channel)
        return app.slack_post(command)

    away(FIELD_MGR, "UREP1", FIELD)
    away(INSIDE_MGR, "UREP2", INSIDE)
    with db.begin() as s:
        assert s.get(OutOfOffice, "UREP1") is None  # not field sales' rep
        assert s.get(OutOfOffice, "UREP2") is not None


# The second handoff ---------------------------------------------------------------------------------------
def qualified(app, slack, db, clock, email="lead@acme.example", note="Budget approved; wants a demo in Osaka"):
    """An MQL of inside sales, claimed by UREP1 and handed to field sales with `note`; its id."""
    from blocks.ids import BlockId, CallbackId
    from blocks.outcome import VALUE

    lead_id = new_lead(app, slack, email=email, score=80, company="Acme", source="webinar")
    click(app, ActionId.CLAIM, lead_id, "UREP1", channel=INSIDE)
    assert wait_until(lambda: lead(db, lead_id).claimed_by == "UREP1")
    clock.set(hours(0.5))
    opened = len(slack.calls_to("views.open"))
    click(app, ActionId.SQL, lead_id, "UREP1", channel=INSIDE)
    assert wait_until(lambda: len(slack.calls_to("views.open")) > opened)
    view = slack.calls_to("views.open")[-1].params["view"]
    assert view["callback_id"] == CallbackId.QUALIFY and view["private_metadata"] == str(lead_id)
    assert "Field sales" in json.dumps(view, ensure_ascii=False)
    values = slack_requests.text_value(BlockId.NOTE, VALUE, note)
    status, _ = app.slack_post(slack_requests.view_submission(CallbackId.QUALIFY, str(lead_id), "UREP1", values))
    assert status == 200
    app.drain()
    return lead_id


def test_an_sql_of_inside_sales_is_handed_to_field_sales_with_one_card(make_app, slack, db, tmp_path):
    app, clock = routed_app(make_app, tmp_path)
    lead_id = qualified(app, slack, db, clock)
    handed = lead(db, lead_id)
    assert (handed.sql_at, handed.qualified_by, handed.handed_to) == (hours(0.5), "UREP1", "field-sales")
    # 480 business minutes from sql_at (Monday 10:30 Tokyo, open 9:00-18:00): Tuesday 9:30
    assert handed.handed_claim_due == jst(2026, 12, 1, 9, 30) and handed.team == "inside-sales"
    assert handed.handed_note == "Budget approved; wants a demo in Osaka"
    [second] = card_in(slack, FIELD)
    text = text_of(second)
    assert "Qualified lead: Acme" in text and "Qualified by <@UREP1> (インサイドセールス) and handed to Field sales" in text
    assert "Budget approved; wants a demo in Osaka" in text and "claimed by <@UREP1>" in text
    claim_button = [e for b in second.params["blocks"] if b["type"] == "actions" for e in b["elements"]][0]
    assert claim_button["action_id"] == ActionId.CLAIM and claim_button["value"] == f"{lead_id}:handed"
    first_card = [c for c in slack.calls_to("chat.update") if c.params["ts"] == handed.card_ts][-1]
    assert "handed to *Field sales*" in text_of(first_card)

    # field sales claims it with the same button: the owner moves, the first claim stays as it was
    click(app, ActionId.CLAIM, f"{lead_id}:handed", "UREP7", channel=FIELD)
    assert wait_until(lambda: lead(db, lead_id).handed_claimed_by == "UREP7")
    click(app, ActionId.CLAIM, f"{lead_id}:handed", "UREP8", channel=FIELD)
    app.runtime.settle(10)
    app.drain()
    taken = lead(db, lead_id)
    assert (taken.owner, taken.claimed_by, taken.team, taken.handed_claimed_by) == \
        ("UREP7", "UREP1", "inside-sales", "UREP7")
    assert any("already" in c.params["text"] for c in slack.calls_to("chat.postEphemeral")
               if c.params["user"] == "UREP8")
    # the new owner records the outcome; the qualifier no longer can
    click(app, ActionId.WON, lead_id, "UREP1", channel=FIELD)
    app.runtime.settle(10)
    assert lead(db, lead_id).won_at is None
    click(app, ActionId.WON, lead_id, "UREP7", channel=FIELD)
    assert wait_until(lambda: lead(db, lead_id).won_at is not None)
    app.drain()
    assert len(card_in(slack, FIELD)) == 1  # one card per stage, ever
    updated = [c for c in slack.calls_to("chat.update") if c.params["ts"] == lead(db, lead_id).handed_card_ts]
    assert updated and "Won" in text_of(updated[-1])


def test_a_handed_sql_is_reminded_and_escalated_to_the_receiving_team(make_app, slack, db, tmp_path):
    app, clock = routed_app(make_app, tmp_path)
    lead_id = qualified(app, slack, db, clock)
    card_ts = lead(db, lead_id).handed_card_ts
    sweep(app, clock, hours(4.5))  # half of field sales' 480 minutes since sql_at
    [nag] = [c for c in posts(slack, FIELD) if c.params.get("thread_ts") == card_ts]
    assert "4 h 0 min left to take this qualified lead" in nag.params["text"]
    sweep(app, clock, jst(2026, 12, 1, 9, 30))
    due = [c for c in posts(slack, FIELD) if c.params.get("thread_ts") == card_ts][-1]
    assert f"<@{FIELD_MGR}>" in due.params["text"] and f"<@{INSIDE_MGR}>" not in due.params["text"]
    sweep(app, clock, jst(2026, 12, 1, 10, 30))  # an hour of grace (ESCALATION_GRACE_MINUTES)
    assert len(posts(slack, FIELD_MGR)) == 1 and posts(slack, INSIDE_MGR) == []
    # the escalation's reassign gives it to a field rep: that is the receiving team's claim
    pick = slack_requests.users_select_action(ActionId.REASSIGN, f"reassign:{lead_id}", "UREP8", FIELD_MGR, "DMGR2")
    assert app.slack_post(pick)[0] == 200
    assert wait_until(lambda: lead(db, lead_id).handed_claimed_by == "UREP8")
    assert lead(db, lead_id).claimed_by == "UREP1"


def test_the_hand_over_happens_once_however_often_the_form_is_sent(make_app, slack, db, tmp_path):
    from blocks.ids import BlockId, CallbackId
    from blocks.outcome import VALUE

    app, clock = routed_app(make_app, tmp_path)
    lead_id = qualified(app, slack, db, clock)
    values = slack_requests.text_value(BlockId.NOTE, VALUE, "again")
    body = slack_requests.view_submission(CallbackId.QUALIFY, str(lead_id), "UREP1", values)
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(app.slack_post(body))) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    app.drain()
    assert all(status == 200 for status, _ in answers)
    assert len(card_in(slack, FIELD)) == 1 and lead(db, lead_id).handed_note != "again"
    with db.begin() as s:
        assert len(s.scalars(select(AuditEvent).where(AuditEvent.action == "handed_over")).all()) == 1


def test_without_a_next_team_sql_is_one_click_as_before(make_app, slack, db, tmp_path):
    app, _ = routed_app(make_app, tmp_path)
    big = new_lead(app, slack, email="cio@big.example", score=95, attributes={"employees": "5000"})
    click(app, ActionId.CLAIM, big, "UREP7", channel=FIELD)
    assert wait_until(lambda: lead(db, big).claimed_by == "UREP7")
    click(app, ActionId.SQL, big, "UREP7", channel=FIELD)
    assert wait_until(lambda: lead(db, big).sql_at is not None)
    assert lead(db, big).handed_to is None and slack.calls_to("views.open") == []


# KPIs per team and per stage -------------------------------------------------------------------------------
def test_kpis_per_team_and_for_the_second_handoff(make_app, slack, db, tmp_path):
    from models.kpi import HANDED_IN_KEYS, KEYS, compute, parse_period
    from models.teams import Teams

    app, clock = routed_app(make_app, tmp_path)
    handed = qualified(app, slack, db, clock)  # inside sales: MQL 10:00, claimed, SQL 10:30, handed to field sales
    clock.set(hours(1))
    click(app, ActionId.CLAIM, f"{handed}:handed", "UREP7", channel=FIELD)  # taken 30 business minutes later
    assert wait_until(lambda: lead(db, handed).handed_claimed_by == "UREP7")
    big = new_lead(app, slack, email="cio@big.example", score=95, attributes={"employees": "5000"})
    new_lead(app, slack, email="low@small.example", score=10)  # below the threshold: no team's
    settings = app.runtime.services.settings
    teams = Teams.from_settings(settings)
    week = parse_period("week", "2026-W49", MONDAY, settings.tz)
    with db.begin() as s:
        everyone = compute(s, week, hours(2), settings.clock, **teams.kpi_scope(None))
        inside = compute(s, week, hours(2), settings.clock, **teams.kpi_scope("inside-sales"))
        field = compute(s, week, hours(2), settings.clock, **teams.kpi_scope("field-sales"))
    assert everyone["leads"] == 3 and everyone["mqls"] == 2 and "team" not in everyone
    assert everyone["by_team"] == {
        "field-sales": {"mqls": 1, "claimed": 0, "claimed_in_sla": 0, "claim_sla_rate": None, "sqls": 0},
        "inside-sales": {"mqls": 1, "claimed": 1, "claimed_in_sla": 1, "claim_sla_rate": 1.0, "sqls": 1}}
    assert (inside["team"], inside["leads"], inside["mqls"], inside["sqls"]) == ("inside-sales", 1, 1, 1)
    assert set(inside) == {*KEYS, "period", "start", "end", "as_of", "team"}  # hands SQLs on, receives none
    assert (field["team"], field["mqls"], field["claimed"], field["sqls"]) == ("field-sales", 1, 0, 0)
    assert {k: field[k] for k in HANDED_IN_KEYS} == {
        "handed_in": 1, "handed_in_claimed": 1, "handed_in_claimed_in_sla": 1, "handed_in_claim_sla_rate": 1.0,
        "median_handed_in_claim_minutes": 30.0}
    assert lead(db, big).team == "field-sales"

    # /kpi: MANAGER_IDS see every team, a team's manager their own team, and nobody an unknown one
    def kpi(text, user):
        status, body = app.slack_post(slack_requests.slash_command("/kpi", text, user, FIELD))
        assert status == 200
        return json.dumps(body, ensure_ascii=False)

    clock.set(hours(2))
    assert "By team" in kpi("week 2026-W49", MANAGER) and "field-sales" in kpi("week", MANAGER)
    mine = kpi("week 2026-W49", FIELD_MGR)
    assert "team Field sales" in mine or "team field-sales" in mine
    assert "Handed in: 1 SQLs" in mine
    assert "teams you manage" in kpi("week inside-sales", FIELD_MGR)
    assert "not a team of the routing file" in kpi("week field-sale", MANAGER)
    assert "for sales managers" in kpi("week", "UREP7")


def test_kpi_command_line_with_a_team(make_app, slack, db, tmp_path):
    from tests.test_cli import run_bot

    app, clock = routed_app(make_app, tmp_path)
    qualified(app, slack, db, clock)
    env = {"DATABASE_URL": db.url, "ROUTING_FILE": str(tmp_path / "routing.yml")}
    res = run_bot("kpi", "week", "2026-W49", "--team", "field-sales", "--format", "json", "--at",
                  hours(3).isoformat(), env_extra=env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["team"] == "field-sales" and report["handed_in"] == 1 and report["handed_in_claimed"] == 0
    res = run_bot("kpi", "week", "--team", "nope", env_extra=env, cwd=tmp_path)
    assert res.returncode == 2 and "nope is not a team of the routing file (teams: inside-sales, field-sales)" in res.stderr
    everyone = json.loads(run_bot("kpi", "week", "2026-W49", "--format", "json", "--at", hours(3).isoformat(),
                                  env_extra=env, cwd=tmp_path).stdout)
    assert set(everyone["by_team"]) == {"inside-sales", "field-sales"}


def test_the_digest_has_a_line_per_team_and_the_retro_the_second_handoff(make_app, slack, db, tmp_path):
    from jobs.scheduler import monthly_retro, weekly_digest

    app, clock = routed_app(make_app, tmp_path)
    handed = qualified(app, slack, db, clock)
    click(app, ActionId.CLAIM, f"{handed}:handed", "UREP7", channel=FIELD)
    assert wait_until(lambda: lead(db, handed).handed_claimed_by == "UREP7")
    new_lead(app, slack, email="cio@big.example", score=95, attributes={"employees": "5000"})
    posted = len(slack.calls_to("chat.postMessage"))
    clock.set(jst(2026, 12, 1, 10, 0))  # the first business day of December: November's retro
    assert monthly_retro(app.runtime.services) is True
    app.drain()
    retro = json.dumps(slack.calls_to("chat.postMessage")[posted].params["blocks"], ensure_ascii=False)
    assert "field-sales, second handoff: 1 SQLs handed in · taken within SLA 100.0% (1 of 1)" in retro
    posted = len(slack.calls_to("chat.postMessage"))
    clock.set(jst(2026, 12, 7, 9, 0))  # Monday: the digest of 2026-W49
    assert weekly_digest(app.runtime.services) is True
    app.drain()
    digest = json.dumps(slack.calls_to("chat.postMessage")[posted].params["blocks"], ensure_ascii=False)
    assert "By team" in digest and "• field-sales: 1 MQLs" in digest
    assert "• inside-sales: 1 MQLs · claimed within SLA 100.0% (1 of 1)" in digest


def test_a_handed_sql_waits_in_the_receiving_managers_home_until_taken(make_app, slack, db, tmp_path):
    app, clock = routed_app(make_app, tmp_path)
    handed = qualified(app, slack, db, clock)
    field_home = home_of(app, slack, FIELD_MGR)
    assert "Team: unclaimed (1)" in field_home and "Acme" in field_home
    slack.homes.clear()
    click(app, ActionId.CLAIM, f"{handed}:handed", "UREP7", channel=FIELD)
    assert wait_until(lambda: lead(db, handed).handed_claimed_by == "UREP7")
    assert "Team: unclaimed (0)" in home_of(app, slack, FIELD_MGR)
    assert "Your open leads (1)" in home_of(app, slack, "UREP7")  # the owner now
    assert "Your open leads (0)" in home_of(app, slack, "UREP1")  # qualified and handed on
