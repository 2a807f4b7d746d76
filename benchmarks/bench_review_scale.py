"""Time and peak memory of the reviewer's loop on the dense catalog shape (issue: learn from
the person checking matches): the review queue, the random sample, training `best` from 200
verdicts, and linking two catalogs — each step in a process of its own.

    python benchmarks/bench_review_scale.py [--postings 200000] [--pair-postings 50000]

Catalogs come from `make_scale_catalog.py --shape dense` (product families sharing one base
title: the shape whose pairs outgrew memory before the engine bounded them). The queue and the
sample run on a database where the baseline and the ensemble matched the catalog; verdicts are
the catalog's labels for the queue's first 100 pairs and 100 of the random sample; `link`
matches the catalog's even rows against its odd rows.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from common import ROOT, SHARED, child_usage, machine_lines, markdown_table
from make_scale_catalog import generate


def measured(command: list[str]) -> tuple[float, float, str]:
    """(seconds, peak RSS in GiB, stdout) of one child process."""
    return child_usage(command, " ".join(command))


def cli(db: Path, *args: object) -> list[str]:
    return [sys.executable, "-m", "core", "--db", str(db), *map(str, args)]


def step(name: str, db: Path) -> list[str]:
    return [sys.executable, __file__, "--step", name, "--db", str(db)]


def run_step(name: str, db: Path) -> None:
    """Child process: one step of the loop, its figures as JSON on stdout."""
    sys.path.insert(0, str(ROOT))
    import pandas as pd

    from core.pipelines.best import catalog_training
    from core.review_queue import match_sample, review_queue
    from core.settings import MatchSettings
    from core.store import Store

    store = Store(db)
    if name == "queue":
        queue = review_queue(store)
        print(json.dumps({"pairs": len(queue)}))
    elif name == "sample":
        print(json.dumps({"pairs": len(match_sample(store, "baseline"))}))
    elif name == "verdicts":
        labels = store.postings(["posting_id", "label_group"]).set_index("posting_id")
        # Half from the queue, half from the random sample of matches (the Review page's two
        # modes): on this shape the queue's pairs are all family members (different
        # products), with no "same" to train on.
        chosen = pd.concat(
            [review_queue(store).head(100), match_sample(store, "baseline").head(100)]
        )
        for left, right in zip(chosen["left"], chosen["right"], strict=True):
            same = labels.at[left, "label_group"] == labels.at[right, "label_group"]
            store.save_review(left, right, "same" if same else "different", chosen="queue")
        print(json.dumps({"verdicts": len(chosen)}))
    elif name == "train":
        from core.catalog.pairs import verdict_pairs

        report = catalog_training.train_best_from_pairs(
            store, MatchSettings(), db.parent / "model", verdict_pairs(store.reviews())
        )
        print(json.dumps({"pairs_used": report["pairs_used"]}))


def loop_rows(catalog: Path, work: Path, with_training: bool, link: bool = True) -> list[list[str]]:
    import pandas as pd

    db = work / f"{catalog.stem}.db"
    rows = []
    size = sum(1 for _ in catalog.open(encoding="utf-8")) - 1

    def add(what: str, figures: tuple[float, float, str]) -> None:
        seconds, peak, out = figures
        rows.append([what, f"{size:,}", f"{seconds:.1f}", f"{peak:.2f}", out.strip()[-80:]])
        print(rows[-1], flush=True)

    add("import", measured(cli(db, "import", catalog)))
    for pipeline in ("baseline", "ensemble"):
        add(f"match {pipeline}", measured(cli(db, "match", "--pipeline", pipeline)))
    add("review queue (first open)", measured(step("queue", db)))
    if not with_training and not link:
        return rows
    if not with_training:
        add("random sample of the baseline's matches", measured(step("sample", db)))
        frame = pd.read_csv(catalog, dtype=str, keep_default_na=False)
        halves = work / "a.csv", work / "b.csv"
        frame.iloc[::2].to_csv(halves[0], index=False)
        frame.iloc[1::2].to_csv(halves[1], index=False)
        out = work / "links.csv"
        add(
            "link even rows against odd rows (baseline)",
            measured(
                cli(
                    work / "scratch.db",
                    *("link", "--catalog", halves[0], "--against", halves[1]),
                    *("--pipeline", "baseline", "--out", out),
                )
            ),
        )
        return rows
    measured(step("verdicts", db))
    add("train best from 200 verdicts", measured(step("train", db)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postings", type=int, default=200_000)
    parser.add_argument("--pair-postings", type=int, default=50_000, help="0: no training")
    parser.add_argument("--no-link", action="store_true", help="leave out the sample and link")
    parser.add_argument("--step", help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        run_step(args.step, args.db)
        return
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        env_home = work / "home"
        os.environ["SAMESAME_HOME"] = str(env_home)  # children's data folder (models, indexes)
        for postings, training in ((args.postings, False), (args.pair_postings, True)):
            if not postings:
                continue
            catalog = work / f"dense-{postings}.csv"
            generate(SHARED / "data" / "shopee" / "train.csv", postings, catalog, 0, shape="dense")
            part = work / f"part-{postings}"
            part.mkdir()
            rows += loop_rows(catalog, part, training, link=not args.no_link)
    print("\n".join(machine_lines()))
    header = ["step (one process each)", "postings", "wall s", "peak RSS GiB", "output"]
    print(markdown_table(header, rows))


if __name__ == "__main__":
    main()
