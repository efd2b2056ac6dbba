"""The band that `make bench` judges "no slower" against (bench/run.py `noise_band`): where the ratio of two
identical runs falls on this host, from A/A pairs, without the lowest and the highest sixth."""
from bench.run import noise_band


def test_six_pairs_leave_out_the_lowest_and_the_highest():
    assert noise_band([1.0, 0.9, 1.2, 1.05, 0.95, 1.1]) == (0.95, 1.1)


def test_fewer_than_six_pairs_keep_them_all():
    assert noise_band([1.1, 0.97]) == (0.97, 1.1)


def test_twelve_pairs_leave_out_two_at_each_end():
    assert noise_band([0.5, 0.8, 0.9, 0.95, 1.0, 1.0, 1.02, 1.05, 1.1, 1.2, 1.3, 2.0]) == (0.9, 1.2)
