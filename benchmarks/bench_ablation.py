"""What each part of ``best`` adds: the defaults against variants with one part taken out.

On the selection part of the Shopee dev split only (the groups `bench_best.held_back_groups`
does not hold back), optionally a seeded sample of its label groups: GroupKFold over groups,
each variant trained on the training folds and scored on the held-out fold matched as a
catalog of its own (titles + image_phash). Prints mean ± standard deviation over folds of the
per-posting F1, and each variant's difference from the defaults fold by fold.

    python benchmarks/bench_ablation.py --max-groups 2000 --folds 3
    python benchmarks/bench_ablation.py --variants default,no-graph,no-min-one
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_best import (  # noqa: E402
    DEFAULT_CSV,
    group_kfold,
    held_back_groups,
    load_catalog,
    score,
)
from benchmarks.common import load_line, machine_lines  # noqa: E402
from core.engine import match_catalog
from core.pipelines import MatchInputs  # noqa: E402
from core.pipelines.best import BEST, BestConfig, BestMatcher  # noqa: E402
from core.settings import MatchSettings

#: name → (what is taken out or added, BestConfig overrides).
VARIANTS: dict[str, tuple[str, dict[str, object]]] = {
    "default": ("the defaults", {}),
    "no-graph": ("no graph stage (stage 1 decides)", {"graph_stage": False}),
    "no-inb": (
        "no neighbourhood blending (query-expanded TF-IDF cosines)",
        {"drop_features": ["g_word_blend", "g_char_blend"]},
    ),
    "no-degree": (
        "no group-size prior (each side's confident degree, shared share)",
        {"drop_features": ["g_degree_", "g_shared_rel"]},
    ),
    "no-min-one": ("no min-2 (a posting with no match gets none)", {"min_one": False}),
    "no-units": (
        "no number/unit consistency",
        {"drop_features": ["quantity_", "numbers_"]},
    ),
    "no-codes": ("no model-number tokens", {"drop_features": ["codes_"]}),
    "no-rarity": (
        "no catalog token rarity",
        {"drop_features": ["rarity_", "first_token_rarity"]},
    ),
    "title-encoder": ("plus the learned title encoder (Keras)", {"title_model": True}),
    # Neighbouring values of the defaults that were set, not chosen (nested selection:
    # ``--variants default,k-10,k-40,...``).
    "k-10": (
        "10 neighbours per title modality and photo (default 20)",
        {"k_word": 10, "k_char": 10, "k_image": 10},
    ),
    "k-40": (
        "40 neighbours per title modality and photo",
        {"k_word": 40, "k_char": 40, "k_image": 40},
    ),
    "trees-100": ("100 boosting rounds (default 200)", {"n_estimators": 100}),
    "trees-400": ("400 boosting rounds", {"n_estimators": 400}),
    "leaves-31": ("31 leaves per tree (default 63)", {"num_leaves": 31}),
    "leaves-127": ("127 leaves per tree", {"num_leaves": 127}),
}
#: What runs unless ``--variants`` says otherwise: the parts taken out.
PARTS = (
    "default",
    "no-graph",
    "no-inb",
    "no-degree",
    "no-min-one",
    "no-units",
    "no-codes",
    "no-rarity",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--max-groups", type=int, default=2000, help="0: every selection group")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--variants",
        default=",".join(PARTS),
        help=f"comma-separated, from: {', '.join(VARIANTS)}",
    )
    args = parser.parse_args(argv)
    wanted = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in wanted if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variant(s) {unknown}; known: {', '.join(VARIANTS)}")
    if "default" not in wanted:
        wanted.insert(0, "default")

    started = time.perf_counter()
    frame = load_catalog(args.csv, None, args.seed)
    frame = frame[~held_back_groups(frame["label_group"])].reset_index(drop=True)
    if args.max_groups:
        groups = frame["label_group"].drop_duplicates()
        keep = set(groups.sample(n=min(args.max_groups, len(groups)), random_state=args.seed))
        frame = frame[frame["label_group"].isin(keep)].reset_index(drop=True)
    print("\n".join(machine_lines()))
    print(
        f"- selection part: {len(frame):,} postings, {frame['label_group'].nunique():,} groups, "
        f"GroupKFold({args.folds}), seed {args.seed}",
        flush=True,
    )
    rows = []
    for fold, (train_idx, test_idx) in enumerate(group_kfold(frame, args.folds)):
        train, held = frame.iloc[train_idx], frame.iloc[test_idx]
        held_inputs = MatchInputs.from_frame(held)
        for name in wanted:
            t0 = time.perf_counter()
            matcher = BestMatcher.fit(
                MatchInputs.from_frame(train),
                train["label_group"].tolist(),
                config=BestConfig(**VARIANTS[name][1]),
            )
            fit_s = time.perf_counter() - t0
            metrics = score(match_catalog(BEST, held_inputs, MatchSettings(), model=matcher), held)
            rows.append({"fold": fold, "variant": name, **metrics, "train_s": fit_s})
            print(
                f"fold {fold} {name:14s} F1 {metrics['f1']:.4f} P {metrics['precision']:.4f} "
                f"R {metrics['recall']:.4f} train {fit_s:.0f}s",
                flush=True,
            )
    table = pd.DataFrame(rows)
    base = table[table["variant"] == "default"].set_index("fold")["f1"]
    table["delta"] = table["f1"] - table["fold"].map(base)
    print()
    print("| variant | what | F1 mean ± sd | Δ F1 vs defaults (mean ± sd) | precision | recall |")
    print("|---|---|---|---|---|---|")
    for name in wanted:
        part = table[table["variant"] == name]
        delta = "–" if name == "default" else _spread(part["delta"], signed=True)
        print(
            f"| {name} | {VARIANTS[name][0]} | {_spread(part['f1'])} | {delta} "
            f"| {part['precision'].mean():.4f} | {part['recall'].mean():.4f} |"
        )
    print(f"\n{load_line()}")
    print(f"- benchmark wall time: {time.perf_counter() - started:.0f} s")
    return 0


def _spread(values: pd.Series, signed: bool = False) -> str:
    sd = float(np.std(values.to_numpy(), ddof=1)) if len(values) > 1 else 0.0
    mean = float(values.mean())
    return f"{mean:+.4f} ± {sd:.4f}" if signed else f"{mean:.4f} ± {sd:.4f}"


if __name__ == "__main__":
    raise SystemExit(main())
