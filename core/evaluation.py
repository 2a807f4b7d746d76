"""Scoring a catalog's matches against its labels (label_group), plain and as clusters."""

from __future__ import annotations

import pandas as pd

from core.errors import SameSameError
from core.matches import MatchResult
from core.metrics import evaluate, per_posting_scores, true_match_sets
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


def _restricted(sets: dict[str, set[str]], labels: dict[str, str]) -> dict[str, set[str]]:
    return {pid: s & labels.keys() for pid, s in sets.items() if pid in labels}


def evaluate_result(store: Store, result: MatchResult, clusters: bool = False) -> dict[str, float]:
    """F1/precision/recall against label_group over the labelled postings; with ``clusters``,
    of each posting's cluster instead of its matches.

    Raises:
        SameSameError: the catalog has no labels.
    """
    labels = _labels_or_raise(store)
    sets = result.clusters().match_sets() if clusters else result.match_sets()
    return evaluate(_restricted(sets, labels), true_match_sets(labels))


def worst_postings(store: Store, result: MatchResult, n: int = 20) -> pd.DataFrame:
    labels = _labels_or_raise(store)
    scores = per_posting_scores(_restricted(result.match_sets(), labels), true_match_sets(labels))
    return scores.sort_values(["f1", "posting_id"]).head(n).reset_index(drop=True)
