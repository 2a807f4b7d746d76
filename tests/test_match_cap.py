"""The neighbour cap (`core.match_cap`) that one machine's engine and Spark share."""

from __future__ import annotations

import numpy as np

from core.match_cap import best_per_posting


def test_each_posting_keeps_its_best_cap_rows_in_the_rows_order() -> None:
    end = np.array([5, 1, 5, 5, 1, 5])
    far = np.array([0, 2, 1, 2, 3, 3])
    similarity = np.array([0.5, 0.9, 0.7, 0.9, 0.8, 0.6])
    kept = best_per_posting(end, far, similarity, 2)
    assert kept.tolist() == [False, True, True, True, True, False]
    assert best_per_posting(end, far, similarity, 0).tolist() == [False] * 6
    assert best_per_posting(end, far, similarity, 9).all()
    assert best_per_posting(end[:0], far[:0], similarity[:0], 2).tolist() == []


def test_scores_within_a_millionth_tie_and_the_earlier_posting_wins() -> None:
    """Two engines' scores of identical titles (1 - 1e-9 and 1 + 1e-9 in float64, 1.0 in
    float32) rank the same: by the far posting's position, whichever engine computed them."""
    end = np.zeros(4, np.int64)
    far = np.array([7, 3, 9, 4])
    spark = np.array([1 + 1e-9, 1 - 1e-9, 0.95, 1.0], np.float64)
    one_machine = np.array([1.0, 1.0, 0.95, 1.0], np.float32)
    for similarity in (spark, one_machine):
        assert best_per_posting(end, far, similarity, 2).tolist() == [False, True, False, True]
    # A real difference (past the tolerance) still ranks by score.
    apart = np.array([1.0, 0.99999, 0.95, 0.9999], np.float32)
    assert best_per_posting(end, far, apart, 2).tolist() == [True, True, False, False]
