"""The Spark job: the registry's pipelines over a catalog file, for catalogs past one machine.

Same input (the catalog layout, CSV or Parquet), same settings (`MatchSettings`), the same
``posting_id,matches`` output as ``python -m core match``; only the work is spread:

1. **Rows** are checked by the single-machine import's own function (`core.spark.io`).
2. **Image vectors** come from the single-machine embedders in ``mapInPandas``
   (`core.spark.vectors`).
3. **Candidates** (`core.spark.neighbours`, `core.spark.candidates`): the single machine's
   title and hash indexes searched in blocks of rows, image LSH; or, with ``exact``, every
   pair.
4. **Scores and rules** (`core.spark.rules`): each candidate pair's columns are joined from
   both sides and the pipeline's own `Pipeline.score` runs in ``mapInPandas`` over batches of
   pairs, after the per-modality scores are computed by the same `core.pipelines.inputs`
   functions as on one machine: no rule is written twice.
5. **At most max_matches per posting** (`core.spark.cap`), by one machine's own function
   over groups of postings, then a reviewer's verdicts, as one machine applies them after
   its cap; each posting's row holds the postings it lists, as one machine writes it.

``best`` runs its trained model instead of steps 3 and 4 (`core.spark.best`): the same
searches and pair features as one machine, as Spark tasks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from core.errors import CatalogError, SameSameError
from core.pipelines import PIPELINES, Pipeline, get_pipeline
from core.settings import MatchSettings
from core.spark.best import best_pairs, image_spec, load_model
from core.spark.cap import capped_pairs
from core.spark.io import local_catalog, prepare_frame, read_catalog, submission, write_matches
from core.spark.rules import held_frame, match_pairs, partitions
from core.spark.session import SparkMatchReport, SparkOptions, require_spark, spark_session
from core.spark.vectors import embed_frame, embedder_spec
from core.spark.verdicts import apply_verdicts, verdict_frame

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def spark_pipelines() -> list[str]:
    return [name for name, pipe in PIPELINES.items() if pipe.spark]


@dataclass(frozen=True)
class _Plan:
    """What a run will do, settled (and checked) before Spark starts.

    Attributes:
        pipeline: the pipeline's name, as asked for.
        pipe: the pipeline.
        best_model: a trained ``best`` model, for that pipeline only.
        settings: the settings the pipeline runs with (its calibration applied).
        calibration_note: what that calibration says to the user ('' for nothing).
        image_root: the image folder, or None.
        spec: how the executors embed images, or None when they do not.
    """

    pipeline: str
    pipe: Pipeline
    best_model: Any | None
    settings: MatchSettings
    calibration_note: str
    image_root: Path | None
    spec: Any | None


def _plan(
    pipeline: str,
    settings: MatchSettings,
    options: SparkOptions,
    images: str | Path | None,
    model_dir: str | Path | None,
) -> _Plan:
    """The run's plan; bad requests fail here, before any JVM starts.

    Raises:
        SameSameError: a pipeline Spark cannot run, missing pyspark or Java, translation.
        CatalogError: the image folder does not exist.
    """
    pipe = get_pipeline(pipeline)
    if not pipe.spark:
        raise SameSameError(
            f"spark-match runs {' or '.join(spark_pipelines())}, not {pipeline!r}: "
            f"{pipe.spark_reason}"
        )
    best_model = load_model(model_dir) if pipe.needs_model else None
    require_spark()
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
    return _Plan(pipeline, pipe, best_model, settings, calibration_note, image_root, spec)


class _StageClock:
    """Seconds per stage, in order: each stage ends at a Spark action."""

    def __init__(self, on_stage: Callable[[str, float], None] | None) -> None:
        self.stages: dict[str, float] = {}
        self.on_stage = on_stage
        self.last = time.perf_counter()

    def __call__(self, description: str) -> None:
        now = time.perf_counter()
        self.stages[description] = now - self.last
        self.last = now
        if self.on_stage is not None:
            self.on_stage(description, self.stages[description])


def _vector_notices(plan: _Plan, vector_count: int, with_images: int) -> list[str]:
    """What the user should know about the images: a calibration note, a best model that
    compares by hash only, images that were not (all) embedded."""
    notices = [plan.calibration_note] if plan.calibration_note else []
    if plan.best_model is not None and plan.image_root is not None and plan.spec is None:
        notices.append("This best model compares photos by hash only: images not embedded.")
    if vector_count == 0:
        kind = "Siamese" if plan.pipe.image_kind == "siamese" else "image"
        notices.append(f"No {kind} embeddings: image evidence came from perceptual hashes only.")
    elif vector_count < with_images:
        notices.append(
            f"{with_images - vector_count} image(s) could not be embedded: perceptual hashes "
            "stand in for them."
        )
    return notices


def _matched_pairs(
    plan: _Plan,
    postings: DataFrame,
    vectors: DataFrame | None,
    options: SparkOptions,
    held: list[DataFrame],
) -> DataFrame:
    """The matched pairs (persisted): the trained model's, or the rule pipeline's."""
    if plan.best_model is not None:
        found = best_pairs(postings, plan.best_model, partitions(postings), vectors)
    else:
        found = match_pairs(postings, vectors, plan.pipe, plan.settings, options, held)
    return held_frame(found, held)


def final_pairs(
    session: SparkSession,
    postings: DataFrame,
    pairs: DataFrame,
    max_matches: int,
    verdicts: str | Path | None,
    held: list[DataFrame],
) -> tuple[DataFrame, int]:
    """The pairs a run writes (``l, r, similarity, listed``: `core.pair_listing` bits;
    persisted), as one machine keeps them: each posting's best ``max_matches``
    (`core.spark.cap`), then a reviewer's verdicts (`core.spark.verdicts`: a pair said
    different dropped, one said same listed by both ends, added even past the cap); and how
    many postings had more than ``max_matches`` matches."""
    from pyspark.sql import functions as F

    capped, own = capped_pairs(pairs, max_matches, partitions(postings), held)
    if verdicts is not None:
        capped = apply_verdicts(capped, verdict_frame(session, postings, verdicts))
    over = own.where(~F.col("kept")).select("end").distinct().count()
    return held_frame(capped, held), over


def _run(
    session: SparkSession,
    catalog: str,
    local: pd.DataFrame | None,
    out: str,
    plan: _Plan,
    options: SparkOptions,
    verdicts: str | Path | None,
    clock: _StageClock,
    held: list[DataFrame],
) -> SparkMatchReport:
    """The job on a started session (``local``: the catalog as `local_catalog` read it);
    ``seconds`` left for the caller to fill in."""
    from pyspark.sql import functions as F

    max_matches = plan.settings.max_matches
    frame = read_catalog(session, catalog, local)
    postings = held_frame(prepare_frame(frame, plan.image_root), held)
    stats = postings.agg(F.count("*"), F.sum("problems"), F.count("image_path")).first()
    total, problems, with_images = int(stats[0]), int(stats[1] or 0), int(stats[2])
    clock(f"read and checked {total:,} postings")
    vectors = None
    if plan.spec is not None and with_images:
        vectors = held_frame(embed_frame(postings, plan.spec), held)
    vector_count = vectors.count() if vectors is not None else 0
    if vectors is not None:
        clock(f"embedded {vector_count:,} images")
    notices = _vector_notices(plan, vector_count, with_images)
    pairs = _matched_pairs(plan, postings, vectors, options, held)
    clock(f"found and scored candidates: {pairs.count():,} matched pairs")
    kept, capped_count = final_pairs(session, postings, pairs, max_matches, verdicts, held)
    pair_count = kept.count()
    write_matches(submission(postings, kept), out)
    if capped_count:
        notices.append(
            f"{capped_count:,} posting(s) had more than {max_matches} matches; each kept its best."
        )
    clock(f"kept each posting's best {max_matches} and wrote {out}")
    return SparkMatchReport(
        pipeline=plan.pipeline,
        postings=total,
        pairs=pair_count,
        seconds=0.0,
        candidates=options.candidates,
        vectors=vector_count,
        row_problems=problems,
        notices=notices,
        capped=capped_count,
        stages=clock.stages,
    )


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
    options = options or SparkOptions()
    pipeline = pipeline or spark_pipelines()[0]
    plan = _plan(pipeline, settings or MatchSettings(), options, images, model_dir)
    # A local CSV is read and checked on the driver before any JVM starts.
    local = local_catalog(str(catalog))
    own = spark is None
    session = spark or spark_session(options)
    held: list[DataFrame] = []
    try:
        clock = _StageClock(on_stage)
        report = _run(session, str(catalog), local, str(out), plan, options, verdicts, clock, held)
        report.seconds = time.perf_counter() - started
        return report
    finally:
        for frame in held:
            frame.unpersist()
        if own:
            session.stop()
