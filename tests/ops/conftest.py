"""The fixture of these tests: a real `bot.py serve` (tests/ops/serving.py)."""
from __future__ import annotations

import pytest

from tests.ops.serving import Served


@pytest.fixture
def served(db, slack, tmp_path):
    """Start `bot.py serve` with these settings on top of the tests' own; stopped after the test."""
    started = []

    def start(**extra: str) -> Served:
        s = Served(db, slack, tmp_path, **extra)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()
