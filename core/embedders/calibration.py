"""The Siamese distance threshold chosen on products the network was not trained on.

A fixed 0.95 (the original write-up's) suits the products the network learned: on new ones it
puts photos of different products closer, and 0.95 lets them through (measured on the grocery
photos: precision 0.41 on unseen products). So training keeps a share of the labelled products
back, and after each epoch picks the distance that gives the best per-posting F1 among those
products' photos; the threshold travels with the model (`SiameseConfig.calibrated_distance`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

#: Share of the labelled products (with two photos or more) held back to calibrate.
CALIBRATION_SHARE = 0.2
#: Fewest held-back products a threshold is chosen on; fewer and training keeps 0.95 only.
MIN_CALIBRATION_PRODUCTS = 3
#: At most this many held-back photos (the distance matrix is their square).
MAX_CALIBRATION_PHOTOS = 3000
#: Thresholds tried: 0.02 to 1.60 in steps of 0.01.
DISTANCE_GRID = np.round(np.arange(0.02, 1.6001, 0.01), 2)


@dataclass(frozen=True)
class Calibration:
    """The chosen distance and what it scored on the held-back products."""

    distance: float
    f1: float
    precision: float
    recall: float
    #: F1 of the same photos at the fixed threshold the ensemble defaults to.
    f1_at_default: float
    products: int
    photos: int

    def to_dict(self) -> dict:
        return asdict(self)


def held_back_products(
    labels: Sequence[str], share: float = CALIBRATION_SHARE, salt: str = "calibration"
) -> set[str]:
    """Labels (of products with two photos or more) kept out of training to calibrate on.

    Chosen by a hash of the label, so the same products on every run and machine whatever the
    catalog's order; at least `MIN_CALIBRATION_PRODUCTS` when the catalog has enough products
    (and always at least two left to train on), else none.
    """
    counts: dict[str, int] = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    usable = sorted(label for label, n in counts.items() if n >= 2)
    if share <= 0 or len(usable) < MIN_CALIBRATION_PRODUCTS + 2:
        return set()

    def rank(label: str) -> float:
        digest = hashlib.sha1(f"{salt}:{label}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2.0**64

    ordered = sorted(usable, key=rank)
    wanted = max(MIN_CALIBRATION_PRODUCTS, round(share * len(usable)))
    return set(ordered[: min(wanted, len(usable) - 2)])


def per_posting_f1(
    distances: np.ndarray, same: np.ndarray, threshold: float
) -> tuple[float, float, float]:
    """Mean per-posting F1, precision and recall of "distance < threshold" (each photo matches
    itself), as `core.metrics` scores a catalog."""
    predicted = distances < threshold
    np.fill_diagonal(predicted, True)
    hits = (predicted & same).sum(axis=1)
    predicted_count = predicted.sum(axis=1)
    true_count = same.sum(axis=1)
    f1 = 2.0 * hits / (predicted_count + true_count)
    return (
        float(f1.mean()),
        float((hits / predicted_count).mean()),
        float((hits / true_count).mean()),
    )


def calibrate_distance(
    vectors: np.ndarray,
    labels: Sequence[str],
    default: float = 0.95,
    grid: np.ndarray = DISTANCE_GRID,
) -> Calibration:
    """The distance threshold with the best per-posting F1 over these photos (unit vectors of
    held-back products); ties go to the smaller distance (the stricter rule)."""
    vectors = np.asarray(vectors, np.float32)[:MAX_CALIBRATION_PHOTOS]
    names = np.asarray(labels, dtype=object)[: len(vectors)]
    cosine = np.clip(vectors @ vectors.T, -1.0, 1.0)
    distances = np.sqrt(np.maximum(0.0, 2.0 - 2.0 * cosine))
    same = names[:, None] == names[None, :]
    scored = [per_posting_f1(distances, same, float(t)) for t in grid]
    best = int(np.argmax([f1 for f1, _, _ in scored]))
    f1, precision, recall = scored[best]
    return Calibration(
        distance=float(grid[best]),
        f1=round(f1, 4),
        precision=round(precision, 4),
        recall=round(recall, 4),
        f1_at_default=round(per_posting_f1(distances, same, default)[0], 4),
        products=len(set(names.tolist())),
        photos=len(vectors),
    )
