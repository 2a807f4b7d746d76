"""Precision and recall of a pipeline estimated from the reviewer's verdicts, for catalogs
without labels: each with a 95 % confidence interval (Wilson's) and how many more reviews
would narrow it to ±5 points.

Precision is the share of the pipeline's matches a reviewer said are the same product. Pairs
drawn at random from its matches (the review queue's "random sample") estimate it without
bias; pairs the queue picks as the most telling are the hardest ones, so when no random
sample has been reviewed yet the estimate is marked as pessimistic. Recall is the share of
the pairs said to be the same that the pipeline found by itself; the reviewed pairs come from
what some pipeline matched, so it says how the pipelines compare more than how many true
pairs all of them miss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from core.store import Store
from core.verdicts import REVIEWED

Z95 = 1.959964
#: The half-width of interval `Estimate.more_needed` aims for.
TARGET_HALF_WIDTH = 0.05


@dataclass(frozen=True)
class Estimate:
    value: float
    low: float
    high: float
    #: Reviewed pairs the estimate rests on.
    reviewed: int
    #: False when it rests on pairs chosen for being hard rather than at random.
    unbiased: bool = True

    @property
    def more_needed(self) -> int:
        """Further reviews (like these) until the interval is about ±5 points wide."""
        p = min(max(self.value, 0.05), 0.95) if self.reviewed else 0.5
        needed = math.ceil(Z95**2 * p * (1 - p) / TARGET_HALF_WIDTH**2)
        return max(0, needed - self.reviewed)


def wilson(hits: int, total: int) -> Estimate:
    """Wilson's score interval for ``hits`` of ``total`` (0 of 0 is a 0–1 interval)."""
    if total == 0:
        return Estimate(float("nan"), 0.0, 1.0, 0)
    p = hits / total
    centre = (p + Z95**2 / (2 * total)) / (1 + Z95**2 / total)
    half = (Z95 / (1 + Z95**2 / total)) * math.sqrt(p * (1 - p) / total + Z95**2 / (4 * total**2))
    return Estimate(p, max(0.0, centre - half), min(1.0, centre + half), total)


def decisions(store: Store, pipeline: str) -> pd.DataFrame:
    """Each reviewed pair with what the pipeline's own rules said about it (``matched``):
    kept with the run for the pairs reviewed before it, read from its stored matches for
    those reviewed since. Columns: left_id, right_id, verdict, chosen, matched."""
    reviews = store.reviews()
    run = store.match_run(pipeline)
    if run is None or reviews.empty:
        return reviews.assign(matched=pd.Series(dtype=bool))
    seen = {(a, b): bool(m) for a, b, m in run["details"].get("decisions", [])}
    matched = []
    for left, right in zip(reviews["left_id"], reviews["right_id"], strict=True):
        if (left, right) in seen:
            matched.append(seen[(left, right)])
            continue
        row = store.conn.execute(
            "SELECT rule FROM matches WHERE pipeline=? AND ((posting_id=? AND match_id=?) OR "
            "(posting_id=? AND match_id=?))",
            (pipeline, left, right, right, left),
        ).fetchone()
        matched.append(row is not None and row[0] != REVIEWED)
    return reviews.assign(matched=matched)


def review_estimates(store: Store, pipeline: str) -> dict[str, Estimate] | None:
    """``precision`` and ``recall`` of the pipeline's stored matches from the verdicts (None
    while it has no stored matches or nothing is reviewed)."""
    found = decisions(store, pipeline)
    if found.empty or store.match_run(pipeline) is None:
        return None
    matches = found[found["matched"]]
    sample = matches[matches["chosen"] == "sample"]
    basis = sample if len(sample) else matches
    precision = wilson(int((basis["verdict"] == "same").sum()), len(basis))
    if not len(sample):
        precision = Estimate(
            precision.value, precision.low, precision.high, precision.reviewed, unbiased=False
        )
    same = found[found["verdict"] == "same"]
    recall = wilson(int(same["matched"].sum()), len(same))
    return {"precision": precision, "recall": recall}
