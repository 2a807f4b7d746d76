"""A reviewer's verdicts on the Spark job's matches, as the single machine applies them
(`core.verdicts`): a pair said to be different is dropped, a pair said to be the same that
was not matched is added (similarity 1). The verdicts come as a labelled pairs file
(``left_id,right_id,same``); their ids are checked against the catalog by a join, so the
catalog is never collected to the driver."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from core.catalog.pairs import SHOWN, read_pairs
from core.errors import CatalogError

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
    """``l, r, similarity`` of the matched pairs under the verdicts."""
    from pyspark.sql import functions as F

    slim = pairs.select(F.least("l", "r").alias("l"), F.greatest("l", "r").alias("r"), "similarity")
    different = verdicts.where(F.col("same") == 0).select("l", "r")
    kept = slim.join(different, ["l", "r"], "left_anti")
    added = (
        verdicts.where(F.col("same") == 1)
        .select("l", "r")
        .join(slim, ["l", "r"], "left_anti")
        .withColumn("similarity", F.lit(1.0).cast(slim.schema["similarity"].dataType))
    )
    return kept.unionByName(added)
