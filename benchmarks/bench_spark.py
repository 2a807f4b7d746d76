"""The Spark job (``core.spark_match``) against the single-machine pipelines on real Shopee rows.

A sample of whole label groups of ``../shared/data/shopee/train.csv`` (titles + pHashes, no
pixels) is matched by the single-machine baseline and ensemble and by Spark with ``exact`` and
``lsh`` candidates. Prints, as Markdown: whether exact Spark equals the single machine, the
pairs LSH finds (agreement = share of single-machine pairs), its extras (must be 0), times.

    python benchmarks/bench_spark.py                        # 2,000 rows, local[2]
    python benchmarks/bench_spark.py --rows 27328 --skip-exact --master 'local[*]'
    python benchmarks/bench_spark.py --out /tmp/spark_results.md
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.catalog import prepare_postings, read_catalog_csv  # noqa: E402
from core.matches import read_submission  # noqa: E402
from core.pipelines import MatchInputs, get_pipeline  # noqa: E402
from core.settings import MatchSettings  # noqa: E402
from core.spark import SparkOptions, spark_match, spark_session  # noqa: E402

SHOPEE = Path(__file__).resolve().parents[2] / "shared" / "data" / "shopee" / "train.csv"


def sample_groups(csv_path: Path, rows: int, seed: int = 0) -> pd.DataFrame:
    """Whole label groups in random order until about ``rows`` postings."""
    frame = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    groups = frame["label_group"].drop_duplicates().to_numpy()
    np.random.default_rng(seed).shuffle(groups)
    sizes = frame.groupby("label_group").size()
    total = np.cumsum(sizes[groups].to_numpy())
    keep = set(groups[: int(np.searchsorted(total, rows, side="right"))])
    return frame[frame["label_group"].isin(keep)].reset_index(drop=True)


def single_machine(csv_path: Path, pipeline: str, settings: MatchSettings) -> set[tuple[str, str]]:
    """Pairs of ``python -m core match --catalog`` (same import and pipeline code)."""
    postings, _ = prepare_postings(read_catalog_csv(csv_path), None)
    inputs = MatchInputs.from_frame(pd.DataFrame(postings))
    result = get_pipeline(pipeline).match(inputs, settings)
    return pair_set(result.submission())


def pair_set(submission: pd.DataFrame) -> set[tuple[str, str]]:
    return {(a, b) for a, matches in read_submission(submission).items() for b in matches if a < b}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--pipelines", default="baseline,ensemble")
    parser.add_argument("--skip-exact", action="store_true", help="large samples: LSH only")
    parser.add_argument("--out", help="also write the Markdown here")
    args = parser.parse_args()
    settings = MatchSettings()
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        sample = sample_groups(SHOPEE, args.rows)
        csv_path = Path(tmp) / "sample.csv"
        sample.to_csv(csv_path, index=False)
        started = time.perf_counter()
        spark = spark_session(SparkOptions(master=args.master, shuffle_partitions=8))
        startup = time.perf_counter() - started
        lines += [
            f"Shopee sample: {len(sample):,} postings in {sample['label_group'].nunique():,} "
            f"whole label groups (seed 0), titles + pHash; Spark {spark.version} "
            f"{args.master} on {os.cpu_count()} cores (JVM start {startup:.0f}s, not in the "
            "times below).",
            "",
            "| pipeline | single-machine pairs (s) | Spark exact: equal? (s) | Spark LSH pairs "
            "| LSH agreement | LSH extras | LSH (s) |",
            "|---|---|---|---|---|---|---|",
        ]
        for pipeline in args.pipelines.split(","):
            t0 = time.perf_counter()
            truth = single_machine(csv_path, pipeline, settings)
            single_s = time.perf_counter() - t0

            def spark_pairs(candidates: str, pipeline: str = pipeline):
                """(pairs, report) of one spark_match run with these candidates."""
                out = Path(tmp) / f"{pipeline}_{candidates}.csv"
                report = spark_match(
                    csv_path,
                    out,
                    pipeline,
                    settings,
                    options=SparkOptions(candidates=candidates),
                    spark=spark,
                )
                return pair_set(pd.read_csv(out, dtype=str, keep_default_na=False)), report

            exact_cell = "skipped"
            if not args.skip_exact:
                got, report = spark_pairs("exact")
                exact_cell = f"{'yes' if got == truth else 'NO'} ({report.seconds:.0f})"
            got, report = spark_pairs("lsh")
            agreement = len(got & truth) / max(1, len(truth))
            lines.append(
                f"| {pipeline} | {len(truth):,} ({single_s:.1f}) | {exact_cell} | {len(got):,} "
                f"| {agreement:.2%} | {len(got - truth)} | {report.seconds:.0f} |"
            )
        spark.stop()
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
