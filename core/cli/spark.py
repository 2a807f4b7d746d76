"""The Spark command: spark-match."""

from __future__ import annotations

import argparse
import sys

from core.cli.common import settings_args
from core.errors import SameSameError
from core.pipelines import PIPELINES
from core.settings import SETTING_SPECS, MatchSettings
from core.spark import SparkOptions, spark_match


def add_commands(sub) -> None:
    p = sub.add_parser(
        "spark-match", help="match a catalog file on Apache Spark (local, or a cluster)"
    )
    _spark_match_args(p)
    p.set_defaults(run=cmd_spark_match)


def _spark_match_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--catalog", required=True, help="CSV or Parquet (file or folder, or URI)")
    parser.add_argument("--images", help="image folder of --catalog (same path on executors)")
    on_spark = [name for name, pipe in PIPELINES.items() if pipe.spark]
    parser.add_argument("--pipeline", choices=on_spark, default=on_spark[0])
    parser.add_argument(
        "--model",
        help="the trained model folder: the ensemble's Siamese model, or best's model (required)",
    )
    parser.add_argument("--out", required=True, help="posting_id,matches: .csv, or .parquet")
    parser.add_argument("--master", help="Spark master (default local[*], or spark-submit's)")
    parser.add_argument(
        "--candidates",
        choices=["blocked", "exact"],
        default="blocked",
        help="blocked: one machine's indexes in blocks, images by LSH (scales); exact: all pairs",
    )
    parser.add_argument("--hash-only", action="store_true", help="ignore images; use pHashes")
    parser.add_argument(
        "--verdicts",
        metavar="CSV",
        help="a reviewer's verdicts (left_id,right_id,same with 1/0) that overrule the pipeline",
    )
    parser.add_argument("--shuffle-partitions", type=int, help="spark.sql.shuffle.partitions")
    parser.add_argument("--image-tables", type=int, default=8, help="image LSH tables")
    parser.add_argument("--bucket-length", type=float, help="image LSH bucket width")
    parser.add_argument(
        "--conf", action="append", default=[], metavar="KEY=VALUE", help="Spark setting"
    )
    settings_args(parser)


def cmd_spark_match(args: argparse.Namespace) -> int:
    conf = []
    for item in args.conf:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SameSameError(f"--conf takes KEY=VALUE, not {item!r}")
        conf.append((key.strip(), value))
    overrides = {
        name: getattr(args, name)
        for name in (spec.name for spec in SETTING_SPECS)
        if getattr(args, name, None) is not None
    }
    options = SparkOptions(
        master=args.master,
        candidates=args.candidates,
        shuffle_partitions=args.shuffle_partitions,
        image_tables=args.image_tables,
        bucket_length=args.bucket_length,
        conf=tuple(conf),
        hash_only=args.hash_only,
    )
    report = spark_match(
        args.catalog,
        args.out,
        args.pipeline,
        MatchSettings().replace(**overrides),
        images=args.images,
        model_dir=args.model,
        options=options,
        verdicts=args.verdicts,
        on_stage=lambda description, seconds: print(
            f"{description} ({seconds:.1f}s)", file=sys.stderr, flush=True
        ),
    )
    if report.row_problems:
        print(f"note: {report.row_problems} row problem(s) in {args.catalog}", file=sys.stderr)
    for notice in report.notices:
        print(f"note: {notice}", file=sys.stderr)
    print(
        f"{report.pipeline} on Spark ({report.candidates} candidates): {report.pairs} matched "
        f"pairs over {report.postings} postings, {report.seconds:.1f}s"
    )
    print(f"wrote {args.out}")
    return 0
