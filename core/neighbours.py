"""Cosine top-k neighbour search behind one function: scikit-learn for small catalogs, exact FAISS
(inner product) for large ones, FAISS HNSW (approximate) past a few hundred thousand vectors.
Vectors are expected L2-normalised."""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np

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


def search(
    index_vectors: np.ndarray, queries: np.ndarray, k: int, backend: Backend = "auto"
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k by cosine similarity.

    Args:
        index_vectors: (n, d) float32, L2-normalised.
        queries: (m, d) float32, L2-normalised.
        k: neighbours per query (capped at n).
        backend: "sklearn", "faiss" (exact), "hnsw" (approximate) or "auto" (by size).

    Returns:
        (similarities, indices), both (m, k'), best first; k' = min(k, n).
    """
    index_vectors = np.ascontiguousarray(index_vectors, dtype=np.float32)
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    n = len(index_vectors)
    k = min(k, n)
    if n == 0 or len(queries) == 0 or k == 0:
        return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
    chosen = _choose(backend, n)
    if chosen in ("faiss", "hnsw"):
        index = build_faiss_index(index_vectors, chosen)
        if chosen == "hnsw":
            index.hnsw.efSearch = max(HNSW_EF_SEARCH, 2 * k)
        sims, idx = index.search(queries, k)
        return sims, idx.astype(np.int64)
    if chosen != "sklearn":
        raise ValueError(f"unknown neighbour backend {backend!r}; use auto, sklearn, faiss or hnsw")
    from sklearn.neighbors import NearestNeighbors

    model = NearestNeighbors(n_neighbors=k, metric="cosine", algorithm="brute")
    model.fit(index_vectors)
    dist, idx = model.kneighbors(queries)
    return (1.0 - dist).astype(np.float32), idx.astype(np.int64)


def similar_pairs(
    vectors: np.ndarray, min_cosine: float, k: int, backend: Backend = "auto"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Undirected pairs (i < j) among the top-k of either side with cosine >= min_cosine.

    Returns:
        (left, right, cosine) arrays.
    """
    sims, idx = search(vectors, vectors, k + 1, backend)
    rows = np.repeat(np.arange(len(vectors)), idx.shape[1])
    cols = idx.ravel()
    vals = sims.ravel()
    keep = (vals >= min_cosine) & (rows != cols) & (cols >= 0)
    left = np.minimum(rows[keep], cols[keep])
    right = np.maximum(rows[keep], cols[keep])
    if len(left) == 0:
        return left, right, vals[keep]
    key = left.astype(np.int64) * len(vectors) + right
    _, first = np.unique(key, return_index=True)
    return left[first], right[first], vals[keep][first]
