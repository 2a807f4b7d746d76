"""Which photo vectors ``best`` learns from: a model given photos embeds them first (issue 39),
and it takes the strongest pretrained vectors the catalog holds (issue 37: EfficientNet-Lite2
over MobileNet), embedding a later catalog or an uploaded photo by that same model whatever
backbone the settings name now. Real grocery photos."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from core import models
from core.errors import SameSameError
from core.settings import MatchSettings
from core.settings.match import BACKBONES
from tests.conftest import TESTS


@pytest.mark.parametrize("backbone", BACKBONES)
def test_every_stored_model_name_gives_back_its_settings(backbone: str) -> None:
    settings = MatchSettings().replace(image_backbone=backbone, image_alpha=0.25, image_size=192)
    name = models.image_model_name(settings)
    again = models.settings_for_image_model(MatchSettings(), name)
    assert models.image_model_name(again) == name
    assert again.image_backbone == backbone


def test_an_unknown_model_name_is_refused_by_name() -> None:
    with pytest.raises(SameSameError, match="'resnet-224' is not a pretrained image model"):
        models.settings_for_image_model(MatchSettings(), "resnet-224")


def _cli(*args: object) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "core", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=TESTS.parent,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout + done.stderr


def _image_model(model: Path) -> str | None:
    return json.loads((model / "best.json").read_text())["info"].get("image_model")


@pytest.mark.tf
@pytest.mark.slow
def test_best_learns_from_the_photos_it_is_given_and_prefers_lite2(
    grocery_dir: Path, weights_dir: Path, tmp_path: Path
) -> None:
    catalog = pd.read_csv(grocery_dir / "catalog.csv", dtype=str)
    chosen = catalog[catalog["label_group"].isin(sorted(catalog["label_group"].unique())[:9])]
    chosen.to_csv(tmp_path / "slice.csv", index=False)
    db, model = tmp_path / "g.db", tmp_path / "best"
    _cli("--db", db, "import", tmp_path / "slice.csv", "--images", grocery_dir / "images")
    mobilenet = ["--alpha", "0.25", "--image-size", "224", "--weights-dir", weights_dir]
    training = ["train", "--pipeline", "best", "--model", model, "--best-train-splits", "3"]
    # Nothing embedded yet: training embeds the photos first, by the settings' backbone.
    _cli("--db", db, *training, *mobilenet)
    assert _image_model(model) == "mobilenet-a0.25-224"
    # Lite2 vectors beside them: best takes those, though the settings still name MobileNet.
    _cli("--db", db, "embed", "--backbone", "efficientnet-lite2", "--image-size", "260")
    _cli("--db", db, *training, *mobilenet)
    assert _image_model(model) == "efficientnet-lite2-260"
    # A new catalog of the same products is embedded by Lite2 when matched with that model.
    other = tmp_path / "other.db"
    _cli("--db", other, "import", tmp_path / "slice.csv", "--images", grocery_dir / "images")
    out = _cli("--db", other, "match", "--pipeline", "best", "--model", model, *mobilenet)
    assert "efficientnet-lite2-260" in out
    from core.store import Store

    with Store(other) as store:
        assert store.count_embeddings("efficientnet-lite2-260", "imagenet") == len(chosen)
        assert store.count_embeddings("mobilenet-a0.25-224", "imagenet") == 0
