"""Linking two catalogs (issue: learn from the person checking matches — link two catalogs):
the labelled Shopee dev split cut at random into two halves A and B, every A posting linked
to the B postings that are the same product, scored against the labels.

    python benchmarks/bench_link.py [--catalog ../shared/data/shopee/train.csv] [--seed 0]

A posting's true links are the B postings sharing its label; one with no true link scores 1
when nothing is linked to it. ``F1 linked`` averages over the A postings that have a true
link only. Titles and the CSV's perceptual hashes are the evidence (no photos here).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from common import SHARED, machine_lines, markdown_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", type=Path, default=SHARED / "data" / "shopee" / "train.csv")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pipelines", default="baseline,ensemble")
    args = parser.parse_args()

    import numpy as np
    import pandas as pd

    from core.catalog import import_catalog
    from core.link import link_catalogs, score_links
    from core.settings import MatchSettings
    from core.store import Store

    frame = pd.read_csv(args.catalog, dtype=str)
    in_a = np.random.default_rng(args.seed).random(len(frame)) < 0.5
    halves = {"A": frame[in_a], "B": frame[~in_a]}
    labels = {
        side: dict(zip(h["posting_id"], h["label_group"], strict=True))
        for side, h in halves.items()
    }
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        stores = {}
        for side, half in halves.items():
            half.to_csv(work / f"{side}.csv", index=False)
            stores[side] = Store(work / f"{side}.db")
            import_catalog(stores[side], work / f"{side}.csv", None)
        for pipeline in args.pipelines.split(","):
            union = work / f"union-{pipeline}"
            union.mkdir()
            started = time.perf_counter()
            links = link_catalogs(
                stores["A"], stores["B"], pipeline, MatchSettings(), union, hash_only=True
            )
            seconds = time.perf_counter() - started
            scores = score_links(links, labels["A"], labels["B"])
            rows.append(
                [
                    pipeline,
                    f"{scores['f1']:.3f}",
                    f"{scores['precision']:.3f}",
                    f"{scores['recall']:.3f}",
                    f"{scores['f1_linked']:.3f}",
                    f"{int((links['matches'] != '').sum()):,}",
                    f"{seconds:.1f}",
                ]
            )
        for store in stores.values():
            store.close()
    print("\n".join(machine_lines()))
    print(
        f"catalog: {args.catalog} cut in two at random (seed {args.seed}): A {in_a.sum():,} "
        f"postings, B {(~in_a).sum():,}; {scores['linked_postings']:,} A postings have a true "
        "link in B\n"
    )
    print(
        markdown_table(
            ["pipeline", "F1", "precision", "recall", "F1 linked", "A postings linked", "s"],
            rows,
        )
    )


if __name__ == "__main__":
    main()
