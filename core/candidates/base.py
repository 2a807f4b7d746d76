"""What every neighbour search returns: top-k lists, one row per query, best first."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

#: Rank given to a pair that is not in a posting's top-k list for a modality.
ABSENT_RANK = 1000


@dataclass
class Neighbours:
    """Top-k lists of one modality: ``index[r]`` best first, ``score[r]`` their similarities.

    Row r belongs to the query ``rows[r]`` (a catalog position) when the queries were catalog
    postings, else to the r-th external query. Similarity is "higher is closer" for every
    modality (hashes use 64 - Hamming distance). Rows are padded with -1 / NaN where fewer
    than k neighbours exist.
    """

    name: str
    index: np.ndarray
    score: np.ndarray
    rows: np.ndarray | None = None
    #: Sorted (row · n + neighbour) keys and their ranks, built on the first `ranks` call
    #: (a catalog's pairs are looked up in many chunks).
    _ranked: tuple[np.ndarray, np.ndarray] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    @property
    def k(self) -> int:
        return self.index.shape[1]

    def directed(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(query position, neighbour position, similarity) for every filled slot."""
        rows = np.arange(len(self.index)) if self.rows is None else self.rows
        query = np.repeat(rows.astype(np.int64), self.k)
        other = self.index.ravel()
        keep = other >= 0
        return query[keep], other[keep].astype(np.int64), self.score.ravel()[keep]

    def pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """Unordered (i < j) pairs of the filled slots (duplicates possible)."""
        query, other, _ = self.directed()
        return np.minimum(query, other), np.maximum(query, other)

    def ranks(self, left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rank (0 = nearest) of right in left's list and of left in right's list.

        Needs lists for every catalog posting (``rows`` None or all positions in order).
        """
        n = len(self.index)
        if self._ranked is None:
            rows = np.repeat(np.arange(n, dtype=np.int64), self.k)
            cols = self.index.ravel().astype(np.int64)
            pos = np.tile(np.arange(self.k, dtype=np.int64), n)
            keep = cols >= 0
            keys = rows[keep] * n + cols[keep]
            order = np.argsort(keys)
            self._ranked = (keys[order], pos[keep][order])
        keys, pos = self._ranked

        def lookup(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            if len(keys) == 0:
                return np.full(len(a), ABSENT_RANK, np.float32)
            query = a.astype(np.int64) * n + b
            at = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
            found = keys[at] == query
            return np.where(found, pos[at], ABSENT_RANK).astype(np.float32)

        return lookup(left, right), lookup(right, left)

    def kth_score(self, k: int) -> np.ndarray:
        """Each row's k-th neighbour similarity (1-based; NaN when it has fewer)."""
        if self.k == 0:
            return np.full(len(self.index), np.nan, np.float32)
        return self.score[:, min(k, self.k) - 1].astype(np.float32)


class NeighbourIndex(Protocol):
    """One modality's searchable catalog: dense vectors, sparse TF-IDF rows or hashes.

    ``search_rows`` answers for catalog postings (never listing a posting as its own
    neighbour); ``search`` for items outside the catalog (an upload).
    """

    name: str

    def search_rows(
        self, rows: np.ndarray, k: int, min_score: float | None = None
    ) -> Neighbours: ...

    def search(self, queries, k: int, min_score: float | None = None) -> Neighbours: ...


def empty_neighbours(name: str, m: int, k: int, rows: np.ndarray | None = None) -> Neighbours:
    return Neighbours(
        name, np.full((m, k), -1, np.int64), np.full((m, k), np.nan, np.float32), rows
    )


def drop_self(
    name: str, rows: np.ndarray, index: np.ndarray, score: np.ndarray, k: int
) -> Neighbours:
    """Top-k lists without each query's own position (searches asked for k + 1)."""
    index = np.asarray(index, dtype=np.int64)
    score = np.asarray(score, dtype=np.float32)
    valid = (index >= 0) & (index != rows[:, None]) & np.isfinite(score)
    # Stable: filled, non-self slots keep their order and move to the front.
    order = np.argsort(~valid, axis=1, kind="stable")[:, :k]
    index = np.take_along_axis(np.where(valid, index, -1), order, axis=1)
    score = np.take_along_axis(np.where(valid, score, np.nan), order, axis=1)
    if index.shape[1] < k:
        pad = k - index.shape[1]
        index = np.pad(index, ((0, 0), (0, pad)), constant_values=-1)
        score = np.pad(score, ((0, 0), (0, pad)), constant_values=np.nan)
    return Neighbours(name, index, score.astype(np.float32), rows)


def all_rows(
    index: NeighbourIndex,
    n: int,
    k: int,
    min_score: float | None = None,
    chunk: int = 8192,
    progress: Callable[[int, int], None] | None = None,
) -> Neighbours:
    """Lists for every catalog posting, searched ``chunk`` postings at a time; ``progress``
    hears (postings done, n) after each chunk."""
    parts = []
    for start in range(0, n, chunk):
        parts.append(index.search_rows(np.arange(start, min(n, start + chunk)), k, min_score))
        if progress is not None:
            progress(min(n, start + chunk), n)
    if not parts:
        return empty_neighbours(index.name, 0, k, np.zeros(0, np.int64))
    return Neighbours(
        index.name,
        np.vstack([p.index for p in parts]),
        np.vstack([p.score for p in parts]),
        None,
    )


def union_directed(parts: Sequence[Neighbours]) -> tuple[np.ndarray, np.ndarray]:
    """Distinct unordered (i < j) pairs found by any of the lists."""
    lefts, rights = [], []
    for nb in parts:
        left, right = nb.pairs()
        lefts.append(left)
        rights.append(right)
    if not lefts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    left, right = np.concatenate(lefts), np.concatenate(rights)
    keep = left != right
    return distinct_pairs(left[keep], right[keep])


def distinct_pairs(query: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(query, other) pairs once each, sorted."""
    if len(query) == 0:
        return query.astype(np.int64), other.astype(np.int64)
    width = int(max(query.max(), other.max())) + 1
    unique = np.unique(query.astype(np.int64) * width + other)
    return unique // width, unique % width
