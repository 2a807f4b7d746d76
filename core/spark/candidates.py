"""Candidate pairs on Spark: MinHash LSH on title shingles, random-projection LSH on image
vectors, pigeonhole bands of the 64-bit hashes; or every pair (``exact``), for small catalogs
and to show that LSH is the only source of difference from the single machine."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

import numpy as np

from core.candidates.tfidf import WORD_TOKENS

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

Shingles = Literal["words", "chars"]

#: The token pattern of `core.candidates.tfidf` (word unigrams, single characters included).
TOKEN_PATTERN = WORD_TOKENS
#: Character shingle length for the ensemble's MinHash: on 2,208 Shopee postings the pairs with
#: SequenceMatcher ratio > 0.55 have 3-gram Jaccard >= 0.06 (1% quantile 0.15), so 20 MinHash
#: tables are expected to find 99.8% of them.
CHAR_SHINGLE = 3
#: Feature space of the hashed shingle sets MinHash reads (collisions only add candidates).
SHINGLE_FEATURES = 1 << 20
#: Scores within this of a threshold count as reaching it, as in `core.pipelines`.
TOLERANCE = 1e-6


def tokeniser(kind: Shingles) -> Callable[[str], list[str]]:
    """Word tokens (scikit-learn's analyzer with `TOKEN_PATTERN`, as
    `core.candidates.tfidf.fit_tfidf` tokenises) or character shingles of a normalised title;
    [] for an empty title."""
    if kind == "chars":
        return shingles
    from sklearn.feature_extraction.text import TfidfVectorizer

    analyze = TfidfVectorizer(token_pattern=TOKEN_PATTERN).build_analyzer()
    return lambda title: analyze(title) if title else []


def shingles(title: str, n: int = CHAR_SHINGLE) -> list[str]:
    if not title:
        return []
    if len(title) <= n:
        return [title]
    return sorted({title[i : i + n] for i in range(len(title) - n + 1)})


def tfidf_frame(postings: DataFrame, tokens: DataFrame) -> DataFrame:
    """idx, tfidf (map token → weight): the rows of `core.candidates.tfidf.fit_tfidf`, computed
    here.

    Why not fit scikit-learn on the driver and broadcast it: that needs every title on one
    machine, and a vocabulary of the whole catalog in every executor. scikit-learn's TF-IDF
    with these options is a closed formula over counts, so Spark computes it from a group-by:
    tf = raw count of the token in the title, idf = ln((1 + n) / (1 + df)) + 1 (``smooth_idf``;
    n counts every posting, empty titles included, as scikit-learn does), then each row scaled
    to unit L2 norm. The only difference is float64 here vs float32 there (about 1e-7), which
    the rules' 1e-6 tolerance absorbs.
    """
    from pyspark.sql import functions as F

    n = postings.count()
    counts = (
        tokens.select("idx", F.explode("tokens").alias("token")).groupBy("idx", "token").count()
    )
    document_frequency = counts.groupBy("token").agg(F.count("*").alias("df"))
    weighted = counts.join(document_frequency, "token").select(
        "idx",
        "token",
        (F.col("count") * (F.log((1.0 + n) / (1.0 + F.col("df"))) + 1.0)).alias("w"),
    )
    return (
        weighted.groupBy("idx")
        .agg(
            F.map_from_entries(F.collect_list(F.struct("token", "w"))).alias("tfidf"),
            F.sqrt(F.sum(F.col("w") * F.col("w"))).alias("norm"),
        )
        .select(
            "idx",
            F.transform_values("tfidf", lambda _, v: v / F.col("norm")).alias("tfidf"),
        )
    )


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


def _ordered(pairs: DataFrame, a: str = "a", b: str = "b") -> DataFrame:
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


def minhash_pairs(shingled: DataFrame, tables: int, seed: int = 7) -> DataFrame:
    """(l, r) of titles sharing a MinHash bucket in at least one of ``tables`` tables.

    A pair with shingle Jaccard similarity J collides with probability 1 - (1 - J)^tables; the
    exact score decides afterwards, so a missed pair is the only error LSH can make.
    """
    from pyspark.ml.feature import HashingTF, MinHashLSH
    from pyspark.sql import functions as F

    usable = shingled.where(F.size("tokens") > 0)
    featurised = HashingTF(
        inputCol="tokens", outputCol="features", numFeatures=SHINGLE_FEATURES, binary=True
    ).transform(usable)
    model = MinHashLSH(
        inputCol="features", outputCol="hashes", numHashTables=tables, seed=seed
    ).fit(featurised)
    # Distance < 1 keeps every colliding pair (a shared shingle); the real score filters next.
    joined = model.approxSimilarityJoin(featurised, featurised, 1.0, distCol="jaccard")
    return _ordered(
        joined.select(F.col("datasetA.idx").alias("a"), F.col("datasetB.idx").alias("b"))
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
    return _ordered(directed.withColumn("rank", rank).where(F.col("rank") <= top_k))


def hash_bands(max_distance: int) -> list[tuple[int, int]]:
    """(shift, width) of ``max_distance + 1`` disjoint bit chunks covering all 64 bits.

    Pigeonhole: two hashes at most d bits apart differ in at most d chunks, so with d + 1
    chunks at least one is identical; joining on (chunk number, chunk value) finds every pair
    within distance d, and the exact Hamming distance then removes the rest.
    """
    count = max_distance + 1
    widths = [64 // count + (1 if i < 64 % count else 0) for i in range(count)]
    bands, shift = [], 0
    for width in widths:
        bands.append((shift, width))
        shift += width
    return bands


def hash_pairs(hashed: DataFrame, max_distance: int, exact: bool) -> DataFrame:
    """(l, r) of postings whose perceptual hashes are at most ``max_distance`` bits apart."""
    from pyspark.sql import functions as F

    if exact or max_distance >= 63:
        pairs = all_pairs(hashed, ["phash"]).select("l", "r", "l_phash", "r_phash")
    else:
        bands = []
        for number, (shift, width) in enumerate(hash_bands(max_distance)):
            value = F.shiftrightunsigned("phash", shift)
            if width < 64:
                value = value.bitwiseAND(F.lit((1 << width) - 1).cast("long"))
            bands.append(F.struct(F.lit(number).alias("band"), value.alias("value")))
        exploded = hashed.select("idx", "phash", F.explode(F.array(*bands)).alias("b")).select(
            "idx", "phash", "b.band", "b.value"
        )
        left = exploded.select(
            F.col("idx").alias("l"), F.col("phash").alias("l_phash"), "band", "value"
        )
        right = exploded.select(
            F.col("idx").alias("r"), F.col("phash").alias("r_phash"), "band", "value"
        )
        pairs = (
            left.join(right, ["band", "value"])
            .where(F.col("l") < F.col("r"))
            .select("l", "r", "l_phash", "r_phash")
            .distinct()
        )
    distance = F.bit_count(F.col("l_phash").bitwiseXOR(F.col("r_phash")))
    return pairs.where(distance <= max_distance).select("l", "r")
