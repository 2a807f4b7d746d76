"""Nearest-neighbour candidates behind one interface: each modality's catalog is an index with
``search_rows(rows, k, min_score)`` (catalog postings, never themselves) and
``search(queries, k, min_score)`` (items outside the catalog), both returning `Neighbours`
(top-k lists, best first). Backends: `DenseIndex` (vectors: scikit-learn, FAISS, HNSW),
`SparseIndex` (TF-IDF rows: sparse_dot_topn) and `HashIndex` (perceptual hashes: FAISS binary
indexes). Every list is bounded by k, so what a search holds depends on the catalog's size,
never on how many postings look alike.
"""

from __future__ import annotations

from core.candidates.base import (
    ABSENT_RANK,
    NeighbourIndex,
    Neighbours,
    all_rows,
    distinct_pairs,
    union_directed,
)
from core.candidates.dense import DenseIndex
from core.candidates.hashes import HashIndex
from core.candidates.sparse import SparseIndex
from core.candidates.tfidf import WORDS, TfidfModel, TfidfSpec, fit_tfidf, row_cosine, tfidf_rows

__all__ = [
    "ABSENT_RANK",
    "WORDS",
    "DenseIndex",
    "HashIndex",
    "NeighbourIndex",
    "Neighbours",
    "SparseIndex",
    "TfidfModel",
    "TfidfSpec",
    "all_rows",
    "fit_tfidf",
    "row_cosine",
    "tfidf_rows",
    "distinct_pairs",
    "union_directed",
]
