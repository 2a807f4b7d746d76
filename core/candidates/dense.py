"""Cosine top-k neighbours of dense vectors (image embeddings, title-encoder vectors):
scikit-learn for small catalogs, exact FAISS (inner product) for large ones, FAISS HNSW
(approximate) past a few hundred thousand vectors. Vectors are expected L2-normalised."""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np

from core.candidates.base import Neighbours, drop_self, empty_neighbours

logger = logging.getLogger(__name__)

#: Above this many indexed vectors, "auto" uses FAISS when it is installed.
FAISS_FROM = 20_000
#: From this many vectors, "auto" uses an HNSW graph: exact search grows with n² over a catalog.
HNSW_FROM = 200_000
#: HNSW graph degree and search breadth; recall@k against exact search is in BENCHMARKS.md.
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128

Backend = Literal["auto", "sklearn", "faiss", "hnsw"]


def _choose(backend: Backend, n: int) -> str:
    if backend != "auto":
        return backend
    if n < FAISS_FROM:
        return "sklearn"
    try:
        import faiss  # noqa: F401
    except ImportError:
        logger.info("faiss-cpu not installed; using scikit-learn for %d vectors", n)
        return "sklearn"
    return "hnsw" if n >= HNSW_FROM else "faiss"


def build_faiss_index(vectors: np.ndarray, kind: str):
    """A FAISS inner-product index over ``vectors``: "faiss" (flat, exact) or "hnsw"."""
    try:
        import faiss
    except ImportError as exc:
        raise ImportError(
            "The FAISS backend needs faiss-cpu: pip install 'samesame[faiss]' (faiss-cpu)"
        ) from exc
    dim = vectors.shape[1]
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = HNSW_EF_SEARCH
    elif kind == "faiss":
        index = faiss.IndexFlatIP(dim)
    else:
        raise ValueError(f"unknown FAISS index kind {kind!r}; use faiss or hnsw")
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


class DenseIndex:
    """A catalog's L2-normalised vectors (one modality: image or title-encoder vectors).

    Args:
        vectors: (n, d) float32, one row per catalog posting.
        present: which rows hold a real vector (others are never returned nor searched).
        backend: "sklearn" (exact), "faiss" (exact), "hnsw" (approximate) or "auto" (by size).
    """

    def __init__(
        self,
        name: str,
        vectors: np.ndarray,
        present: np.ndarray | None = None,
        backend: Backend = "auto",
    ) -> None:
        self.name = name
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        n = len(self.vectors)
        self.present = np.ones(n, bool) if present is None else np.asarray(present, bool)
        self.where = np.flatnonzero(self.present)
        indexed = np.ascontiguousarray(self.vectors[self.where])
        self.backend = _choose(backend, len(indexed)) if len(indexed) else "sklearn"
        if self.backend in ("faiss", "hnsw"):
            self._index = build_faiss_index(indexed, self.backend)
        elif self.backend == "sklearn":
            from sklearn.neighbors import NearestNeighbors

            self._index = None
            if len(indexed):
                self._index = NearestNeighbors(metric="cosine", algorithm="brute").fit(indexed)
        else:
            raise ValueError(
                f"unknown neighbour backend {backend!r}; use auto, sklearn, faiss or hnsw"
            )

    @property
    def size(self) -> int:
        return len(self.vectors)

    def _raw(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, len(self.where))
        if k == 0 or len(queries) == 0:
            return np.zeros((len(queries), 0), np.int64), np.zeros((len(queries), 0), np.float32)
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if self.backend == "sklearn":
            dist, idx = self._index.kneighbors(queries, n_neighbors=k)
            sims = (1.0 - dist).astype(np.float32)
        else:
            if self.backend == "hnsw":
                self._index.hnsw.efSearch = max(HNSW_EF_SEARCH, 2 * k)
            sims, idx = self._index.search(queries, k)
        idx = idx.astype(np.int64)
        return np.where(idx >= 0, self.where[np.maximum(idx, 0)], -1), sims

    def search_rows(self, rows: np.ndarray, k: int, min_score: float | None = None) -> Neighbours:
        rows = np.asarray(rows, dtype=np.int64)
        out = empty_neighbours(self.name, len(rows), max(k, 0), rows)
        has = self.present[rows] if len(rows) else np.zeros(0, bool)
        if k <= 0 or not has.any():
            return out
        index, score = self._raw(self.vectors[rows[has]], k + 1)
        found = drop_self(self.name, rows[has], index, score, k)
        out.index[has], out.score[has] = found.index, found.score
        return _at_least(out, min_score)

    def search(self, queries: np.ndarray, k: int, min_score: float | None = None) -> Neighbours:
        """Neighbours of vectors outside the catalog (an uploaded photo's embedding)."""
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        index, score = self._raw(queries, k)
        width = max(k, 0)
        nb = empty_neighbours(self.name, len(queries), width)
        nb.index[:, : index.shape[1]], nb.score[:, : score.shape[1]] = index, score
        return _at_least(nb, min_score)


def _at_least(nb: Neighbours, min_score: float | None) -> Neighbours:
    if min_score is not None:
        low = ~(nb.score >= min_score - 1e-6)
        nb.index[low], nb.score[low] = -1, np.nan
    return nb
