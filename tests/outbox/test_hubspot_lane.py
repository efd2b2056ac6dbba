"""The HubSpot lane (outbox/hubspot.py) on its own: how long a 429 makes it wait."""
from __future__ import annotations

import pytest

from outbox.hubspot import DAILY_PAUSE, HubSpotWriter, Paused, RollingLimit
from tests.conftest import jst

AT = jst(2026, 11, 30, 10)


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def writer(db):
    clock = Clock()
    limit = RollingLimit(requests=100, seconds=10.0, monotonic=clock)
    w = HubSpotWriter(db, destination_id=1, token="pat-test", base_url="http://127.0.0.1:9", match="email",
                      now=lambda: AT, limit=limit)
    w.clock = clock
    return w


class Answer:
    """What the client gives back for a request made without building its models: the raw response."""

    def __init__(self, data: bytes):
        self.data, self.released = data, False

    def release_conn(self):
        self.released = True


def ten_secondly(writer, headers=None) -> Paused:
    body = (b'{"status":"error","message":"You have reached your ten_secondly_rolling limit.",'
            b'"errorType":"RATE_LIMIT","policyName":"TEN_SECONDLY_ROLLING"}')
    writer.limit.acquire()  # the refused request was counted before it went out, as `_call` does
    pause = writer._trouble(429, headers or {}, body)
    assert isinstance(pause, Paused) and not pause.counted  # a 429 is not a failed attempt
    return pause


def test_a_lone_429_waits_half_a_second_and_429s_in_a_row_back_off_to_the_window(writer):
    assert ten_secondly(writer).seconds == pytest.approx(0.5)
    assert [ten_secondly(writer).seconds for _ in range(6)] == pytest.approx([1, 2, 4, 8, 10, 10])


def test_a_full_window_is_waited_out_whatever_the_backoff(writer):
    for _ in range(99):
        writer.limit.acquire()
    writer.clock.t += 4.0
    # 100 requests in the window (the refused one included): room when the first of them leaves it
    assert ten_secondly(writer).seconds == pytest.approx(6.02)


def test_a_request_hubspot_takes_ends_the_run_of_429s(writer):
    ten_secondly(writer)
    ten_secondly(writer)
    assert writer._call(lambda **_: Answer(b'{"results": []}')) == {"results": []}  # a request HubSpot answered
    assert ten_secondly(writer).seconds == pytest.approx(0.5)


def test_retry_after_and_the_daily_limit(writer):
    assert ten_secondly(writer, {"Retry-After": "3"}).seconds == 3
    daily = writer._trouble(429, {}, b'{"status":"error","errorType":"RATE_LIMIT","policyName":"DAILY"}')
    assert daily.seconds == DAILY_PAUSE


def test_the_window_says_how_many_requests_fit_now(writer):
    assert writer.limit.room() == 100
    for _ in range(97):
        writer.limit.acquire()
    assert writer.limit.room() == 3
    writer.clock.t += 10.1
    assert writer.limit.room() == 100


def test_a_busy_lane_is_spread_at_the_limits_rate_within_its_window():
    clock = Clock()
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        clock.t += seconds

    limit = RollingLimit(requests=100, seconds=10.0, burst=20, monotonic=clock, sleep=sleep)
    assert limit.room() == 20
    for _ in range(20):  # a quiet lane sends a burst at once
        limit.acquire()
    assert slept == [] and limit.room() == 0
    times = []
    for _ in range(200):
        limit.acquire()
        times.append(clock.t)
    assert clock.t - 100.0 == pytest.approx(200 * 0.1, abs=0.1)  # then one per 0.1 s
    assert all(times[k + 100] - times[k] >= 10.0 for k in range(len(times) - 100))  # within the window
    assert max(sum(1 for t in times if at <= t < at + 0.05) for at in times) <= 20  # never more at once
