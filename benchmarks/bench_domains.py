"""``best`` on English product-matching sets: pairwise test F1 next to the published figures.

For each set of ``../shared/data/products-en/`` (Walmart-Amazon, WDC shoes): ``best`` is trained
on the set's ``train.csv`` (labels = connected components of its positive train/valid pairs),
its ``test_catalog.csv`` is matched as a catalog of its own (no labels), and a test pair counts
as predicted-positive when either side lists the other among its matches — the scoring of the
set's README (positive-class precision / recall / F1 over the test pairs only). The baseline is
scored the same way for comparison.

    python benchmarks/bench_domains.py
    python benchmarks/bench_domains.py --sets wdc-shoes --set min_one=false
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_best import parse_overrides  # noqa: E402
from core.engine import match_catalog
from core.matches import MatchResult  # noqa: E402
from core.pipelines import MatchInputs, get_pipeline  # noqa: E402
from core.pipelines.best import BestConfig, BestMatcher  # noqa: E402
from core.settings import MatchSettings  # noqa: E402
from core.text import normalize_title  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "products-en"
SETS = ("walmart-amazon", "wdc-shoes")
#: Published pairwise test F1 from the set's README (other inputs: all attributes).
PUBLISHED = {"walmart-amazon": "Magellan 71.9, DeepMatcher 66.9, Ditto 86.76", "wdc-shoes": "–"}


def read_catalog(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame["title_norm"] = [normalize_title(t) for t in frame["title"]]
    return frame


def labelled_pair_scores(result: MatchResult, pairs: pd.DataFrame) -> dict[str, float]:
    """Positive-class precision / recall / F1 over the labelled test pairs."""
    sets = result.match_sets()
    predicted = [
        b in sets.get(a, ()) or a in sets.get(b, ())
        for a, b in zip(pairs["a"], pairs["b"], strict=True)
    ]
    truth = pairs["label"].astype(int).eq(1).tolist()
    tp = sum(p and t for p, t in zip(predicted, truth, strict=True))
    fp = sum(p and not t for p, t in zip(predicted, truth, strict=True))
    fn = sum(t and not p for p, t in zip(predicted, truth, strict=True))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"f1": f1, "precision": precision, "recall": recall, "positives": tp + fn}


def run_set(name: str, config: BestConfig) -> list[dict[str, object]]:
    """Each pipeline on one set's test catalog; only ``best`` trains (on the set's train.csv)."""
    folder = DATA / name
    train = read_catalog(folder / "train.csv")
    test = read_catalog(folder / "test_catalog.csv")
    pairs = pd.read_csv(folder / "test_pairs.csv", dtype={"a": str, "b": str})
    test_inputs = MatchInputs.from_frame(test)
    rows = []
    for pipeline in ("baseline", "best"):
        row: dict[str, object] = {"set": name, "pipeline": pipeline, "train_s": 0.0}
        options = {}
        if pipeline == "best":
            started = time.perf_counter()
            matcher = BestMatcher.fit(
                MatchInputs.from_frame(train), train["label_group"].tolist(), config=config
            )
            row["train_s"] = time.perf_counter() - started
            row["threshold"] = f"{matcher.config.threshold:.2f}/{matcher.config.threshold_low:.2f}"
            if "cross_encoder" in matcher.info:
                row["cross_encoder"] = matcher.info["cross_encoder"]
            options["model"] = matcher
        started = time.perf_counter()
        result = match_catalog(get_pipeline(pipeline), test_inputs, MatchSettings(), **options)
        row["match_s"] = time.perf_counter() - started
        rows.append({**row, **labelled_pair_scores(result, pairs)})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--set", action="append", default=[], help="BestConfig field=value")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    overrides = parse_overrides(args.set)
    config = BestConfig(**overrides)
    rows = []
    for name in [s.strip() for s in args.sets.split(",") if s.strip()]:
        for row in run_set(name, config):
            rows.append(row)
            print(
                f"{name} {row['pipeline']}: F1 {row['f1']:.4f} P {row['precision']:.4f} "
                f"R {row['recall']:.4f} train {row['train_s']:.0f}s",
                flush=True,
            )
            if "cross_encoder" in row:
                print(f"  cross-encoder stage: {row['cross_encoder']}", flush=True)
    print(f"\nbest config overrides: {overrides or 'none'}\n")
    print("| set | pipeline | test F1 | precision | recall | train s | published F1 |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['set']} | {r['pipeline']} | {100 * r['f1']:.1f} | {100 * r['precision']:.1f} "
            f"| {100 * r['recall']:.1f} | {r['train_s']:.0f} | {PUBLISHED.get(r['set'], '–')} |"
        )
    if args.json:
        args.json.write_text(json.dumps({"overrides": overrides, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
