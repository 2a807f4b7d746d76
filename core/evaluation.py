"""Scoring a catalog's matches against its labels (label_group), plain and as clusters."""

from __future__ import annotations

import pandas as pd

from core.errors import SameSameError
from core.matches import MatchResult
from core.metrics import group_scores, pair_scores, summary
from core.store import Store


def labels_of(store: Store) -> dict[str, str] | None:
    postings = store.postings()
    if postings["label_group"].isna().all():
        return None
    labelled = postings[postings["label_group"].notna()]
    return dict(zip(labelled["posting_id"], labelled["label_group"], strict=True))


def _labels_or_raise(store: Store) -> dict[str, str]:
    labels = labels_of(store)
    if labels is None:
        raise SameSameError("This catalog has no label_group column: there is nothing to score.")
    return labels


def posting_scores(store: Store, result: MatchResult, clusters: bool = False) -> pd.DataFrame:
    """F1, precision and recall of every labelled posting (see `core.metrics.pair_scores`)."""
    labels = _labels_or_raise(store)
    if clusters:
        return group_scores(result.posting_ids, result.clusters().labels, labels)
    return pair_scores(result.posting_ids, result.pairs, labels, result.pair_positions())


def evaluate_result(store: Store, result: MatchResult, clusters: bool = False) -> dict[str, float]:
    """F1/precision/recall against label_group over the labelled postings; with ``clusters``,
    of each posting's cluster instead of its matches.

    Raises:
        SameSameError: the catalog has no labels.
    """
    return summary(posting_scores(store, result, clusters))


def worst_postings(store: Store, result: MatchResult, n: int = 20) -> pd.DataFrame:
    scores = posting_scores(store, result)
    return scores.sort_values(["f1", "posting_id"]).head(n).reset_index(drop=True)
