"""Images per second of each image backbone SameSame offers, through the real embedding pipeline.

For each backbone: the bare model on pre-decoded, pre-scaled pixels, and the pipeline
(``ImageEmbedder.embed``: parallel decode + resize + scaling one batch ahead of the model) on
the same JPEG files. Backbones whose ImageNet weights are not on this machine are built with
random weights: the arithmetic, and so the speed, is the same; their vectors are not used.

    python benchmarks/bench_backbones.py                    # 192 demo images, batch 32
    python benchmarks/bench_backbones.py --images 602 --repeats 3
    python benchmarks/bench_backbones.py --backends tensorflow,openvino --photos 2000

``--backends``: each backbone's forward pass run by each inference engine
(`core.embedders.inference`), the OpenVINO model converted once beforehand (not timed).
``--photos N``: also the whole ``embed`` of N real photos (the grocery catalog's, repeated)
with MobileNet 0.25 through the database, per engine, end to end.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

try:
    from benchmarks.common import SHARED, load_line, machine_lines, markdown_table
except ImportError:  # run as a file: benchmarks/ itself is first on sys.path
    from common import SHARED, load_line, machine_lines, markdown_table

from core.demo import build_demo_catalog
from core.embedders.backbones import find_local_weights, load_backbone, preprocess
from core.embedders.base import ImageEmbedder
from core.embedders.efficientnet_lite import is_lite
from core.errors import WeightsUnavailableError
from core.images import load_for_model

#: (backbone, MobileNet width, input pixels): the baseline default, the width available offline,
#: the lighter Siamese option, VGG16 at the original Siamese's 200 px and at 224 px, and the
#: EfficientNet-Lite models at their own sizes.
BACKBONES = (
    ("mobilenet", 0.25, 224),
    ("mobilenet", 1.0, 224),
    ("mobilenetv2", 1.0, 224),
    ("vgg16", 1.0, 200),
    ("vgg16", 1.0, 224),
    ("efficientnet-lite0", 1.0, 224),
    ("efficientnet-lite2", 1.0, 260),
)


class _Backbone(ImageEmbedder):
    def __init__(self, backbone: str, model, image_size: int, batch_size: int) -> None:
        self.backbone, self.model = backbone, model
        self.image_size, self.batch_size = image_size, batch_size
        self.name, self.version = f"bench-{model.name}-{image_size}", "bench"

    def _prepare(self, pixels: np.ndarray) -> np.ndarray:
        return preprocess(self.backbone, pixels)


def build(backbone: str, alpha: float, size: int, weights_dir: Path):
    """(model, weights description): real ImageNet weights when on this machine."""
    import keras

    if is_lite(backbone):
        return load_backbone(backbone, alpha, size, weights_dir), "ImageNet (registry package)"
    if find_local_weights(backbone, alpha, size, weights_dir) is not None:
        return load_backbone(backbone, alpha, size, weights_dir), "ImageNet (local file)"
    try:
        return load_backbone(backbone, alpha, size, weights_dir), "ImageNet (downloaded)"
    except WeightsUnavailableError:
        constructor = {
            "mobilenet": keras.applications.MobileNet,
            "mobilenetv2": keras.applications.MobileNetV2,
            "vgg16": keras.applications.VGG16,
        }[backbone]
        kwargs = {"alpha": alpha} if backbone != "vgg16" else {}
        model = constructor(
            weights=None, include_top=False, pooling="avg", input_shape=(size, size, 3), **kwargs
        )
        return model, "random (not offline; same speed)"


def _whole_embed(shared: Path, folder: Path, count: int, backends: str) -> list[list[str]]:
    """``models.embed_images`` of ``count`` real photos per engine, import excluded."""
    import pandas as pd

    from core import models
    from core.catalog import import_catalog
    from core.settings import MatchSettings
    from core.store import Store

    grocery = shared / "data" / "grocery"
    photos = pd.read_csv(grocery / "catalog.csv", dtype=str)
    rows = pd.concat([photos] * (count // len(photos) + 1)).head(count).reset_index(drop=True)
    rows["posting_id"] = [f"p{i}" for i in range(len(rows))]
    rows.to_csv(folder / "photos.csv", index=False)
    table = []
    for backend in backends.split(","):
        settings = MatchSettings(
            image_alpha=0.25, weights_dir=str(shared / "weights"), inference_backend=backend
        )
        with Store(folder / f"photos-{backend}.db") as store:
            import_catalog(store, folder / "photos.csv", grocery / "images")
            models.load_image_embedder(settings)  # the conversion, once, is not timed
            started = time.perf_counter()
            done = models.embed_images(store, settings)
            seconds = time.perf_counter() - started
        table.append([backend, f"{done:,}", f"{seconds:.1f}", f"{done / seconds:.1f}"])
        print(f"  whole embed {backend}: {done} photos in {seconds:.1f} s", flush=True)
    return table


def images_per_second(run, n: int, repeats: int) -> tuple[float, float, float]:
    run()  # warm-up: traces every batch shape
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        rates.append(n / (time.perf_counter() - started))
    return statistics.median(rates), min(rates), max(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=SHARED, help="the shared data folder")
    parser.add_argument("--images", type=int, default=192, help="demo images embedded per pass")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2, help="timed passes per path (median)")
    parser.add_argument(
        "--backends", default="tensorflow", help="inference engines, comma-separated"
    )
    parser.add_argument("--photos", type=int, default=0, help="end-to-end embed of N real photos")
    parser.add_argument(
        "--backbones",
        default=",".join(sorted({b for b, _, _ in BACKBONES})),
        help="which backbones, comma-separated",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    weights_dir = args.shared / "weights"

    print("## Image embedding throughput per backbone\n")
    print("\n".join(machine_lines()))
    started_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-backbones-") as tmp:
        csv_path = build_demo_catalog(Path(tmp) / "demo", n_products=150, seed=0)
        paths = sorted((csv_path.parent / "images").glob("*.jpg"))[: args.images]
        n = len(paths)
        import tensorflow as tf

        devices = [d.device_type for d in tf.config.list_physical_devices()]
        print(
            f"- {n} demo-catalog JPEGs (256x256) per pass, batch {args.batch_size}, "
            f"{args.repeats} timed passes after a warm-up (median, range); TensorFlow "
            f"{tf.__version__} on {', '.join(sorted(set(devices)))}\n"
        )
        rows = []
        wanted = set(args.backbones.split(","))
        for backbone, alpha, size in (b for b in BACKBONES if b[0] in wanted):
            model, weights = build(backbone, alpha, size, weights_dir)
            inputs = preprocess(backbone, np.stack([load_for_model(p, size) for p in paths]))
            label = f"{backbone} a{alpha:g}" if backbone.startswith("mobilenet") else backbone
            for backend in args.backends.split(","):
                embedder = _Backbone(backbone, model, size, args.batch_size).serve_with(backend)

                def bare(embedder=embedder, inputs=inputs) -> None:
                    for i in range(0, len(inputs), args.batch_size):
                        embedder._embed_batch(inputs[i : i + args.batch_size])

                bare_rate, bare_lo, bare_hi = images_per_second(bare, n, args.repeats)
                pipe_rate, pipe_lo, pipe_hi = images_per_second(
                    lambda embedder=embedder: embedder.embed(paths), n, args.repeats
                )
                rows.append(
                    [
                        label,
                        f"{size}",
                        f"{model.count_params() / 1e6:.1f}M",
                        weights,
                        embedder.backend,
                        f"{bare_rate:.1f} ({bare_lo:.1f}–{bare_hi:.1f})",
                        f"{pipe_rate:.1f} ({pipe_lo:.1f}–{pipe_hi:.1f})",
                        f"{pipe_rate / bare_rate:.0%}",
                    ]
                )
                print(
                    f"  {label} {size}px {embedder.backend}: bare {bare_rate:.1f} img/s, "
                    f"pipeline {pipe_rate:.1f}",
                    flush=True,
                )
                del embedder
            del model
            tf.keras.backend.clear_session()
        if args.photos:
            end_to_end = _whole_embed(args.shared, Path(tmp), args.photos, args.backends)
    print()
    print(
        markdown_table(
            [
                "backbone",
                "px",
                "parameters",
                "weights",
                "engine",
                "bare model img/s",
                "pipeline img/s",
                "pipeline / bare",
            ],
            rows,
        )
    )
    if args.photos:
        print()
        print(
            markdown_table(
                ["whole embed, MobileNet 0.25", "photos", "seconds", "img/s"], end_to_end
            )
        )
    print()
    print(load_line())
    print(f"- benchmark wall time: {time.perf_counter() - started_all:.0f} s")


if __name__ == "__main__":
    main()
