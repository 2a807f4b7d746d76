"""``best`` on an image-only catalog: the grocery photos, products it never saw.

The 61 grocery products split as in `bench_grocery`: the last ``--hold-back`` products (by
label) are held back from every choice. Each variant (with or without the learned image head,
and its epochs) is scored by GroupKFold over the training products only; the variant with the
best mean inner F1 is trained on every training product and scored once on the held-back
products, matched as a catalog of their own. Photos are embedded once per backbone named in
``--backbones`` (the backbone is one more choice of the nested selection): MobileNet alpha 0.25
(the weights in ``../shared/weights``), EfficientNet-Lite0 or -Lite2 (the registry packages'
ImageNet weights), each at its own input size; titles are empty, and the perceptual hashes are
the catalog's.

    python benchmarks/bench_grocery_best.py
    python benchmarks/bench_grocery_best.py --variants no-head,head-10 --seeds 0,1,2
    python benchmarks/bench_grocery_best.py --variants head-20 \
        --backbones mobilenet,efficientnet-lite0,efficientnet-lite2
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import load_line, machine_lines, split_held_back  # noqa: E402
from core.engine import match_catalog
from core.metrics import evaluate, true_match_sets  # noqa: E402
from core.pipelines import MatchInputs  # noqa: E402
from core.pipelines.best import BEST, BestConfig, BestMatcher  # noqa: E402
from core.settings import MatchSettings

SHARED = Path(__file__).resolve().parents[2] / "shared"
#: backbone → (alpha, input pixels) the photos are embedded with.
BACKBONE_INPUTS = {
    "mobilenet": (0.25, 224),
    "efficientnet-lite0": (1.0, 224),
    "efficientnet-lite2": (1.0, 260),
}
#: name → BestConfig overrides.
VARIANTS: dict[str, dict[str, object]] = {
    "no-head": {"image_head": False},
    "head-5": {"image_head": True, "image_head_epochs": 5},
    "head-10": {"image_head": True, "image_head_epochs": 10},
    "head-20": {"image_head": True, "image_head_epochs": 20},
    "head-40": {"image_head": True, "image_head_epochs": 40},
}


def grocery(shared: Path, backbone: str = "mobilenet") -> tuple[pd.DataFrame, np.ndarray]:
    """The catalog and its ImageNet vectors (one row each, catalog order)."""
    from core.embedders.mobilenet import PretrainedEmbedder

    folder = shared / "data" / "grocery"
    catalog = pd.read_csv(folder / "catalog.csv", dtype=str, keep_default_na=False)
    paths = [folder / "images" / name for name in catalog["image"]]
    alpha, size = BACKBONE_INPUTS[backbone]
    vectors = PretrainedEmbedder(backbone, alpha, size, shared / "weights").embed(paths)
    return catalog, vectors


def inputs_of(frame: pd.DataFrame, vectors: np.ndarray) -> MatchInputs:
    postings = frame.assign(title_norm="").reset_index(drop=True)
    by_id = dict(zip(frame["posting_id"], vectors[frame.index], strict=True))
    return MatchInputs.from_frame(postings, by_id, "bench-photos")


def scores(frame: pd.DataFrame, matched) -> dict[str, float]:
    labels = dict(zip(frame["posting_id"], frame["label_group"], strict=True))
    return evaluate(matched.match_sets(), true_match_sets(labels))


def train_and_score(
    train: pd.DataFrame, test: pd.DataFrame, vectors: np.ndarray, config: BestConfig
) -> dict[str, float]:
    started = time.perf_counter()
    matcher = BestMatcher.fit(
        inputs_of(train, vectors), train["label_group"].tolist(), config=config
    )
    seconds = time.perf_counter() - started
    return {
        **scores(
            test, match_catalog(BEST, inputs_of(test, vectors), MatchSettings(), model=matcher)
        ),
        "train_s": seconds,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=SHARED)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--hold-back", type=int, default=13, help="products kept from choices")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--backbones", default="mobilenet", help=", ".join(BACKBONE_INPUTS))
    parser.add_argument("--seeds", default="0", help="comma-separated model seeds")
    args = parser.parse_args(argv)
    from sklearn.model_selection import GroupKFold

    wanted = [v.strip() for v in args.variants.split(",") if v.strip()]
    backbones = [b.strip() for b in args.backbones.split(",") if b.strip()]
    unknown = [v for v in wanted if v not in VARIANTS] + [
        b for b in backbones if b not in BACKBONE_INPUTS
    ]
    if unknown:
        known = ", ".join([*VARIANTS, *BACKBONE_INPUTS])
        raise SystemExit(f"unknown variant(s) or backbone(s) {unknown}; known: {known}")
    seeds = [int(s) for s in args.seeds.split(",")]
    started = time.perf_counter()
    for line in machine_lines():
        print(line)
    vectors = {}
    for backbone in backbones:
        catalog, vectors[backbone] = grocery(args.shared, backbone)
    dev, test = split_held_back(catalog, args.hold_back)
    print(
        f"- grocery: {dev['label_group'].nunique()} training products ({len(dev)} photos), "
        f"{test['label_group'].nunique()} held back ({len(test)} photos); "
        f"inner GroupKFold({args.folds}); "
        f"seeds {seeds}; backbones {backbones}"
    )
    candidates = [(b, v) for b in backbones for v in wanted]
    rows = []
    for seed in seeds:
        folds = list(GroupKFold(n_splits=args.folds).split(dev, groups=dev["label_group"]))
        inner: dict[tuple[str, str], list[float]] = {}
        for backbone, name in candidates:
            config = BestConfig(**{**VARIANTS[name], "seed": seed})
            for train_pos, test_pos in folds:
                got = train_and_score(
                    dev.iloc[train_pos], dev.iloc[test_pos], vectors[backbone], config
                )
                inner.setdefault((backbone, name), []).append(got["f1"])
            scored = np.round(inner[(backbone, name)], 4).tolist()
            print(f"seed {seed} {backbone} {name:8s} inner F1 {scored}", flush=True)
        winner = max(candidates, key=lambda c: np.mean(inner[c]))
        for backbone, name in candidates:
            config = BestConfig(**{**VARIANTS[name], "seed": seed})
            final = train_and_score(dev, test, vectors[backbone], config)
            rows.append(
                {
                    "seed": seed,
                    "backbone": backbone,
                    "variant": name,
                    "chosen": "yes" if (backbone, name) == winner else "",
                    "inner F1 (mean ± sd)": f"{np.mean(inner[(backbone, name)]):.4f} "
                    f"± {np.std(inner[(backbone, name)]):.4f}",
                    "held-back F1": round(final["f1"], 4),
                    "precision": round(final["precision"], 4),
                    "recall": round(final["recall"], 4),
                    "train s": round(final["train_s"], 1),
                }
            )
    print()
    print(pd.DataFrame(rows).to_markdown(index=False))
    print("(held-back F1 is printed for every variant; only the chosen one is the claim)")
    print(load_line())
    print(f"- benchmark wall time: {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
