"""The registry's rule pipelines on Spark: candidate pairs found by each modality, joined with
both sides' columns, and scored by the pipeline's own `Pipeline.score` in ``mapInPandas``,
after the per-modality scores are computed by the same `core.pipelines.inputs` functions as on
one machine: no rule is written twice.

pyspark is imported inside functions only: ``import core`` never loads it (nor Java).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from core.candidates.ratio import EXACT_RATIO_UP_TO
from core.errors import SameSameError
from core.pipelines import Pipeline, get_pipeline
from core.pipelines.ensemble import RATIO_CANDIDATE_COSINE
from core.pipelines.inputs import PairSide, pair_columns
from core.settings import MatchSettings
from core.spark.candidates import (
    TOLERANCE,
    hash_pairs,
    image_pairs,
    shared_token_pairs,
    tfidf_dot,
    tfidf_frame,
    token_weights,
)
from core.spark.neighbours import BROADCAST_UP_TO, nearest_title_pairs, ratio_pairs
from core.spark.pairs import all_pairs
from core.spark.session import SparkOptions

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


def pair_frame_of(batch: pd.DataFrame) -> pd.DataFrame:
    """A batch of joined candidate pairs (l_/r_ columns) as the frame `Pipeline.score` reads,
    built by the same `pair_columns` as on one machine."""
    frame = pd.DataFrame(pair_columns(_side(batch, "l_"), _side(batch, "r_")))
    if "tfidf_cosine" in batch:
        frame["tfidf_cosine"] = batch["tfidf_cosine"].to_numpy(np.float32)
    return frame


def _side(batch: pd.DataFrame, prefix: str) -> PairSide:
    """One end of the batch's pairs; hashes travel as signed longs of the same 64 bits (Spark
    has no unsigned type), a missing one as null."""
    has_hash = batch[f"{prefix}phash"].notna().to_numpy(bool)
    hashes = batch[f"{prefix}phash"].fillna(0).to_numpy().astype(np.int64).view(np.uint64)
    vectors = batch[f"{prefix}vec"]
    return PairSide(
        has_hash,
        hashes,
        vectors.notna().to_numpy(bool),
        lambda mask: np.stack(vectors.to_numpy()[mask]),
        batch[f"{prefix}title"].fillna("").to_numpy(object),
    )


def _scored_schema(pipe: Pipeline) -> str:
    scores = ", ".join(f"{name} float" for name in pipe.score_columns)
    return f"l long, r long, rule string, similarity float, {scores}"


def score_pairs(joined: DataFrame, pipe: Pipeline, settings: MatchSettings) -> DataFrame:
    """The matched pairs of ``joined`` (l, r and both sides' columns), by `Pipeline.score`."""
    name, columns = pipe.name, pipe.score_columns

    def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        pipeline = get_pipeline(name)
        for batch in batches:
            if batch.empty:
                continue
            out = pipeline.score(pair_frame_of(batch), settings)
            keep = out["matched"].to_numpy(bool)
            result = pd.DataFrame(
                {
                    "l": batch["l"].to_numpy(np.int64)[keep],
                    "r": batch["r"].to_numpy(np.int64)[keep],
                    "rule": out["rule"].to_numpy(object)[keep],
                    "similarity": out["similarity"].to_numpy(np.float32)[keep],
                }
            )
            for column in columns:
                result[column] = out[column].to_numpy(np.float32)[keep]
            yield result

    return joined.mapInPandas(score, _scored_schema(pipe))


def partitions(frame: DataFrame) -> int:
    """Tasks for work spread by hand: a few per core, so uneven blocks even out."""
    return 4 * frame.sparkSession.sparkContext.defaultParallelism


def held_frame(frame: DataFrame, held: list[DataFrame]) -> DataFrame:
    """``frame`` persisted, and added to ``held`` for the caller to unpersist when done."""
    frame = frame.persist()
    held.append(frame)
    return frame


def _title_candidates(
    base: DataFrame, weights: DataFrame, min_cosine: float, settings: MatchSettings, total: int
) -> DataFrame:
    """Each posting's top-k titles by TF-IDF cosine (one machine's index, broadcast) up to
    `BROADCAST_UP_TO` postings; past that every pair sharing a rarer word."""
    if total > BROADCAST_UP_TO:
        return shared_token_pairs(weights, min_cosine)
    # Every posting, empty titles too: they count in the IDF as on one machine.
    return nearest_title_pairs(
        base.select("idx", "title"), min_cosine, settings.top_k, partitions(base)
    )


def _side_frame(postings: DataFrame, vectors: DataFrame | None, held: list[DataFrame]):
    """idx, title, phash and vec (null without vectors) of every posting, persisted."""
    from pyspark.sql import functions as F

    base = postings.select("idx", "title", "phash")
    if vectors is not None:
        base = base.join(vectors, "idx", "left")
    else:
        base = base.withColumn("vec", F.lit(None).cast("array<float>"))
    return held_frame(base, held)


def _token_weights(postings: DataFrame, held: list[DataFrame]) -> tuple[DataFrame, int]:
    """The title words' weights (persisted) and the number of postings they were counted on."""
    total = postings.count()
    return held_frame(token_weights(postings.select("idx", "tokens"), total), held), total


def _tfidf_text_pairs(
    postings: DataFrame,
    base: DataFrame,
    floor: float,
    settings: MatchSettings,
    exact: bool,
    held: list[DataFrame],
) -> tuple[DataFrame, DataFrame]:
    """The side frame with each posting's TF-IDF vector added, and the title pairs whose
    TF-IDF cosine reaches ``floor``."""
    from pyspark.sql import functions as F

    weights, total = _token_weights(postings, held)
    tfidf = held_frame(tfidf_frame(weights), held)
    base = base.join(tfidf, "idx", "left")
    if exact:
        # Every pair; a positive cosine needs a shared token, a cheap exact prefilter.
        text = all_pairs(tfidf, ["tfidf"]).where(
            F.arrays_overlap(F.map_keys("l_tfidf"), F.map_keys("r_tfidf"))
        )
    else:
        found = _title_candidates(base, weights, floor, settings, total)
        text = found.join(
            tfidf.select(F.col("idx").alias("l"), F.col("tfidf").alias("l_tfidf")), "l"
        ).join(tfidf.select(F.col("idx").alias("r"), F.col("tfidf").alias("r_tfidf")), "r")
    return base, text.where(tfidf_dot("l_tfidf", "r_tfidf") >= floor - TOLERANCE)


def _ratio_text_pairs(
    postings: DataFrame,
    base: DataFrame,
    floor: float,
    settings: MatchSettings,
    exact: bool,
    held: list[DataFrame],
) -> DataFrame:
    """The title pairs a string-ratio rule scores: every titled pair with ``exact``; the
    pairs reaching ``floor`` where one machine compares every pair; else one machine's
    TF-IDF candidates."""
    from pyspark.sql import functions as F

    weights, total = (None, 0) if exact else _token_weights(postings, held)
    titled = base.where(F.length("title") > 0).select("idx", "title")
    if exact:
        return all_pairs(titled.select("idx"), [])
    if titled.count() <= EXACT_RATIO_UP_TO:
        return ratio_pairs(titled, floor, partitions(postings))
    # Past one machine's exact comparison, the candidates one machine uses there.
    return _title_candidates(base, weights, RATIO_CANDIDATE_COSINE, settings, total)


def _candidate_union(
    text: DataFrame,
    base: DataFrame,
    with_vectors: bool,
    floors: dict[str, float],
    settings: MatchSettings,
    options: SparkOptions,
    tasks: int,
) -> DataFrame:
    """(l, r) of every candidate pair: by title, by image vector (when there are vectors)
    and by perceptual hash, each pair once."""
    from pyspark.sql import functions as F

    exact = options.candidates == "exact"
    sources = [text.select("l", "r")]
    if with_vectors:
        sources.append(
            image_pairs(
                base.where(F.col("vec").isNotNull()).select("idx", "vec"),
                floors["image"],
                settings.top_k,
                exact,
                options.image_tables,
                options.bucket_length,
            )
        )
    sources.append(
        hash_pairs(
            base.where(F.col("phash").isNotNull()).select("idx", "phash"),
            int(floors["hash"]),
            settings.top_k,
            exact,
            tasks,
        )
    )
    union = sources[0]
    for more in sources[1:]:
        union = union.unionByName(more)
    return union.distinct()


def _with_both_sides(
    union: DataFrame, base: DataFrame, side_columns: list[str], tfidf: bool
) -> DataFrame:
    """Each candidate pair with both sides' columns (l_/r_), and their TF-IDF cosine in
    place of the two vectors."""
    from pyspark.sql import functions as F

    left = base.select(F.col("idx").alias("l"), *[F.col(c).alias(f"l_{c}") for c in side_columns])
    right = base.select(F.col("idx").alias("r"), *[F.col(c).alias(f"r_{c}") for c in side_columns])
    joined = union.join(left, "l").join(right, "r")
    if tfidf:
        joined = joined.withColumn(
            "tfidf_cosine", F.least(tfidf_dot("l_tfidf", "r_tfidf"), F.lit(1.0)).cast("float")
        ).drop("l_tfidf", "r_tfidf")
    return joined


def match_pairs(
    postings: DataFrame,
    vectors: DataFrame | None,
    pipe: Pipeline,
    settings: MatchSettings,
    options: SparkOptions,
    held: list[DataFrame] | None = None,
) -> DataFrame:
    """Matched pairs (l, r, rule, similarity, scores) of one pipeline over prepared postings.

    Args:
        postings: `prepare_frame` output.
        vectors: `embed_frame` output, or None (the hash is the only image evidence).
        held: frames cached here are appended, for the caller to unpersist when done.
    """
    if not pipe.spark:
        raise SameSameError(f"spark-match cannot run {pipe.name}: {pipe.spark_reason}")
    exact = options.candidates == "exact"
    floors = pipe.candidate_floors(settings)
    held = held if held is not None else []
    base = _side_frame(postings, vectors, held)
    side_columns = ["title", "phash", "vec"]
    tfidf = pipe.text_evidence == "tfidf"
    if tfidf:
        base, text = _tfidf_text_pairs(postings, base, floors["text"], settings, exact, held)
        side_columns.append("tfidf")
    else:
        text = _ratio_text_pairs(postings, base, floors["text"], settings, exact, held)
    union = _candidate_union(
        text, base, vectors is not None, floors, settings, options, partitions(postings)
    )
    return score_pairs(_with_both_sides(union, base, side_columns, tfidf), pipe, settings)
