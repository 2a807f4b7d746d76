"""Stage 2 features of the ``best`` pipeline: each pair's place in the graph of stage 1
probabilities (shared confident neighbours, each side's best probability and degree, TF-IDF
cosine after blending each posting with its confident neighbours — query expansion)."""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix

from core.candidates import row_cosine
from core.pipelines.best.features import PairTable


def _prob_matrix(n: int, left: np.ndarray, right: np.ndarray, prob: np.ndarray) -> csr_matrix:
    rows = np.concatenate([left, right])
    cols = np.concatenate([right, left])
    vals = np.concatenate([prob, prob]).astype(np.float32)
    return csr_matrix((vals, (rows, cols)), shape=(n, n))


def _row_dot(
    a: csr_matrix, left: np.ndarray, right: np.ndarray, chunk: int = 200_000
) -> np.ndarray:
    """Dot product of each (left, right) row pair, ``chunk`` pairs at a time: the rows of
    every pair at once would hold pairs × row length entries (GBs on a dense catalog)."""
    out = np.empty(len(left), np.float32)
    for start in range(0, len(left), chunk):
        a_rows, b_rows = a[left[start : start + chunk]], a[right[start : start + chunk]]
        out[start : start + chunk] = np.asarray(a_rows.multiply(b_rows).sum(axis=1)).ravel()
    return out


def _blend(matrix: csr_matrix, weights: csr_matrix) -> csr_matrix:
    """Each row averaged with its confident neighbours' rows, weighted by probability."""
    from sklearn.preprocessing import normalize

    blended = matrix + weights @ matrix
    return normalize(blended).astype(np.float32).tocsr()


def graph_features(table: PairTable, prob: np.ndarray, n: int) -> tuple[np.ndarray, list[str]]:
    """Features of each pair's place in the graph of stage 1 probabilities."""
    left, right = table.left, table.right
    if len(left) == 0:
        return np.zeros((0, 0), np.float32), []
    p = _prob_matrix(n, left, right, prob)
    confident = p.multiply(p >= 0.5).tocsr()
    confident.eliminate_zeros()
    degree = np.asarray(confident.sum(axis=1)).ravel().astype(np.float32)
    best = np.asarray(p.max(axis=1).todense()).ravel().astype(np.float32)
    # Rank of the pair among each side's candidates by probability (0 = that side's best).
    order = np.lexsort((-np.concatenate([prob, prob]), np.concatenate([left, right])))
    ends = np.concatenate([left, right])[order]
    starts = np.searchsorted(ends, ends, side="left")
    rank = np.empty(2 * len(left), np.float32)
    rank[order] = np.arange(2 * len(left)) - starts
    rank_a, rank_b = rank[: len(left)], rank[len(left) :]
    # Shared neighbours: sum over k of p(i,k)·p(k,j), and the count of confident ones.
    shared = _row_dot(p, left, right)
    shared_conf = _row_dot((confident > 0).astype(np.float32), left, right)
    word_q = _blend(table.word, confident)
    char_q = _blend(table.char, confident)
    with np.errstate(divide="ignore", invalid="ignore"):
        cols = {
            "g_prob": prob.astype(np.float32),
            "g_rank_min": np.minimum(rank_a, rank_b),
            "g_rank_max": np.maximum(rank_a, rank_b),
            "g_best_min": np.minimum(best[left], best[right]),
            "g_best_max": np.maximum(best[left], best[right]),
            "g_degree_min": np.minimum(degree[left], degree[right]),
            "g_degree_max": np.maximum(degree[left], degree[right]),
            "g_shared": shared,
            "g_shared_confident": shared_conf,
            "g_shared_rel": shared_conf / np.maximum(1.0, np.minimum(degree[left], degree[right])),
            "g_word_blend": row_cosine(word_q, left, right),
            "g_char_blend": row_cosine(char_q, left, right),
        }
    names = list(cols)
    return np.column_stack([cols[k] for k in names]).astype(np.float32), names
