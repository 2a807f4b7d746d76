"""Stage 2 features of the ``best`` pipeline: each pair's place in the graph of stage 1
probabilities (shared confident neighbours, each side's best probability and degree, TF-IDF
cosine after blending each posting with its confident neighbours — query expansion)."""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix

from core.candidates import row_cosine
from core.pipelines.best.config import BestConfig
from core.pipelines.best.features import PairTable
from core.threads import map_in_threads

#: A stage 1 probability from which a pair counts as confident in the graph features.
CONFIDENT = 0.5


def confident_part(prob: csr_matrix) -> csr_matrix:
    """The confident pairs (probability >= `CONFIDENT`) of a probability matrix."""
    confident = prob.multiply(prob >= CONFIDENT).tocsr()
    confident.eliminate_zeros()
    return confident


def pair_probability_matrix(
    n: int, left: np.ndarray, right: np.ndarray, prob: np.ndarray
) -> csr_matrix:
    """The pairs' probabilities as a symmetric (n × n) matrix."""
    rows = np.concatenate([left, right])
    cols = np.concatenate([right, left])
    vals = np.concatenate([prob, prob]).astype(np.float32)
    return csr_matrix((vals, (rows, cols)), shape=(n, n))


def _row_dot(
    a: csr_matrix, left: np.ndarray, right: np.ndarray, chunk: int = 100_000
) -> np.ndarray:
    """Dot product of each (left, right) row pair, ``chunk`` pairs at a time (spread over
    the cores): the rows of every pair at once would hold pairs × row length entries (GBs on
    a dense catalog)."""

    def dots(start: int) -> np.ndarray:
        a_rows, b_rows = a[left[start : start + chunk]], a[right[start : start + chunk]]
        return np.asarray(a_rows.multiply(b_rows).sum(axis=1)).ravel()

    out = np.empty(len(left), np.float32)
    starts = range(0, len(left), chunk)
    for start, values in zip(starts, map_in_threads(dots, starts), strict=True):
        out[start : start + len(values)] = values
    return out


def _blend(matrix: csr_matrix, weights: csr_matrix, block: int = 50_000) -> csr_matrix:
    """Each row averaged with its confident neighbours' rows, weighted by probability.

    ``block`` rows at a time, twice: once to count each block's entries, once to write them
    into arrays of the final size. The blended rows grow with each posting's confident
    neighbours, so holding the blocks and their concatenation at once (or the whole
    product's temporaries) would double the largest thing the graph stage holds; a block's
    product costs far less than that memory.
    """
    from sklearn.preprocessing import normalize

    n = matrix.shape[0]

    def blended(start: int) -> csr_matrix:
        rows = slice(start, start + block)
        return normalize(matrix[rows] + weights[rows] @ matrix).astype(np.float32).tocsr()

    starts = range(0, n, block)
    total = sum(blended(start).nnz for start in starts)
    data = np.empty(total, np.float32)
    indices = np.empty(total, np.int32 if total < 2**31 else np.int64)
    indptr = np.zeros(n + 1, np.int64)
    at = 0
    for start in starts:
        part = blended(start)
        data[at : at + part.nnz] = part.data
        indices[at : at + part.nnz] = part.indices
        indptr[start + 1 : start + 1 + part.shape[0]] = at + part.indptr[1:]
        at += part.nnz
    return csr_matrix((data, indices, indptr), shape=matrix.shape)


#: Stage 2's graph columns, in the order `graph_features` returns them.
GRAPH_FEATURES = (
    "g_prob",
    "g_rank_min",
    "g_rank_max",
    "g_best_min",
    "g_best_max",
    "g_degree_min",
    "g_degree_max",
    "g_shared",
    "g_shared_confident",
    "g_shared_rel",
    "g_word_blend",
    "g_char_blend",
)


def _pair_ranks(left: np.ndarray, right: np.ndarray, prob: np.ndarray) -> np.ndarray:
    """Rank of each pair among each side's candidates by probability (0 = that side's best):
    (2 × pairs), the left sides' ranks then the right sides'."""
    ends = np.concatenate([left, right])
    order = np.lexsort((-np.concatenate([prob, prob]), ends))
    ends = ends[order]
    starts = np.searchsorted(ends, ends, side="left")
    rank = np.empty(len(ends), np.float32)
    rank[order] = np.arange(len(ends)) - starts
    return rank


def graph_features(
    table: PairTable, prob: np.ndarray, n: int, config: BestConfig | None = None
) -> tuple[np.ndarray, list[str]]:
    """Features of each pair's place in the graph of stage 1 probabilities, written column
    by column into one (pairs × 12) float32 matrix, each temporary let go once used; only
    the columns ``config`` keeps (`BestConfig.drop_features`)."""
    left, right = table.left, table.right
    m = len(left)
    if m == 0:
        return np.zeros((0, 0), np.float32), []
    out = np.empty((m, len(GRAPH_FEATURES)), np.float32)
    column = {name: number for number, name in enumerate(GRAPH_FEATURES)}

    def put(name: str, values: np.ndarray) -> None:
        out[:, column[name]] = values

    put("g_prob", prob)
    rank = _pair_ranks(left, right, prob)
    put("g_rank_min", np.minimum(rank[:m], rank[m:]))
    put("g_rank_max", np.maximum(rank[:m], rank[m:]))
    del rank
    p = pair_probability_matrix(n, left, right, prob)
    best = np.asarray(p.max(axis=1).todense()).ravel().astype(np.float32)
    put("g_best_min", np.minimum(best[left], best[right]))
    put("g_best_max", np.maximum(best[left], best[right]))
    # Shared neighbours: sum over k of p(i,k)·p(k,j), and the count of confident ones.
    put("g_shared", _row_dot(p, left, right))
    confident = confident_part(p)
    del p
    degree = np.asarray(confident.sum(axis=1)).ravel().astype(np.float32)
    put("g_degree_min", np.minimum(degree[left], degree[right]))
    put("g_degree_max", np.maximum(degree[left], degree[right]))
    shared_conf = _row_dot((confident > 0).astype(np.float32), left, right)
    put("g_shared_confident", shared_conf)
    put("g_shared_rel", shared_conf / np.maximum(1.0, np.minimum(degree[left], degree[right])))
    del shared_conf
    # Small chunks of pairs (one per core at once): each pair's two blended rows are long on
    # a dense catalog.
    put("g_word_blend", row_cosine(_blend(table.word, confident), left, right, 25_000))
    put("g_char_blend", row_cosine(_blend(table.char, confident), left, right, 25_000))
    return kept_graph_features(out, config)


def kept_graph_features(out: np.ndarray, config: BestConfig | None) -> tuple[np.ndarray, list[str]]:
    """The columns of all `GRAPH_FEATURES` that ``config`` keeps (`BestConfig.drop_features`)."""
    if config is None or not config.drop_features:
        return out, list(GRAPH_FEATURES)
    kept = [name for name in GRAPH_FEATURES if config.keeps(name)]
    return out[:, [GRAPH_FEATURES.index(name) for name in kept]], kept
