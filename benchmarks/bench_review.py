"""Learning from a reviewer (issue: learn from the person checking matches): a simulated
reviewer — the labels as the oracle — answers pairs of a catalog of Shopee products nobody
trained on, and `best` is trained from those verdicts alone.

    python benchmarks/bench_review.py [--budgets 50,100,200,400] [--held-out 0.3]
        [--split selection|confirmation] [--reference] [--pairs-file N]

The labelled dev split is cut by label group: ``--held-out`` of the groups form the catalog
that is reviewed and matched; the rest train the reference `best` (all labels). ``--split
selection`` (the default) is the cut every choice of pair training was looked at on;
``--split confirmation`` cuts the held-out catalog from the other groups instead (a second
seed), so neither the reference model nor any choice has seen it. For each
budget, verdicts come from the review queue's most telling pairs (`core.review_queue`) or from
pairs drawn at random out of the same pool (every pair some pipeline matched). The F1 is the
model's own on the whole held-out catalog (verdicts are not applied over its output).
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
    parser.add_argument("--budgets", default="50,100,200,400")
    parser.add_argument("--held-out", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", choices=["selection", "confirmation"], default="selection")
    parser.add_argument("--reference", action="store_true", help="also train best on all labels")
    parser.add_argument(
        "--pairs-file",
        type=int,
        default=0,
        metavar="N",
        help="also train best from a file of N labelled pairs of the other groups",
    )
    args = parser.parse_args()

    import numpy as np
    import pandas as pd

    from core import matching, models
    from core.catalog import import_catalog
    from core.errors import SameSameError
    from core.evaluation import evaluate_result
    from core.pipelines.best import catalog_training
    from core.review_queue import QUEUE_LIMIT, review_queue
    from core.settings import MatchSettings
    from core.store import Store
    from core.verdicts import pair_key, with_verdicts

    frame = pd.read_csv(args.catalog, dtype=str)
    groups = frame["label_group"].unique()
    rng = np.random.default_rng(args.seed)
    held = set(rng.permutation(groups)[: int(len(groups) * args.held_out)])
    reviewed_part = frame[frame["label_group"].isin(held)]
    training_part = frame[~frame["label_group"].isin(held)]
    if args.split == "confirmation":
        rest = training_part["label_group"].unique()
        cut = np.random.default_rng(args.seed + 1).permutation(rest)
        held = set(cut[: int(len(rest) * args.held_out)])
        reviewed_part = training_part[training_part["label_group"].isin(held)]
        training_part = training_part[~training_part["label_group"].isin(held)]
    labels = dict(zip(reviewed_part["posting_id"], reviewed_part["label_group"], strict=True))
    rows = []
    verdicts: dict[str, pd.DataFrame] = {}
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        reviewed_part.to_csv(work / "held.csv", index=False)
        with Store(work / "held.db") as store:
            import_catalog(store, work / "held.csv", None)
            for pipeline in ("baseline", "ensemble"):
                result = matching.run_pipeline(store, pipeline)
                rows.append(
                    [
                        f"{pipeline} (no training)",
                        "—",
                        f"{evaluate_result(store, result)['f1']:.3f}",
                        "",
                    ]
                )
            pool = review_queue(store, limit=QUEUE_LIMIT * 100)
            random_order = pool.sample(frac=1.0, random_state=args.seed).reset_index(drop=True)
            for budget in (int(b) for b in args.budgets.split(",")):
                for how, chosen in (
                    ("queue", pool.head(budget)),
                    ("random", random_order.head(budget)),
                ):
                    pairs = pd.DataFrame(
                        {
                            "left_id": chosen["left"],
                            "right_id": chosen["right"],
                            "same": [
                                int(labels[a] == labels[b])
                                for a, b in zip(chosen["left"], chosen["right"], strict=True)
                            ],
                        }
                    )
                    verdicts[f"{budget} {how}"] = pairs
                    model = work / f"best-{how}-{budget}"
                    started = time.perf_counter()
                    try:
                        catalog_training.train_best_from_pairs(store, MatchSettings(), model, pairs)
                    except SameSameError as exc:  # too few of one kind: say so in the table
                        rows.append(
                            [
                                f"best from {budget} {how} verdicts",
                                f"{pairs['same'].sum()}",
                                "—",
                                str(exc)[:60],
                            ]
                        )
                        continue
                    result = matching.run_pipeline(store, "best", model_dir=model, save=False)
                    # The model's own decisions: no verdict is applied over them here.
                    f1 = evaluate_result(store, result)["f1"]
                    rows.append(
                        [
                            f"best from {budget} {how} verdicts",
                            f"{int(pairs['same'].sum())}",
                            f"{f1:.3f}",
                            f"threshold {models.best_threshold(model):.2f}, "
                            f"{time.perf_counter() - started:.0f} s",
                        ]
                    )
                    print(rows[-1], flush=True)
            if args.pairs_file:
                # A labelled-pairs file of our own making: the other groups' catalog without
                # its labels, pairs drawn from what its ensemble matched, half same, half not.
                started = time.perf_counter()
                other = training_part.drop(columns=["label_group"])
                other.to_csv(work / "other.csv", index=False)
                truth = dict(
                    zip(training_part["posting_id"], training_part["label_group"], strict=True)
                )
                with Store(work / "other.db") as training:
                    import_catalog(training, work / "other.csv", None)
                    matching.run_pipeline(training, "baseline")
                    found = matching.run_pipeline(training, "ensemble", save=False).pairs
                    ends = zip(found["left"], found["right"], strict=True)
                    same = np.array([truth[a] == truth[b] for a, b in ends])
                    half = args.pairs_file // 2
                    chosen = pd.concat(
                        [
                            found[same].sample(half, random_state=args.seed),
                            found[~same].sample(half, random_state=args.seed),
                        ]
                    )
                    file_pairs = pd.DataFrame(
                        {
                            "left_id": chosen["left"],
                            "right_id": chosen["right"],
                            "same": np.r_[np.ones(half, int), np.zeros(half, int)],
                        }
                    )
                    catalog_training.train_best_from_pairs(
                        training, MatchSettings(), work / "best-file", file_pairs
                    )
                result = matching.run_pipeline(
                    store, "best", model_dir=work / "best-file", save=False
                )
                rows.append(
                    [
                        f"best from a pairs file of {args.pairs_file:,} pairs of the other "
                        f"groups ({len(training_part):,} postings, no labels)",
                        f"{half}",
                        f"{evaluate_result(store, result)['f1']:.3f}",
                        f"{time.perf_counter() - started:.0f} s",
                    ]
                )
            if args.reference:
                started = time.perf_counter()
                training_part.to_csv(work / "train.csv", index=False)
                with Store(work / "train.db") as training:
                    import_catalog(training, work / "train.csv", None)
                    catalog_training.train_best_model(training, MatchSettings(), work / "best-all")
                result = matching.run_pipeline(
                    store, "best", model_dir=work / "best-all", save=False
                )
                rows.append(
                    [
                        f"best trained on all labels of the other groups "
                        f"({len(training_part):,} postings)",
                        "—",
                        f"{evaluate_result(store, result)['f1']:.3f}",
                        f"{time.perf_counter() - started:.0f} s",
                    ]
                )
                # That model used on this catalog with the verdicts given so far applied over
                # its matches, as every page and export does.
                for name, pairs in verdicts.items():
                    ends = zip(pairs["left_id"], pairs["right_id"], strict=True)
                    keys = [pair_key(a, b) for a, b in ends]
                    reviews = pd.DataFrame(
                        {
                            "left_id": [k[0] for k in keys],
                            "right_id": [k[1] for k in keys],
                            "verdict": np.where(pairs["same"] == 1, "same", "different"),
                        }
                    )
                    applied = evaluate_result(store, with_verdicts(result, reviews))["f1"]
                    rows.append(
                        [
                            f"the same with {name} verdicts applied",
                            f"{int(pairs['same'].sum())}",
                            f"{applied:.3f}",
                            "",
                        ]
                    )
    print("\n".join(machine_lines()))
    print(
        f"held-out catalog ({args.split} split): {len(reviewed_part):,} postings of "
        f"{len(held):,} label groups (seed {args.seed}); review pool {len(pool):,} pairs\n"
    )
    print(markdown_table(["matcher", "same verdicts", "F1 (held out)", "note"], rows))


if __name__ == "__main__":
    main()
