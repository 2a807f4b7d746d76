"""The Shopee competition's metric: per-posting F1 of the predicted match set against the true
group (both include the posting itself), averaged over postings; precision and recall likewise."""

from __future__ import annotations

from collections.abc import Mapping

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
    """F1, precision and recall of every posting.

    Raises:
        SameSameError: when the two maps do not cover the same postings.
    """
    missing = set(truth) - set(predicted)
    extra = set(predicted) - set(truth)
    if missing or extra:
        raise SameSameError(
            f"predictions and labels cover different postings ({len(missing)} unpredicted, "
            f"{len(extra)} unlabelled), e.g. {sorted(missing or extra)[:3]}"
        )
    rows = []
    for pid, true_set in truth.items():
        pred_set = set(predicted[pid]) | {pid}
        true_set = set(true_set) | {pid}
        hits = len(pred_set & true_set)
        precision = hits / len(pred_set)
        recall = hits / len(true_set)
        f1 = 2 * hits / (len(pred_set) + len(true_set))
        rows.append((pid, f1, precision, recall, len(pred_set), len(true_set)))
    return pd.DataFrame(
        rows, columns=["posting_id", "f1", "precision", "recall", "predicted", "true"]
    )


def evaluate(predicted: Mapping[str, set[str]], truth: Mapping[str, set[str]]) -> dict[str, float]:
    """Mean per-posting F1 (the primary metric), precision and recall."""
    scores = per_posting_scores(predicted, truth)
    return {
        "f1": float(scores["f1"].mean()),
        "precision": float(scores["precision"].mean()),
        "recall": float(scores["recall"].mean()),
        "postings": len(scores),
    }
