"""The all-MiniLM-L6-v2 cross-encoder (`core.embedders.cross_encoder`) on English product pairs.

For a set of ``../shared/data/products-en/`` (Walmart-Amazon by default, or WDC shoes) the
labelled pairs of ``train_pairs.csv`` are split back into the published train and valid pairs
(a record's id is ``r`` + the first 12 hex digits of the SHA-1 of its line in
``pairs/valid.txt``). The cross-encoder is fine-tuned on the train pairs; after every epoch it
scores the valid pairs, and the epoch and the probability threshold with the best valid F1 are
kept — the test pairs (``test_pairs.csv``) choose nothing. Printed: seconds per epoch, scoring
pairs/s with TensorFlow and OpenVINO f32 (same pairs, same weights), the test F1 of the positive
class at the valid threshold, and for context the untuned sentence vectors' cosine with its own
valid threshold.

Measured on 2 shared CPU cores (AMD EPYC), mean pooling, lr 1e-4, batch 32, 4 epochs:
Walmart-Amazon at 48 tokens 264–347 s an epoch on 6,142 pairs, test F1 0.701 (P 0.661,
R 0.746, AUC 0.956; untuned cosine 0.404); WDC shoes at 64 tokens 146–221 s on 4,503 pairs,
test F1 0.772 (P 0.716, R 0.837, AUC 0.928; untuned cosine 0.450).

    .venv/bin/python benchmarks/bench_cross_encoder.py --set walmart-amazon --epochs 4 \
        --max-length 48
    .venv/bin/python benchmarks/bench_cross_encoder.py --train-limit 2000 --epochs 2 \
        --pooling mean --no-test          # choosing the pooling on valid
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import SHARED, load_line, machine_lines  # noqa: E402

DATA = SHARED / "data" / "products-en"


def record_id(line: str) -> str:
    return "r" + hashlib.sha1(line.strip().encode("utf-8")).hexdigest()[:12]


def load_set(name: str) -> dict[str, pd.DataFrame]:
    """Frames ``train``, ``valid``, ``test`` with columns left, right (titles) and label."""
    folder = DATA / name
    titles = pd.concat(
        [
            pd.read_csv(folder / f, dtype=str, keep_default_na=False)
            for f in ("train_catalog.csv", "test_catalog.csv")
        ]
    ).drop_duplicates("posting_id")
    title = titles.set_index("posting_id")["title"]
    pairs = pd.read_csv(folder / "train_pairs.csv").drop_duplicates()
    valid_keys = set()
    for line in (folder / "pairs" / "valid.txt").read_text(encoding="utf-8").splitlines():
        a, b, _label = line.split("\t")
        valid_keys |= {(record_id(a), record_id(b)), (record_id(b), record_id(a))}
    is_valid = [(a, b) in valid_keys for a, b in zip(pairs.left_id, pairs.right_id, strict=True)]
    test = pd.read_csv(folder / "test_pairs.csv").rename(
        columns={"a": "left_id", "b": "right_id", "label": "same"}
    )
    frames = {"train": pairs[~np.array(is_valid)], "valid": pairs[np.array(is_valid)], "test": test}
    return {
        key: pd.DataFrame(
            {
                "left": title[frame.left_id].to_numpy(),
                "right": title[frame.right_id].to_numpy(),
                "label": frame.same.to_numpy().astype(int),
            }
        )
        for key, frame in frames.items()
    }


def best_threshold(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """(threshold, F1) with the best F1 of the positive class."""
    from sklearn.metrics import precision_recall_curve

    precision, recall, thresholds = precision_recall_curve(labels, scores)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    best = int(np.argmax(f1[:-1]))
    return float(thresholds[best]), float(f1[best])


def scores_at(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    from sklearn.metrics import precision_recall_fscore_support, roc_auc_score

    p, r, f, _ = precision_recall_fscore_support(
        labels, scores >= threshold, average="binary", zero_division=0
    )
    return {"precision": p, "recall": r, "f1": f, "auc": roc_auc_score(labels, scores)}


def timed_scoring(encoder, frame: pd.DataFrame, backend: str) -> tuple[np.ndarray, float]:
    """(probabilities, pairs/s) on ``frame``, after a warm-up on its first 64 pairs."""
    left, right = frame.left.tolist(), frame.right.tolist()
    encoder.predict(left[:64], right[:64], backend=backend)
    started = time.perf_counter()
    probabilities = encoder.predict(left, right, backend=backend)
    return probabilities, len(frame) / (time.perf_counter() - started)


def cosine_baseline(sets: dict[str, pd.DataFrame], max_length: int) -> str:
    from core.embedders.minilm import sentence_vectors

    def cosines(frame: pd.DataFrame) -> np.ndarray:
        left = sentence_vectors(frame.left.tolist(), max_length=max_length)
        right = sentence_vectors(frame.right.tolist(), max_length=max_length)
        return (left * right).sum(axis=1)

    threshold, _ = best_threshold(sets["valid"].label.to_numpy(), cosines(sets["valid"]))
    test = scores_at(sets["test"].label.to_numpy(), cosines(sets["test"]), threshold)
    return (
        f"untuned sentence-vector cosine (threshold {threshold:.3f} from valid): test F1 "
        f"{test['f1']:.3f} (P {test['precision']:.3f}, R {test['recall']:.3f}, "
        f"AUC {test['auc']:.3f})"
    )


def train(args, sets: dict[str, pd.DataFrame]):
    """The cross-encoder at its best valid epoch, with (epoch, threshold, valid F1)."""
    from core.embedders.cross_encoder import CrossEncoder, CrossEncoderSettings

    settings = CrossEncoderSettings(
        max_length=args.max_length,
        pooling=args.pooling,
        learning_rate=args.learning_rate,
        batch_size=args.batch_size,
    )
    encoder = CrossEncoder(settings)
    frame = sets["train"]
    valid = sets["valid"]
    best = {"f1": -1.0}
    clock = {"started": time.perf_counter()}

    def on_epoch(epoch: int, loss: float) -> None:
        seconds = time.perf_counter() - clock["started"]
        probabilities = encoder.predict(valid.left.tolist(), valid.right.tolist())
        threshold, f1 = best_threshold(valid.label.to_numpy(), probabilities)
        print(
            f"- epoch {epoch}: {seconds:.0f} s on {len(frame)} pairs "
            f"({len(frame) / seconds:.1f} pairs/s), loss {loss:.4f}, valid F1 {f1:.3f} at "
            f"{threshold:.3f}",
            flush=True,
        )
        if f1 > best["f1"]:
            best.update(f1=f1, threshold=threshold, epoch=epoch, weights=encoder.get_weights())
        clock["started"] = time.perf_counter()

    encoder.fit(
        frame.left.tolist(),
        frame.right.tolist(),
        frame.label.to_numpy(),
        epochs=args.epochs,
        checkpoint_dir=args.checkpoint,
        on_epoch=on_epoch,
    )
    encoder.set_weights(best["weights"])
    return encoder, best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", default="walmart-amazon", choices=("walmart-amazon", "wdc-shoes"))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--pooling", default="mean", choices=("cls", "mean"))
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--train-limit", type=int, default=0, help="first N train pairs only")
    parser.add_argument("--checkpoint", type=Path, default=None, help="resume from / save to")
    parser.add_argument("--no-test", action="store_true", help="valid only (choosing settings)")
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args(argv)

    print(f"# Cross-encoder (all-MiniLM-L6-v2, Keras) on {args.set}\n")
    print("\n".join(machine_lines()))
    sets = load_set(args.set)
    if args.train_limit:
        sets["train"] = sets["train"].sample(frac=1.0, random_state=0).head(args.train_limit)
    sizes = ", ".join(f"{k} {len(v)} ({v.label.mean():.1%} same)" for k, v in sets.items())
    print(f"- pairs: {sizes}")
    print(
        f"- settings: max length {args.max_length}, pooling {args.pooling}, lr "
        f"{args.learning_rate:g}, batch {args.batch_size}, {args.epochs} epochs\n",
        flush=True,
    )
    encoder, best = train(args, sets)
    print(
        f"- chosen on valid: epoch {best['epoch']}, threshold {best['threshold']:.3f}, "
        f"valid F1 {best['f1']:.3f}"
    )
    if not args.no_test:
        test = sets["test"]
        labels = test.label.to_numpy()
        tf_probabilities, tf_rate = timed_scoring(encoder, test, "tensorflow")
        started = time.perf_counter()
        encoder.predict(test.left[:8].tolist(), test.right[:8].tolist(), backend="openvino")
        convert = time.perf_counter() - started
        ov_probabilities, ov_rate = timed_scoring(encoder, test, "openvino")
        print(
            f"- scoring {len(test)} test pairs: TensorFlow {tf_rate:.1f} pairs/s, OpenVINO f32 "
            f"{ov_rate:.1f} pairs/s (conversion {convert:.0f} s once; largest probability "
            f"difference {np.abs(tf_probabilities - ov_probabilities).max():.2e})"
        )
        result = scores_at(labels, tf_probabilities, best["threshold"])
        print(
            f"- **test F1 {result['f1']:.3f}** (P {result['precision']:.3f}, R "
            f"{result['recall']:.3f}, AUC {result['auc']:.3f}) at the valid threshold; at 0.5: "
            f"F1 {scores_at(labels, tf_probabilities, 0.5)['f1']:.3f}"
        )
        if not args.no_baseline:
            print(f"- {cosine_baseline(sets, args.max_length)}")
    print(load_line())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
