"""The ensemble's Siamese model on real photos: it must generalise to products it never saw."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.embedders.mobilenet import PretrainedEmbedder
from core.embedders.siamese import SiameseConfig, SiameseEmbedder
from core.embedders.siamese_training import train_siamese
from core.engine import match_catalog
from core.metrics import evaluate, true_match_sets
from core.pipelines import MatchInputs, get_pipeline
from core.settings import MatchSettings

pytestmark = [pytest.mark.slow, pytest.mark.tf]


def _held_out_f1(frame: pd.DataFrame, vectors: np.ndarray, pipeline: str) -> float:
    postings = frame.assign(title_norm="")
    inputs = MatchInputs.from_frame(
        postings, dict(zip(frame["posting_id"], vectors, strict=True)), "test"
    )
    result = match_catalog(get_pipeline(pipeline), inputs, MatchSettings())
    labels = dict(zip(frame["posting_id"], frame["label_group"], strict=True))
    return evaluate(result.match_sets(), true_match_sets(labels))["f1"]


def test_training_on_some_products_beats_untrained_backbone_on_unseen_products(
    grocery_dir, weights_dir, tmp_path
):
    catalog = pd.read_csv(grocery_dir / "catalog.csv", dtype=str, keep_default_na=False)
    products = sorted(catalog["label_group"].unique())
    # Products are split, never photos: the held-out products are new to the model.
    train = catalog[catalog["label_group"].isin(products[:32])]
    test = catalog[catalog["label_group"].isin(products[48:])].reset_index(drop=True)
    image = lambda frame: [grocery_dir / "images" / n for n in frame["image"]]  # noqa: E731

    untrained = PretrainedEmbedder("mobilenet", 0.25, 224, weights_dir).embed(image(test))
    untrained_f1 = _held_out_f1(test, untrained, "baseline")

    # The training defaults (6 epochs, 4 augmented copies, a fifth of the products held back
    # to calibrate, then trained afresh on all): what a user gets.
    config = SiameseConfig(backbone="mobilenet", alpha=0.25, image_size=200)
    model = train_siamese(
        image(train), train["label_group"].tolist(), config, weights_dir=weights_dir
    )
    trained_f1 = _held_out_f1(test, model.embed(image(test)), "ensemble")

    assert trained_f1 > untrained_f1 + 0.05, (trained_f1, untrained_f1)
    calibrating = [h["epoch"] for h in model.config.history if not h.get("refit")]
    assert calibrating == [1, 2, 3, 4, 5, 6]
    # 32 products: six held back to calibrate; the distance travels with the saved model.
    calibration = model.config.calibration
    assert calibration["products"] == 6 and model.config.calibrated_distance is not None

    model.save(tmp_path / "model")
    reloaded = SiameseEmbedder.load(tmp_path / "model")
    sample = image(test)[:8]
    np.testing.assert_allclose(reloaded.embed(sample), model.embed(sample), atol=1e-6)
    assert reloaded.config.calibrated_distance == model.config.calibrated_distance
    assert not list((tmp_path / "model").glob("*.pkl"))


def test_members_train_side_by_side_on_one_backbone_and_reload_whole(
    grocery_dir, weights_dir, tmp_path
):
    """Three heads from different random starts on one frozen backbone: the served vector is
    theirs side by side, so its cosine is the mean of the members' cosines; the members learned
    different things; the saved model reloads to the same vectors."""
    catalog = pd.read_csv(grocery_dir / "catalog.csv", dtype=str, keep_default_na=False)
    products = sorted(catalog["label_group"].unique())
    train = catalog[catalog["label_group"].isin(products[:16])]
    test = catalog[catalog["label_group"].isin(products[48:52])].reset_index(drop=True)
    image = lambda frame: [grocery_dir / "images" / n for n in frame["image"]]  # noqa: E731

    config = SiameseConfig(
        backbone="mobilenet", alpha=0.25, image_size=96, epochs=2, augment_copies=1, members=3
    )
    ticks: list[tuple[int, int]] = []
    model = train_siamese(
        image(train),
        train["label_group"].tolist(),
        config,
        weights_dir=weights_dir,
        progress=lambda done, total: ticks.append((done, total)),
    )
    vectors = model.embed(image(test))
    assert vectors.shape == (len(test), 3 * config.embedding_dim)
    heads = model.model.get_layer("heads")
    backbone = next(layer for layer in model.model.layers if layer.name not in ("pixels", "heads"))
    from core.images import load_for_model

    pixels = np.stack([load_for_model(path, 96) for path in image(test)])
    pooled = np.asarray(backbone.predict_on_batch(model._prepare(pixels)))
    names = ("head", "head_1", "head_2")
    parts = [np.asarray(heads.get_layer(name).predict_on_batch(pooled)) for name in names]
    member_cosines = [part @ part.T for part in parts]
    np.testing.assert_allclose(vectors @ vectors.T, np.mean(member_cosines, axis=0), atol=1e-4)
    assert not np.allclose(member_cosines[0], member_cosines[1], atol=1e-2)
    # Progress counts every member's steps, once each, up to the end.
    steps = [done for done, _ in ticks]
    assert steps == sorted(steps) and ticks[-1][0] == ticks[-1][1] and ticks[-1][1] % 3 == 0
    assert model.config.calibrated_distance is not None

    model.save(tmp_path / "model")
    reloaded = SiameseEmbedder.load(tmp_path / "model")
    np.testing.assert_allclose(reloaded.embed(image(test)), vectors, atol=1e-6)


def test_a_fine_tuned_backbone_trains_one_member(grocery_dir, weights_dir):
    catalog = pd.read_csv(grocery_dir / "catalog.csv", dtype=str, keep_default_na=False)
    products = sorted(catalog["label_group"].unique())
    train = catalog[catalog["label_group"].isin(products[:4])]
    config = SiameseConfig(
        backbone="mobilenet",
        alpha=0.25,
        image_size=64,
        epochs=1,
        members=3,
        train_backbone=True,
        calibration_share=0.0,
    )
    model = train_siamese(
        [grocery_dir / "images" / n for n in train["image"]],
        train["label_group"].tolist(),
        config,
        weights_dir=weights_dir,
    )
    assert model.config.members == 1 and config.members == 3  # what was asked stays as asked
    assert model.embed([grocery_dir / "images" / train["image"].iloc[0]]).shape == (1, 128)
