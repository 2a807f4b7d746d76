"""Candidate pairs on Spark, each source bounded by the catalog, not by how alike titles are:

- titles and hashes: the single machine's own indexes searched in blocks of rows, with the
  catalog's titles or hashes broadcast (`core.spark.neighbours`); past what one machine holds,
  TF-IDF titles by a join on their rarer words (prefix filtering, exact for a cosine
  threshold: `shared_token_pairs`);
- image vectors: random-projection LSH;

or every pair (``exact``), for small catalogs and to show the sources lose nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from core.candidates.tfidf import WORD_TOKENS
from core.spark.neighbours import nearest_hash_pairs
from core.spark.pairs import all_pairs, ordered_pairs

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

#: The token pattern of `core.candidates.tfidf` (word unigrams, single characters included).
TOKEN_PATTERN = WORD_TOKENS
#: Slack under a cosine threshold for the prefix filter (float rounding must not drop a pair).
PREFIX_SLACK = 1e-4
#: Scores within this of a threshold count as reaching it, as in `core.pipelines`.
TOLERANCE = 1e-6


def tokeniser() -> Callable[[str], list[str]]:
    """Word tokens of a normalised title, as `core.candidates.tfidf.fit_tfidf` tokenises
    (scikit-learn's analyzer with `TOKEN_PATTERN`); [] for an empty title."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    analyze = TfidfVectorizer(token_pattern=TOKEN_PATTERN).build_analyzer()
    return lambda title: analyze(title) if title else []


def token_weights(tokens: DataFrame, n: int) -> DataFrame:
    """idx, token, df, w: each title's TF-IDF row of `core.candidates.tfidf.fit_tfidf`, one
    row per word, computed here.

    Why not fit scikit-learn on the driver and broadcast it: that needs every title on one
    machine, and a vocabulary of the whole catalog in every executor. scikit-learn's TF-IDF
    with these options is a closed formula over counts, so Spark computes it from a group-by:
    tf = raw count of the token in the title, idf = ln((1 + n) / (1 + df)) + 1 (``smooth_idf``;
    n counts every posting, empty titles included, as scikit-learn does), then each row scaled
    to unit L2 norm. The only difference is float64 here vs float32 there (about 1e-7), which
    the rules' 1e-6 tolerance absorbs.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    counts = (
        tokens.select("idx", F.explode("tokens").alias("token")).groupBy("idx", "token").count()
    )
    document_frequency = counts.groupBy("token").agg(F.count("*").alias("df"))
    weighted = counts.join(document_frequency, "token").select(
        "idx",
        "token",
        "df",
        (F.col("count") * (F.log((1.0 + n) / (1.0 + F.col("df"))) + 1.0)).alias("w"),
    )
    norm = F.sqrt(F.sum(F.col("w") * F.col("w")).over(Window.partitionBy("idx")))
    return weighted.withColumn("w", F.col("w") / norm)


def tfidf_frame(weights: DataFrame) -> DataFrame:
    """idx, tfidf (map token → weight) of `token_weights` rows."""
    from pyspark.sql import functions as F

    return weights.groupBy("idx").agg(
        F.map_from_entries(F.collect_list(F.struct("token", "w"))).alias("tfidf")
    )


def shared_token_pairs(weights: DataFrame, min_cosine: float) -> DataFrame:
    """(l, r) of every pair whose TF-IDF cosine can reach ``min_cosine``, and more: the
    candidates past what one machine holds (`core.spark.neighbours.BROADCAST_UP_TO`).

    Prefix filtering (Bayardo et al., "Scaling up all pairs similarity search"): order every
    title's words one way, from the most common in the catalog to the rarest, and call
    *common* the longest run from the start whose weights have an L2 norm under the threshold
    t. Two titles that share only common words of x have cosine <= |x_common| · |y| < t, so a
    pair at or over t shares a word among x's rarer words — and so does its rarest shared
    word, which is then among the rarer words of both titles. Joining the rarer words alone
    therefore finds every such pair, and the frequent words, which make a word join explode,
    are mostly left out of it.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    bound = max(0.0, min_cosine - TOLERANCE - PREFIX_SLACK)
    common_first = (
        Window.partitionBy("idx")
        .orderBy(F.desc("df"), "token")
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    mass = F.sum(F.col("w") * F.col("w")).over(common_first)
    rare = weights.withColumn("mass", mass).where(F.col("mass") >= bound * bound)
    pairs = rare.select(F.col("idx").alias("a"), "token").join(
        rare.select(F.col("idx").alias("b"), "token"), "token"
    )
    return ordered_pairs(pairs.where(F.col("a") < F.col("b")))


def tfidf_dot(left: str, right: str) -> Column:
    from pyspark.sql import functions as F

    return F.coalesce(
        F.expr(
            f"aggregate(map_keys({left}), CAST(0 AS DOUBLE), (acc, k) -> acc + "
            f"element_at({left}, k) * coalesce(try_element_at({right}, k), CAST(0 AS DOUBLE)))"
        ),
        F.lit(0.0),
    )


def vector_dot(left: str, right: str) -> Column:
    from pyspark.sql import functions as F

    return F.expr(
        f"aggregate(zip_with({left}, {right}, (x, y) -> CAST(x AS DOUBLE) * y), "
        "CAST(0 AS DOUBLE), (acc, v) -> acc + v)"
    )


def image_pairs(
    vectors: DataFrame,
    min_cosine: float,
    top_k: int,
    exact: bool,
    tables: int,
    bucket_length: float | None,
    seed: int = 7,
) -> DataFrame:
    """(l, r) among the top-k of either side with cosine >= min_cosine, as
    each posting's image candidates on one machine (`core.candidates.DenseIndex` top-k).

    Unit vectors: cosine >= c ⇔ Euclidean distance <= sqrt(2 - 2c), the radius of the
    `BucketedRandomProjectionLSH` similarity join.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    if exact:
        pairs = all_pairs(vectors, ["vec"]).select(
            "l", "r", vector_dot("l_vec", "r_vec").alias("cosine")
        )
    else:
        from pyspark.ml.feature import BucketedRandomProjectionLSH
        from pyspark.ml.functions import array_to_vector

        radius = float(np.sqrt(max(0.0, 2.0 - 2.0 * min_cosine)))
        featurised = vectors.withColumn("features", array_to_vector("vec"))
        model = BucketedRandomProjectionLSH(
            inputCol="features",
            outputCol="hashes",
            numHashTables=tables,
            bucketLength=bucket_length or max(2.0 * radius, 0.1),
            seed=seed,
        ).fit(featurised)
        joined = model.approxSimilarityJoin(featurised, featurised, radius + 1e-4, "euclid")
        pairs = joined.select(
            F.col("datasetA.idx").alias("l"),
            F.col("datasetB.idx").alias("r"),
            F.col("datasetA.vec").alias("l_vec"),
            F.col("datasetB.vec").alias("r_vec"),
        ).where("l < r")
        pairs = pairs.select("l", "r", vector_dot("l_vec", "r_vec").alias("cosine"))
    close = pairs.where(F.col("cosine") >= min_cosine - TOLERANCE)
    directed = close.select(F.col("l").alias("a"), F.col("r").alias("b"), "cosine").unionByName(
        close.select(F.col("r").alias("a"), F.col("l").alias("b"), "cosine")
    )
    rank = F.row_number().over(Window.partitionBy("a").orderBy(F.desc("cosine"), "b"))
    return ordered_pairs(directed.withColumn("rank", rank).where(F.col("rank") <= top_k))


def hash_pairs(
    hashed: DataFrame, max_distance: int, top_k: int, exact: bool, partitions: int
) -> DataFrame:
    """(l, r) of postings whose perceptual hashes are at most ``max_distance`` bits apart:
    with ``exact`` every such pair, else each posting's ``top_k`` nearest, as one machine's
    candidates (`core.candidates.HashIndex`: identical hashes searched once, FAISS's binary
    indexes), one block of rows per task against every hash.

    Why not join bit chunks by equality (pigeonhole): for 8 bits that needs 9 chunks of 7
    bits, which take only 128 values each, so a chunk's bucket holds n/128 postings and the
    join n²/128 rows per chunk — 765 million at 100,000 postings. The hashes themselves are 8
    bytes a posting, small enough to send to every executor.
    """
    from pyspark.sql import functions as F

    if not exact and max_distance < 64:
        return nearest_hash_pairs(hashed, max_distance, top_k, partitions)
    pairs = all_pairs(hashed, ["phash"]).select("l", "r", "l_phash", "r_phash")
    distance = F.bit_count(F.col("l_phash").bitwiseXOR(F.col("r_phash")))
    return pairs.where(distance <= max_distance).select("l", "r")
