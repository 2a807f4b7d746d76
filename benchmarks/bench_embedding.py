"""Image embedding throughput: the real pipeline (files → decode → model) against the bare model.

Generates the built-in demo catalog into a temporary folder, loads MobileNet (alpha 0.25, 224 px,
real ImageNet weights) and, per batch size, measures images/s of

- pipeline: ``PretrainedEmbedder.embed(paths)``: decoding from files, preprocessing, the model,
  L2-normalising;
- bare model: ``model.predict_on_batch`` over the same images already decoded and preprocessed;
- decode only: ``decoded_batches`` without the model (for context).

Each batch size is warmed up first (one untimed pass of each, so tracing, including the shorter
last batch, is excluded). Timed passes alternate bare/pipeline; images/s are medians, and the
ratio is the median of each pipeline pass over the bare pass just before it, so that load from
other processes hits both sides of a ratio alike.

    .venv/bin/python benchmarks/bench_embedding.py [--batch-sizes 16,32,64] [--repeats 4]
    .venv/bin/python benchmarks/bench_embedding.py --alpha 1.0 --batch-sizes 32   # the default
        baseline width; random weights when its ImageNet file is not on the machine
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
    from benchmarks.common import SHARED, load_line, machine_lines, markdown_table, verdict
except ImportError:  # run as a file: benchmarks/ itself is first on sys.path
    from common import SHARED, load_line, machine_lines, markdown_table, verdict

from core.demo import build_demo_catalog
from core.embedders.backbones import preprocess
from core.embedders.base import decoded_batches, l2_normalise
from core.embedders.mobilenet import PretrainedEmbedder, embedder_name
from core.errors import WeightsUnavailableError
from core.images import load_for_model
from core.settings import MatchSettings

#: The pipeline must keep at least this share of the bare model's throughput.
TARGET_RATIO = 0.80


def bare_pass(model, inputs: np.ndarray, batch_size: int) -> np.ndarray:
    outputs = [
        np.asarray(model.predict_on_batch(inputs[i : i + batch_size]))
        for i in range(0, len(inputs), batch_size)
    ]
    return np.concatenate(outputs)


def decode_pass(paths: list[Path], size: int, batch_size: int) -> int:
    return sum(len(batch) for batch in decoded_batches(paths, size, batch_size))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=SHARED, help="the shared data folder")
    parser.add_argument("--weights-dir", type=Path, default=None, help="default: SHARED/weights")
    parser.add_argument("--alpha", type=float, default=0.25)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-sizes", default="16,32,64")
    parser.add_argument("--repeats", type=int, default=4, help="timed passes per path (median)")
    parser.add_argument("--products", type=int, default=150, help="demo catalog products")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow's first import
    weights_dir = args.weights_dir or args.shared / "weights"
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    default_batch = MatchSettings().batch_size

    print("## Image embedding throughput: pipeline vs bare model\n")
    print("\n".join(machine_lines()))
    with tempfile.TemporaryDirectory(prefix="bench-embedding-") as tmp:
        started = time.perf_counter()
        csv_path = build_demo_catalog(Path(tmp) / "demo", n_products=args.products, seed=args.seed)
        demo_s = time.perf_counter() - started
        paths = sorted((csv_path.parent / "images").glob("*.jpg"))
        n = len(paths)

        started = time.perf_counter()
        embedder, weights = _embedder(args.alpha, args.image_size, weights_dir, default_batch)
        load_s = time.perf_counter() - started
        import tensorflow as tf

        intra_op = tf.config.threading.get_intra_op_parallelism_threads()
        pixels = np.stack([load_for_model(p, args.image_size) for p in paths])
        inputs = preprocess("mobilenet", pixels)
        print(
            f"- images: {n} demo-catalog JPEGs ({_describe(paths[0])}, resized to "
            f"{pixels.shape[1]}x{pixels.shape[2]}), generated in {demo_s:.1f} s"
        )
        print(
            f"- model: {embedder.name} (MobileNet v1, alpha {args.alpha}, {weights}), "
            f"loaded in {load_s:.1f} s; TensorFlow "
            f"{tf.__version__}, intra-op threads {intra_op} (0 = all cores)"
        )
        print(f"- {args.repeats} timed passes over all {n} images per path; median images/s\n")

        rows = []
        verdicts = {}
        for batch_size in batch_sizes:
            embedder.batch_size = batch_size
            # Warm-up: one untimed pass of each path traces every batch shape used below.
            reference = l2_normalise(bare_pass(embedder.model, inputs, batch_size))
            vectors = embedder.embed(paths)
            max_diff = float(np.abs(vectors - reference).max())
            bare, pipe, decode = [], [], []
            for _ in range(args.repeats):
                started = time.perf_counter()
                bare_pass(embedder.model, inputs, batch_size)
                bare.append(n / (time.perf_counter() - started))
                started = time.perf_counter()
                embedder.embed(paths)
                pipe.append(n / (time.perf_counter() - started))
            for _ in range(min(2, args.repeats)):
                started = time.perf_counter()
                decode_pass(paths, args.image_size, batch_size)
                decode.append(n / (time.perf_counter() - started))
            bare_ips, pipe_ips = statistics.median(bare), statistics.median(pipe)
            ratio = statistics.median(p / b for p, b in zip(pipe, bare, strict=True))
            verdicts[batch_size] = ratio >= TARGET_RATIO
            rows.append(
                [
                    batch_size,
                    f"{bare_ips:.0f}",
                    f"{pipe_ips:.0f}",
                    f"{ratio:.0%}",
                    verdict(ratio >= TARGET_RATIO),
                    f"{statistics.median(decode):.0f}",
                    f"{min(bare):.0f}–{max(bare):.0f}",
                    f"{min(pipe):.0f}–{max(pipe):.0f}",
                    f"{max_diff:.1e}",
                ]
            )

    print(
        markdown_table(
            [
                "batch",
                "bare model img/s",
                "pipeline img/s",
                "pipeline / bare (paired median)",
                f">= {TARGET_RATIO:.0%}",
                "decode only img/s",
                "bare range",
                "pipeline range",
                "max abs difference of vectors",
            ],
            rows,
        )
    )
    print()
    if default_batch in verdicts:
        print(
            f"- target (pipeline >= {TARGET_RATIO:.0%} of the bare model at the default batch "
            f"size {default_batch}): **{verdict(verdicts[default_batch])}**"
        )
    print(load_line())


def _embedder(
    alpha: float, image_size: int, weights_dir: Path, batch_size: int
) -> tuple[PretrainedEmbedder, str]:
    """The baseline's embedder; where the ImageNet weights for this width are not on the machine
    (offline), the same network with random weights: same arithmetic, same speed."""
    try:
        embedder = PretrainedEmbedder("mobilenet", alpha, image_size, weights_dir, batch_size)
        return embedder, f"real ImageNet weights from {weights_dir}"
    except WeightsUnavailableError:
        import keras

        embedder = PretrainedEmbedder.__new__(PretrainedEmbedder)
        embedder.backbone, embedder.alpha = "mobilenet", alpha
        embedder.image_size, embedder.batch_size = image_size, batch_size
        embedder.name, embedder.version = embedder_name("mobilenet", alpha, image_size), "random"
        embedder.model = keras.applications.MobileNet(
            weights=None,
            include_top=False,
            pooling="avg",
            alpha=alpha,
            input_shape=(image_size, image_size, 3),
        )
        return embedder, "random weights: ImageNet file not offline, throughput only"


def _describe(path: Path) -> str:
    from PIL import Image

    with Image.open(path) as img:
        width, height = img.size
    return f"{width}x{height}, about {path.stat().st_size / 1024:.0f} KiB each"


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"- benchmark wall time: {time.perf_counter() - started:.0f} s")
