"""``best``'s cross-encoder stage on real WDC shoe titles: it re-scores only the unsure top
candidates, learns a blend on a fold it never trained on, saves and loads to the same
probabilities, and a single-item query re-scores that item's pairs alone."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.embedders import minilm
from core.embedders.minilm import model_folder
from core.errors import ModelNotTrainedError
from core.pipelines import MatchInputs
from core.pipelines.best import BestConfig, BestMatcher
from core.pipelines.best.model import CROSS_ENCODER_DIR
from core.pipelines.best.rescoring import blend, rescored_pairs, top_per_posting
from core.text import normalize_title
from tests.conftest import SHARED, require

WDC = SHARED / "data" / "products-en" / "wdc-shoes"


def test_top_per_posting_keeps_each_postings_most_probable_pairs() -> None:
    left = np.array([0, 0, 0, 1, 2])
    right = np.array([1, 2, 3, 2, 3])
    prob = np.array([0.9, 0.5, 0.1, 0.8, 0.3], np.float32)
    # Posting 0's top one is (0,1); posting 3's is (2,3); posting 2's is (1,2).
    assert top_per_posting(4, left, right, prob, 1).tolist() == [True, False, False, True, True]
    assert top_per_posting(4, left, right, prob, 3).all()


def test_only_unsure_pairs_are_rescored() -> None:
    config = BestConfig(cross_encoder_band=[0.1, 0.9], cross_encoder_top=5)
    left, right = np.array([0, 0, 1]), np.array([1, 2, 2])
    prob = np.array([0.95, 0.5, 0.05], np.float32)
    assert rescored_pairs(3, left, right, prob, config).tolist() == [False, True, False]


def test_blend_is_monotone_in_both_probabilities() -> None:
    weights = (-0.2, 0.4, 1.5)
    base = blend(weights, np.array([0.5]), np.array([0.5]))[0]
    assert blend(weights, np.array([0.7]), np.array([0.5]))[0] > base
    assert blend(weights, np.array([0.5]), np.array([0.7]))[0] > base


@pytest.fixture(scope="module")
def shoes() -> pd.DataFrame:
    require((WDC / "train.csv").is_file(), f"missing real data: {WDC}/train.csv")
    frame = pd.read_csv(WDC / "train.csv", dtype=str, keep_default_na=False)
    frame = frame[frame["label_group"].isin(frame["label_group"].unique()[:300])]
    frame = frame.reset_index(drop=True)
    frame["title_norm"] = [normalize_title(t) for t in frame["title"]]
    return frame


@pytest.fixture(scope="module")
def trained(shoes: pd.DataFrame, tmp_path_factory) -> BestMatcher:
    require(
        importlib.util.find_spec("all_minilm_l6_v2") is not None,
        f"model package missing: {minilm.INSTALL_COMMAND} (requirements-models.txt)",
    )
    home = tmp_path_factory.mktemp("rescoring_home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SAMESAME_HOME", str(home))
        model_folder(home)
        config = BestConfig(
            cross_encoder=True,
            cross_encoder_epochs=1,
            cross_encoder_max_pairs=300,
            image_head=False,
        )
        return BestMatcher.fit(
            MatchInputs.from_frame(shoes), shoes["label_group"].tolist(), config=config
        )


@pytest.mark.slow
@pytest.mark.tf
def test_the_stage_learns_a_blend_on_a_held_out_fold(trained: BestMatcher) -> None:
    record = trained.info["cross_encoder"]
    assert record["rescored_pairs"] > 50
    assert 0.5 < record["held_out_f1_after"] <= 1.0
    # The blend leans on the cross-encoder: a positive weight on its logit.
    assert len(trained.config.cross_encoder_blend) == 3
    assert trained.config.cross_encoder_blend[2] > 0


@pytest.mark.slow
@pytest.mark.tf
def test_saved_model_gives_the_same_probabilities(
    trained: BestMatcher, shoes: pd.DataFrame, tmp_path: Path
) -> None:
    inputs = MatchInputs.from_frame(shoes.head(400))
    table, prob1, prob = trained.probabilities(inputs)
    trained.save(tmp_path / "model")
    loaded = BestMatcher.load(tmp_path / "model")
    again = loaded.probabilities(inputs)[2]
    np.testing.assert_allclose(again, prob, atol=1e-6)
    # Two-stage probabilities of the same pairs: the cross-encoder changed the unsure ones only.
    plain = BestMatcher(
        trained.config, trained.stage1, trained.stage2, trained.names1, trained.names2
    )
    before = plain.probabilities(inputs)[2]
    changed = before != prob
    assert changed.any()
    assert (before[changed] >= trained.config.cross_encoder_band[0]).all()
    assert (before[changed] <= trained.config.cross_encoder_band[1]).all()
    # A single-item query re-scores the item's pairs alone, to the batch's numbers.
    item = int(table.left[np.flatnonzero(changed)[0]])
    focused = trained.probabilities(inputs, only=item)[2]
    mine = (table.left == item) | (table.right == item)
    np.testing.assert_allclose(focused[mine], prob[mine], atol=1e-6)
    np.testing.assert_array_equal(focused[~mine], before[~mine])


@pytest.mark.slow
@pytest.mark.tf
def test_a_model_missing_its_cross_encoder_says_retrain(
    trained: BestMatcher, tmp_path: Path
) -> None:
    trained.save(tmp_path / "model")
    for path in sorted((tmp_path / "model" / CROSS_ENCODER_DIR).iterdir()):
        path.unlink()
    with pytest.raises(ModelNotTrainedError, match="retrain"):
        BestMatcher.load(tmp_path / "model")
