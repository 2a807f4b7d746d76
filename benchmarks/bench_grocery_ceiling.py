"""How far any single distance threshold can take the Siamese network on unseen grocery products.

Trains the ensemble's default network (triplet, MobileNet 0.25, 200 px) on the 48 training
products, embeds the 13 held-back products, and reports the best F1 of any threshold *chosen
on those held-back photos themselves* (an oracle: an upper bound, never a setting), next to
F1 at the written-up 0.95, for the plain vectors and for variants that need no retraining:
horizontal-flip test-time augmentation, and the standardised or raw backbone features mixed
into the head's vector at a share. A variant whose oracle F1 stays short of a goal cannot reach
it by any threshold, calibrated or not.

    .venv/bin/python -m benchmarks.bench_grocery_ceiling [--seeds 0,1,2] [--members 1]
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.bench_grocery import SHARED
from benchmarks.common import machine_lines, split_held_back
from core.embedders.backbones import preprocess
from core.embedders.base import l2_normalise
from core.embedders.calibration import calibrate_distance
from core.embedders.siamese import SiameseConfig
from core.embedders.siamese_training import train_siamese
from core.images import load_for_model

SHARES = (0.25, 0.5, 1.0)


def _parts(model):
    """(backbone, heads) of a trained Siamese Keras model."""
    base = model.layers[1]
    top = model.layers[2]
    heads = [layer for layer in top.layers if layer.name.startswith("head")] or [top]
    return base, heads


def _variants(model, pixels: np.ndarray, backbone: str) -> dict[str, np.ndarray]:
    base, heads = _parts(model)

    def features(batch: np.ndarray) -> np.ndarray:
        return np.asarray(base.predict(preprocess(backbone, batch), verbose=0))

    def embed(feats: np.ndarray) -> np.ndarray:
        return l2_normalise(np.hstack([np.asarray(h.predict(feats, verbose=0)) for h in heads]))

    plain_features = features(pixels)
    plain = embed(plain_features)
    flipped = embed(features(pixels[:, :, ::-1]))
    standardised = l2_normalise(np.asarray(heads[0].get_layer("feature_norm")(plain_features)))
    raw = l2_normalise(plain_features)
    found = {"plain": plain, "flip mean": l2_normalise(plain + flipped)}
    for share in SHARES:
        found[f"+ standardised x{share}"] = l2_normalise(
            np.hstack([plain, np.sqrt(share) * standardised])
        )
        found[f"+ raw x{share}"] = l2_normalise(np.hstack([plain, np.sqrt(share) * raw]))
    found["standardised only"] = standardised
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=SHARED)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--members", type=int, default=1)
    parser.add_argument("--hold-back", type=int, default=13)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    grocery, weights = args.shared / "data" / "grocery", args.shared / "weights"
    catalog = pd.read_csv(grocery / "catalog.csv", dtype=str, keep_default_na=False)
    paths = [grocery / "images" / name for name in catalog["image"]]
    dev, test = split_held_back(catalog, args.hold_back)
    labels = test["label_group"].tolist()

    rows = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        config = SiameseConfig(
            backbone="mobilenet", alpha=0.25, image_size=200, members=args.members, seed=seed
        )
        trained = train_siamese(
            [paths[i] for i in dev.index], dev["label_group"].tolist(), config, weights_dir=weights
        )
        pixels = np.stack([load_for_model(paths[i], config.image_size) for i in test.index])
        variants = _variants(trained.model, pixels.astype(np.float32), config.backbone)
        for name, vectors in variants.items():
            found = calibrate_distance(vectors, labels)
            rows.append(
                {
                    "seed": seed,
                    "vectors": name,
                    "oracle_f1": found.f1,
                    "oracle_distance": found.distance,
                    "f1_at_0.95": found.f1_at_default,
                }
            )
    print(
        f"## Grocery: best single threshold on {test['label_group'].nunique()} held-back products "
        f"({len(test)} photos), network trained on {dev['label_group'].nunique()} "
        f"(members {args.members})\n"
    )
    print("\n".join(machine_lines()) + "\n")
    measured = pd.DataFrame(rows)
    table = measured.groupby("vectors", sort=False).agg(
        oracle_f1=("oracle_f1", "mean"),
        oracle_f1_sd=("oracle_f1", "std"),
        oracle_distance=("oracle_distance", "mean"),
        f1_at_095=("f1_at_0.95", "mean"),
    )
    print(table.round(4).to_markdown())


if __name__ == "__main__":
    main()
