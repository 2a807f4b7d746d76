"""Progress for long page actions: a bar with the work done, the time elapsed and the time left.

The time left comes from the pace of the last few batches, and is shown only once a few have
finished: the first batch carries the model's loading and warm-up, and a pace taken from it
(or from one batch alone) promised "6 h 56 min" for work that then finished in minutes.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

import streamlit as st

#: Batches to finish before any time left is shown.
MIN_BATCHES = 3
#: How many of the last batches the pace is taken over.
WINDOW = 8


def format_seconds(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class Pace:
    """The time left at the pace of the last `WINDOW` batches (a batch: a report whose count
    moved on), once `MIN_BATCHES` have finished; the time before the first report (loading,
    warm-up) never counts."""

    def __init__(self, window: int = WINDOW, min_batches: int = MIN_BATCHES) -> None:
        self.min_batches = min_batches
        self.batches = 0
        self._marks: deque[tuple[float, int]] = deque(maxlen=window + 1)

    def add(self, now: float, done: int) -> None:
        """A report: ``done`` items finished at time ``now`` (seconds)."""
        if self._marks and done <= self._marks[-1][1]:
            return  # the same batch reported again (or a count that went back): no new pace
        if self._marks:
            self.batches += 1
        self._marks.append((now, done))

    def seconds_left(self, total: int) -> float | None:
        """Seconds to finish ``total`` items, or None while too few batches have finished."""
        if self.batches < self.min_batches:
            return None
        (start, first), (end, last) = self._marks[0], self._marks[-1]
        if end <= start:
            return None
        return (total - last) * (end - start) / (last - first)


class ProgressBar:
    """A ``progress(done, total)`` callback for core, drawing a bar with the time elapsed and,
    after a few batches, the time left.

    Args:
        label: what is being done.
        already: items done before this run started (resumed embedding); kept for callers,
            the pace never counts them.
        clock: seconds (tests give their own).
    """

    def __init__(
        self, label: str, already: int = 0, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        self.label = label
        self.already = already
        self.clock = clock
        self.started = clock()
        self.pace = Pace()
        self.bar = st.progress(0.0, text=f"{label}: starting…")

    def __call__(self, done: int, total: int) -> None:
        now = self.clock()
        self.pace.add(now, done)
        fraction = done / total if total else 1.0
        text = f"{self.label}: {done:,} of {total:,} · {format_seconds(now - self.started)} elapsed"
        if done < total:
            left = self.pace.seconds_left(total)
            text += (
                " · time left: estimated after a few batches"
                if left is None
                else f" · about {format_seconds(left)} left"
            )
        self.bar.progress(min(1.0, max(0.0, fraction)), text=text)
