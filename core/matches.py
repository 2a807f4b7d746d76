"""What every pipeline returns (`MatchResult`), match sets and the competition's submission
layout."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from core.clusters import Clustering, cluster_edges
from core.pair_listing import LISTED_BOTH, LISTED_LEFT, LISTED_RIGHT
from core.pair_table import PairTable
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

    The engine gives its pairs as a `PairTable` (arrays, no Python object per pair) and leaves
    ``frame`` None: ``pairs`` is made from the table when first read. Storing a run, its
    clusters and its figures read the table (`pair_frames`, `pair_column`), so a run of tens
    of millions of pairs is never held as one frame of posting ids.
    """

    pipeline: str
    posting_ids: list[str]
    frame: pd.DataFrame | None
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
    #: The engine's pairs as arrays, while ``frame`` has not been made from them.
    table: PairTable | None = field(default=None, repr=False, compare=False)

    @property
    def pairs(self) -> pd.DataFrame:
        """Every pair as one frame (made from the table on first use, then kept)."""
        if self.frame is None and self.table is None:
            self.frame = self.empty_pairs()
        elif self.frame is None:
            self.frame = self.table.frame()
            self.positions, self.table = (self.table.left, self.table.right), None
        return self.frame

    @pairs.setter
    def pairs(self, frame: pd.DataFrame) -> None:
        self.frame, self.table = frame, None

    @property
    def pair_count(self) -> int:
        return len(self.table) if self.table is not None else len(self.pairs)

    def pair_frames(self, rows: int | None = None) -> Iterator[pd.DataFrame]:
        """The pairs as consecutive frames of at most ``rows`` (default
        `core.pair_table.FRAME_ROWS`; one frame when the pairs are already one)."""
        if self.table is not None:
            yield from self.table.frames(rows)
        else:
            yield self.pairs

    def pair_column(self, name: str) -> np.ndarray:
        """One column of every pair (``listed``, ``similarity`` or a score) as an array;
        ``listed`` is `LISTED_BOTH` throughout when the pairs do not say."""
        if self.table is not None:
            return self.table.column(name)
        if name == "listed" and name not in self.pairs:
            return np.full(len(self.pairs), LISTED_BOTH, np.int8)
        return self.pairs[name].to_numpy()

    def pair_positions(self) -> tuple[np.ndarray, np.ndarray]:
        """(left, right) catalog positions of every pair."""
        if self.table is not None:
            return self.table.left, self.table.right
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
            left, right = self.pair_positions()
            self._clusters = cluster_edges(
                self.posting_ids,
                (left, right, self.pair_column("similarity"), self.pair_column("listed")),
                self.settings.max_cluster_size,
                self.settings.cluster_min_link,
            )
        return self._clusters

    def submission(self, clusters: bool = False) -> pd.DataFrame:
        """``posting_id,matches``: each posting's matches, or with ``clusters`` its cluster."""
        if not clusters and self.table is not None:
            return listed_submission(self.table)
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


def listed_submission(table: PairTable) -> pd.DataFrame:
    """`submission_frame` of a `PairTable`'s listed matches, by catalog position: no set of
    ids per posting (tens of millions of pairs at a million postings)."""
    ids = table.posting_ids
    by_left, by_right = (table.listed & LISTED_LEFT) > 0, (table.listed & LISTED_RIGHT) > 0
    lister = np.concatenate([table.left[by_left], table.right[by_right]])
    listed = np.concatenate([table.right[by_left], table.left[by_right]])
    del by_left, by_right
    rank = np.empty(len(ids), np.int64)
    rank[np.argsort(ids, kind="stable")] = np.arange(len(ids))  # ids' own (string) order
    order = np.lexsort((rank[listed], lister))
    lister, listed = lister[order], listed[order]
    del order, rank
    bounds = np.searchsorted(lister, np.arange(len(ids) + 1)).tolist()
    matches = [
        " ".join([pid, *ids[listed[bounds[i] : bounds[i + 1]]]]) for i, pid in enumerate(ids)
    ]
    return pd.DataFrame({"posting_id": list(ids), "matches": matches})


def read_submission(frame: pd.DataFrame) -> dict[str, set[str]]:
    """A submission as written: exactly the ids each row lists (the posting only if listed)."""
    return {row.posting_id: set(str(row.matches).split()) for row in frame.itertuples(index=False)}
