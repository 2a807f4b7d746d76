"""The baseline and ensemble pipelines as an Apache Spark job, for catalogs past one machine.

Same input (the catalog layout, CSV or Parquet), same settings (`MatchSettings`), same rules and
the same ``posting_id,matches`` output as ``python -m core match``; only the work is spread:

1. **Rows.** Each row is checked by the very function the single-machine import uses
   (`core.catalog.prepare_postings`, in ``mapInPandas``): normalised title, validated or
   computed perceptual hash, image path (refused paths and broken files are no evidence).
2. **Image vectors** (only with an image folder, and not ``hash_only``): the existing embedders
   in ``mapInPandas`` over an iterator of batches, so the Keras model is built once per Python
   worker (cached at module level; Spark reuses workers) and never once per batch.
3. **Candidates.** ``lsh``: `MinHashLSH` on title shingles (word tokens for the baseline's
   TF-IDF, character 3-grams for the ensemble's SequenceMatcher), `BucketedRandomProjectionLSH`
   on image vectors, and pigeonhole banding of the 64-bit hashes. ``exact``: every pair
   (``crossJoin``), for small catalogs and to prove that LSH is the only source of difference.
4. **Scores and rules** as DataFrame expressions, mirroring `core.pipelines.baseline` and
   `core.pipelines.ensemble` line by line (float32 where those use float32), then match sets.

pyspark is imported inside functions only: ``import core`` never loads it (nor Java).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from core.errors import CatalogError, SameSameError
from core.settings import MatchSettings

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

logger = logging.getLogger(__name__)

Candidates = Literal["lsh", "exact"]
Shingles = Literal["words", "chars"]
SPARK_PIPELINES = ("baseline", "ensemble")

#: The token pattern of `core.text.tfidf_vectors` (word unigrams, single characters included).
TOKEN_PATTERN = r"(?u)\b\w+\b"
#: Character shingle length for the ensemble's MinHash: on 2,208 Shopee postings the pairs with
#: SequenceMatcher ratio > 0.55 have 3-gram Jaccard >= 0.06 (1% quantile 0.15), so 20 MinHash
#: tables are expected to find 99.8% of them.
CHAR_SHINGLE = 3
#: Feature space of the hashed shingle sets MinHash reads (collisions only add candidates).
SHINGLE_FEATURES = 1 << 20
#: Scores within this of a threshold count as reaching it, as in `core.pipelines`.
TOLERANCE = 1e-6

_PANDAS_WARNING = "PySpark does not yet fully support pandas"


@dataclass(frozen=True)
class SparkOptions:
    """How the Spark job runs; the matching itself is `MatchSettings`.

    Args:
        master: Spark master URL; None = the one spark-submit gave, else ``local[*]``.
        candidates: ``lsh`` (approximate, scales) or ``exact`` (all pairs, small catalogs).
        shuffle_partitions: ``spark.sql.shuffle.partitions``; None = 2 per core in local mode,
            Spark's default elsewhere.
        minhash_tables: MinHash hash tables; more find more low-overlap title pairs, and cost
            more candidate pairs to score.
        image_tables: random-projection hash tables for image vectors (same trade).
        bucket_length: random-projection bucket width; None = twice the search radius. Wider
            buckets find more true pairs and put more unrelated pairs in one bucket.
        conf: extra Spark settings (``spark.executor.memory`` …).
        hash_only: ignore images even when the folder has them (image evidence = pHash).
    """

    master: str | None = None
    candidates: Candidates = "lsh"
    shuffle_partitions: int | None = None
    minhash_tables: int = 20
    image_tables: int = 8
    bucket_length: float | None = None
    conf: tuple[tuple[str, str], ...] = ()
    hash_only: bool = False

    def __post_init__(self) -> None:
        if self.candidates not in ("lsh", "exact"):
            raise SameSameError(f"candidates must be lsh or exact, not {self.candidates!r}")
        if self.minhash_tables < 1 or self.image_tables < 1:
            raise SameSameError("the number of LSH hash tables must be at least 1")
        if self.bucket_length is not None and self.bucket_length <= 0:
            raise SameSameError("bucket_length must be positive")
        if self.shuffle_partitions is not None and self.shuffle_partitions < 1:
            raise SameSameError("shuffle_partitions must be at least 1")


@dataclass
class SparkMatchReport:
    """What a run did: sizes, time, and notices for the user."""

    pipeline: str
    postings: int
    pairs: int
    seconds: float
    candidates: str
    vectors: int = 0
    row_problems: int = 0
    notices: list[str] = field(default_factory=list)


# -- session ---------------------------------------------------------------------------------
def require_spark() -> None:
    """Fail early, with a message saying what to install, when pyspark or Java is missing."""
    try:
        import pyspark  # noqa: F401
    except ImportError as exc:
        raise SameSameError(
            "spark-match needs pyspark: pip install -r requirements-spark.txt "
            "(and Java 17 or newer)."
        ) from exc
    java_home = os.environ.get("JAVA_HOME")
    if "PYSPARK_GATEWAY_PORT" in os.environ:
        return  # started by spark-submit: the JVM is already running
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return
    if shutil.which("java") is None:
        raise SameSameError(
            "spark-match needs Java (17 or newer) and none was found: install a JDK/JRE and put "
            "java on the PATH, or set JAVA_HOME."
        )


def spark_session(options: SparkOptions | None = None, app_name: str = "samesame") -> SparkSession:
    """A SparkSession set up for this job (or the one spark-submit already started).

    Python workers run this very interpreter in local mode (``PYSPARK_PYTHON``), so they see the
    same packages (pandas, pyarrow, TensorFlow) and the ``core`` package.

    Raises:
        SameSameError: pyspark or Java missing, or the JVM would not start.
    """
    options = options or SparkOptions()
    require_spark()
    from pyspark.sql import SparkSession

    warnings.filterwarnings("ignore", message=_PANDAS_WARNING, category=FutureWarning)
    master = options.master
    if master is None and "PYSPARK_GATEWAY_PORT" not in os.environ:
        master = "local[*]"
    local = master is not None and master.startswith("local")
    if local:
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        project = str(Path(__file__).resolve().parents[1])
        paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
        if project not in paths:
            os.environ["PYTHONPATH"] = os.pathsep.join([project, *[p for p in paths if p]])
    builder = SparkSession.builder.appName(app_name)
    if master is not None:
        builder = builder.master(master)
    partitions = options.shuffle_partitions or (2 * (os.cpu_count() or 2) if local else None)
    defaults = {
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.execution.pythonUDF.arrow.enabled": "true",
        "spark.executorEnv.PYTHONWARNINGS": f"ignore:{_PANDAS_WARNING}:FutureWarning",
    }
    if partitions:
        defaults["spark.sql.shuffle.partitions"] = str(partitions)
    if local:
        defaults["spark.ui.enabled"] = "false"
    for key, value in {**defaults, **dict(options.conf)}.items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # PySparkRuntimeError (JAVA_GATEWAY_EXITED), Py4J errors…
        raise SameSameError(
            f"Spark could not start ({type(exc).__name__}: {str(exc)[:300]}). Check that Java 17+ "
            "is installed and the --master URL is reachable."
        ) from exc
    spark.sparkContext.setLogLevel("ERROR")
    if not spark.sparkContext.master.startswith("local"):
        _ship_core(spark)
    return spark


def _ship_core(spark: SparkSession) -> None:
    """Send the ``core`` package to the executors (they still need its dependencies)."""
    package = Path(__file__).resolve().parent
    folder = Path(tempfile.mkdtemp(prefix="samesame-spark-"))
    archive = shutil.make_archive(
        str(folder / "samesame_core"), "zip", root_dir=package.parent, base_dir=package.name
    )
    spark.sparkContext.addPyFile(archive)


# -- catalog ---------------------------------------------------------------------------------
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
    from core.catalog import read_catalog_csv

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
        raise CatalogError(
            f"{path}: cannot be read as {kind} ({_first_line(exc)}); expected the layout "
            "posting_id,image,image_phash,title,label_group"
        ) from exc
    return _checked_frame(raw, path)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _checked_frame(raw: DataFrame, label: str) -> DataFrame:
    """Spark-read catalog → the `read_catalog` layout, refusing what the CSV import refuses."""
    from pyspark.sql import functions as F

    from core.catalog import OPTIONAL_COLUMNS, REQUIRED_COLUMNS, missing_columns_error

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
        raise CatalogError(f"{label}: cannot be read ({_first_line(exc)})") from exc
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


def prepare_frame(
    catalog: DataFrame, image_root: Path | None, shingles: Shingles = "words"
) -> DataFrame:
    """Per row, exactly what the single-machine import stores (via `prepare_postings`).

    Args:
        shingles: what the title's ``tokens`` are: "words" (the TF-IDF analyzer's tokens) or
            "chars" (character 3-grams); made in this same Python pass to save a UDF stage.

    Returns:
        idx, posting_id, title (normalised), phash (signed 64-bit or null), image_path (null
        unless the image opened), problems (row problems found), tokens.
    """
    root = str(image_root) if image_root is not None else None

    def prepare(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from core.catalog import prepare_postings

        folder = Path(root) if root is not None else None
        tokenise = _tokeniser(shingles)
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
    from core.images import is_valid_phash

    if not isinstance(value, str) or not is_valid_phash(value):
        return None
    unsigned = int(value, 16)
    return unsigned - (1 << 64) if unsigned >= 1 << 63 else unsigned


# -- image vectors ---------------------------------------------------------------------------
#: Embedders built in this Python process, by spec: Spark reuses Python workers between tasks,
#: so a model is loaded once per worker, not once per batch or per partition.
_EMBEDDERS: dict[tuple, Any] = {}


def _embedder(spec: tuple) -> Any:
    if spec not in _EMBEDDERS:
        if spec[0] == "siamese":
            from core.embedders.siamese import SiameseEmbedder

            _EMBEDDERS[spec] = SiameseEmbedder.load(Path(spec[1]), spec[2])
        else:
            from core.embedders.mobilenet import PretrainedEmbedder

            _, backbone, alpha, size, weights_dir, batch_size = spec
            _EMBEDDERS[spec] = PretrainedEmbedder(
                backbone, alpha, size, Path(weights_dir), batch_size
            )
    return _EMBEDDERS[spec]


def embedder_spec(pipeline: str, settings: MatchSettings, model_dir: Path | None) -> tuple:
    """What an executor needs to build the pipeline's image embedder (plain, picklable)."""
    if pipeline == "ensemble":
        if model_dir is None:
            raise SameSameError(
                "spark-match --pipeline ensemble with --images needs --model DIR (a Siamese model "
                "trained with python -m core train), or --hash-only."
            )
        from core.service import siamese_version

        if siamese_version(model_dir) is None:
            raise SameSameError(
                f"{model_dir} holds no trained Siamese model; train one with python -m core "
                "train --pipeline ensemble --model DIR, or use --hash-only."
            )
        return ("siamese", str(model_dir.resolve()), settings.batch_size)
    return (
        "pretrained",
        settings.image_backbone,
        settings.image_alpha,
        settings.image_size,
        str(settings.resolved_weights_dir().resolve()),
        settings.batch_size,
    )


def embed_frame(postings: DataFrame, spec: tuple) -> DataFrame:
    """idx, vec (L2-normalised float32 array) for every posting whose image opened.

    A file that fails to decode here is skipped (no vector: its hash stands in), as
    `core.embedding.embed_catalog` does.
    """

    def embed(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from core.errors import ImageError

        embedder = None
        for batch in batches:
            if batch.empty:
                continue
            embedder = embedder or _embedder(spec)  # once per worker, on the first real batch
            paths = [Path(p) for p in batch["image_path"]]
            try:
                vectors = list(embedder.embed(paths))
                ids = batch["idx"].tolist()
            except ImageError:
                ids, vectors = [], []
                for idx, path in zip(batch["idx"], paths, strict=True):
                    try:
                        vectors.append(embedder.embed([path])[0])
                        ids.append(idx)
                    except ImageError as exc:
                        logger.warning("skipping %s: %s", path, exc)
            yield pd.DataFrame(
                {"idx": pd.array(ids, "int64"), "vec": [v.astype(np.float32) for v in vectors]}
            )

    with_images = postings.where("image_path IS NOT NULL").select("idx", "image_path")
    return with_images.mapInPandas(embed, "idx long, vec array<float>")


# -- text features ---------------------------------------------------------------------------
def _tokeniser(kind: Shingles) -> Callable[[str], list[str]]:
    """Word tokens (scikit-learn's analyzer with `TOKEN_PATTERN`, as `core.text.tfidf_vectors`
    tokenises) or character shingles of a normalised title; [] for an empty title."""
    if kind == "chars":
        return _shingles
    from sklearn.feature_extraction.text import TfidfVectorizer

    analyze = TfidfVectorizer(token_pattern=TOKEN_PATTERN).build_analyzer()
    return lambda title: analyze(title) if title else []


def _shingles(title: str, n: int = CHAR_SHINGLE) -> list[str]:
    if not title:
        return []
    if len(title) <= n:
        return [title]
    return sorted({title[i : i + n] for i in range(len(title) - n + 1)})


def tfidf_frame(postings: DataFrame, tokens: DataFrame) -> DataFrame:
    """idx, tfidf (map token → weight): the rows of `core.text.tfidf_vectors`, computed here.

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


def _tfidf_dot(left: str, right: str) -> Column:
    from pyspark.sql import functions as F

    return F.coalesce(
        F.expr(
            f"aggregate(map_keys({left}), CAST(0 AS DOUBLE), (acc, k) -> acc + "
            f"element_at({left}, k) * coalesce(try_element_at({right}, k), CAST(0 AS DOUBLE)))"
        ),
        F.lit(0.0),
    )


def _vector_dot(left: str, right: str) -> Column:
    from pyspark.sql import functions as F

    return F.expr(
        f"aggregate(zip_with({left}, {right}, (x, y) -> CAST(x AS DOUBLE) * y), "
        "CAST(0 AS DOUBLE), (acc, v) -> acc + v)"
    )


def _sequence_ratio_column(left: Column, right: Column) -> Column:
    """difflib's ratio per pair, with `core.similarity.sequence_ratio` (empty title → 0)."""
    from pyspark.sql.functions import pandas_udf

    @pandas_udf("double")
    def ratio(a: pd.Series, b: pd.Series) -> pd.Series:
        from core.similarity import sequence_ratio

        return pd.Series([sequence_ratio(x, y) for x, y in zip(a, b, strict=True)], dtype=float)

    return ratio(left, right)


def _ratio_above_column(left: Column, right: Column, cutoff: float) -> Column:
    """Whether difflib's ratio is strictly above ``cutoff``, with the exact rapidfuzz
    prefilter of `core.similarity.text_pairs_above` (fuzz.ratio bounds difflib's from above)."""
    from pyspark.sql.functions import pandas_udf

    @pandas_udf("boolean")
    def above(a: pd.Series, b: pd.Series) -> pd.Series:
        from rapidfuzz import fuzz

        from core.similarity import sequence_ratio

        floor = max(0.0, cutoff * 100 - 1e-3)
        out = [
            bool(x)
            and bool(y)
            and fuzz.ratio(x, y, score_cutoff=floor) > 0
            and sequence_ratio(x, y) > cutoff
            for x, y in zip(a, b, strict=True)
        ]
        return pd.Series(out, dtype=bool)

    return above(left, right)


# -- candidates ------------------------------------------------------------------------------
def _ordered(pairs: DataFrame, a: str = "a", b: str = "b") -> DataFrame:
    """Distinct (l, r) with l < r in catalog order."""
    from pyspark.sql import functions as F

    return (
        pairs.where(F.col(a) != F.col(b))
        .select(F.least(a, b).alias("l"), F.greatest(a, b).alias("r"))
        .distinct()
    )


def _all_pairs(frame: DataFrame, columns: list[str]) -> DataFrame:
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
    `core.neighbours.similar_pairs` does (the top-k cap is part of the single-machine rule).

    Unit vectors: cosine >= c ⇔ Euclidean distance <= sqrt(2 - 2c), the radius of the
    `BucketedRandomProjectionLSH` similarity join.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    if exact:
        pairs = _all_pairs(vectors, ["vec"]).select(
            "l", "r", _vector_dot("l_vec", "r_vec").alias("cosine")
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
        pairs = pairs.select("l", "r", _vector_dot("l_vec", "r_vec").alias("cosine"))
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
        pairs = _all_pairs(hashed, ["phash"]).select("l", "r", "l_phash", "r_phash")
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


# -- the job ---------------------------------------------------------------------------------
def match_pairs(
    postings: DataFrame,
    vectors: DataFrame | None,
    pipeline: str,
    settings: MatchSettings,
    options: SparkOptions,
    held: list[DataFrame] | None = None,
) -> DataFrame:
    """Matched pairs (l, r, rule, scores) of one pipeline over prepared postings.

    Args:
        postings: `prepare_frame` output, its ``tokens`` words for the baseline and characters
            for the ensemble.
        vectors: `embed_frame` output, or None (the hash is the only image evidence).
        held: frames cached here are appended, for the caller to unpersist when done.
    """
    from pyspark.sql import functions as F

    if pipeline not in SPARK_PIPELINES:
        raise SameSameError(
            f"spark-match runs {' or '.join(SPARK_PIPELINES)}, not {pipeline!r} (best is "
            "single-machine only)"
        )
    exact = options.candidates == "exact"
    base = postings.select("idx", "title", "phash")
    if vectors is not None:
        base = base.join(vectors, "idx", "left")
    else:
        base = base.withColumn("vec", F.lit(None).cast("array<float>"))
    held = held if held is not None else []
    base = _held(base, held)
    has_vec = F.col("vec").isNotNull()

    # Text candidates and per-posting text features.
    if pipeline == "baseline":
        words = postings.select("idx", "tokens")
        tfidf = _held(tfidf_frame(base, words), held)
        featured = base.join(tfidf, "idx", "left")
        threshold = settings.baseline_text_cosine
        if exact:
            # Every pair; a positive cosine needs a shared token, a cheap exact prefilter.
            text = _all_pairs(tfidf, ["tfidf"]).where(
                F.arrays_overlap(F.map_keys("l_tfidf"), F.map_keys("r_tfidf"))
            )
            text = text.where(_tfidf_dot("l_tfidf", "r_tfidf") >= threshold - TOLERANCE)
        else:
            found = minhash_pairs(words, options.minhash_tables)
            text = found.join(
                tfidf.select(F.col("idx").alias("l"), F.col("tfidf").alias("l_tfidf")), "l"
            ).join(tfidf.select(F.col("idx").alias("r"), F.col("tfidf").alias("r_tfidf")), "r")
            text = text.where(_tfidf_dot("l_tfidf", "r_tfidf") >= threshold - TOLERANCE)
        text = text.select("l", "r")
        image_min_cosine = settings.baseline_image_cosine
    else:
        featured = base
        titled = base.where(F.length("title") > 0)
        cutoff = settings.ensemble_text_ratio
        if exact:
            candidates = _all_pairs(titled, ["title"])
        else:
            shingled = postings.where(F.length("title") > 0).select("idx", "tokens")
            candidates = minhash_pairs(shingled, options.minhash_tables)
            candidates = candidates.join(
                titled.select(F.col("idx").alias("l"), F.col("title").alias("l_title")), "l"
            ).join(titled.select(F.col("idx").alias("r"), F.col("title").alias("r_title")), "r")
        text = candidates.where(
            _ratio_above_column(F.col("l_title"), F.col("r_title"), cutoff)
        ).select("l", "r")
        # The combined rule needs distance < ensemble_combined, so search out to that radius.
        radius = max(settings.ensemble_image_distance, settings.ensemble_combined)
        image_min_cosine = max(-1.0, 1.0 - radius**2 / 2.0)

    sources = [text]
    if vectors is not None:
        sources.append(
            image_pairs(
                base.where(has_vec).select("idx", "vec"),
                image_min_cosine,
                settings.top_k,
                exact,
                options.image_tables,
                options.bucket_length,
            )
        )
    hashed = hash_pairs(
        base.where(F.col("phash").isNotNull()).select("idx", "phash"),
        settings.hash_max_distance,
        exact,
    )
    # Hash candidates only where at least one side has no vector (the hash stands in for it).
    flags = base.select("idx", has_vec.alias("v"))
    hashed = (
        hashed.join(flags.select(F.col("idx").alias("l"), F.col("v").alias("lv")), "l")
        .join(flags.select(F.col("idx").alias("r"), F.col("v").alias("rv")), "r")
        .where(~(F.col("lv") & F.col("rv")))
        .select("l", "r")
    )
    sources.append(hashed)
    union = sources[0]
    for more in sources[1:]:
        union = union.unionByName(more)
    union = union.distinct()

    side = [c for c in featured.columns if c != "idx"]
    left = featured.select(F.col("idx").alias("l"), *[F.col(c).alias(f"l_{c}") for c in side])
    right = featured.select(F.col("idx").alias("r"), *[F.col(c).alias(f"r_{c}") for c in side])
    scored = union.join(left, "l").join(right, "r")
    return _apply_rules(scored, pipeline, settings)


def _held(frame: DataFrame, held: list[DataFrame]) -> DataFrame:
    frame = frame.persist()
    held.append(frame)
    return frame


def _f32(value: float) -> Column:
    """A float32 literal: numpy compares float32 scores with Python floats in float32."""
    from pyspark.sql import functions as F

    return F.lit(float(np.float32(value))).cast("float")


def _apply_rules(scored: DataFrame, pipeline: str, settings: MatchSettings) -> DataFrame:
    """The pipeline's rules (`baseline_rules` / `ensemble_rules`) as column expressions."""
    from pyspark.sql import functions as F

    by_vector = F.col("l_vec").isNotNull() & F.col("r_vec").isNotNull()
    both_hash = F.col("l_phash").isNotNull() & F.col("r_phash").isNotNull()
    cosine = F.when(by_vector, _vector_dot("l_vec", "r_vec").cast("float"))
    hash_distance = F.when(
        both_hash, F.bit_count(F.col("l_phash").bitwiseXOR(F.col("r_phash")))
    ).cast("float")
    frame = scored.select(
        "l",
        "r",
        by_vector.alias("by_vector"),
        cosine.alias("image_cosine"),
        hash_distance.alias("hash_distance"),
        *(["l_tfidf", "r_tfidf"] if pipeline == "baseline" else ["l_title", "r_title"]),
    )
    hash_rule = ~F.col("by_vector") & (F.col("hash_distance") <= settings.hash_max_distance)
    if pipeline == "baseline":
        frame = frame.withColumn(
            "tfidf_cosine", F.least(_tfidf_dot("l_tfidf", "r_tfidf"), F.lit(1.0)).cast("float")
        )
        fired = {
            "image": F.col("by_vector")
            & (F.col("image_cosine") >= _f32(settings.baseline_image_cosine - TOLERANCE)),
            "hash": hash_rule,
            "text": F.col("tfidf_cosine") >= _f32(settings.baseline_text_cosine - TOLERANCE),
        }
        scores = ["image_cosine", "hash_distance", "tfidf_cosine"]
    else:
        distance = F.sqrt(F.greatest(F.lit(0.0), 2.0 - 2.0 * F.col("image_cosine"))).cast("float")
        frame = frame.withColumn("siamese_distance", distance).withColumn(
            "text_ratio",
            _sequence_ratio_column(F.col("l_title"), F.col("r_title")).cast("float"),
        )
        has_text = (F.length("l_title") > 0) & (F.length("r_title") > 0)
        combined = F.col("siamese_distance") + (_f32(1.0) - F.col("text_ratio"))
        fired = {
            "image": F.col("by_vector")
            & (F.col("siamese_distance") < _f32(settings.ensemble_image_distance)),
            "hash": hash_rule,
            "text": has_text & (F.col("text_ratio") > _f32(settings.ensemble_text_ratio)),
            "combined": F.col("by_vector")
            & has_text
            & (combined.cast("float") < _f32(settings.ensemble_combined)),
        }
        scores = ["siamese_distance", "hash_distance", "text_ratio"]
    fired = {name: F.coalesce(rule, F.lit(False)) for name, rule in fired.items()}
    rule = F.concat_ws("+", *[F.when(cond, F.lit(name)) for name, cond in fired.items()])
    keep = F.lit(False)
    for cond in fired.values():
        keep = keep | cond
    return frame.where(keep).select("l", "r", rule.alias("rule"), *scores)


def submission(postings: DataFrame, pairs: DataFrame) -> DataFrame:
    """``idx, posting_id, matches``: the posting first, then its matches sorted, as
    `core.matches.submission_frame` writes them."""
    from pyspark.sql import functions as F

    ids = postings.select("idx", "posting_id")
    named = (
        pairs.select("l", "r")
        .join(ids.select(F.col("idx").alias("l"), F.col("posting_id").alias("lp")), "l")
        .join(ids.select(F.col("idx").alias("r"), F.col("posting_id").alias("rp")), "r")
    )
    directed = named.select(F.col("l").alias("idx"), F.col("rp").alias("other")).unionByName(
        named.select(F.col("r").alias("idx"), F.col("lp").alias("other"))
    )
    grouped = directed.groupBy("idx").agg(F.array_sort(F.collect_set("other")).alias("others"))
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


def spark_match(
    catalog: str | Path,
    out: str | Path,
    pipeline: str = "baseline",
    settings: MatchSettings | None = None,
    *,
    images: str | Path | None = None,
    model_dir: str | Path | None = None,
    options: SparkOptions | None = None,
    spark: SparkSession | None = None,
) -> SparkMatchReport:
    """Match a catalog on Spark and write ``posting_id,matches``.

    Args:
        catalog: CSV or Parquet (file or folder), local or any Hadoop file system URI.
        out: ``.parquet`` → a Parquet dataset written by the executors; anything else → one
            CSV file in the single-machine layout, written by the driver.
        images: image folder, at the same path on every executor (a shared file system).
        model_dir: the ensemble's trained Siamese model folder (same path on every executor).
        spark: an existing session to use (kept open); else one is started and stopped.

    Raises:
        SameSameError: bad input, unsupported pipeline, missing pyspark or Java.
    """
    started = time.perf_counter()
    settings = settings or MatchSettings()
    options = options or SparkOptions()
    require_spark()
    from pyspark.sql import functions as F

    if pipeline not in SPARK_PIPELINES:
        raise SameSameError(f"spark-match runs {' or '.join(SPARK_PIPELINES)}, not {pipeline!r}")
    if settings.translate_titles:
        raise SameSameError("spark-match does not translate titles; run it without --translate")
    image_root = Path(images).resolve() if images else None
    if image_root is not None and not image_root.is_dir():
        raise CatalogError(f"image folder {images} does not exist or is not a folder")
    model_path = Path(model_dir) if model_dir else None
    use_images = image_root is not None and not options.hash_only
    spec = embedder_spec(pipeline, settings, model_path) if use_images else None

    local = local_catalog(str(catalog))
    own = spark is None
    session = spark or spark_session(options)
    held: list[DataFrame] = []
    try:
        frame = read_catalog(session, str(catalog), local)
        shingles = "words" if pipeline == "baseline" else "chars"
        postings = _held(prepare_frame(frame, image_root, shingles), held)
        stats = postings.agg(F.count("*"), F.sum("problems"), F.count("image_path")).first()
        total, problems, with_images = int(stats[0]), int(stats[1] or 0), int(stats[2])
        vectors = None
        notices = []
        if use_images and with_images:
            vectors = _held(embed_frame(postings, spec), held)
        vector_count = vectors.count() if vectors is not None else 0
        if vector_count == 0:
            kind = "Siamese" if pipeline == "ensemble" else "image"
            notices.append(
                f"No {kind} embeddings: image evidence came from perceptual hashes only."
            )
        elif vector_count < with_images:
            notices.append(
                f"{with_images - vector_count} image(s) could not be embedded: perceptual hashes "
                "stand in for them."
            )
        pairs = _held(match_pairs(postings, vectors, pipeline, settings, options, held), held)
        pair_count = pairs.count()
        result = submission(postings, pairs)
        _write(result, str(out))
        return SparkMatchReport(
            pipeline=pipeline,
            postings=total,
            pairs=pair_count,
            seconds=time.perf_counter() - started,
            candidates=options.candidates,
            vectors=vector_count,
            row_problems=problems,
            notices=notices,
        )
    finally:
        for frame in held:
            frame.unpersist()
        if own:
            session.stop()


def _write(result: DataFrame, out: str) -> None:
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
