"""Starting Spark for the job: options, the session, shipping the ``core`` package.

pyspark is imported inside functions only: ``import core`` never loads it (nor Java).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from core.errors import SameSameError, first_line

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

Candidates = Literal["blocked", "exact"]

_PANDAS_WARNING = "PySpark does not yet fully support pandas"


@dataclass(frozen=True)
class SparkOptions:
    """How the Spark job runs; the matching itself is `MatchSettings`.

    Args:
        master: Spark master URL; None = the one spark-submit gave, else ``local[*]``.
        candidates: ``blocked`` (titles by shared rarer words or bounded SequenceMatcher
            blocks, images by LSH, hashes by bands: scales) or ``exact`` (all pairs, small
            catalogs).
        shuffle_partitions: ``spark.sql.shuffle.partitions``; None = 2 per core in local mode,
            Spark's default elsewhere.
        image_tables: random-projection hash tables for image vectors: more find more
            far-apart pairs, and cost more candidate pairs to score.
        bucket_length: random-projection bucket width; None = twice the search radius. Wider
            buckets find more true pairs and put more unrelated pairs in one bucket.
        conf: extra Spark settings (``spark.executor.memory`` …).
        hash_only: ignore images even when the folder has them (image evidence = pHash).
    """

    master: str | None = None
    candidates: Candidates = "blocked"
    shuffle_partitions: int | None = None
    image_tables: int = 8
    bucket_length: float | None = None
    conf: tuple[tuple[str, str], ...] = ()
    hash_only: bool = False

    def __post_init__(self) -> None:
        if self.candidates not in ("blocked", "exact"):
            raise SameSameError(f"candidates must be blocked or exact, not {self.candidates!r}")
        if self.image_tables < 1:
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
    #: Matched pairs written: after the cap and a reviewer's verdicts, as one machine keeps.
    pairs: int
    seconds: float
    candidates: str
    vectors: int = 0
    row_problems: int = 0
    notices: list[str] = field(default_factory=list)
    #: Postings that had more than max_matches matches (each kept its best).
    capped: int = 0
    #: Seconds per stage, in order (Spark computes lazily: each stage ends at an action).
    stages: dict[str, float] = field(default_factory=dict)


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
        project = str(Path(__file__).resolve().parents[2])
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
            f"Spark could not start ({first_line(exc)}). Check that Java 17+ is installed and "
            "the --master URL is reachable."
        ) from exc
    spark.sparkContext.setLogLevel("ERROR")
    if not spark.sparkContext.master.startswith("local"):
        _ship_core(spark)
    return spark


def _ship_core(spark: SparkSession) -> None:
    """Send the ``core`` package to the executors (they still need its dependencies)."""
    package = Path(__file__).resolve().parents[1]
    folder = Path(tempfile.mkdtemp(prefix="samesame-spark-"))
    archive = shutil.make_archive(
        str(folder / "samesame_core"), "zip", root_dir=package.parent, base_dir=package.name
    )
    spark.sparkContext.addPyFile(archive)
