"""The Shopee competition's metric: per-posting F1 of the predicted match set against the true
group, averaged over postings; precision and recall likewise.

The true group always includes the posting itself. The predicted set is scored as given: a
pipeline always lists the posting itself (`core.matches.match_sets`), a submission file is
scored exactly as written (a row that leaves its own id out is not helped).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from core.errors import SameSameError


def true_match_sets(labels: Mapping[str, object]) -> dict[str, set[str]]:
    """Each posting's true group, from ``posting_id -> label_group``."""
    members: dict[object, set[str]] = {}
    for pid, label in labels.items():
        members.setdefault(label, set()).add(pid)
    return {pid: members[label] for pid, label in labels.items()}


def per_posting_scores(
    predicted: Mapping[str, set[str]], truth: Mapping[str, set[str]]
) -> pd.DataFrame:
    """F1, precision and recall of every posting (an empty prediction scores 0).

    Raises:
        SameSameError: when the two maps do not cover the same postings, or cover none.
    """
    if not truth:
        raise SameSameError("There is nothing to score: no labelled posting was predicted.")
    missing = set(truth) - set(predicted)
    extra = set(predicted) - set(truth)
    if missing or extra:
        raise SameSameError(
            f"predictions and labels cover different postings ({len(missing)} unpredicted, "
            f"{len(extra)} unlabelled), e.g. {sorted(missing or extra)[:3]}"
        )
    rows = []
    for pid, true_set in truth.items():
        pred_set = set(predicted[pid])
        true_set = set(true_set) | {pid}
        hits = len(pred_set & true_set)
        precision = hits / len(pred_set) if pred_set else 0.0
        recall = hits / len(true_set)
        f1 = 2 * hits / (len(pred_set) + len(true_set))
        rows.append((pid, f1, precision, recall, len(pred_set), len(true_set)))
    return pd.DataFrame(
        rows, columns=["posting_id", "f1", "precision", "recall", "predicted", "true"]
    )


def evaluate(predicted: Mapping[str, set[str]], truth: Mapping[str, set[str]]) -> dict[str, float]:
    """Mean per-posting F1 (the primary metric), precision and recall."""
    return summary(per_posting_scores(predicted, truth))


def _scores_frame(
    ids: np.ndarray, predicted: np.ndarray, hits: np.ndarray, true: np.ndarray
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "posting_id": ids,
            "f1": 2 * hits / (predicted + true),
            "precision": hits / predicted,
            "recall": hits / true,
            "predicted": predicted,
            "true": true,
        }
    )


def pair_scores(
    posting_ids: Sequence[str],
    pairs: pd.DataFrame,
    labels: Mapping[str, object],
    positions: tuple[np.ndarray, np.ndarray] | None = None,
) -> pd.DataFrame:
    """`per_posting_scores` of a pipeline's pairs, computed from arrays (no set per posting:
    a million postings with 50 matches each fit in memory).

    Args:
        pairs: left, right (posting ids) and optionally listed (who lists whom).
        labels: posting_id -> label_group of the labelled postings; only they are scored, and
            matches to unlabelled postings are not counted (nothing says whether they are right).
        positions: the pairs' catalog positions, when known (else looked up by id).
    """
    ids = pd.Index(list(posting_ids))
    label = pd.Series(labels).reindex(ids)
    labelled = label.notna().to_numpy()
    codes = pd.factorize(label)[0]  # -1 where unlabelled
    n = len(ids)
    if positions is not None:
        left, right = (np.asarray(p, np.int64) for p in positions)
    elif len(pairs):
        left, right = ids.get_indexer(pairs["left"]), ids.get_indexer(pairs["right"])
    else:
        left = right = np.zeros(0, np.int64)
    listed = (
        pairs["listed"].to_numpy(np.int64)
        if "listed" in pairs and len(pairs)
        else np.full(len(left), 3, np.int64)
    )
    both = (left >= 0) & (right >= 0)
    left, right, listed = left[both], right[both], listed[both]
    counted = labelled[left] & labelled[right]
    by_left = (listed & 1) > 0
    by_right = (listed & 2) > 0
    # A labelled posting's match to an unlabelled one cannot be judged: counted apart.
    unlabelled = np.bincount(
        left[labelled[left] & ~labelled[right] & by_left], minlength=n
    ) + np.bincount(right[labelled[right] & ~labelled[left] & by_right], minlength=n)
    same = counted & (codes[left] == codes[right])
    predicted = (
        1
        + np.bincount(left[counted & by_left], minlength=n)
        + np.bincount(right[counted & by_right], minlength=n)
    )
    hits = (
        1
        + np.bincount(left[same & by_left], minlength=n)
        + np.bincount(right[same & by_right], minlength=n)
    )
    sizes = np.bincount(codes[labelled], minlength=max(1, codes.max() + 1))
    true = np.where(labelled, sizes[np.maximum(codes, 0)], 0)
    keep = labelled
    frame = _scores_frame(ids.to_numpy()[keep], predicted[keep], hits[keep], true[keep])
    frame["unlabelled_matches"] = unlabelled[keep]
    return frame.reset_index(drop=True)


def group_scores(
    posting_ids: Sequence[str], groups: np.ndarray, labels: Mapping[str, object]
) -> pd.DataFrame:
    """`per_posting_scores` when each posting's predicted set is its group (cluster)."""
    ids = pd.Index(list(posting_ids))
    label = pd.Series(labels).reindex(ids)
    labelled = label.notna().to_numpy()
    groups = np.asarray(groups)
    members = pd.Series(groups).map(pd.Series(groups).value_counts()).to_numpy()
    frame = pd.DataFrame({"group": groups[labelled], "label": label.to_numpy()[labelled]})
    predicted = frame.groupby("group")["group"].transform("size").to_numpy()
    hits = frame.groupby(["group", "label"])["group"].transform("size").to_numpy()
    true = frame.groupby("label")["label"].transform("size").to_numpy()
    scores = _scores_frame(ids.to_numpy()[labelled], predicted, hits, true)
    # Cluster members without a label cannot be judged: counted apart.
    scores["unlabelled_matches"] = members[labelled] - predicted
    return scores


def summary(scores: pd.DataFrame) -> dict[str, float]:
    """Mean per-posting F1 (the primary metric), precision and recall of a scores frame.

    Raises:
        SameSameError: nothing was scored.
    """
    if scores.empty:
        raise SameSameError("There is nothing to score: no labelled posting was predicted.")
    figures = {
        "f1": float(scores["f1"].mean()),
        "precision": float(scores["precision"].mean()),
        "recall": float(scores["recall"].mean()),
        "postings": len(scores),
    }
    if "unlabelled_matches" in scores:
        figures["unlabelled_matches"] = int(scores["unlabelled_matches"].sum())
    return figures
