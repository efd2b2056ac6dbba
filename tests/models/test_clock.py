"""The business clock: nights, weekends, a Japanese holiday week, DST, and properties."""
from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from models.clock import BusinessClock

TOKYO = ZoneInfo("Asia/Tokyo")
BERLIN = ZoneInfo("Europe/Berlin")
NY = ZoneInfo("America/New_York")
WEEKDAYS = frozenset(range(5))


def jp() -> BusinessClock:
    return BusinessClock(TOKYO, (time(9), time(18)), WEEKDAYS, "JP")


def tokyo(*args) -> datetime:
    return datetime(*args, tzinfo=TOKYO)


def test_within_the_day():
    assert jp().add_minutes(tokyo(2026, 11, 25, 10, 0), 240) == tokyo(2026, 11, 25, 14, 0)


def test_deadline_can_fall_exactly_at_closing():
    assert jp().add_minutes(tokyo(2026, 11, 25, 14, 0), 240) == tokyo(2026, 11, 25, 18, 0)


def test_overnight_carries_to_the_next_opening():
    assert jp().add_minutes(tokyo(2026, 11, 25, 17, 0), 120) == tokyo(2026, 11, 26, 10, 0)


def test_mql_at_night_starts_at_the_next_opening():
    assert jp().add_minutes(tokyo(2026, 11, 25, 23, 30), 60) == tokyo(2026, 11, 26, 10, 0)
    assert jp().add_minutes(tokyo(2026, 11, 26, 6, 0), 60) == tokyo(2026, 11, 26, 10, 0)


def test_weekend_is_skipped():
    # Friday 2026-11-27 17:00 + 240 min: 60 on Friday, 180 on Monday
    assert jp().add_minutes(tokyo(2026, 11, 27, 17, 0), 240) == tokyo(2026, 11, 30, 12, 0)
    assert jp().add_minutes(tokyo(2026, 11, 28, 12, 0), 30) == tokyo(2026, 11, 30, 9, 30)


def test_japanese_holiday_week():
    # 2026-11-23 (Mon) is Labour Thanksgiving Day: the clock does not run.
    clock = jp()
    assert not clock.is_business_day(tokyo(2026, 11, 23).date())
    assert clock.add_minutes(tokyo(2026, 11, 23, 10, 0), 60) == tokyo(2026, 11, 24, 10, 0)
    assert clock.add_minutes(tokyo(2026, 11, 20, 17, 0), 120) == tokyo(2026, 11, 24, 10, 0)
    assert clock.minutes_between(tokyo(2026, 11, 20, 17, 0), tokyo(2026, 11, 24, 10, 0)) == 120


def test_golden_week_and_new_year():
    clock = jp()
    # 2026-05-04/05/06 are holidays (Greenery Day, Children's Day, substitute)
    assert clock.add_minutes(tokyo(2026, 5, 1, 17, 0), 120) == tokyo(2026, 5, 7, 10, 0)
    # 2027-01-01 (Fri) is a holiday, then a weekend
    assert clock.add_minutes(tokyo(2026, 12, 31, 17, 30), 60) == tokyo(2027, 1, 4, 9, 30)


def test_no_holidays_when_unset():
    clock = BusinessClock(TOKYO, (time(9), time(18)), WEEKDAYS, None)
    assert clock.add_minutes(tokyo(2026, 11, 23, 10, 0), 60) == tokyo(2026, 11, 23, 11, 0)


def test_dst_spring_forward_in_new_york():
    # 2026-03-08 02:00 EST → 03:00 EDT (a Sunday). Friday 17:00 + 120 → Monday 10:00 local.
    clock = BusinessClock(NY, (time(9), time(17)), WEEKDAYS, "US")
    start = datetime(2026, 3, 6, 16, 0, tzinfo=NY)
    due = clock.add_minutes(start, 120)
    assert due == datetime(2026, 3, 9, 10, 0, tzinfo=NY)
    assert due.astimezone(UTC) - start.astimezone(UTC) == timedelta(days=2, hours=17)
    assert clock.minutes_between(start, due) == 120


def test_dst_inside_working_hours_counts_real_minutes():
    # A 24/7-days clock whose working day spans the Berlin autumn change (03:00 → 02:00 on 2026-10-25).
    clock = BusinessClock(BERLIN, (time(0), time(6)), frozenset(range(7)), None)
    d = datetime(2026, 10, 25, 0, 0, tzinfo=BERLIN)
    # that "6-hour" window is 7 real hours long
    assert clock.minutes_between(d, datetime(2026, 10, 25, 6, 0, tzinfo=BERLIN)) == 7 * 60


def test_calendar_time_when_hours_empty():
    clock = BusinessClock(TOKYO, None, WEEKDAYS, "JP")
    start = tokyo(2026, 11, 28, 23, 0)  # a Saturday night
    assert clock.add_minutes(start, 240) == start + timedelta(minutes=240)
    assert clock.minutes_between(start, start + timedelta(hours=30)) == 1800


def test_measuring_backwards_is_zero_and_naive_is_refused():
    clock = jp()
    assert clock.minutes_between(tokyo(2026, 11, 25, 12), tokyo(2026, 11, 25, 11)) == 0
    with pytest.raises(ValueError):
        clock.add_minutes(datetime(2026, 11, 25, 12), 10)


def test_next_opening_and_is_open():
    clock = jp()
    assert clock.is_open(tokyo(2026, 11, 25, 9, 0))
    assert not clock.is_open(tokyo(2026, 11, 25, 18, 0))
    assert clock.next_opening(tokyo(2026, 11, 25, 18, 0)) == tokyo(2026, 11, 26, 9, 0)
    assert clock.next_opening(tokyo(2026, 11, 21, 12, 0)) == tokyo(2026, 11, 24, 9, 0)


instants = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31),
                        timezones=st.just(UTC))


@hsettings(max_examples=200, deadline=None)
@given(start=instants, minutes=st.integers(min_value=1, max_value=5000))
def test_adding_then_measuring_gives_back_the_minutes(start, minutes):
    clock = jp()
    due = clock.add_minutes(start, minutes)
    assert due > start
    assert clock.minutes_between(start, due) == pytest.approx(minutes, abs=1e-6)
    # and it is the earliest such instant: one minute less was not enough
    assert clock.minutes_between(start, due - timedelta(minutes=1)) < minutes


@hsettings(max_examples=150, deadline=None)
@given(start=instants, minutes=st.integers(min_value=1, max_value=3000),
       zone=st.sampled_from([BERLIN, NY, ZoneInfo("Australia/Sydney")]))
def test_properties_hold_across_dst_zones(start, minutes, zone):
    clock = BusinessClock(zone, (time(8, 30), time(17, 30)), WEEKDAYS, None)
    due = clock.add_minutes(start, minutes)
    assert clock.minutes_between(start, due) == pytest.approx(minutes, abs=1e-6)
    assert clock.is_open(due - timedelta(seconds=1))


@hsettings(max_examples=150, deadline=None)
@given(a=instants, b=instants, c=instants)
def test_measuring_is_additive(a, b, c):
    a, b, c = sorted([a, b, c])
    clock = jp()
    assert clock.minutes_between(a, c) == pytest.approx(clock.minutes_between(a, b) + clock.minutes_between(b, c))


@hsettings(max_examples=300, deadline=None)
@given(a=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31)),
       minutes=st.integers(min_value=0, max_value=60 * 24 * 40), zone=st.sampled_from([TOKYO, BERLIN, NY]))
def test_cumulative_measures_like_minutes_between(a, minutes, zone):
    clock = BusinessClock(zone, (time(9), time(18)), WEEKDAYS, "JP" if zone is TOKYO else "DE")
    start = a.replace(tzinfo=zone)
    end = start + timedelta(minutes=minutes)
    assert abs((clock.cumulative(end) - clock.cumulative(start)) - clock.minutes_between(start, end)) < 1e-6


@hsettings(max_examples=100, deadline=None)
@given(moments=st.lists(st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2027, 12, 31),
                                     timezones=st.just(UTC)), min_size=1, max_size=40),
       zone=st.sampled_from([TOKYO, BERLIN, NY]), hours=st.sampled_from([(time(9), time(18)), None]),
       naive=st.booleans())
def test_cumulative_many_is_cumulative_of_each(moments, zone, hours, naive):
    """The vectorised form (KPI medians) agrees with the scalar one, for aware and stored (naive UTC) values."""
    clock = BusinessClock(zone, hours, WEEKDAYS, "JP" if zone is TOKYO else "DE")
    given_ = [m.replace(tzinfo=None) for m in moments] if naive else moments
    many = clock.cumulative_many(given_)
    assert many.tolist() == pytest.approx([clock.cumulative(m) for m in moments], abs=1e-6)


def test_cumulative_many_of_nothing():
    assert jp().cumulative_many([]).tolist() == []
