"""The ensemble's Siamese model on real photos: it must generalise to products it never saw."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.embedders.mobilenet import PretrainedEmbedder
from core.embedders.siamese import SiameseConfig, SiameseEmbedder
from core.embedders.siamese_training import train_siamese
from core.metrics import evaluate, true_match_sets
from core.pipelines import MatchInputs, get_pipeline
from core.settings import MatchSettings

pytestmark = [pytest.mark.slow, pytest.mark.tf]


def _held_out_f1(frame: pd.DataFrame, vectors: np.ndarray, pipeline: str) -> float:
    postings = frame.assign(title_norm="")
    inputs = MatchInputs.from_frame(
        postings, dict(zip(frame["posting_id"], vectors, strict=True)), "test"
    )
    result = get_pipeline(pipeline).match(inputs, MatchSettings())
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
    calibrating = [h["epoch"] for h in config.history if not h.get("refit")]
    assert calibrating == [1, 2, 3, 4, 5, 6]
    # 32 products: six held back to calibrate; the distance travels with the saved model.
    assert config.calibration["products"] == 6 and config.calibrated_distance is not None

    model.save(tmp_path / "model")
    reloaded = SiameseEmbedder.load(tmp_path / "model")
    sample = image(test)[:8]
    np.testing.assert_allclose(reloaded.embed(sample), model.embed(sample), atol=1e-6)
    assert reloaded.config.calibrated_distance == config.calibrated_distance
    assert not list((tmp_path / "model").glob("*.pkl"))
