"""The neighbour cap on Spark, as one machine keeps it (`core.engine`), by the same function
(`core.match_cap.best_per_posting`) over grouped pandas frames.

1. **Own choices**: each posting keeps its ``cap`` best matched pairs. Spark's candidates are
   unordered pairs, so every matched pair counts as chosen from both ends (as one machine's
   search does when each end finds the other: always with exact candidates).
2. **Listing**: each posting is offered its own choices and the pairs others chose with it;
   one offered more than ``cap`` lists its ``cap`` best.

A pair listed by either end is kept, with which end lists the other (``listed``, the bits of
`core.pair_listing`); a posting's row of the output holds the postings it lists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from core.match_cap import best_per_posting
from core.pair_listing import LISTED_LEFT, LISTED_RIGHT
from core.spark.rules import held_frame

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

_DIRECTED_SCHEMA = "end long, far long, similarity float, kept boolean"


def _best_in_group(cap: int):
    """The pandas function of one group of postings (every row of each of its postings):
    the rows with ``kept`` set by `best_per_posting`."""

    def best(group: pd.DataFrame) -> pd.DataFrame:
        end = group["end"].to_numpy(np.int64)
        far = group["far"].to_numpy(np.int64)
        similarity = group["similarity"].to_numpy(np.float32)
        return pd.DataFrame(
            {
                "end": end,
                "far": far,
                "similarity": similarity,
                "kept": best_per_posting(end, far, similarity, cap),
            }
        )

    return best


def best_per_end(pairs: DataFrame, cap: int, groups: int) -> DataFrame:
    """``end, far, similarity, kept`` for each pair seen from both of its postings (``pairs``:
    l, r, similarity): ``kept`` for the rows among their ``end`` posting's ``cap`` best.

    The rows are grouped by a hash of ``end`` into ``groups`` groups, so one group holds every
    row of each of its postings and the Python function runs once per group, not per posting.
    """
    from pyspark.sql import functions as F

    directed = pairs.select(
        F.col("l").alias("end"), F.col("r").alias("far"), "similarity"
    ).unionByName(pairs.select(F.col("r").alias("end"), F.col("l").alias("far"), "similarity"))
    directed = directed.withColumn("similarity", F.col("similarity").cast("float"))
    bucket = F.pmod(F.xxhash64("end"), F.lit(groups)).alias("bucket")
    return (
        directed.select(bucket, "end", "far", "similarity")
        .groupBy("bucket")
        .applyInPandas(_best_in_group(cap), _DIRECTED_SCHEMA)
    )


def _pairs_of(directed: DataFrame) -> DataFrame:
    """The unordered pairs of directed rows (``end`` lists ``far``), once each: l < r,
    similarity, and ``listed`` (`LISTED_LEFT` when l lists r, `LISTED_RIGHT` when r lists l,
    both bits when each lists the other)."""
    from pyspark.sql import functions as F

    bit = F.when(F.col("end") < F.col("far"), F.lit(LISTED_LEFT)).otherwise(F.lit(LISTED_RIGHT))
    return (
        directed.select(
            F.least("end", "far").alias("l"),
            F.greatest("end", "far").alias("r"),
            "similarity",
            bit.alias("bit"),
        )
        .groupBy("l", "r")
        .agg(
            F.first("similarity").alias("similarity"),
            F.sum("bit").cast("tinyint").alias("listed"),  # each end at most once: sum = or
        )
    )


def capped_pairs(
    pairs: DataFrame, cap: int, groups: int, held: list[DataFrame]
) -> tuple[DataFrame, DataFrame]:
    """The matched pairs under the cap (see the module docstring).

    Args:
        pairs: l, r, similarity of every matched pair (each pair once).
        cap: ``max_matches``.
        groups: how many groups of postings each step's Python function runs over.
        held: where the own-choice rows, persisted, are added (the caller unpersists them).

    Returns:
        ``l, r, similarity, listed`` (l < r) of the pairs listed by either end, and the
        own-choice step's ``end, far, similarity, kept`` rows (for counting the postings with
        more than ``cap`` matches).
    """
    from pyspark.sql import functions as F

    own = held_frame(best_per_end(pairs, cap, groups), held)
    offered = _pairs_of(own.where(F.col("kept"))).select("l", "r", "similarity")
    listed = best_per_end(offered, cap, groups).where(F.col("kept"))
    return _pairs_of(listed), own
