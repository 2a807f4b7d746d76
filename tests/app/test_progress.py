"""The progress helpers every long page action uses: ETA arithmetic and its wording."""

from __future__ import annotations

import pytest

from ui.common import eta_seconds, format_seconds


@pytest.mark.parametrize(
    ("elapsed", "done", "total", "expected"),
    [(10.0, 0, 100, None), (10.0, 25, 100, 30.0), (10.0, 100, 100, 0.0), (3.0, 3, 2, 0.0)],
)
def test_eta_is_the_pace_so_far_times_what_is_left(elapsed, done, total, expected):
    assert eta_seconds(elapsed, done, total) == expected


@pytest.mark.parametrize(
    ("seconds", "text"), [(4.4, "4 s"), (75, "1 min 15 s"), (3725, "1 h 02 min"), (-1, "0 s")]
)
def test_durations_read_naturally(seconds, text):
    assert format_seconds(seconds) == text
