"""What every pipeline returns (`MatchResult`), match sets and the competition's submission
layout."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from core.clusters import Clustering, cluster_matches
from core.pair_listing import LISTED_BOTH, LISTED_LEFT, LISTED_RIGHT
from core.settings import MatchSettings

#: Per-modality score columns a pipeline may fill (NaN where a modality is absent).
SCORE_COLUMNS = (
    "probability",
    "image_cosine",
    "siamese_distance",
    "hash_distance",
    "tfidf_cosine",
    "char_cosine",
    "text_ratio",
    "stage1_probability",
)


@dataclass
class MatchResult:
    """The matched pairs of one pipeline over a catalog, with scores and the rule that fired.

    ``pairs`` holds one row per unordered pair (left before right in catalog order): left,
    right (posting ids), rule, the `SCORE_COLUMNS` that apply, similarity (0..1: how alike,
    the order matches are kept and shown in) and listed (`LISTED_LEFT` / `LISTED_RIGHT` /
    `LISTED_BOTH`: which side counts the other among its matches).
    """

    pipeline: str
    posting_ids: list[str]
    pairs: pd.DataFrame
    settings: MatchSettings
    seconds: float = 0.0
    notices: list[str] = field(default_factory=list)
    #: Postings at the cap: ``settings.max_matches`` matches listed, their best (more may have
    #: been found and dropped).
    capped: int = 0
    stats: Any = None
    #: Catalog positions of each pair's two postings, when the engine made the pairs (saves
    #: looking millions of ids up again); None for stored or hand-made results.
    positions: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)
    _clusters: Clustering | None = field(default=None, repr=False, compare=False)

    def pair_positions(self) -> tuple[np.ndarray, np.ndarray]:
        """(left, right) catalog positions of every pair."""
        if self.positions is None or len(self.positions[0]) != len(self.pairs):
            index = pd.Index(self.posting_ids)
            self.positions = (
                index.get_indexer(self.pairs["left"]),
                index.get_indexer(self.pairs["right"]),
            )
        return self.positions

    @staticmethod
    def empty_pairs() -> pd.DataFrame:
        return pd.DataFrame(
            {
                "left": pd.Series(dtype=object),
                "right": pd.Series(dtype=object),
                "rule": pd.Series(dtype=object),
                "similarity": pd.Series(dtype=np.float32),
                "listed": pd.Series(dtype=np.int8),
            }
        )

    def match_sets(self) -> dict[str, set[str]]:
        return match_sets(self.posting_ids, self.pairs)

    def clusters(self) -> Clustering:
        """Strength- and size-aware clusters of these matches (never raw components); computed
        once per result."""
        if self._clusters is None:
            self._clusters = cluster_matches(
                self.posting_ids,
                self.pairs,
                self.settings.max_cluster_size,
                self.settings.cluster_min_link,
                positions=self.pair_positions(),
            )
        return self._clusters

    def submission(self, clusters: bool = False) -> pd.DataFrame:
        """``posting_id,matches``: each posting's matches, or with ``clusters`` its cluster."""
        sets = self.clusters().match_sets() if clusters else self.match_sets()
        return submission_frame(sets, self.posting_ids)

    def matches_of(self, posting_id: str) -> pd.DataFrame:
        """The postings ``posting_id`` lists, best first: posting_id, rule, scores, similarity."""
        pairs = self.pairs
        if pairs.empty:
            return pairs.assign(posting_id=pd.Series(dtype=object))
        listed = pairs["listed"] if "listed" in pairs else LISTED_BOTH
        as_left = (pairs["left"] == posting_id) & ((listed & LISTED_LEFT) > 0)
        as_right = (pairs["right"] == posting_id) & ((listed & LISTED_RIGHT) > 0)
        mine = pairs[as_left | as_right].copy()
        mine.insert(0, "posting_id", mine["right"].where(mine["left"] == posting_id, mine["left"]))
        mine = mine.drop(columns=["left", "right"])
        if "similarity" in mine:
            mine = mine.sort_values("similarity", ascending=False, kind="stable")
        return mine.reset_index(drop=True)


def match_sets(posting_ids: Sequence[str], pairs: pd.DataFrame) -> dict[str, set[str]]:
    """Each posting's matches, itself included (as the competition scores them)."""
    sets = {pid: {pid} for pid in posting_ids}
    if len(pairs):
        listed = (
            pairs["listed"].to_numpy() if "listed" in pairs else np.full(len(pairs), LISTED_BOTH)
        )
        for left, right, who in zip(pairs["left"], pairs["right"], listed.tolist(), strict=True):
            if who & LISTED_LEFT:
                sets[left].add(right)
            if who & LISTED_RIGHT:
                sets[right].add(left)
    return sets


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
    """A submission as written: exactly the ids each row lists (the posting only if listed)."""
    return {row.posting_id: set(str(row.matches).split()) for row in frame.itertuples(index=False)}
