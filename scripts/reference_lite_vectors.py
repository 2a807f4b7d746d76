"""Reference EfficientNet-Lite vectors from the PyTorch implementation, for the port's test.

Writes tests/fixtures/lite_reference.npz: for a few real grocery photos, the pooled 1280-d
features of ``efficientnet-lite-pytorch`` with the packaged ImageNet weights, per backbone. The
test (tests/test_efficientnet_lite.py) compares the Keras port and its OpenVINO model with them,
so torch stays out of CI. Pixels come from the app's own decoding (`core.images.load_for_model`)
so that the network is all that differs.

Needs torch beside the project's environment, e.g.:

    python3 -m venv /tmp/torchenv
    /tmp/torchenv/bin/pip install torch==2.13.0 efficientnet-lite-pytorch==0.1.0
    PYTHONPATH=/tmp/torchenv/lib/python3.11/site-packages \
        .venv/bin/python scripts/reference_lite_vectors.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.embedders.efficientnet_lite import LITE_VARIANTS, find_weights_file  # noqa: E402
from core.images import load_for_model  # noqa: E402

GROCERY = Path(__file__).resolve().parents[2] / "shared" / "data" / "grocery"
OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "lite_reference.npz"
BACKBONES = ("efficientnet-lite0", "efficientnet-lite2")
PHOTOS = 6


def reference_vectors(backbone: str, pixels: np.ndarray) -> np.ndarray:
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_pretrained(
        backbone, weights_path=str(find_weights_file(backbone))
    ).eval()
    batch = torch.from_numpy((pixels.astype(np.float32) - 127.0) / 128.0).permute(0, 3, 1, 2)
    with torch.no_grad():
        features = model.extract_features(batch).mean(dim=(2, 3))
    return features.numpy()


def main() -> None:
    import pandas as pd

    catalog = pd.read_csv(GROCERY / "catalog.csv")
    # One photo of each of the first products: different products, real shop photos.
    photos = catalog.drop_duplicates("label_group").head(PHOTOS)["image"].tolist()
    arrays: dict[str, np.ndarray] = {"images": np.array(photos)}
    for backbone in BACKBONES:
        size = LITE_VARIANTS[backbone].native_size
        pixels = np.stack([load_for_model(GROCERY / "images" / name, size) for name in photos])
        arrays[backbone] = reference_vectors(backbone, pixels)
        print(f"{backbone} at {size} px: {arrays[backbone].shape}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
