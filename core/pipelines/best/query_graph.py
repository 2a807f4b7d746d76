"""Stage 2's graph features for one new item's pairs, from a catalog's stage 1 graph.

`core.pipelines.best.graph.graph_features` works out every pair's place in the graph of stage 1
probabilities at once. With the item appended, only the item's own pairs are asked for, and
every sum over the graph splits into its candidates' rows of the catalog's graph (scored again
with the item in: `QueryCatalog`) and the item's part (its pairs' probabilities): a query costs
its pairs' rows, not the catalog's.
The same columns, in the same order (`kept_graph_features`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix

from core.pipelines.best.config import BestConfig
from core.pipelines.best.graph import (
    CONFIDENT,
    GRAPH_FEATURES,
    confident_part,
    kept_graph_features,
)


@dataclass(frozen=True)
class CatalogGraph:
    """A catalog's stage 1 graph (pair probabilities, n × n) and the title rows the
    blended-title features average."""

    prob: csr_matrix
    word: csr_matrix
    char: csr_matrix


def _ranks_among(rows: csr_matrix, prob: np.ndarray) -> np.ndarray:
    """Rank of each item pair among its catalog posting's pairs (row i: that posting's)."""
    lengths = np.diff(rows.indptr)
    row = np.repeat(np.arange(len(prob)), lengths)
    better = rows.data > np.repeat(prob, lengths)
    return np.bincount(row, weights=better, minlength=len(prob)).astype(np.float32)


def _blend_cosine(
    matrix: csr_matrix,
    item_row: csr_matrix,
    others: np.ndarray,
    confident_rows: csr_matrix,
    item_weights: np.ndarray,
    confident_prob: np.ndarray,
) -> np.ndarray:
    """Cosine of each other's and the item's title rows, each averaged with its confident
    neighbours' rows weighted by probability (the item among the others' neighbours)."""
    from sklearn.preprocessing import normalize

    item = normalize(item_row + csr_matrix(item_weights[None, :]) @ matrix)
    rows = matrix[others] + confident_rows @ matrix + csr_matrix(confident_prob[:, None]) @ item_row
    rows = normalize(rows)
    return np.minimum(np.asarray((rows @ item.T).todense()).ravel(), 1.0).astype(np.float32)


def item_graph_features(
    graph: CatalogGraph,
    others: np.ndarray,
    prob: np.ndarray,
    rows: csr_matrix,
    title_rows: tuple[csr_matrix, csr_matrix],
    config: BestConfig | None,
) -> np.ndarray:
    """Graph features of pairs (others[i], item) with stage 1 probabilities ``prob``, as
    `graph_features` gives them with the item as the catalog's last posting; ``rows`` are
    the others' rows of the catalog's graph (with the item appended: `QueryCatalog`), and
    ``title_rows`` the item's word and character TF-IDF rows."""
    m, n = len(others), graph.prob.shape[0]
    out = np.empty((m, len(GRAPH_FEATURES)), np.float32)

    def put(name: str, values: np.ndarray) -> None:
        out[:, GRAPH_FEATURES.index(name)] = values

    put("g_prob", prob)
    item_rank = np.empty(m, np.float32)
    item_rank[np.lexsort((np.arange(m), -prob))] = np.arange(m)
    other_rank = _ranks_among(rows, prob)
    put("g_rank_min", np.minimum(other_rank, item_rank))
    put("g_rank_max", np.maximum(other_rank, item_rank))
    best_other = np.maximum(np.asarray(rows.max(axis=1).todense()).ravel(), prob)
    best_item = np.float32(prob.max())
    put("g_best_min", np.minimum(best_other, best_item))
    put("g_best_max", np.maximum(best_other, best_item))
    item_prob = np.zeros(n, np.float32)
    item_prob[others] = prob
    put("g_shared", rows @ item_prob)
    confident_prob = np.where(prob >= CONFIDENT, prob, 0.0).astype(np.float32)
    item_confident = np.zeros(n, np.float32)
    item_confident[others] = confident_prob
    confident_rows = confident_part(rows)
    degree_other = np.asarray(confident_rows.sum(axis=1)).ravel() + confident_prob
    degree_item = np.float32(confident_prob.sum())
    put("g_degree_min", np.minimum(degree_other, degree_item))
    put("g_degree_max", np.maximum(degree_other, degree_item))
    shared = (confident_rows > 0).astype(np.float32) @ (item_confident > 0).astype(np.float32)
    put("g_shared_confident", shared)
    put("g_shared_rel", shared / np.maximum(1.0, np.minimum(degree_other, degree_item)))
    for name, matrix, row in zip(
        ("g_word_blend", "g_char_blend"), (graph.word, graph.char), title_rows, strict=True
    ):
        put(
            name, _blend_cosine(matrix, row, others, confident_rows, item_confident, confident_prob)
        )
    return kept_graph_features(out, config)[0]
