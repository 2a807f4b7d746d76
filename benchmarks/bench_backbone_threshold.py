"""Each image backbone's own photo-cosine threshold for the baseline rule, chosen on training
products only and scored on products held back from the choice (grocery photos, image only).

The last ``--hold-back`` products (by label) are held back. The threshold with the best mean F1
over GroupKFold(5) catalogs of the training products (catalogs of about the held-back
catalog's size) is chosen; the held-back products, matched as a catalog of their own, are then
scored at the chosen threshold, at the seed's 0.85, and at the best threshold for them (an
oracle no choice can beat). The baseline rule runs through the real pipeline.

    python benchmarks/bench_backbone_threshold.py
    python benchmarks/bench_backbone_threshold.py --backbones efficientnet-lite2
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_grocery_best import BACKBONE_INPUTS, grocery  # noqa: E402
from benchmarks.common import load_line, machine_lines, split_held_back  # noqa: E402
from core.engine import match_catalog
from core.metrics import evaluate, true_match_sets  # noqa: E402
from core.pipelines import MatchInputs, get_pipeline  # noqa: E402
from core.settings import MatchSettings  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared"
GRID = np.round(np.arange(0.40, 0.97, 0.02), 2)


def baseline_f1(frame: pd.DataFrame, vectors: np.ndarray, cosine: float) -> float:
    postings = frame.assign(title_norm="").reset_index(drop=True)
    by_id = dict(zip(frame["posting_id"], vectors[frame.index], strict=True))
    inputs = MatchInputs.from_frame(postings, by_id, "bench-photos")
    settings = MatchSettings(baseline_image_cosine=float(cosine))
    matched = match_catalog(get_pipeline("baseline"), inputs, settings)
    labels = dict(zip(frame["posting_id"], frame["label_group"], strict=True))
    return evaluate(matched.match_sets(), true_match_sets(labels))["f1"]


def choose(dev: pd.DataFrame, vectors: np.ndarray, folds: int) -> tuple[float, float]:
    """(threshold, its mean F1) over GroupKFold catalogs of the training products."""
    from sklearn.model_selection import GroupKFold

    parts = [dev.iloc[rows] for _, rows in GroupKFold(folds).split(dev, groups=dev["label_group"])]
    means = {t: np.mean([baseline_f1(part, vectors, t) for part in parts]) for t in GRID}
    best = max(means, key=lambda t: means[t])
    return float(best), float(means[best])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=SHARED)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--hold-back", type=int, default=13)
    parser.add_argument("--backbones", default=",".join(BACKBONE_INPUTS))
    args = parser.parse_args(argv)
    started = time.perf_counter()
    for line in machine_lines():
        print(line)
    rows = []
    for backbone in args.backbones.split(","):
        t0 = time.perf_counter()
        catalog, vectors = grocery(args.shared, backbone)
        seconds = time.perf_counter() - t0
        dev, test = split_held_back(catalog, args.hold_back)
        chosen, inner = choose(dev, vectors, args.folds)
        oracle = max(GRID, key=lambda t: baseline_f1(test, vectors, t))
        rows.append(
            {
                "backbone": backbone,
                "px": BACKBONE_INPUTS[backbone][1],
                "chosen cosine": chosen,
                "inner F1": round(inner, 4),
                "held-back F1 at chosen": round(baseline_f1(test, vectors, chosen), 4),
                "held-back F1 at 0.85": round(baseline_f1(test, vectors, 0.85), 4),
                "oracle cosine": float(oracle),
                "oracle F1": round(baseline_f1(test, vectors, oracle), 4),
                "embed s (549 photos)": round(seconds, 1),
            }
        )
        print(f"{backbone}: chose {chosen} (inner F1 {inner:.4f})", flush=True)
    print()
    print(pd.DataFrame(rows).to_markdown(index=False))
    print(load_line())
    print(f"- benchmark wall time: {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
