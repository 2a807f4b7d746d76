"""Top-k nearest 64-bit perceptual hashes by Hamming distance, within a maximum distance.

Identical hashes are searched once: postings are grouped by hash value, FAISS finds the
nearest *values*, and each query takes postings from those groups, nearest value first. A
catalog where 100,000 postings share one placeholder picture therefore costs k postings per
query, not 100,000.

Exact: below MULTIHASH_FROM distinct values a flat binary index (every value compared); from
there, while the distance is at most MULTIHASH_MAX_DISTANCE, multi-index hashing (3 tables of
21 bits, 2 flipped bits probed: a value within 8 bits differs by at most 2 bits in at least one
table, so none is missed). Past that distance the flat index is used at any size.
"""

from __future__ import annotations

import numpy as np

from core.candidates.base import Neighbours, empty_neighbours

MULTIHASH_FROM = 200_000
MULTIHASH_TABLES, MULTIHASH_BITS, MULTIHASH_FLIPS = 3, 21, 2
MULTIHASH_MAX_DISTANCE = MULTIHASH_TABLES * (MULTIHASH_FLIPS + 1) - 1


def _codes(values: np.ndarray) -> np.ndarray:
    # Big-endian bytes, so FAISS's bit order does not matter: Hamming distance is the same.
    return np.ascontiguousarray(values.astype(">u8").view(np.uint8).reshape(-1, 8))


class HashIndex:
    """A catalog's perceptual hashes (uint64), searchable by Hamming distance.

    Scores are ``64 - distance`` (higher is closer, as for the other modalities).
    """

    def __init__(
        self, name: str, hashes: np.ndarray, present: np.ndarray, max_distance: int
    ) -> None:
        import faiss

        self.name = name
        self.hashes = np.asarray(hashes, dtype=np.uint64)
        self.present = np.asarray(present, bool)
        self.max_distance = int(max_distance)
        where = np.flatnonzero(self.present)
        self.values, inverse, counts = np.unique(
            self.hashes[where], return_inverse=True, return_counts=True
        )
        # Postings of value v: members[starts[v]:starts[v + 1]], in catalog order.
        order = np.argsort(inverse, kind="stable")
        self.members = where[order]
        self.starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.value_of = np.full(len(self.hashes), -1, np.int64)
        self.value_of[where] = inverse
        multihash = (
            len(self.values) >= MULTIHASH_FROM and self.max_distance <= MULTIHASH_MAX_DISTANCE
        )
        if multihash:
            self._index = faiss.IndexBinaryMultiHash(64, MULTIHASH_TABLES, MULTIHASH_BITS)
            self._index.nflip = MULTIHASH_FLIPS
        else:
            self._index = faiss.IndexBinaryFlat(64)
        if len(self.values):
            self._index.add(_codes(self.values))

    @property
    def size(self) -> int:
        return len(self.hashes)

    def _value_neighbours(self, query_values: np.ndarray, k: int):
        """(value index, distance) arrays of the k nearest stored values per query value."""
        k = min(k, len(self.values))
        if k == 0 or len(query_values) == 0:
            shape = (len(query_values), 0)
            return np.zeros(shape, np.int64), np.zeros(shape, np.int32)
        distance, index = self._index.search(_codes(query_values), k)
        index = index.astype(np.int64)
        far = (index < 0) | (distance > self.max_distance)
        index[far] = -1
        return index, distance.astype(np.int32)

    def _expand(
        self,
        value_index: np.ndarray,
        distance: np.ndarray,
        k: int,
        exclude: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Postings of the nearest values, nearest first, up to k per query (minus ``exclude``)."""
        m = len(value_index)
        index = np.full((m, k), -1, np.int64)
        score = np.full((m, k), np.nan, np.float32)
        for q in range(m):
            filled = 0
            for v, d in zip(value_index[q].tolist(), distance[q].tolist(), strict=True):
                if v < 0 or filled >= k:
                    break
                start = self.starts[v]
                group = self.members[start : min(self.starts[v + 1], start + k + 1)]
                if exclude is not None:
                    group = group[group != exclude[q]]
                take = group[: k - filled]
                index[q, filled : filled + len(take)] = take
                score[q, filled : filled + len(take)] = 64 - d
                filled += len(take)
        return index, score

    def search_rows(self, rows: np.ndarray, k: int, min_score: float | None = None) -> Neighbours:
        rows = np.asarray(rows, dtype=np.int64)
        out = empty_neighbours(self.name, len(rows), max(k, 0), rows)
        has = self.value_of[rows] >= 0 if len(rows) else np.zeros(0, bool)
        if k <= 0 or not has.any():
            return out
        asked = rows[has]
        # k + 1 values always hold k other postings: each value has one posting at least, and
        # only the query's own value loses one (the query itself).
        value_index, distance = self._value_neighbours(self.hashes[asked], k + 1)
        out.index[has], out.score[has] = self._expand(value_index, distance, k, asked)
        return _at_least(out, min_score)

    def search(self, queries, k: int, min_score: float | None = None) -> Neighbours:
        """Neighbours of hashes outside the catalog (uint64 values)."""
        queries = np.atleast_1d(np.asarray(queries, dtype=np.uint64))
        value_index, distance = self._value_neighbours(queries, k)
        index, score = self._expand(value_index, distance, max(k, 0), None)
        return _at_least(Neighbours(self.name, index, score), min_score)


def _at_least(nb: Neighbours, min_score: float | None) -> Neighbours:
    if min_score is not None:
        low = ~(nb.score >= min_score)
        nb.index[low], nb.score[low] = -1, np.nan
    return nb
