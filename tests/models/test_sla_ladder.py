"""The SLA ladders as pure logic: steps, latest-step-only, business-hours gating, properties."""
from __future__ import annotations

from datetime import datetime, time, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from models import sla
from models.clock import BusinessClock

TOKYO = ZoneInfo("Asia/Tokyo")
CLOCK = BusinessClock(TOKYO, (time(9), time(18)), frozenset(range(5)), "JP")
POLICY = sla.SlaPolicy(clock=CLOCK, claim_minutes=240, contact_minutes=540)


def tokyo(*args) -> datetime:
    return datetime(*args, tzinfo=TOKYO)


def lead_at(mql: datetime, **extra):
    values = dict(mql_at=mql, claim_due=CLOCK.add_minutes(mql, 240), contact_due=CLOCK.add_minutes(mql, 540),
                  claimed_at=None, contacted_at=None, sql_at=None, won_at=None, lost_at=None,
                  disqualified_at=None, offered_to=None, offer_until=None)
    values.update(extra)
    return SimpleNamespace(**values)


def names(steps):
    return [(s.name, s.at.astimezone(TOKYO).strftime("%a %H:%M")) for s in steps]


def test_claim_ladder_in_one_working_day():
    steps = sla.steps("claim", lead_at(tokyo(2026, 11, 30, 10, 0)), POLICY)
    assert names(steps) == [("50", "Mon 12:00"), ("80", "Mon 13:12"), ("due", "Mon 14:00"),
                            ("escalate", "Mon 15:00")]


def test_claim_ladder_over_a_weekend_with_a_reminder_exactly_at_closing():
    steps = sla.steps("claim", lead_at(tokyo(2026, 11, 27, 16, 0)), POLICY)  # a Friday
    assert names(steps) == [("50", "Fri 18:00"), ("80", "Mon 10:12"), ("due", "Mon 11:00"),
                            ("escalate", "Mon 12:00")]


def test_claim_ladder_across_the_jp_holiday_monday():
    # 2026-11-23 is Labour Thanksgiving Day: Friday 17:00 + 4 business hours is Tuesday 12:00.
    steps = sla.steps("claim", lead_at(tokyo(2026, 11, 20, 17, 0)), POLICY)
    assert names(steps) == [("50", "Tue 10:00"), ("80", "Tue 11:12"), ("due", "Tue 12:00"),
                            ("escalate", "Tue 13:00")]


def test_contact_and_outcome_ladders():
    mql = tokyo(2026, 11, 30, 10, 0)
    contact = sla.steps("contact", lead_at(mql), POLICY)
    assert names(contact) == [("50", "Mon 14:30"), ("80", "Mon 17:12"), ("due", "Tue 10:00")]
    outcome = sla.steps("outcome", lead_at(mql, contacted_at=tokyo(2026, 11, 30, 11, 0)), POLICY)
    assert names(outcome) == [("1", "Mon 11:00"), ("2", "Mon 11:00"), ("3", "Mon 11:00")]
    assert [s.at.astimezone(TOKYO).date().isoformat() for s in outcome] == ["2026-12-07", "2026-12-14",
                                                                            "2026-12-21"]


def state(step=0, due=None, snoozes=0, snoozed_until=None):
    return sla.TimerState(step, due or tokyo(2026, 1, 1), snoozes, snoozed_until)


def test_each_step_in_turn():
    steps = sla.steps("claim", lead_at(tokyo(2026, 11, 30, 10, 0)), POLICY)
    d = sla.decide(steps, state(), tokyo(2026, 11, 30, 11, 59), CLOCK)
    assert d.fire is None and d.next_due == tokyo(2026, 11, 30, 12, 0)
    d = sla.decide(steps, state(), tokyo(2026, 11, 30, 12, 0), CLOCK)
    assert d.fire.name == "50" and d.next_step == 1 and d.next_due == tokyo(2026, 11, 30, 13, 12)
    d = sla.decide(steps, state(3), tokyo(2026, 11, 30, 15, 0), CLOCK)
    assert d.fire.name == "escalate" and d.next_due is None


def test_after_a_week_of_downtime_only_the_latest_step_goes():
    steps = sla.steps("claim", lead_at(tokyo(2026, 11, 30, 10, 0)), POLICY)
    d = sla.decide(steps, state(), tokyo(2026, 12, 7, 9, 30), CLOCK)
    assert d.fire.name == "escalate" and d.next_due is None


def test_nothing_at_night_then_once_at_the_opening():
    steps = sla.steps("claim", lead_at(tokyo(2026, 11, 30, 10, 0)), POLICY)
    night = tokyo(2026, 11, 30, 23, 0)
    d = sla.decide(steps, state(), night, CLOCK)
    assert d.fire is None and d.next_due == tokyo(2026, 12, 1, 9, 0) and d.next_step == 0
    d = sla.decide(steps, state(0, d.next_due), tokyo(2026, 12, 1, 9, 0), CLOCK)
    assert d.fire.name == "escalate"


def test_a_step_at_closing_time_may_still_go_just_after_closing():
    steps = sla.steps("claim", lead_at(tokyo(2026, 11, 27, 16, 0)), POLICY)
    assert sla.decide(steps, state(), tokyo(2026, 11, 27, 18, 5), CLOCK).fire.name == "50"
    late = sla.decide(steps, state(), tokyo(2026, 11, 27, 18, 30), CLOCK)
    assert late.fire is None and late.next_due == tokyo(2026, 11, 30, 9, 0)


def test_a_snooze_holds_everything_then_repeats_the_last_reminder_once():
    steps = sla.steps("contact", lead_at(tokyo(2026, 11, 30, 10, 0)), POLICY)
    until = tokyo(2026, 11, 30, 15, 40)
    held = sla.decide(steps, state(1, until, 1, until), tokyo(2026, 11, 30, 15, 0), CLOCK)
    assert held.fire is None and held.next_due == until
    back = sla.decide(steps, state(1, until, 1, until), until, CLOCK)
    assert back.fire.name == "50" and back.repeat and back.next_step == 1 and back.snoozed_until is None
    # a snooze that ends after the next step fell due sends that step instead, not the old one
    late = sla.decide(steps, state(1, until, 1, tokyo(2026, 11, 30, 17, 30)), tokyo(2026, 11, 30, 17, 30), CLOCK)
    assert late.fire.name == "80" and not late.repeat


def test_a_ladder_opened_late_skips_past_reminders_but_never_a_deadline():
    steps = sla.steps("contact", lead_at(tokyo(2026, 11, 30, 10, 0)), POLICY)
    assert sla.start_step(steps, tokyo(2026, 11, 30, 15, 0)) == 1
    assert sla.start_step(steps, tokyo(2026, 12, 2, 15, 0)) == 2  # the "due" step still fires


instants = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31)).map(
    lambda d: d.replace(tzinfo=TOKYO))


@hsettings(max_examples=300, deadline=None)
@given(mql=instants, later=st.integers(min_value=0, max_value=60 * 24 * 21), step=st.integers(0, 4))
def test_decide_properties(mql, later, step):
    steps = sla.steps("claim", lead_at(mql), POLICY)
    step = min(step, len(steps))
    now = mql + timedelta(minutes=later)
    d = sla.decide(steps, state(step), now, CLOCK)
    if d.fire is not None:
        due = [s for s in steps[step:] if s.at <= now]
        assert d.fire == due[-1]  # the latest due step, never a future one
        assert CLOCK.is_open(now) or CLOCK.is_closing(d.fire.at)  # people hear only in business hours
        again = sla.decide(steps, sla.TimerState(d.next_step, d.next_due or now, 0, None), now, CLOCK)
        assert again.fire is None  # deciding twice at the same instant sends nothing more
    else:  # nothing sent: the timer is not touched again before something can go
        assert d.next_due is None or d.next_due > now
    assert d.next_step >= step
