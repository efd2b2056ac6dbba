"""The business clock: adds and measures business minutes (docs/kpi.md, "Business time").

Pure: every function takes the instants it works on; nothing reads the wall
clock. Instants are timezone-aware datetimes; arithmetic happens in UTC so a
working day that contains a DST change counts its real length.
"""
from __future__ import annotations

import threading
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays as holidays_lib
import numpy as np
import pandas as pd

_MAX_DAYS = 3700  # ten years: a calendar with no working day in it is a bug
_EPOCH = date(2000, 1, 3)  # a Monday; `cumulative` counts business minutes from here
_ORIGIN_DT = datetime(2000, 1, 3, tzinfo=UTC)  # calendar minutes are measured from here
_ORIGIN = pd.Timestamp(_ORIGIN_DT)


class BusinessClock:
    def __init__(self, tz: ZoneInfo, hours: tuple[time, time] | None,
                 days: frozenset[int] = frozenset(range(5)), holiday_country: str | None = None):
        self.tz = tz
        self.hours = hours
        self.days = frozenset(days)
        self._holidays = holidays_lib.country_holidays(holiday_country) if holiday_country else None
        self._lock = threading.Lock()
        self._cum: list[float] = []  # business minutes before each day since _EPOCH (see `cumulative`)
        self._wins: list[tuple[datetime, datetime] | None] = []  # each of those days' window
        self._arrays = None  # (cum, open, close) as numpy arrays in minutes, for `cumulative_many`
        self._cum_lock = threading.Lock()
        if not self.days:
            raise ValueError("a business clock needs at least one working day")

    # Calendar ---------------------------------------------------------------
    def is_business_day(self, d: date) -> bool:
        if d.weekday() not in self.days:
            return False
        if self._holidays is None:
            return True
        with self._lock:  # the holidays object fills in years lazily
            return d not in self._holidays

    def window(self, d: date) -> tuple[datetime, datetime] | None:
        """The working interval of local date `d` as UTC instants, or None."""
        if self.hours is None or not self.is_business_day(d):
            return None
        start = datetime.combine(d, self.hours[0], tzinfo=self.tz).astimezone(UTC)
        end = datetime.combine(d, self.hours[1], tzinfo=self.tz).astimezone(UTC)
        return start, end

    def _days_from(self, instant: datetime):
        d = instant.astimezone(self.tz).date()
        for _ in range(_MAX_DAYS):
            yield d
            d += timedelta(days=1)
        raise ValueError("no working time within ten years; check BUSINESS_DAYS and HOLIDAYS")

    # Arithmetic -------------------------------------------------------------
    def add_minutes(self, start: datetime, minutes: float) -> datetime:
        """The earliest instant at which `minutes` business minutes have passed since `start`."""
        start = _aware(start)
        if minutes <= 0:
            return start
        if self.hours is None:
            return start + timedelta(minutes=minutes)
        remaining = timedelta(minutes=minutes)
        for d in self._days_from(start):
            win = self.window(d)
            if win is None:
                continue
            opens, closes = win
            begin = max(opens, start)
            if begin >= closes:
                continue
            available = closes - begin
            if remaining <= available:
                return begin + remaining
            remaining -= available
        raise AssertionError("unreachable")

    def minutes_between(self, a: datetime, b: datetime) -> float:
        """Business minutes in [a, b); 0 when b is not after a."""
        a, b = _aware(a), _aware(b)
        if b <= a:
            return 0.0
        if self.hours is None:
            return (b - a).total_seconds() / 60
        total = timedelta(0)
        last = b.astimezone(self.tz).date()
        for d in self._days_from(a):
            if d > last:
                break
            win = self.window(d)
            if win is None:
                continue
            lo, hi = max(win[0], a), min(win[1], b)
            if hi > lo:
                total += hi - lo
        return total.total_seconds() / 60

    def cumulative(self, at: datetime) -> float:
        """Business minutes from a fixed origin to `at`: minutes_between(a, b) == cumulative(b) - cumulative(a).

        O(1) after the first call for a date range (a prefix sum per day), for measuring many
        intervals at once (KPI medians over a month of leads).
        """
        at = _aware(at)
        if self.hours is None:
            return (at - _ORIGIN_DT).total_seconds() / 60
        d = at.astimezone(self.tz).date()
        i = (d - _EPOCH).days
        if i < 0:
            raise ValueError("the business clock counts from 2000-01-03")
        if i >= len(self._cum):
            self._extend(i)
        win = self._wins[i]
        inside = 0.0
        if win is not None:
            inside = (min(max(at, win[0]), win[1]) - win[0]).total_seconds() / 60
        return self._cum[i] + inside

    def cumulative_many(self, instants) -> np.ndarray:
        """`cumulative` of many instants at once, vectorised (the KPI medians over a month of leads)."""
        if len(instants) == 0:
            return np.zeros(0)
        # Naive values (datetimes or ISO 8601 text, as SQLite stores them) are UTC.
        utc = pd.to_datetime(list(instants), utc=True, format="ISO8601")
        minutes = ((utc - _ORIGIN) / pd.Timedelta(minutes=1)).to_numpy(dtype=float)
        if self.hours is None:
            return minutes
        days = ((utc.tz_convert(self.tz).tz_localize(None).normalize() - pd.Timestamp(_EPOCH))
                // pd.Timedelta(days=1)).to_numpy()
        if days.min() < 0:
            raise ValueError("the business clock counts from 2000-01-03")
        self._extend(int(days.max()))
        cum, opens, closes = self._arrays
        start, end = opens[days], closes[days]
        inside = np.where(np.isnan(start), 0.0, np.clip(minutes, start, end) - start)
        return cum[days] + inside

    def _extend(self, upto: int) -> None:
        with self._cum_lock:
            if upto < len(self._cum):
                return
            cum, wins = self._cum, self._wins
            if not cum:
                cum.append(0.0)
                wins.append(self.window(_EPOCH))
            while len(cum) <= upto:  # the window first: readers check len(cum), then read both
                win = wins[-1]
                total = cum[-1] + ((win[1] - win[0]).total_seconds() / 60 if win else 0.0)
                wins.append(self.window(_EPOCH + timedelta(days=len(cum))))
                cum.append(total)
            # Rebuilt whole: readers hold the previous tuple, never a half-filled one.
            self._arrays = (np.array(cum), *(np.array([np.nan if w is None else (w[k] - _ORIGIN_DT).total_seconds() / 60
                                                       for w in wins]) for k in (0, 1)))

    def is_open(self, at: datetime) -> bool:
        at = _aware(at)
        if self.hours is None:
            return True
        win = self.window(at.astimezone(self.tz).date())
        return win is not None and win[0] <= at < win[1]

    def is_closing(self, at: datetime) -> bool:
        """Whether `at` is exactly a closing time (a deadline can fall there, docs/kpi.md)."""
        at = _aware(at)
        if self.hours is None:
            return False
        win = self.window(at.astimezone(self.tz).date())
        return win is not None and at == win[1]

    def next_day_opening(self, at: datetime) -> datetime:
        """The first opening on a later local day than `at` ("until tomorrow")."""
        at = _aware(at)
        if self.hours is None:
            return at + timedelta(days=1)
        today = at.astimezone(self.tz).date()
        for d in self._days_from(at):
            win = self.window(d)
            if d > today and win is not None:
                return win[0]
        raise AssertionError("unreachable")

    def next_opening(self, at: datetime) -> datetime:
        """`at` itself when the clock runs then, else the next opening."""
        at = _aware(at)
        if self.is_open(at):
            return at
        for d in self._days_from(at):
            win = self.window(d)
            if win is not None and win[0] >= at:
                return win[0]
        raise AssertionError("unreachable")


def _aware(dt: datetime) -> datetime:
    if dt.tzinfo is None:
        raise ValueError("the business clock works on timezone-aware instants")
    return dt.astimezone(UTC)
