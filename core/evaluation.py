"""Scoring a catalog's matches against its labels (label_group), plain and as clusters."""

from __future__ import annotations

import pandas as pd

from core.errors import SameSameError
from core.matches import MatchResult, read_submission
from core.metrics import group_scores, pair_scores, per_posting_scores, summary, true_match_sets
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
    # Only who lists whom is read, by position: the pairs' posting ids are never needed.
    listed = pd.DataFrame({"listed": result.pair_column("listed")})
    return pair_scores(result.posting_ids, listed, labels, result.pair_positions())


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


def evaluate_submission(store: Store, frame: pd.DataFrame) -> dict[str, float]:
    """Score a ``posting_id,matches`` file against the catalog's labels, exactly as written
    (a row that leaves its own id out is not given it). Ids without a label cannot be judged:
    they are counted in ``unlabelled_matches`` and left out.

    Raises:
        SameSameError: the catalog has no labels, the file has not the two columns, it names
            postings the catalog does not have, or it lacks rows for labelled postings.
    """
    labels = _labels_or_raise(store)
    missing = {"posting_id", "matches"} - set(frame.columns)
    if missing:
        raise SameSameError(
            f"A submission has the columns posting_id,matches; this file lacks {sorted(missing)}"
        )
    written = read_submission(frame.fillna(""))
    known = set(store.postings()["posting_id"])
    unknown = sorted(({pid for s in written.values() for pid in s} | set(written)) - known)
    if unknown:
        raise SameSameError(
            f"The submission names {len(unknown)} posting(s) this catalog does not have, e.g. "
            f"{unknown[:3]}: was it made for another catalog?"
        )
    judged = {pid: written[pid] & labels.keys() for pid in written if pid in labels}
    unlabelled = sum(len(written[pid] - labels.keys()) for pid in judged)
    figures = summary(per_posting_scores(judged, true_match_sets(labels)))
    figures["unlabelled_matches"] = unlabelled
    return figures
