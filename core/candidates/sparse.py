"""Top-k cosine neighbours of sparse TF-IDF rows, through sparse_dot_topn (a multiplication that
keeps only each row's best k products, so memory is rows × k whatever the overlap).

Exact while the self-join is affordable. Its cost is the sum over words of (document
frequency)²: a word in a tenth of a million titles costs 10¹⁰ on its own. Past
``cost_budget`` the most frequent words are left out of the *search* (they carry the least
weight: their IDF is lowest) until the cost fits, each row's best ``k + PRUNED_EXTRA``
candidates by the remaining words are then rescored with their exact cosine over all words.
A pair sharing only such frequent words can be missed; that recall is measured in
BENCHMARKS.md.
"""

from __future__ import annotations

import logging
import os

import numpy as np
from scipy.sparse import csr_matrix

from core.candidates.base import Neighbours, drop_self, empty_neighbours
from core.candidates.tfidf import row_cosine

logger = logging.getLogger(__name__)

#: Multiply-adds of the exact self-join above which frequent words are left out of the search.
#: Chosen on the 1M dense scale catalog (BENCHMARKS.md): exact costs 1.5e11 there (about
#: 19 min); at 1e10 the search takes 2 min and keeps 95% of the exact top-50 lists at cosine
#: >= 0.5 (79% at 2e9 for the same time, 97% at 3e10 for twice the time).
COST_BUDGET = 1e10
#: Extra candidates per row, beyond k, rescored exactly when frequent words were left out.
PRUNED_EXTRA = 20
#: Scores within this of a threshold count as reaching it (float32 rounding).
TOLERANCE = 1e-6


def _threads() -> int | None:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return cores if cores and cores > 1 else None


def _padded(result: csr_matrix, width: int) -> tuple[np.ndarray, np.ndarray]:
    """A row-sorted sparse result as (m, width) index / score arrays (-1 / NaN padded)."""
    m = result.shape[0]
    counts = np.diff(result.indptr)
    rows = np.repeat(np.arange(m), counts)
    slot = np.arange(result.nnz) - np.repeat(result.indptr[:-1], counts)
    index = np.full((m, width), -1, np.int64)
    score = np.full((m, width), np.nan, np.float32)
    fits = slot < width
    index[rows[fits], slot[fits]] = result.indices[fits]
    score[rows[fits], slot[fits]] = result.data[fits]
    return index, score


def _top(a: csr_matrix, b_t: csr_matrix, n: int, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    from sparse_dot_topn import sp_matmul_topn

    if a.shape[0] == 0 or a.nnz == 0 or b_t.nnz == 0:
        return np.full((a.shape[0], n), -1, np.int64), np.full((a.shape[0], n), np.nan, np.float32)
    result = sp_matmul_topn(
        a, b_t, top_n=n, threshold=threshold, sort=True, n_threads=_threads()
    ).tocsr()
    return _padded(result, n)


class SparseIndex:
    """A catalog's L2-normalised sparse rows (postings × terms), searchable by cosine.

    Args:
        matrix: CSR rows; an all-zero row (no title) has no neighbours and is nobody's.
        cost_budget: see the module docstring.
    """

    def __init__(self, name: str, matrix, cost_budget: float = COST_BUDGET) -> None:
        self.name = name
        self.matrix = csr_matrix(matrix, dtype=np.float32)
        self.matrix.sort_indices()
        self.transposed = self.matrix.T.tocsr()
        frequency = np.bincount(self.matrix.indices, minlength=self.matrix.shape[1])
        self.search_matrix, self.search_transposed = self.matrix, self.transposed
        self.pruned_words = 0
        self.frequent = np.zeros(len(frequency), bool)
        cost = float(np.sum(frequency.astype(np.float64) ** 2))
        if cost > cost_budget:
            order = np.argsort(-frequency, kind="stable")
            remaining = cost - np.cumsum(frequency[order].astype(np.float64) ** 2)
            drop = int(np.searchsorted(-remaining, -cost_budget)) + 1
            self.frequent[order[:drop]] = True
            keep = ~self.frequent[self.matrix.indices]
            # copy: eliminate_zeros compacts the index arrays in place, which must not be
            # the catalog matrix's own.
            pruned = csr_matrix(
                (self.matrix.data * keep, self.matrix.indices, self.matrix.indptr),
                shape=self.matrix.shape,
                copy=True,
            )
            pruned.eliminate_zeros()
            self.search_matrix, self.search_transposed = pruned, pruned.T.tocsr()
            self.pruned_words = drop
            logger.info(
                "%s: %d most frequent terms (df >= %d) left out of the candidate search",
                name,
                drop,
                int(frequency[order[drop - 1]]),
            )

    @property
    def size(self) -> int:
        return self.matrix.shape[0]

    def search_rows(self, rows: np.ndarray, k: int, min_score: float | None = None) -> Neighbours:
        rows = np.asarray(rows, dtype=np.int64)
        if k <= 0 or len(rows) == 0:
            return empty_neighbours(self.name, len(rows), max(k, 0), rows)
        index, score = self._search(self.matrix[rows], self.search_matrix[rows], k + 1, min_score)
        return drop_self(self.name, rows, index, score, k)

    def search(self, queries, k: int, min_score: float | None = None) -> Neighbours:
        """Neighbours of rows outside the catalog (same vocabulary and IDF as the catalog)."""
        queries = csr_matrix(queries, dtype=np.float32)
        if k <= 0 or queries.shape[0] == 0:
            return empty_neighbours(self.name, queries.shape[0], max(k, 0))
        if self.pruned_words:
            keep = ~self.frequent[queries.indices]
            searched = csr_matrix(
                (queries.data * keep, queries.indices, queries.indptr),
                shape=queries.shape,
                copy=True,
            )
        else:
            searched = queries
        index, score = self._search(queries, searched, k, min_score)
        return Neighbours(self.name, index, score)

    def _search(self, exact_rows, search_rows, width: int, min_score: float | None):
        threshold = 0.0 if min_score is None else max(0.0, min_score - TOLERANCE)
        if not self.pruned_words:
            index, score = _top(exact_rows, self.transposed, width, threshold)
            return index, score
        index, _ = _top(search_rows, self.search_transposed, width + PRUNED_EXTRA, 0.0)
        # A row whose words are all frequent has nothing left to search with: search it whole.
        bare = np.flatnonzero((np.diff(search_rows.indptr) == 0) & (np.diff(exact_rows.indptr) > 0))
        if len(bare):
            extra, _ = _top(exact_rows[bare], self.transposed, width + PRUNED_EXTRA, threshold)
            index[bare] = extra
        filled = index >= 0
        query = np.repeat(np.arange(len(index)), index.shape[1])[filled.ravel()]
        score = np.full(index.shape, np.nan, np.float32)
        score[filled] = _query_cosine(exact_rows, self.matrix, query, index[filled])
        score[score < threshold] = np.nan
        index[~np.isfinite(score)] = -1
        order = np.argsort(np.where(np.isfinite(score), -score, np.inf), axis=1, kind="stable")
        index = np.take_along_axis(index, order, axis=1)[:, :width]
        score = np.take_along_axis(score, order, axis=1)[:, :width]
        return index, score


def _query_cosine(queries: csr_matrix, matrix: csr_matrix, q: np.ndarray, c: np.ndarray):
    """Cosine of query row q[i] with catalog row c[i] (both L2-normalised)."""
    return row_cosine(queries, q, c, other=matrix)


__all__ = ["SparseIndex", "row_cosine"]
