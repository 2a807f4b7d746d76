"""The registry's pipelines as an Apache Spark job (``python -m core spark-match``), for catalogs
past one machine: `session` (starting Spark), `io` (reading and checking the catalog, writing
the matches), `vectors` (embedding on the executors), `neighbours` and `candidates` (the single
machine's indexes searched in blocks, joins, LSH or exact pairs), `rules` (scoring with each
pipeline's own `Pipeline.score` in ``mapInPandas``), `best` (a trained ``best`` model's
searches and chunks of pairs as Spark tasks) and `job` (the whole run).

pyspark is imported inside functions only: ``import core`` never loads it (nor Java).
"""

from __future__ import annotations

from core.spark.job import spark_match, spark_pipelines
from core.spark.rules import match_pairs
from core.spark.session import SparkMatchReport, SparkOptions, require_spark, spark_session

__all__ = [
    "SparkMatchReport",
    "SparkOptions",
    "match_pairs",
    "require_spark",
    "spark_match",
    "spark_pipelines",
    "spark_session",
]
