"""The progress bar's time left (``ui.widgets.time_left``): the pace so far times the steps to go."""

from __future__ import annotations

from ui.widgets import time_left


def test_time_left_is_the_pace_so_far_times_the_steps_to_go():
    assert time_left(10.0, 10, 40) == "about 30 s left"
    assert time_left(30.0, 10, 40) == "about 2 min left"  # 90 s and more in minutes
    assert time_left(12.0, 1, 31) == "about 6 min left"


def test_no_estimate_too_early_or_at_the_end():
    assert time_left(0.5, 5, 100) == ""  # under a second: the pace is noise
    assert time_left(10.0, 0, 100) == ""
    assert time_left(10.0, 100, 100) == ""
