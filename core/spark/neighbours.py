"""Candidate pairs on Spark from the single machine's own neighbour indexes, searched in blocks.

What the catalog needs for a search — its titles' TF-IDF rows (about 12 bytes a word), its
hashes (8 bytes a posting) or its titles — is broadcast once; each Python worker builds the
index once (`core.candidates`: sparse_dot_topn, FAISS binary indexes, rapidfuzz); each task
searches one block of rows. So Spark finds exactly the candidates one machine finds (each
posting's top k, the same bounds), at the single machine's speed per core.

Why not Spark joins: a word or hash-chunk join materialises every pair that shares a key, and
on Shopee-like titles that is tens of millions of rows at 100,000 postings (BENCHMARKS.md),
where the indexes compute each posting's k best in C++ directly. Past `BROADCAST_UP_TO`
postings the TF-IDF search falls back to the join (`core.spark.candidates.shared_token_pairs`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from core.candidates import HashIndex, SparseIndex, fit_tfidf
from core.candidates.ratio import BLOCK_CELLS, passing_pairs
from core.spark.pairs import ordered_pairs

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

#: Postings up to which titles are broadcast for the TF-IDF search (the driver fits TF-IDF on
#: them as one machine does: a few hundred MB at this size).
BROADCAST_UP_TO = 2_000_000
#: Rows one task searches at a time (bounds the task's lists: rows × k).
SEARCH_BLOCK = 8192
#: The index built in this Python worker, by job key (a worker runs many tasks).
_WORKER_INDEXES: dict[str, Any] = {}


def _hash_index(payload: tuple[np.ndarray, int]) -> Any:
    signed, max_distance = payload
    # Spark has no unsigned type: the hashes travel as signed longs of the same bits.
    hashes = signed.view(np.uint64)
    return HashIndex("hash", hashes, np.ones(len(hashes), bool), max_distance)


def _tfidf_index(payload: tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int]]) -> Any:
    from scipy.sparse import csr_matrix

    data, indices, indptr, shape = payload
    return SparseIndex("text", csr_matrix((data, indices, indptr), shape=shape))


def worker_index(key: str, build: Callable[[], Any]) -> Any:
    """The index ``build`` makes, built once per Python worker for the job ``key``."""
    index = _WORKER_INDEXES.get(key)
    if index is None:
        index = build()
        _WORKER_INDEXES.clear()  # one job's index at a time
        _WORKER_INDEXES[key] = index
    return index


def block_starts(spark: SparkSession, n: int, block: int, partitions: int) -> DataFrame:
    """One row per block of ``block`` positions out of ``n``: what the tasks share out."""
    return spark.createDataFrame(
        [(start,) for start in range(0, n, block)], "start long"
    ).repartition(max(1, partitions))


def _nearest_pairs(
    spark: SparkSession,
    ids: np.ndarray,
    payload: Any,
    build: Callable[[Any], Any],
    k: int,
    min_score: float | None,
    partitions: int,
) -> DataFrame:
    """(l, r) of each row's ``k`` neighbours (at least ``min_score``) by the index ``build``
    makes of ``payload``, whose rows are the postings ``ids`` in that order."""
    shared = spark.sparkContext.broadcast((ids, payload))
    n = len(ids)
    key = uuid.uuid4().hex
    starts = block_starts(spark, n, SEARCH_BLOCK, partitions)

    def search(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        ids, payload = shared.value
        index = worker_index(key, lambda: build(payload))
        for batch in batches:
            for start in batch["start"].tolist():
                rows = np.arange(start, min(n, start + SEARCH_BLOCK))
                left, right = index.search_rows(rows, k, min_score).pairs()
                yield pd.DataFrame({"a": ids[left], "b": ids[right]})

    return ordered_pairs(starts.mapInPandas(search, "a long, b long"))


def nearest_hash_pairs(
    hashed: DataFrame, max_distance: int, top_k: int, partitions: int
) -> DataFrame:
    """(l, r) of each posting's ``top_k`` nearest hashes within ``max_distance`` bits (the
    single machine's `HashIndex`: identical hashes searched once)."""
    rows = hashed.select("idx", "phash").orderBy("idx").toPandas()
    ids = rows["idx"].to_numpy(np.int64)
    payload = (rows["phash"].to_numpy(np.int64), int(max_distance))
    return _nearest_pairs(hashed.sparkSession, ids, payload, _hash_index, top_k, None, partitions)


def nearest_title_pairs(
    titled: DataFrame, min_cosine: float, top_k: int, partitions: int
) -> DataFrame:
    """(l, r) of each posting's ``top_k`` nearest titles by TF-IDF cosine at least
    ``min_cosine`` (`fit_tfidf` on the driver, the single machine's `SparseIndex`).
    ``titled`` holds every posting, empty titles too: they count in the IDF, and find and
    are found by nobody."""
    rows = titled.select("idx", "title").orderBy("idx").toPandas()
    matrix = fit_tfidf(rows["title"].fillna("").tolist()).matrix.tocsr()
    ids, payload = (
        rows["idx"].to_numpy(np.int64),
        (matrix.data, matrix.indices, matrix.indptr, matrix.shape),
    )
    spark = titled.sparkSession
    return _nearest_pairs(spark, ids, payload, _tfidf_index, top_k, min_cosine, partitions)


def ratio_pairs(titled: DataFrame, min_ratio: float, partitions: int) -> DataFrame:
    """(l, r) of every pair of titles with SequenceMatcher ratio > ``min_ratio``, exactly as
    one machine's `core.candidates.ratio.RatioIndex` finds them: the same bounded comparison
    (`passing_pairs`), one block of rows against the later titles per task.

    For catalogs up to `core.candidates.ratio.EXACT_RATIO_UP_TO` titles, as on one machine.
    """
    rows = titled.select("idx", "title").orderBy("idx").toPandas()
    n = len(rows)
    spark = titled.sparkSession
    shared = spark.sparkContext.broadcast(
        (rows["idx"].to_numpy(np.int64), rows["title"].astype(str).tolist())
    )
    rows_per_block = max(1, BLOCK_CELLS // max(1, n))
    starts = block_starts(spark, n, rows_per_block, partitions)

    def compare(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        ids, titles = shared.value
        present = np.fromiter((bool(t) for t in titles), bool, len(titles))
        for batch in batches:
            for start in batch["start"].tolist():
                block = np.arange(start, min(len(titles), start + rows_per_block))
                # One core per Spark task: Spark runs as many tasks as it has cores.
                i, j, _ = passing_pairs(titles, present, block, start, True, min_ratio, 1)
                yield pd.DataFrame({"l": ids[i], "r": ids[j]})

    return starts.mapInPandas(compare, "l long, r long")
