"""A reviewer's verdicts on the Spark job's matches, applied after the cap
(`core.spark.job.final_pairs`) as one machine applies them to its capped result
(`core.verdicts`): a pair said to be different is dropped (no other takes its place), a pair
said to be the same is listed by both ends, and added (similarity 1) when it was not kept,
even past the cap. The verdicts come as a labelled pairs file (``left_id,right_id,same``);
their ids are checked against the catalog by a join, so the catalog is never collected to
the driver."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from core.catalog.pairs import SHOWN, read_pairs
from core.errors import CatalogError
from core.pair_listing import LISTED_BOTH

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def verdict_frame(session: SparkSession, postings: DataFrame, path: str | Path) -> DataFrame:
    """``l, r, same`` (catalog positions, l < r) of the verdicts in ``path``.

    Raises:
        CatalogError: a row of the file is malformed or names a posting the catalog lacks.
    """
    from pyspark.sql import functions as F

    given = read_pairs(Path(path), None, strict=True)
    frame = session.createDataFrame(given[["left_id", "right_id", "same", "row"]])
    ids = postings.select("idx", "posting_id")
    joined = frame.join(
        ids.select(F.col("posting_id").alias("left_id"), F.col("idx").alias("a")),
        "left_id",
        "left",
    ).join(
        ids.select(F.col("posting_id").alias("right_id"), F.col("idx").alias("b")),
        "right_id",
        "left",
    )
    unknown = (
        joined.where(F.col("a").isNull() | F.col("b").isNull())
        .orderBy("row")
        .limit(SHOWN)
        .collect()
    )
    if unknown:
        rows = ", ".join(
            f"row {r['row']} ({r['left_id'] if r['a'] is None else r['right_id']!r})"
            for r in unknown
        )
        raise CatalogError(f"{path}: postings that are not in the catalog: {rows}")
    return joined.select(
        F.least("a", "b").alias("l"), F.greatest("a", "b").alias("r"), F.col("same")
    )


def apply_verdicts(pairs: DataFrame, verdicts: DataFrame) -> DataFrame:
    """``l, r, similarity, listed`` of the capped matched pairs under the verdicts: as
    `core.verdicts.apply_verdicts`, a pair said to be the same is listed by both ends."""
    from pyspark.sql import functions as F

    both = F.lit(LISTED_BOTH).cast("tinyint")
    different = verdicts.where(F.col("same") == 0).select("l", "r").distinct()
    same = (
        verdicts.where(F.col("same") == 1)
        .select("l", "r", F.lit(True).alias("said_same"))
        .distinct()
    )
    kept = (
        pairs.join(different, ["l", "r"], "left_anti")
        .join(same, ["l", "r"], "left")
        .select(
            "l",
            "r",
            "similarity",
            F.when(F.col("said_same"), both).otherwise(F.col("listed")).alias("listed"),
        )
    )
    added = (
        same.select("l", "r")
        .join(pairs, ["l", "r"], "left_anti")
        .select(
            "l",
            "r",
            F.lit(1.0).cast(pairs.schema["similarity"].dataType).alias("similarity"),
            both.alias("listed"),
        )
    )
    return kept.unionByName(added)
