"""GroupKFold benchmark of the learned ``best`` pipeline against baseline and ensemble.

Every method is scored on the same held-out folds: each held-out fold is matched as a catalog
of its own (the untrained pipelines too, so the comparison is fair), ``best`` is trained on the
other folds only. Prints per-fold and mean F1 / precision / recall and times as Markdown.

    python benchmarks/bench_best.py                  # GroupKFold(5) on the whole train.csv
    python benchmarks/bench_best.py --quick          # 2 folds on ~6,000 postings
    python benchmarks/bench_best.py --set graph_stage=false --set min_one=false   # ablation
    python benchmarks/bench_best.py --part selection   # only the groups choices may look at
    python benchmarks/bench_best.py --part held-back   # train on those, score the rest, once

``--part`` splits the label groups for good (`held_back_groups`, a fifth chosen by a hash of
the group's name): ``selection`` runs the GroupKFold on the other four fifths only, where
every default is chosen; ``held-back`` trains once on all of them and scores the fifth nobody
chose anything on.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import fields
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.engine import match_catalog
from core.metrics import evaluate, true_match_sets  # noqa: E402
from core.pipelines import MatchInputs, get_pipeline
from core.pipelines.best import BEST, BestConfig, BestMatcher  # noqa: E402
from core.settings import MatchSettings  # noqa: E402
from core.text import normalize_title  # noqa: E402

DEFAULT_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "shopee" / "train.csv"


def load_catalog(path: Path, max_groups: int | None, seed: int) -> pd.DataFrame:
    frame = pd.read_csv(path, dtype={"label_group": str, "image_phash": str})
    if max_groups:
        groups = frame["label_group"].drop_duplicates()
        keep = set(groups.sample(n=min(max_groups, len(groups)), random_state=seed))
        frame = frame[frame["label_group"].isin(keep)]
    frame = frame.reset_index(drop=True)
    frame["title_norm"] = [normalize_title(t) for t in frame["title"]]
    return frame


#: Share of label groups held back from every choice (by a hash of the group's name).
HELD_BACK_SHARE = 0.2


def held_back_groups(labels: pd.Series, share: float = HELD_BACK_SHARE) -> np.ndarray:
    """True for postings whose label group is held back: the same groups on every machine,
    whatever the catalog's order, and one group never split between the parts."""
    import hashlib

    def bucket(label: str) -> float:
        return int(hashlib.sha1(label.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF

    by_group = {g: bucket(g) < share for g in labels.unique()}
    return labels.map(by_group).to_numpy(bool)


def group_kfold(frame: pd.DataFrame, folds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import GroupKFold

    splitter = GroupKFold(n_splits=folds)
    return list(splitter.split(frame, groups=frame["label_group"]))


def parse_overrides(pairs: list[str]) -> dict[str, object]:
    defaults = BestConfig()
    kinds = {f.name: type(getattr(defaults, f.name)) for f in fields(BestConfig)}
    out: dict[str, object] = {}
    for item in pairs:
        key, _, raw = item.partition("=")
        if key not in kinds:
            raise SystemExit(f"unknown BestConfig field {key!r}; known: {', '.join(kinds)}")
        kind = kinds[key]
        if kind is bool:
            out[key] = raw.lower() in ("1", "true", "yes")
        elif kind is list:
            values = [v for v in raw.split(",") if v]
            out[key] = [int(v) for v in values] if all(v.isdigit() for v in values) else values
        else:
            out[key] = kind(raw)
    return out


def score(result, held: pd.DataFrame) -> dict[str, float]:
    truth = true_match_sets(dict(zip(held["posting_id"], held["label_group"], strict=True)))
    return evaluate(result.match_sets(), truth)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--max-folds", type=int, default=None, help="run only the first N folds")
    parser.add_argument("--max-groups", type=int, default=None, help="subsample label groups")
    parser.add_argument("--quick", action="store_true", help="2 folds on ~2,000 label groups")
    parser.add_argument(
        "--pipelines", default="baseline,ensemble,best", help="comma-separated subset to run"
    )
    parser.add_argument("--set", action="append", default=[], help="BestConfig field=value")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--part",
        choices=("all", "selection", "held-back"),
        default="all",
        help="selection: GroupKFold on the groups not held back; held-back: train on those, "
        "score the held-back groups",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write results as JSON")
    args = parser.parse_args(argv)
    if args.quick:
        args.folds, args.max_groups = 2, args.max_groups or 2000
    overrides = parse_overrides(args.set)
    config = BestConfig(**overrides)
    wanted = [p.strip() for p in args.pipelines.split(",") if p.strip()]

    frame = load_catalog(args.csv, args.max_groups, args.seed)
    held_back = held_back_groups(frame["label_group"])
    if args.part == "held-back":
        splits = [(np.flatnonzero(~held_back), np.flatnonzero(held_back))]
    else:
        if args.part == "selection":
            frame = frame[~held_back].reset_index(drop=True)
        splits = group_kfold(frame, args.folds)
    print(
        f"{len(frame):,} postings, {frame['label_group'].nunique():,} groups, part {args.part}, "
        f"{len(splits)} split(s); best config overrides: {overrides or 'none'}",
        flush=True,
    )
    rows = []
    for fold, (train_idx, test_idx) in enumerate(splits):
        if args.max_folds is not None and fold >= args.max_folds:
            break
        train, held = frame.iloc[train_idx], frame.iloc[test_idx]
        held_inputs = MatchInputs.from_frame(held)
        for name in wanted:
            fit_s = 0.0
            if name == "best":
                t0 = time.perf_counter()
                matcher = BestMatcher.fit(
                    MatchInputs.from_frame(train), train["label_group"].tolist(), config=config
                )
                fit_s = time.perf_counter() - t0
                t0 = time.perf_counter()
                result = match_catalog(BEST, held_inputs, MatchSettings(), model=matcher)
            else:
                t0 = time.perf_counter()
                result = match_catalog(get_pipeline(name), held_inputs, MatchSettings())
            match_s = time.perf_counter() - t0
            metrics = score(result, held)
            row = {
                "fold": fold,
                "pipeline": name,
                **{k: metrics[k] for k in ("f1", "precision", "recall")},
                "train_s": fit_s,
                "match_s": match_s,
                "postings": len(held),
            }
            if name == "best":
                row["info"] = matcher.info
            rows.append(row)
            print(
                f"fold {fold} {name:9s} F1 {row['f1']:.4f} P {row['precision']:.4f} "
                f"R {row['recall']:.4f} train {fit_s:.0f}s match {match_s:.1f}s"
                + (
                    f" (oof F1 stage1 {matcher.info['oof_f1_stage1']}, final "
                    f"{matcher.info['oof_f1']}, t={matcher.config.threshold}/"
                    f"{matcher.config.threshold_low})"
                    if name == "best"
                    else ""
                ),
                flush=True,
            )

    table = pd.DataFrame([{k: v for k, v in r.items() if k != "info"} for r in rows])
    print()
    print("| fold | pipeline | F1 | precision | recall | train s | match s |")
    print("|---|---|---|---|---|---|---|")
    for r in table.itertuples(index=False):
        print(
            f"| {r.fold} | {r.pipeline} | {r.f1:.4f} | {r.precision:.4f} | {r.recall:.4f} "
            f"| {r.train_s:.0f} | {r.match_s:.1f} |"
        )
    means = table.groupby("pipeline", sort=False)[
        ["f1", "precision", "recall", "train_s", "match_s"]
    ].mean()
    for name, r in means.iterrows():
        print(
            f"| **mean** | **{name}** | **{r.f1:.4f}** | {r.precision:.4f} | {r.recall:.4f} "
            f"| {r.train_s:.0f} | {r.match_s:.1f} |"
        )
    if args.json:
        args.json.write_text(
            json.dumps({"overrides": overrides, "rows": rows}, indent=2, default=str)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
