"""How the cluster defaults were chosen, and what clusters are worth, on the Shopee dev split.

A fifth of the label groups is held back from every choice. On the other four fifths the
weakest join (``cluster_min_link``) is chosen by nested group-aware selection: in each of
GroupKFold(4)'s folds the value with the best cluster F1 on the three training folds (each
matched as one catalog) is scored on the fold left out; the default is the value chosen on all
four fifths, and the held-back fifth is then scored once with it. Per-posting F1 of plain
matches (each posting's own list) and of clusters is reported side by side.

    python benchmarks/bench_clusters.py                      # baseline and ensemble
    python benchmarks/bench_clusters.py --pipelines baseline
"""

from __future__ import annotations

import argparse
import statistics
import time
import zlib

import numpy as np
import pandas as pd

try:
    from benchmarks.common import SHARED, load_line, machine_lines, markdown_table
except ImportError:  # run as a file: benchmarks/ itself is first on sys.path
    from common import SHARED, load_line, machine_lines, markdown_table

from core.engine import match_catalog
from core.metrics import group_scores, pair_scores, summary
from core.pipelines import MatchInputs, get_pipeline
from core.settings import MatchSettings
from core.text import normalize_title

GRID = (0.0, 0.1, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6)


def matched(frame: pd.DataFrame, pipeline: str, settings: MatchSettings):
    inputs = MatchInputs.from_frame(frame)
    return match_catalog(get_pipeline(pipeline), inputs, settings)


def f1_of(result, frame: pd.DataFrame, min_link: float | None) -> float:
    labels = dict(zip(frame["posting_id"], frame["label_group"], strict=True))
    if min_link is None:
        scores = pair_scores(result.posting_ids, result.pairs, labels, result.pair_positions())
    else:
        from core.clusters import cluster_matches

        clusters = cluster_matches(
            result.posting_ids,
            result.pairs,
            result.settings.max_cluster_size,
            min_link,
            positions=result.pair_positions(),
        )
        scores = group_scores(result.posting_ids, clusters.labels, labels)
    return summary(scores)["f1"]


def choose(result, frame: pd.DataFrame) -> tuple[float, float]:
    """(best weakest join, its cluster F1) on one catalog."""
    found = [(f1_of(result, frame, link), link) for link in GRID]
    f1, link = max(found)
    return link, f1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", default=str(SHARED / "data" / "shopee" / "train.csv"))
    parser.add_argument("--pipelines", default="baseline,ensemble")
    args = parser.parse_args()
    started = time.perf_counter()
    from sklearn.model_selection import GroupKFold

    frame = pd.read_csv(args.csv, dtype=str, keep_default_na=False)
    frame["title_norm"] = [normalize_title(t) for t in frame["title"]]
    bucket = frame["label_group"].map(lambda g: zlib.crc32(g.encode()) % 5)
    held_back = frame[bucket == 0].reset_index(drop=True)
    dev = frame[bucket != 0].reset_index(drop=True)
    print("## Cluster defaults: nested group-aware selection (Shopee dev split)\n")
    print("\n".join(machine_lines()))
    print(
        f"- {len(dev):,} postings for selection, {len(held_back):,} held back "
        f"({held_back['label_group'].nunique():,} groups); weakest-join grid {GRID}\n"
    )
    settings = MatchSettings()
    rows = []
    for pipeline in filter(None, args.pipelines.split(",")):
        outer = []
        for train_idx, test_idx in GroupKFold(n_splits=4).split(dev, groups=dev["label_group"]):
            train, test = dev.iloc[train_idx], dev.iloc[test_idx]
            link, _ = choose(matched(train, pipeline, settings), train)
            result = matched(test, pipeline, settings)
            outer.append((link, f1_of(result, test, None), f1_of(result, test, link)))
        chosen, inner_f1 = choose(matched(dev, pipeline, settings), dev)
        held = matched(held_back, pipeline, settings)
        plain_f1, cluster_f1 = f1_of(held, held_back, None), f1_of(held, held_back, chosen)
        default_f1 = f1_of(held, held_back, settings.cluster_min_link)
        plain = [o[1] for o in outer]
        clustered = [o[2] for o in outer]
        rows.append(
            [
                pipeline,
                ", ".join(f"{o[0]:g}" for o in outer),
                f"{statistics.mean(plain):.4f} ± {statistics.pstdev(plain):.4f}",
                f"{statistics.mean(clustered):.4f} ± {statistics.pstdev(clustered):.4f}",
                f"{chosen:g}",
                f"{plain_f1:.4f}",
                f"{cluster_f1:.4f}",
                f"{default_f1:.4f}",
            ]
        )
        print(f"  {rows[-1]}", flush=True)
    print()
    print(
        markdown_table(
            [
                "pipeline",
                "weakest join chosen per outer fold",
                "outer folds: plain F1",
                "outer folds: cluster F1",
                "chosen on all selection data",
                "held back: plain F1",
                "held back: cluster F1 (chosen)",
                f"held back: cluster F1 (default {settings.cluster_min_link:g})",
            ],
            rows,
        )
    )
    print()
    print(load_line())
    print(f"- benchmark wall time: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
