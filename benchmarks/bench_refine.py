"""Can verdicts improve a `best` matcher trained on other, labelled groups? (issue: learn from
the person checking matches). Ways of refining it with a simulated reviewer's verdicts on a
catalog it never saw, against the model as it is.

    python benchmarks/bench_refine.py --split selection|confirmation

Splits as `bench_review.py`'s: ``selection`` is the held-out 30 % of the dev split's groups
(seed 0), the reference model trained on the other 70 %; ``confirmation`` holds out 30 % of
those other groups (seed 1) and trains on the rest. Verdicts: the review queue's first N pairs
or N drawn at random from its pool, labels as the oracle. Variants (F1 of each model's own
decisions on the whole held-out catalog):

- ``threshold``: the decision threshold moved (within ±0.2) to the one that classifies the
  verdict pairs best;
- ``boost R/lr/S``: R more boosting rounds of the final classifier at learning rate lr on the
  verdict pairs, plus S unlabelled candidates labelled by the model's own decisions (weight 0.2);
- ``applied``: the model as it is, with the verdicts applied over its matches (what the app
  does with any model).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from common import SHARED, machine_lines, markdown_table

VARIANTS = ((20, 0.05, 0), (20, 0.05, 2000), (50, 0.1, 2000))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=["selection", "confirmation"], default="selection")
    parser.add_argument("--budgets", default="50,100,200,400")
    args = parser.parse_args()

    import lightgbm as lgb
    import numpy as np
    import pandas as pd

    from core import matching
    from core.catalog import import_catalog
    from core.pipelines.best import catalog_training
    from core.pipelines.best.graph import graph_features
    from core.pipelines.best.model import BestMatcher
    from core.pipelines.best.thresholds import pair_f1, select_pairs
    from core.pipelines.best.training import _lgb_params
    from core.review_queue import QUEUE_LIMIT, review_queue
    from core.settings import MatchSettings
    from core.store import Store

    frame = pd.read_csv(SHARED / "data" / "shopee" / "train.csv", dtype=str)
    groups = frame["label_group"].unique()
    first = set(np.random.default_rng(0).permutation(groups)[: int(len(groups) * 0.3)])
    rest = frame[~frame["label_group"].isin(first)]
    if args.split == "selection":
        held, train = frame[frame["label_group"].isin(first)], rest
    else:
        others = rest["label_group"].unique()
        second = set(np.random.default_rng(1).permutation(others)[: int(len(others) * 0.3)])
        held = rest[rest["label_group"].isin(second)]
        train = rest[~rest["label_group"].isin(second)]
    labels = dict(zip(held["posting_id"], held["label_group"], strict=True))
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        train.to_csv(work / "train.csv", index=False)
        with Store(work / "train.db") as store:
            import_catalog(store, work / "train.csv", None)
            started = time.perf_counter()
            catalog_training.train_best_model(store, MatchSettings(), work / "base")
            trained_in = time.perf_counter() - started
        held.to_csv(work / "held.csv", index=False)
        store = Store(work / "held.db")
        import_catalog(store, work / "held.csv", None)
        for pipeline in ("baseline", "ensemble"):
            matching.run_pipeline(store, pipeline)
        postings = store.postings()
        inputs, _ = catalog_training.training_inputs(store, postings, MatchSettings())
        ids = postings["posting_id"].tolist()
        position = {p: i for i, p in enumerate(ids)}
        truth = np.array([labels[p] for p in ids])
        n = len(ids)
        base = BestMatcher.load(work / "base")
        config = base.config
        table, prob1, prob = base.probabilities(inputs)
        graph, _ = graph_features(table, prob1, n)
        x2 = np.hstack([table.features, graph])

        def f1_at(p: np.ndarray, t: float, extra=None) -> float:
            low = min(t, config.threshold_low)
            keep = select_pairs(n, table.left, table.right, p, t, low, config.min_one)
            if extra is not None:
                keep = keep.copy()
                keep[extra[0]] = False
                keep[extra[1]] = True
            return pair_f1(n, truth, table.left[keep], table.right[keep])

        rows.append(["the model as it is", "—", "—", f"{f1_at(prob, config.threshold):.4f}"])
        keys = np.minimum(table.left, table.right) * n + np.maximum(table.left, table.right)
        order = np.argsort(keys)
        pool = review_queue(store, limit=QUEUE_LIMIT * 100)
        shuffled = pool.sample(frac=1.0, random_state=0).reset_index(drop=True)
        for budget in (int(b) for b in args.budgets.split(",")):
            for how, chosen in (("queue", pool.head(budget)), ("random", shuffled.head(budget))):
                a = np.array([position[p] for p in chosen["left"]])
                b = np.array([position[p] for p in chosen["right"]])
                y = (truth[a] == truth[b]).astype(np.float32)
                wanted = np.minimum(a, b) * n + np.maximum(a, b)
                at = np.minimum(np.searchsorted(keys[order], wanted), len(order) - 1)
                found = keys[order][at] == wanted
                r, yv = order[at[found]], y[found]
                results = {}
                t0 = config.threshold
                grid = np.arange(max(0.05, t0 - 0.2), min(0.95, t0 + 0.2) + 1e-9, 0.025)
                accuracy = [np.mean((prob[r] >= t) == (yv > 0.5)) for t in grid]
                ties = [t for t, acc in zip(grid, accuracy, strict=True) if acc == max(accuracy)]
                moved = min(ties, key=lambda t: abs(t - config.threshold))
                results[f"threshold → {moved:.3f}"] = f1_at(prob, float(moved))
                for rounds, rate, sampled in VARIANTS:
                    xs, ys, ws = x2[r], yv, np.ones(len(r))
                    if sampled:
                        unlabelled = np.setdiff1d(np.arange(len(keys)), r)
                        pick = np.random.default_rng(0).choice(
                            unlabelled, min(sampled, len(unlabelled)), replace=False
                        )
                        xs = np.vstack([xs, x2[pick]])
                        ys = np.r_[ys, (prob[pick] >= config.threshold).astype(np.float32)]
                        ws = np.r_[ws, np.full(len(pick), 0.2)]
                    params = {
                        **_lgb_params(config),
                        "learning_rate": rate,
                        "num_leaves": 7,
                        "min_child_samples": 5,
                    }
                    data = lgb.Dataset(xs, label=ys, weight=ws, feature_name=base.names2)
                    booster = lgb.train(
                        params, data, num_boost_round=rounds, init_model=base.stage2
                    )
                    results[f"boost {rounds}/{rate}/{sampled}"] = f1_at(
                        booster.predict(x2).astype(np.float32), config.threshold
                    )
                results["applied"] = f1_at(prob, config.threshold, (r[yv == 0], r[yv == 1]))
                for name, f1 in results.items():
                    rows.append([name, f"{budget} {how}", f"{int(y.sum())}", f"{f1:.4f}"])
                print(rows[-len(results) :], flush=True)
        store.close()
    print("\n".join(machine_lines()))
    print(
        f"{args.split} split: {len(held):,} held-out postings; reference model trained on "
        f"{len(train):,} postings in {trained_in:.0f} s\n"
    )
    print(markdown_table(["variant", "verdicts", "same", "F1 (held out)"], rows))


if __name__ == "__main__":
    main()
