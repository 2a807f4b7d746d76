"""Pair frames on Spark: distinct ordered pairs, and every pair of a frame's rows."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


def ordered_pairs(pairs: DataFrame, a: str = "a", b: str = "b") -> DataFrame:
    """Distinct (l, r) with l < r in catalog order."""
    from pyspark.sql import functions as F

    return (
        pairs.where(F.col(a) != F.col(b))
        .select(F.least(a, b).alias("l"), F.greatest(a, b).alias("r"))
        .distinct()
    )


def all_pairs(frame: DataFrame, columns: list[str]) -> DataFrame:
    """Every pair (l < r) of ``frame``'s rows, each side's ``columns`` prefixed l_ / r_."""
    from pyspark.sql import functions as F

    left = frame.select(F.col("idx").alias("l"), *[F.col(c).alias(f"l_{c}") for c in columns])
    right = frame.select(F.col("idx").alias("r"), *[F.col(c).alias(f"r_{c}") for c in columns])
    return left.crossJoin(right).where(F.col("l") < F.col("r"))
