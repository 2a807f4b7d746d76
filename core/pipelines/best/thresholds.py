"""Deciding which of the ``best`` pipeline's pairs match: the folds training holds out, each
posting's best partner, the pair selection and the thresholds tuned on out-of-fold
probabilities by the competition's metric (mean per-posting F1)."""

from __future__ import annotations

import numpy as np


def group_folds(labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Fold number per posting such that each label group sits in one fold."""
    rng = np.random.default_rng(seed)
    groups, inverse = np.unique(labels, return_inverse=True)
    fold_of_group = rng.permutation(len(groups)) % k
    return fold_of_group[inverse]


def best_partner(n: int, left: np.ndarray, right: np.ndarray, prob: np.ndarray) -> np.ndarray:
    """Index of each posting's most probable candidate pair (-1 when it has none)."""
    ends = np.concatenate([left, right])
    pair = np.concatenate([np.arange(len(left)), np.arange(len(left))])
    probs = np.concatenate([prob, prob])
    order = np.lexsort((-probs, ends))
    ends, pair = ends[order], pair[order]
    first = np.ones(len(ends), bool)
    first[1:] = ends[1:] != ends[:-1]
    best = np.full(n, -1, np.int64)
    best[ends[first]] = pair[first]
    return best


def select_pairs(
    n: int,
    left: np.ndarray,
    right: np.ndarray,
    prob: np.ndarray,
    threshold: float,
    threshold_low: float,
    min_one: bool,
    partner: np.ndarray | None = None,
) -> np.ndarray:
    """Which pairs match: probability >= threshold, plus each lonely posting's best partner."""
    keep = prob >= threshold
    if not min_one or len(prob) == 0:
        return keep
    if partner is None:
        partner = best_partner(n, left, right, prob)
    matched = np.zeros(n, bool)
    matched[left[keep]] = True
    matched[right[keep]] = True
    has = partner >= 0
    lonely = has & ~matched
    lonely[has] &= prob[partner[has]] >= threshold_low
    keep = keep.copy()
    keep[partner[lonely]] = True
    return keep


def pair_f1(n: int, labels: np.ndarray, left: np.ndarray, right: np.ndarray) -> float:
    """Mean per-posting F1 of matched pairs (self included), as `core.metrics.evaluate`."""
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    return _pair_f1(n, counts[inverse], labels[left] == labels[right], left, right)


def _pair_f1(
    n: int, true_size: np.ndarray, same: np.ndarray, left: np.ndarray, right: np.ndarray
) -> float:
    predicted = 1.0 + np.bincount(left, minlength=n) + np.bincount(right, minlength=n)
    hits = 1.0 + np.bincount(left[same], minlength=n) + np.bincount(right[same], minlength=n)
    return float(np.mean(2 * hits / (predicted + true_size)))


def tune_thresholds(
    n: int, labels: np.ndarray, left: np.ndarray, right: np.ndarray, prob: np.ndarray, min_one: bool
) -> tuple[float, float, float]:
    """(threshold, threshold_low, F1) maximising mean per-posting F1 on out-of-fold scores."""
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    true_size = counts[inverse]
    same = labels[left] == labels[right]
    partner = best_partner(n, left, right, prob)
    best = (0.5, 0.5, -1.0)
    for t in np.arange(0.2, 0.9001, 0.025):
        lows = np.arange(0.05, t + 1e-9, 0.05) if min_one else [t]
        for low in lows:
            keep = select_pairs(n, left, right, prob, t, low, min_one, partner)
            f1 = _pair_f1(n, true_size, same[keep], left[keep], right[keep])
            if f1 > best[2]:
                best = (float(round(t, 4)), float(round(low, 4)), f1)
    return best


def subset_f1(
    keep_postings: np.ndarray,
    labels: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    prob: np.ndarray,
    min_one: bool,
) -> tuple[float, float, float]:
    """`tune_thresholds` over the postings ``keep_postings`` selects and the pairs inside them."""
    rows = keep_postings[left] & keep_postings[right]
    position = np.cumsum(keep_postings) - 1
    return tune_thresholds(
        int(keep_postings.sum()),
        labels[keep_postings],
        position[left[rows]],
        position[right[rows]],
        prob[rows],
        min_one,
    )
