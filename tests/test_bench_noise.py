"""The band that `make bench` judges "no slower" against (bench/run.py `noise_band`): how far apart two identical
runs fall on this host, from A/A pairs, centred on 1, the largest sixth of their deviations left out; and how
a benchmark rerun alone puts its section of BENCHMARKS.md in place."""
import pytest

from bench.run import noise_band


def test_six_pairs_leave_out_the_largest_deviation():
    lo, hi = noise_band([1.0, 0.9, 1.2, 1.05, 0.95, 1.1])
    assert hi == pytest.approx(1 / 0.9) and lo == pytest.approx(0.9)


def test_a_band_always_holds_1_even_when_the_pairs_lean_one_way():
    lo, hi = noise_band([0.8, 0.49, 1.04, 0.9, 0.74, 0.73])  # a real run: 5 of 6 below 1
    assert lo < 1 < hi and hi == pytest.approx(1 / 0.73)


def test_fewer_than_six_pairs_keep_them_all():
    assert noise_band([1.1, 0.97]) == pytest.approx((1 / 1.1, 1.1))


def test_twelve_pairs_leave_out_the_two_largest():
    lo, hi = noise_band([0.5, 0.8, 0.9, 0.95, 1.0, 1.0, 1.02, 1.05, 1.1, 1.2, 1.3, 2.0])
    assert hi == pytest.approx(1.3) and lo == pytest.approx(1 / 1.3)


def test_a_rerun_section_takes_the_place_of_the_old_one():
    from bench.common import replace_section

    text = "# Benchmarks\n\nMachine: x\n\n## Claims\nold\n\n## Claims: time\nkept\n\n## Ingest\nkept too\n"
    assert replace_section(text, ["## Claims", "new", ""]) == \
        "# Benchmarks\n\nMachine: x\n\n## Claims\nnew\n\n## Claims: time\nkept\n\n## Ingest\nkept too\n"
    assert replace_section(text, ["## Ingest", "newer", ""]).endswith("## Claims: time\nkept\n\n## Ingest\nnewer\n")
    assert replace_section(text, ["## Privacy", "first", ""]) == text + "\n## Privacy\nfirst\n"
    assert replace_section(text, ["## Claims: time", "t", ""]).count("kept\n") == 0  # the heading, not a prefix
