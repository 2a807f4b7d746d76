"""The Spark job: the registry's pipelines over a catalog file, for catalogs past one machine.

Same input (the catalog layout, CSV or Parquet), same settings (`MatchSettings`), the same
``posting_id,matches`` output as ``python -m core match``; only the work is spread:

1. **Rows** are checked by the single-machine import's own function (`core.spark.io`).
2. **Image vectors** come from the single-machine embedders in ``mapInPandas``
   (`core.spark.vectors`).
3. **Candidates** (`core.spark.neighbours`, `core.spark.candidates`): the single machine's
   title and hash indexes searched in blocks of rows, image LSH; or, with ``exact``, every
   pair.
4. **Scores and rules**: each candidate pair's columns are joined from both sides and the
   pipeline's own `Pipeline.score` runs in ``mapInPandas`` over batches of pairs, after the
   per-modality scores are computed by the same `core.pipelines.inputs` functions as on one
   machine: no rule is written twice.
5. **At most max_matches per posting**, best similarity first (a window per posting).

``best`` runs its trained model instead of steps 3 and 4 (`core.spark.best`): the same
searches and pair features as one machine, as Spark tasks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from core.candidates.ratio import EXACT_RATIO_UP_TO
from core.errors import CatalogError, SameSameError
from core.pipelines import PIPELINES, Pipeline, get_pipeline
from core.pipelines.best.model import BEST_NAME
from core.pipelines.ensemble import RATIO_CANDIDATE_COSINE
from core.pipelines.inputs import hash_distances, vector_cosines
from core.settings import MatchSettings
from core.spark.best import best_pairs, image_spec, load_model
from core.spark.candidates import (
    TOLERANCE,
    hash_pairs,
    image_pairs,
    shared_token_pairs,
    tfidf_dot,
    tfidf_frame,
    token_weights,
)
from core.spark.io import (
    capped_lists,
    local_catalog,
    prepare_frame,
    read_catalog,
    submission,
    write_matches,
)
from core.spark.neighbours import BROADCAST_UP_TO, nearest_title_pairs, ratio_pairs
from core.spark.pairs import all_pairs
from core.spark.session import SparkMatchReport, SparkOptions, require_spark, spark_session
from core.spark.vectors import embed_frame, embedder_spec
from core.spark.verdicts import apply_verdicts, verdict_frame

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def spark_pipelines() -> list[str]:
    return [name for name, pipe in PIPELINES.items() if pipe.spark]


def pair_frame_of(batch: pd.DataFrame) -> pd.DataFrame:
    """A batch of joined candidate pairs (l_/r_ columns) as the frame `Pipeline.score` reads,
    with the same per-modality scorers as the single machine."""
    m = len(batch)
    by_vector = (batch["l_vec"].notna() & batch["r_vec"].notna()).to_numpy(bool)
    cosine = np.full(m, np.nan, np.float32)
    if by_vector.any():
        cosine[by_vector] = vector_cosines(
            np.stack(batch["l_vec"].to_numpy()[by_vector]),
            np.stack(batch["r_vec"].to_numpy()[by_vector]),
        )
    both_hash = (batch["l_phash"].notna() & batch["r_phash"].notna()).to_numpy(bool)
    distance = np.full(m, np.nan, np.float32)
    if both_hash.any():
        # Spark has no unsigned type: the hashes travel as signed longs of the same 64 bits.
        def unsigned(column: str) -> np.ndarray:
            return batch[column].to_numpy()[both_hash].astype(np.int64).view(np.uint64)

        distance[both_hash] = hash_distances(unsigned("l_phash"), unsigned("r_phash"))
    left = batch["l_title"].fillna("").to_numpy(object)
    right = batch["r_title"].fillna("").to_numpy(object)
    frame = pd.DataFrame(
        {
            "image_cosine": cosine,
            "hash_distance": distance,
            "by_vector": by_vector,
            "left_title": left,
            "right_title": right,
            "has_text": np.fromiter(
                (bool(a) and bool(b) for a, b in zip(left, right, strict=True)), bool, m
            ),
        }
    )
    if "tfidf_cosine" in batch:
        frame["tfidf_cosine"] = batch["tfidf_cosine"].to_numpy(np.float32)
    return frame


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
    from pyspark.sql import functions as F

    if not pipe.spark:
        raise SameSameError(f"spark-match cannot run {pipe.name}: {pipe.spark_reason}")
    exact = options.candidates == "exact"
    floors = pipe.candidate_floors(settings)
    held = held if held is not None else []
    base = postings.select("idx", "title", "phash")
    if vectors is not None:
        base = base.join(vectors, "idx", "left")
    else:
        base = base.withColumn("vec", F.lit(None).cast("array<float>"))
    base = _held(base, held)

    side_columns = ["title", "phash", "vec"]
    weights = None
    if pipe.text_evidence == "tfidf" or not exact:
        total = postings.count()
        weights = _held(token_weights(postings.select("idx", "tokens"), total), held)
    if pipe.text_evidence == "tfidf":
        tfidf = _held(tfidf_frame(weights), held)
        base = base.join(tfidf, "idx", "left")
        side_columns.append("tfidf")
        if exact:
            # Every pair; a positive cosine needs a shared token, a cheap exact prefilter.
            text = all_pairs(tfidf, ["tfidf"]).where(
                F.arrays_overlap(F.map_keys("l_tfidf"), F.map_keys("r_tfidf"))
            )
        else:
            found = _title_candidates(base, weights, floors["text"], settings, total)
            text = found.join(
                tfidf.select(F.col("idx").alias("l"), F.col("tfidf").alias("l_tfidf")), "l"
            ).join(tfidf.select(F.col("idx").alias("r"), F.col("tfidf").alias("r_tfidf")), "r")
        text = text.where(tfidf_dot("l_tfidf", "r_tfidf") >= floors["text"] - TOLERANCE)
    else:
        titled = base.where(F.length("title") > 0).select("idx", "title")
        if exact:
            text = all_pairs(titled.select("idx"), [])
        elif titled.count() <= EXACT_RATIO_UP_TO:
            text = ratio_pairs(titled, floors["text"], _partitions(postings))
        else:
            # Past one machine's exact comparison, the candidates one machine uses there.
            text = _title_candidates(base, weights, RATIO_CANDIDATE_COSINE, settings, total)
    sources = [text.select("l", "r")]
    if vectors is not None:
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
            _partitions(postings),
        )
    )
    union = sources[0]
    for more in sources[1:]:
        union = union.unionByName(more)
    union = union.distinct()
    left = base.select(F.col("idx").alias("l"), *[F.col(c).alias(f"l_{c}") for c in side_columns])
    right = base.select(F.col("idx").alias("r"), *[F.col(c).alias(f"r_{c}") for c in side_columns])
    joined = union.join(left, "l").join(right, "r")
    if pipe.text_evidence == "tfidf":
        joined = joined.withColumn(
            "tfidf_cosine", F.least(tfidf_dot("l_tfidf", "r_tfidf"), F.lit(1.0)).cast("float")
        ).drop("l_tfidf", "r_tfidf")
    return score_pairs(joined, pipe, settings)


def _title_candidates(
    base: DataFrame, weights: DataFrame, min_cosine: float, settings: MatchSettings, total: int
) -> DataFrame:
    """Each posting's top-k titles by TF-IDF cosine (one machine's index, broadcast) up to
    `BROADCAST_UP_TO` postings; past that every pair sharing a rarer word."""
    if total > BROADCAST_UP_TO:
        return shared_token_pairs(weights, min_cosine)
    # Every posting, empty titles too: they count in the IDF as on one machine.
    return nearest_title_pairs(
        base.select("idx", "title"), min_cosine, settings.top_k, _partitions(base)
    )


def _partitions(frame: DataFrame) -> int:
    """Tasks for work spread by hand: a few per core, so uneven blocks even out."""
    return 4 * frame.sparkSession.sparkContext.defaultParallelism


def _held(frame: DataFrame, held: list[DataFrame]) -> DataFrame:
    frame = frame.persist()
    held.append(frame)
    return frame


def spark_match(
    catalog: str | Path,
    out: str | Path,
    pipeline: str | None = None,
    settings: MatchSettings | None = None,
    *,
    images: str | Path | None = None,
    model_dir: str | Path | None = None,
    options: SparkOptions | None = None,
    spark: SparkSession | None = None,
    verdicts: str | Path | None = None,
    on_stage: Callable[[str, float], None] | None = None,
) -> SparkMatchReport:
    """Match a catalog on Spark and write ``posting_id,matches``.

    Args:
        catalog: CSV or Parquet (file or folder), local or any Hadoop file system URI.
        out: ``.parquet`` → a Parquet dataset written by the executors; anything else → one
            CSV file in the single-machine layout, written by the driver.
        images: image folder, at the same path on every executor (a shared file system).
        model_dir: the trained Siamese model folder (same path on every executor).
        spark: an existing session to use (kept open); else one is started and stopped.
        verdicts: a labelled pairs file (left_id,right_id,same): a reviewer's verdicts,
            which overrule the pipeline as they do on one machine.
        on_stage: called with each stage's description and seconds as it ends.

    Raises:
        SameSameError: bad input, a pipeline Spark cannot run, missing pyspark or Java.
    """
    started = time.perf_counter()
    settings = settings or MatchSettings()
    options = options or SparkOptions()
    pipeline = pipeline or spark_pipelines()[0]
    pipe = get_pipeline(pipeline)
    if not pipe.spark:
        raise SameSameError(
            f"spark-match runs {' or '.join(spark_pipelines())}, not {pipeline!r}: "
            f"{pipe.spark_reason}"
        )
    best_model = None
    if pipe.name == BEST_NAME:
        best_model = load_model(model_dir)
    require_spark()
    from pyspark.sql import functions as F

    if settings.translate_titles:
        raise SameSameError("spark-match does not translate titles; run it without --translate")
    image_root = Path(images).resolve() if images else None
    if image_root is not None and not image_root.is_dir():
        raise CatalogError(f"image folder {images} does not exist or is not a folder")
    model_path = Path(model_dir) if model_dir else None
    settings, calibration_note = pipe.settings_for(None, settings, model_path)
    use_images = image_root is not None and not options.hash_only
    if best_model is not None:
        spec = image_spec(best_model, settings, use_images)
    else:
        spec = embedder_spec(pipe, settings, model_path) if use_images else None
    use_images = spec is not None

    local = local_catalog(str(catalog))
    own = spark is None
    session = spark or spark_session(options)
    held: list[DataFrame] = []
    stages: dict[str, float] = {}
    clock = [time.perf_counter()]

    def stage(description: str) -> None:
        now = time.perf_counter()
        stages[description] = now - clock[0]
        clock[0] = now
        if on_stage is not None:
            on_stage(description, stages[description])

    try:
        frame = read_catalog(session, str(catalog), local)
        postings = _held(prepare_frame(frame, image_root), held)
        stats = postings.agg(F.count("*"), F.sum("problems"), F.count("image_path")).first()
        total, problems, with_images = int(stats[0]), int(stats[1] or 0), int(stats[2])
        stage(f"read and checked {total:,} postings")
        vectors = None
        notices = [calibration_note] if calibration_note else []
        if best_model is not None and image_root is not None and not use_images:
            notices.append("This best model compares photos by hash only: images not embedded.")
        if use_images and with_images:
            vectors = _held(embed_frame(postings, spec), held)
        vector_count = vectors.count() if vectors is not None else 0
        if vectors is not None:
            stage(f"embedded {vector_count:,} images")
        if vector_count == 0:
            kind = "Siamese" if pipe.image_kind == "siamese" else "image"
            notices.append(
                f"No {kind} embeddings: image evidence came from perceptual hashes only."
            )
        elif vector_count < with_images:
            notices.append(
                f"{with_images - vector_count} image(s) could not be embedded: perceptual hashes "
                "stand in for them."
            )
        if best_model is not None:
            found = best_pairs(postings, best_model, _partitions(postings), vectors)
        else:
            found = match_pairs(postings, vectors, pipe, settings, options, held)
        pairs = _held(found, held)
        if verdicts is not None:
            said = verdict_frame(session, postings, verdicts)
            pairs = _held(apply_verdicts(pairs, said), held)
        pair_count = pairs.count()
        stage(f"found and scored candidates: {pair_count:,} matched pairs")
        ranked = _held(capped_lists(pairs, settings.max_matches), held)
        capped = ranked.where(F.col("rank") > settings.max_matches).select("idx").distinct()
        capped_count = capped.count()
        if capped_count:
            notices.append(
                f"{capped_count:,} posting(s) had more than {settings.max_matches} matches; each "
                "kept its best."
            )
        write_matches(submission(postings, ranked, settings.max_matches), str(out))
        stage(f"kept each posting's best {settings.max_matches} and wrote {out}")
        return SparkMatchReport(
            pipeline=pipeline,
            postings=total,
            pairs=pair_count,
            seconds=time.perf_counter() - started,
            candidates=options.candidates,
            vectors=vector_count,
            row_problems=problems,
            notices=notices,
            capped=capped_count,
            stages=stages,
        )
    finally:
        for frame in held:
            frame.unpersist()
        if own:
            session.stop()
