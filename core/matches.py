"""Match sets, groups (connected components) and the competition's submission layout."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from core.settings import MatchSettings

#: Per-modality score columns a pipeline may fill (NaN where a modality is absent).
SCORE_COLUMNS = (
    "probability",
    "image_cosine",
    "hash_distance",
    "tfidf_cosine",
    "text_ratio",
    "siamese_distance",
)


@dataclass
class MatchResult:
    """What every pipeline returns: the matched pairs, with their scores and the rule that fired.

    ``pairs`` holds one row per unordered pair (left < right by catalog order) with columns
    left, right (posting ids), rule, and the `SCORE_COLUMNS` that apply.
    """

    pipeline: str
    posting_ids: list[str]
    pairs: pd.DataFrame
    settings: MatchSettings
    seconds: float = 0.0
    notices: list[str] = field(default_factory=list)

    def match_sets(self) -> dict[str, set[str]]:
        return match_sets(self.posting_ids, self.pairs)

    def groups(self) -> dict[str, int]:
        return connected_groups(self.posting_ids, self.pairs)

    def submission(self) -> pd.DataFrame:
        return submission_frame(self.match_sets(), self.posting_ids)


def match_sets(posting_ids: Sequence[str], pairs: pd.DataFrame) -> dict[str, set[str]]:
    """Each posting's matches, itself included (as the competition scores them)."""
    sets = {pid: {pid} for pid in posting_ids}
    if len(pairs):
        for left, right in zip(pairs["left"], pairs["right"], strict=True):
            sets[left].add(right)
            sets[right].add(left)
    return sets


def connected_groups(posting_ids: Sequence[str], pairs: pd.DataFrame) -> dict[str, int]:
    """Group number per posting: connected components of the match graph."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    position = {pid: i for i, pid in enumerate(posting_ids)}
    n = len(posting_ids)
    if len(pairs):
        rows = pairs["left"].map(position).to_numpy()
        cols = pairs["right"].map(position).to_numpy()
    else:
        rows = cols = np.zeros(0, dtype=np.int64)
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return dict(zip(posting_ids, labels.tolist(), strict=True))


def submission_frame(sets: dict[str, set[str]], order: Sequence[str] | None = None) -> pd.DataFrame:
    """``posting_id,matches``, ids space-separated: the posting first, then the rest sorted."""
    order = list(order) if order is not None else list(sets)
    return pd.DataFrame(
        {
            "posting_id": order,
            "matches": [" ".join([pid, *sorted(sets[pid] - {pid})]) for pid in order],
        }
    )


def read_submission(frame: pd.DataFrame) -> dict[str, set[str]]:
    return {
        row.posting_id: set(str(row.matches).split()) | {row.posting_id}
        for row in frame.itertuples(index=False)
    }
