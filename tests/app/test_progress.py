"""The progress every long page action shows: the time left from the pace of the last batches,
only after a few batches, and its wording on the bar a person reads."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from ui.progress import MIN_BATCHES, Pace, format_seconds


def test_no_time_left_before_a_few_batches_have_finished():
    pace = Pace()
    for batch in range(MIN_BATCHES):
        pace.add(float(batch), batch * 10)
        assert pace.seconds_left(1_000) is None
    pace.add(float(MIN_BATCHES), MIN_BATCHES * 10)
    assert pace.seconds_left(1_000) == pytest.approx(970 / 10)


def test_a_slow_start_does_not_count():
    # The first report comes after loading the model (a minute); then a batch of 32 a second.
    pace = Pace()
    for batch in range(1, 6):
        pace.add(60.0 + batch, 32 * batch)
    # 160 of 3,200 done: 95 s left at the steady pace (the whole-run average said 1 h 4 min).
    assert pace.seconds_left(3_200) == pytest.approx(95.0)


def test_the_pace_follows_the_last_batches():
    pace = Pace(window=4)
    for batch in range(1, 11):
        pace.add(float(batch), 10 * batch)  # 10 items a second
    for batch in range(11, 16):
        pace.add(10.0 + 2 * (batch - 10), 10 * batch)  # slower: 5 a second
    assert pace.seconds_left(200) == pytest.approx(50 / 5)


def test_a_repeated_report_is_not_a_batch():
    pace = Pace()
    for _ in range(5):
        pace.add(1.0, 10)
    assert pace.batches == 0 and pace.seconds_left(100) is None


@pytest.mark.parametrize(
    ("seconds", "text"), [(4.4, "4 s"), (75, "1 min 15 s"), (3725, "1 h 02 min"), (-1, "0 s")]
)
def test_durations_read_naturally(seconds, text):
    assert format_seconds(seconds) == text


BARS = """
from ui.progress import ProgressBar

for batches in (2, 5):
    # A minute's warm-up before the first batch of 32, then a second a batch.
    ticks = iter([0.0, *(59.0 + b for b in range(1, batches + 1))])
    bar = ProgressBar("Embedding", clock=lambda: next(ticks))
    for batch in range(1, batches + 1):
        bar(32 * batch, 3_200)
"""


def test_the_bar_says_time_left_only_after_a_few_batches():
    at = AppTest.from_string(BARS).run()

    assert not at.exception
    assert [p.proto.text for p in at.get("progress")] == [
        "Embedding: 64 of 3,200 · 1 min 01 s elapsed · time left: estimated after a few batches",
        "Embedding: 160 of 3,200 · 1 min 04 s elapsed · about 1 min 35 s left",
    ]
