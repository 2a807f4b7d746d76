"""``best`` on Spark: a trained matcher's searches and chunks of candidate pairs as Spark tasks.

The driver holds what one machine holds of the catalog (its titles, hashes, TF-IDF rows and
each posting's top-k lists) and broadcasts it once. Tasks then do the work that grows with the
catalog:

1. **Searches**: each task searches one block of postings with the single machine's own index
   (`core.pipelines.best.features.search_here`'s indexes, built once per Python worker).
2. **Pair features and scores**: each task computes and scores one chunk of candidate pairs
   with `core.pipelines.best.scoring.stage1_chunk` and `stage2_chunk` (the same features,
   the same LightGBM models), in ``mapInPandas``.

Between the two scoring passes the graph stage's catalog-wide sums run on the driver, as on
one machine. So Spark decides exactly one machine's matches (tested), with the pair work, most
of the time at scale, spread over the cluster's cores. The catalog must fit the driver, as
for the title search (`core.spark.neighbours.BROADCAST_UP_TO`).
"""

from __future__ import annotations

import io
import math
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from core.candidates import Neighbours
from core.engine import decided_pairs
from core.errors import SameSameError
from core.models import settings_for_image_model
from core.pipelines import MatchRequest, get_pipeline
from core.pipelines.best.features import (
    Candidates,
    IndexBuilder,
    Progress,
    pair_features,
    search_here,
)
from core.pipelines.best.model import BEST_NAME, BestMatcher
from core.pipelines.best.pipeline import BEST
from core.pipelines.best.scoring import (
    FEATURE_CHUNK,
    Chunks,
    Scored,
    chunk_bounds,
    stage1_chunk,
    stage2_chunk,
)
from core.pipelines.inputs import MatchInputs
from core.settings import MatchSettings
from core.spark.neighbours import SEARCH_BLOCK, block_starts, worker_index
from core.spark.vectors import embedder_spec
from core.threads import one_thread

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from core.candidates import Neighbours
    from core.pipelines.best.model import BestMatcher

#: Fewest pairs per Spark task (a task's fixed cost is a few milliseconds of Python).
SPARK_MIN_CHUNK = 20_000


def _pack(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _unpack(payload: bytes) -> np.ndarray:
    return np.load(io.BytesIO(payload), allow_pickle=False)


class SparkRunner:
    """`core.pipelines.best.scoring.Runner` on a Spark session: every search block and
    every chunk of pairs is a task."""

    def __init__(self, spark: SparkSession, partitions: int) -> None:
        self.spark = spark
        self.partitions = max(1, partitions)
        self._shared: Any = None

    def search(self, build: IndexBuilder, n: int, k: int, progress: Progress) -> Neighbours:
        if n == 0:
            return search_here(build, n, k, progress)
        shared = self.spark.sparkContext.broadcast(build)
        key, block = uuid.uuid4().hex, SEARCH_BLOCK

        def task(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            index = worker_index(key, shared.value)
            for batch in batches:
                for start in batch["start"].tolist():
                    with one_thread():
                        part = index.search_rows(np.arange(start, min(n, start + block)), k)
                    yield pd.DataFrame(
                        {
                            "start": [start],
                            "name": [part.name],
                            "index": [_pack(part.index)],
                            "score": [_pack(part.score)],
                        }
                    )

        starts = block_starts(self.spark, n, block, self.partitions)
        schema = "start long, name string, index binary, score binary"
        rows = sorted(starts.mapInPandas(task, schema).collect(), key=lambda row: row["start"])
        shared.unpersist()
        progress(n, n)
        return Neighbours(
            rows[0]["name"],
            np.vstack([_unpack(row["index"]) for row in rows]),
            np.vstack([_unpack(row["score"]) for row in rows]),
            None,
        )

    def chunks(self, m: int) -> list[tuple[int, int]]:
        # A few chunks per core, so uneven chunks even out, but never tiny ones.
        size = min(FEATURE_CHUNK, max(SPARK_MIN_CHUNK, math.ceil(m / (4 * self.partitions))))
        return chunk_bounds(m, size)

    def _chunk_frame(self, chunks: Chunks) -> DataFrame:
        return self.spark.createDataFrame(
            [(int(start), int(end)) for start, end in chunks], "start long, end long"
        ).repartition(max(1, min(len(chunks), 4 * self.partitions)))

    def stage1(
        self,
        matcher: BestMatcher,
        found: Candidates,
        chunks: Chunks,
        progress: Progress,
        scored: Scored,
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        if not chunks:
            return []
        shared = self._shared = self.spark.sparkContext.broadcast((_portable(matcher), found))

        def task(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            matcher, found = shared.value
            for batch in batches:
                for start, end in zip(batch["start"].tolist(), batch["end"].tolist(), strict=True):
                    with one_thread():
                        prob, reported, _ = stage1_chunk(matcher, found, start, end)
                    yield pd.DataFrame(
                        {"start": [start], "prob": [_pack(prob)], "reported": [_pack(reported)]}
                    )

        schema = "start long, prob binary, reported binary"
        rows = self._chunk_frame(chunks).mapInPandas(task, schema).collect()
        rows.sort(key=lambda row: row["start"])
        m = chunks[-1][1]
        progress(m, m)
        scored(m)
        return [(_unpack(row["prob"]), _unpack(row["reported"])) for row in rows]

    def stage2(
        self, matcher: BestMatcher, chunks: Chunks, graph: np.ndarray, scored: Scored
    ) -> list[np.ndarray]:
        shared = self._shared
        graphs = self.spark.sparkContext.broadcast(graph)
        try:

            def task(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
                matcher, found = shared.value
                for batch in batches:
                    bounds = zip(batch["start"].tolist(), batch["end"].tolist(), strict=True)
                    for start, end in bounds:
                        # Computed again rather than shipped back and forth: a chunk's
                        # features are ~450 bytes a pair, its graph columns ~50.
                        with one_thread():
                            features, _ = pair_features(found, matcher.config, start, end)
                            prob = stage2_chunk(matcher, features, graphs.value[start:end])
                        yield pd.DataFrame({"start": [start], "prob": [_pack(prob)]})

            rows = self._chunk_frame(chunks).mapInPandas(task, "start long, prob binary")
            collected = sorted(rows.collect(), key=lambda row: row["start"])
        finally:
            graphs.unpersist()
        scored(chunks[-1][1])
        return [_unpack(row["prob"]) for row in collected]

    def close(self) -> None:
        if self._shared is not None:
            self._shared.unpersist()
            self._shared = None


def _portable(matcher: BestMatcher) -> BestMatcher:
    """The matcher as tasks need it: its title encoder (a Keras model) only runs on the
    driver, before the searches."""
    return BestMatcher(
        matcher.config, matcher.stage1, matcher.stage2, matcher.names1, matcher.names2, None
    )


def load_model(model_dir: str | Path | None) -> BestMatcher:
    """The trained model ``--model`` names, or a clear error (before Spark starts)."""
    if model_dir is None:
        raise SameSameError(
            "spark-match --pipeline best needs --model: the folder of a best model trained on "
            "a labelled catalog (python -m core train --pipeline best)"
        )
    return BestMatcher.load(Path(model_dir))


def image_spec(matcher: BestMatcher, settings: MatchSettings, images: bool) -> tuple | None:
    """The embedder a model trained with image vectors needs (`core.spark.vectors`), None
    for a model that compares photos by hash; a clear error where the job cannot give it
    the vectors it learned from (checked before Spark starts)."""
    learned = matcher.info.get("image_model")
    if not learned:
        return None
    if not images:
        raise SameSameError(
            f"This best model was trained with {learned} image vectors: give --images DIR "
            "(the catalog's photos) and no --hash-only, or use a best model trained without "
            "image vectors."
        )
    # The photos are embedded as the model learnt them, whatever backbone the settings name.
    return embedder_spec(get_pipeline(BEST_NAME), settings_for_image_model(settings, learned), None)


def _vector_matrix(vectors: DataFrame, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`core.spark.vectors.embed_frame` output as rows in ``ids`` order, and which have one."""
    frame = vectors.toPandas()
    present = np.zeros(len(ids), bool)
    if frame.empty:
        return np.zeros((len(ids), 1), np.float32), present
    idx = frame["idx"].to_numpy(np.int64)
    rows = np.minimum(np.searchsorted(ids, idx), len(ids) - 1)
    if not np.array_equal(ids[rows], idx):
        raise SameSameError("image vectors came back for postings the job does not have")
    matrix = np.zeros((len(ids), len(frame["vec"].iloc[0])), np.float32)
    matrix[rows] = np.stack(frame["vec"].to_numpy())
    present[rows] = True
    return matrix, present


def best_pairs(
    postings: DataFrame,
    matcher: BestMatcher,
    partitions: int,
    vectors: DataFrame | None = None,
) -> DataFrame:
    """Matched pairs (l, r, rule, similarity, the scores `best` reports) of a trained model
    over prepared postings (`core.spark.io.prepare_frame`) and, for a model trained with
    them, the image vectors of `core.spark.vectors.embed_frame`: the single machine's
    decisions."""
    from pyspark.sql import functions as F

    # A null in a long column comes back as a float64 column, which cannot hold 64 bits.
    rows = (
        postings.select(
            "idx",
            "posting_id",
            "title",
            F.coalesce("phash", F.lit(0).cast("long")).alias("phash"),
            F.col("phash").isNotNull().alias("has_hash"),
        )
        .orderBy("idx")
        .toPandas()
    )
    has_hash = rows["has_hash"].to_numpy(bool)
    signed = rows["phash"].to_numpy(np.int64)
    inputs = MatchInputs(
        rows["posting_id"].tolist(),
        rows["title"].fillna("").tolist(),
        signed.view(np.uint64),
        has_hash,
    )
    ids = rows["idx"].to_numpy(np.int64)
    if vectors is not None:
        inputs.image_vectors, inputs.has_vector = _vector_matrix(vectors, ids)
        inputs.image_model = matcher.info.get("image_model")
    spark = postings.sparkSession
    request = MatchRequest(
        inputs, MatchSettings(), model=matcher, runner=SparkRunner(spark, partitions)
    )
    decided = decided_pairs(BEST, BEST.prepare(request), matcher)
    frame = pd.DataFrame(
        {
            "l": ids[decided["left"].to_numpy(np.int64)],
            "r": ids[decided["right"].to_numpy(np.int64)],
            "rule": decided["rule"].astype(str).to_numpy(object),
            "similarity": decided["similarity"].to_numpy(np.float32),
        }
    )
    for column in BEST.score_columns:
        frame[column] = decided[column].to_numpy(np.float32)
    scores = ", ".join(f"{name} float" for name in BEST.score_columns)
    schema = f"l long, r long, rule string, similarity float, {scores}"
    return spark.createDataFrame(frame, schema)
