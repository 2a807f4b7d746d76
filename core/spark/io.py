"""Reading a catalog into Spark, checked row by row by the single-machine import's own code,
and writing ``posting_id,matches`` (each posting's row: the postings it lists among the capped
pairs of `core.spark.cap`, as one machine writes them)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from core.catalog import (
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    missing_columns_error,
    prepare_postings,
    read_catalog_csv,
)
from core.errors import CatalogError, first_line
from core.images import is_valid_phash
from core.pair_listing import LISTED_LEFT, LISTED_RIGHT
from core.spark.candidates import tokeniser

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


_CATALOG_SCHEMA = (
    "idx long, posting_id string, image string, image_phash string, title string, "
    "label_group string"
)


def local_catalog(path: str) -> pd.DataFrame | None:
    """A local CSV catalog, read and checked on the driver by `core.catalog.read_catalog_csv`
    (before any JVM starts, so a bad file costs nothing); None for Parquet and URIs.

    A file accepted or refused by ``python -m core import`` is accepted or refused here with
    the same message.

    Raises:
        CatalogError: naming the problem.
    """
    if "://" in path:
        return None
    local = Path(path)
    if not local.exists():
        raise CatalogError(f"{path}: file not found")
    if local.suffix.lower() == ".parquet" or local.is_dir():
        if local.is_dir() and not any(local.rglob("*.parquet")):
            raise CatalogError(f"{path}: is a folder without Parquet files, not a catalog")
        return None

    frame = read_catalog_csv(local).rename(columns={"row": "idx"})
    for column in ("image_phash", "label_group"):
        if column not in frame:
            frame[column] = ""
    frame = frame[["idx", "posting_id", "image", "image_phash", "title", "label_group"]]
    return frame.astype({"idx": "int64"})


def read_catalog(spark: SparkSession, path: str, local: pd.DataFrame | None = None) -> DataFrame:
    """The catalog as a DataFrame ``idx`` (catalog order), posting_id, image, image_phash,
    title, label_group (strings, '' for blanks).

    Args:
        local: what `local_catalog` returned for ``path``, if called already.

    A local CSV goes through `local_catalog`. Parquet (a file or a folder, local or on a
    cluster file system) and CSV on a cluster file system are read by Spark and checked the
    same way (columns, empty and duplicate ids) with Spark jobs.

    Raises:
        CatalogError: naming the problem.
    """
    if local is None:
        local = local_catalog(path)
    if local is not None:
        return spark.createDataFrame(local, _CATALOG_SCHEMA)
    suffix = Path(path.rstrip("/")).suffix.lower()
    try:
        if suffix == ".csv":
            raw = (
                spark.read.option("header", True)
                .option("multiLine", True)
                .option("escape", '"')
                .option("mode", "FAILFAST")
                .csv(path)
            )
        else:
            raw = spark.read.parquet(path)
    except Exception as exc:  # AnalysisException, SparkException
        kind = "CSV" if suffix == ".csv" else "Parquet"
        reason = first_line(exc, empty=type(exc).__name__)
        raise CatalogError(
            f"{path}: cannot be read as {kind} ({reason}); expected the layout "
            "posting_id,image,image_phash,title,label_group"
        ) from exc
    return _checked_frame(raw, path)


def _checked_frame(raw: DataFrame, label: str) -> DataFrame:
    """Spark-read catalog → the `read_catalog` layout, refusing what the CSV import refuses."""
    from pyspark.sql import functions as F

    names = {c.strip().lstrip("\ufeff").lower(): c for c in raw.columns}
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        raise missing_columns_error(label, missing, list(raw.columns))
    columns = [F.monotonically_increasing_id().alias("idx")]
    for name in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS):
        if name in names:
            value = F.coalesce(F.col(f"`{names[name]}`").cast("string"), F.lit(""))
        else:
            value = F.lit("")
        if name == "posting_id":
            value = F.trim(value)
        columns.append(value.alias(name))
    frame = raw.select(*columns).select(
        "idx", "posting_id", "image", "image_phash", "title", "label_group"
    )
    try:
        stats = frame.agg(
            F.count("*").alias("rows"),
            F.sum((F.col("posting_id") == "").cast("int")).alias("empty"),
            F.countDistinct("posting_id").alias("distinct"),
        ).first()
    except Exception as exc:
        raise CatalogError(
            f"{label}: cannot be read ({first_line(exc, empty=type(exc).__name__)})"
        ) from exc
    if not stats["rows"]:
        raise CatalogError(f"{label}: the catalog has no postings")
    if stats["empty"]:
        raise CatalogError(f"{label}: {stats['empty']} posting(s) have an empty posting_id")
    if stats["distinct"] != stats["rows"]:
        dupes = (
            frame.groupBy("posting_id").count().where("count > 1").limit(5).collect()
        )  # a few examples are enough to find the problem
        detail = "; ".join(f"{r['posting_id']!r} ({r['count']} times)" for r in dupes)
        raise CatalogError(f"{label}: duplicate posting_id: {detail}")
    return frame


def prepare_frame(catalog: DataFrame, image_root: Path | None) -> DataFrame:
    """Per row, exactly what the single-machine import stores (via `prepare_postings`).

    Returns:
        idx, posting_id, title (normalised), phash (signed 64-bit or null), image_path (null
        unless the image opened), problems (row problems found), tokens (the title's words, made
        in this same Python pass to save a UDF stage).
    """
    root = str(image_root) if image_root is not None else None

    def prepare(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        folder = Path(root) if root is not None else None
        tokenise = tokeniser()
        for batch in batches:
            frame = batch.rename(columns={"idx": "row"})
            postings, problems = prepare_postings(frame, folder)
            counts = pd.Series([p["posting_id"] for p in problems], dtype=object).value_counts()
            yield pd.DataFrame(
                {
                    "idx": batch["idx"].to_numpy(np.int64),
                    "posting_id": [p["posting_id"] for p in postings],
                    "title": [p["title_norm"] for p in postings],
                    "phash": pd.array([_signed_hash(p["image_phash"]) for p in postings], "Int64"),
                    "image_path": pd.array([p["image_path"] for p in postings], dtype=object),
                    "problems": [int(counts.get(p["posting_id"], 0)) for p in postings],
                    "tokens": [tokenise(p["title_norm"]) for p in postings],
                }
            )

    schema = (
        "idx long, posting_id string, title string, phash long, image_path string, "
        "problems int, tokens array<string>"
    )
    return catalog.mapInPandas(prepare, schema)


def _signed_hash(value: str | None) -> int | None:
    """16 hex digits → the same 64 bits as a signed long (Spark has no unsigned type)."""
    if not isinstance(value, str) or not is_valid_phash(value):
        return None
    unsigned = int(value, 16)
    return unsigned - (1 << 64) if unsigned >= 1 << 63 else unsigned


def submission(postings: DataFrame, pairs: DataFrame) -> DataFrame:
    """``idx, posting_id, matches``: the posting first, then the postings it lists in
    ``pairs`` (l, r, listed: `core.pair_listing` bits) sorted, as one machine writes them
    (`core.matches.listed_submission`)."""
    from pyspark.sql import functions as F

    ids = postings.select("idx", "posting_id")
    listed = F.col("listed").cast("int")
    directed = (
        pairs.where((listed.bitwiseAND(LISTED_LEFT)) > 0)
        .select(F.col("l").alias("idx"), F.col("r").alias("other"))
        .unionByName(
            pairs.where((listed.bitwiseAND(LISTED_RIGHT)) > 0).select(
                F.col("r").alias("idx"), F.col("l").alias("other")
            )
        )
    )
    kept = directed.join(
        ids.select(F.col("idx").alias("other"), F.col("posting_id").alias("other_id")), "other"
    )
    grouped = kept.groupBy("idx").agg(F.array_sort(F.collect_set("other_id")).alias("others"))
    return ids.join(grouped, "idx", "left").select(
        "idx",
        "posting_id",
        F.concat_ws(
            " ",
            F.array_prepend(
                F.coalesce("others", F.array().cast("array<string>")), F.col("posting_id")
            ),
        ).alias("matches"),
    )


def write_matches(result: DataFrame, out: str) -> None:
    """Parquet by the executors, or one CSV file (single-machine layout) by the driver."""
    if out.rstrip("/").lower().endswith(".parquet"):
        result.orderBy("idx").select("posting_id", "matches").write.mode("overwrite").parquet(out)
        return
    frame = result.orderBy("idx").select("posting_id", "matches").toPandas()
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    frame.to_csv(tmp, index=False)
    tmp.replace(path)
