"""The Spark job (``core.spark_match``) against the single-machine pipelines, per catalog size.

For each size, a sample of whole label groups of ``../shared/data/shopee/train.csv`` (titles +
pHashes, no pixels; the whole file when the size reaches it) or a catalog file is matched by the
single-machine pipeline and by Spark. Prints, as Markdown: seconds per Spark stage, the total,
the per-posting F1 of both, and how many of the single machine's pairs Spark makes (and adds).

    python benchmarks/bench_spark.py                                  # 7,000 and 27,328 rows
    python benchmarks/bench_spark.py --rows 2000 --exact              # also every-pair Spark
    python benchmarks/bench_spark.py --catalog /tmp/scale/100k.csv    # a make_scale_catalog file
    python benchmarks/bench_spark.py --pipelines best --model DIR     # a trained best model
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import SHARED, machine_lines  # noqa: E402
from core.catalog import prepare_postings, read_catalog_csv  # noqa: E402
from core.engine import match_catalog
from core.matches import read_submission  # noqa: E402
from core.metrics import evaluate, true_match_sets  # noqa: E402
from core.pipelines import MatchInputs, get_pipeline  # noqa: E402
from core.pipelines.best import BEST
from core.settings import MatchSettings  # noqa: E402
from core.spark import SparkOptions, spark_match, spark_session  # noqa: E402

SHOPEE = SHARED / "data" / "shopee" / "train.csv"


def sample_groups(csv_path: Path, rows: int, seed: int = 0) -> pd.DataFrame:
    """Whole label groups in random order until about ``rows`` postings."""
    frame = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    if rows >= len(frame):
        return frame
    groups = frame["label_group"].drop_duplicates().to_numpy()
    np.random.default_rng(seed).shuffle(groups)
    sizes = frame.groupby("label_group").size()
    total = np.cumsum(sizes[groups].to_numpy())
    keep = set(groups[: int(np.searchsorted(total, rows, side="right"))])
    return frame[frame["label_group"].isin(keep)].reset_index(drop=True)


def single_machine(
    csv_path: Path, pipeline: str, settings: MatchSettings, model: Path | None = None
) -> pd.DataFrame:
    """The submission of ``python -m core match --catalog`` (same import and pipeline code)."""
    postings, _ = prepare_postings(read_catalog_csv(csv_path), None)
    inputs = MatchInputs.from_frame(pd.DataFrame(postings))
    if pipeline == "best":
        from core.pipelines.best import BestMatcher

        return match_catalog(BEST, inputs, settings, model=BestMatcher.load(model)).submission()
    return match_catalog(get_pipeline(pipeline), inputs, settings).submission()


def pair_set(submission: pd.DataFrame) -> set[tuple[str, str]]:
    return {(a, b) for a, matches in read_submission(submission).items() for b in matches if a < b}


def f1_of(submission: pd.DataFrame, truth: dict[str, set[str]]) -> float:
    return evaluate(read_submission(submission), truth)["f1"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="7000,27328", help="sample sizes, comma-separated")
    parser.add_argument("--catalog", type=Path, help="a labelled catalog file instead of samples")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--pipelines", default="baseline,ensemble")
    parser.add_argument("--exact", action="store_true", help="also every-pair candidates")
    parser.add_argument("--model", type=Path, help="the trained model folder, for best")
    parser.add_argument("--out", help="also write the Markdown here")
    args = parser.parse_args()
    if "best" in args.pipelines.split(",") and args.model is None:
        parser.error("--pipelines best needs --model (a trained best model folder)")
    settings = MatchSettings()
    lines = [*machine_lines()]
    started = time.perf_counter()
    spark = spark_session(SparkOptions(master=args.master))
    lines += [
        f"- Spark {spark.version}, {args.master}, "
        f"{spark.conf.get('spark.sql.shuffle.partitions')} shuffle partitions; JVM start "
        f"{time.perf_counter() - started:.0f} s (not in the times below)",
        "- titles + pHash, no pixels; candidates `blocked` unless said",
        "",
        "| catalog | postings | pipeline | one machine s | Spark s | Spark stages: read, "
        "candidates + scores (found), cap + write (kept) s "
        "| F1 one machine | F1 Spark | pairs one machine | Spark has | Spark adds |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        if args.catalog:
            catalogs = [(args.catalog.name, args.catalog)]
        else:
            catalogs = []
            for rows in (int(r) for r in args.rows.split(",")):
                sample = sample_groups(SHOPEE, rows)
                path = Path(tmp) / f"sample-{rows}.csv"
                sample.to_csv(path, index=False)
                catalogs.append((f"Shopee {rows:,}", path))
        for name, csv_path in catalogs:
            labels = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
            truth = true_match_sets(
                dict(zip(labels["posting_id"], labels["label_group"], strict=True))
            )
            for pipeline in args.pipelines.split(","):
                t0 = time.perf_counter()
                want_frame = single_machine(csv_path, pipeline, settings, args.model)
                single_s = time.perf_counter() - t0
                want = pair_set(want_frame)
                modes = ["blocked", "exact"] if args.exact else ["blocked"]
                for mode in modes:
                    out = Path(tmp) / f"{pipeline}_{mode}.csv"
                    report = spark_match(
                        csv_path,
                        out,
                        pipeline,
                        settings,
                        model_dir=args.model if pipeline == "best" else None,
                        options=SparkOptions(candidates=mode),
                        spark=spark,
                        on_stage=lambda d, s: print(f"  {d} ({s:.1f}s)", file=sys.stderr),
                    )
                    got_frame = pd.read_csv(out, dtype=str, keep_default_na=False)
                    got = pair_set(got_frame)
                    # "read and checked 7,000 postings" -> "read 7"
                    stage_text = ", ".join(
                        f"{d.split()[0]} {s:.0f}" for d, s in report.stages.items()
                    )
                    label = pipeline if mode == "blocked" else f"{pipeline} (exact)"
                    lines.append(
                        f"| {name} | {len(labels):,} | {label} | {single_s:.1f} "
                        f"| {report.seconds:.0f} | {stage_text} | {f1_of(want_frame, truth):.4f} "
                        f"| {f1_of(got_frame, truth):.4f} | {len(want):,} "
                        f"| {len(got & want) / max(1, len(want)):.2%} | {len(got - want):,} |"
                    )
                    print(lines[-1], file=sys.stderr, flush=True)
    spark.stop()
    lines.append(f"\n- benchmark wall time: {time.perf_counter() - started:.0f} s")
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
