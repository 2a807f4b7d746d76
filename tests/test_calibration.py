"""The Siamese distance threshold chosen on held-back products."""

from __future__ import annotations

import numpy as np
import pytest

from core.embedders.calibration import (
    MIN_CALIBRATION_PRODUCTS,
    calibrate_distance,
    held_back_products,
    per_posting_f1,
)


def _clusters(spread: float, products: int = 6, photos: int = 4, seed: int = 0):
    """Unit vectors: each product's photos scattered by ``spread`` around its own direction."""
    rng = np.random.default_rng(seed)
    centres = np.linalg.qr(rng.normal(size=(32, products)))[0].T  # orthonormal directions
    vectors = np.repeat(centres, photos, axis=0) + spread * rng.normal(size=(products * photos, 32))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    labels = [f"p{i}" for i in range(products) for _ in range(photos)]
    return vectors.astype(np.float32), labels


def test_held_back_products_are_the_same_whatever_the_order_and_leave_two_to_train() -> None:
    labels = [f"g{i}" for i in range(20) for _ in range(3)] + ["single"]
    held = held_back_products(labels)
    assert len(held) == 4  # a fifth of the 20 products with two photos or more
    assert "single" not in held  # a product with one photo has no pair to calibrate on
    assert held_back_products(list(reversed(labels))) == held
    assert held_back_products(labels, share=0.0) == set()
    few = [f"g{i}" for i in range(MIN_CALIBRATION_PRODUCTS + 1) for _ in range(2)]
    assert held_back_products(few) == set()  # not enough to hold back and still train
    just = [f"g{i}" for i in range(MIN_CALIBRATION_PRODUCTS + 2) for _ in range(2)]
    assert len(held_back_products(just)) == MIN_CALIBRATION_PRODUCTS


def test_per_posting_f1_counts_each_photo_matching_itself() -> None:
    distances = np.array([[0.0, 0.3, 1.2], [0.3, 0.0, 1.1], [1.2, 1.1, 0.0]])
    labels = np.array(["a", "a", "b"])
    same = labels[:, None] == labels[None, :]
    assert per_posting_f1(distances, same, 0.5) == (1.0, 1.0, 1.0)
    f1, precision, recall = per_posting_f1(distances, same, 0.1)  # nothing but itself
    assert recall == pytest.approx((0.5 + 0.5 + 1.0) / 3)
    assert precision == 1.0
    assert f1 == pytest.approx((2 / 3 + 2 / 3 + 1.0) / 3)


def test_calibrated_distance_follows_how_tight_the_products_sit() -> None:
    tight = calibrate_distance(*_clusters(0.02))
    loose = calibrate_distance(*_clusters(0.07))
    assert tight.f1 == 1.0 and loose.f1 == 1.0
    # Orthogonal products are sqrt(2) apart; a tight product's photos are close, so the
    # smallest perfect threshold sits well under the loose one's.
    assert tight.distance < loose.distance < np.sqrt(2)
    assert (tight.products, tight.photos) == (6, 24)


def test_calibration_beats_the_fixed_threshold_where_products_crowd_together() -> None:
    vectors, labels = _clusters(0.03, products=8)
    # Pull every product towards one direction: distances between products shrink below 0.95.
    crowded = vectors + 1.2 * np.ones_like(vectors) / np.sqrt(vectors.shape[1])
    crowded /= np.linalg.norm(crowded, axis=1, keepdims=True)
    found = calibrate_distance(crowded, labels, default=0.95)
    assert found.f1_at_default < 0.5  # 0.95 calls every product the same
    assert found.f1 > 0.95
    assert found.distance < 0.95
