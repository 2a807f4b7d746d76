"""One pipeline throughout: the default and the chosen pipeline, kept with the catalog, and
whether its stored matches follow the catalog and the settings (in the settings' labels)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core import matching
from core.catalog import import_catalog
from core.errors import SameSameError
from core.pipeline_choice import (
    choose_pipeline,
    chosen_by_hand,
    chosen_pipeline,
    default_pipeline,
    matching_fields,
    run_state,
)
from core.pipelines import get_pipeline
from core.store import Store

ROWS = [
    ("p1", "Sampo Lifebuoy 170ml"),
    ("p2", "Shampoo Lifebuoy 170 ml"),
    ("p3", "Kopi bubuk 100 gram"),
    ("p4", "Kopi bubuk 100gr"),
    ("p5", "Sabun cuci piring"),
]


@pytest.fixture
def titled(tmp_path: Path) -> Store:
    csv = tmp_path / "small.csv"
    csv.write_text(
        "posting_id,image,title\n" + "".join(f"{p},,{t}\n" for p, t in ROWS), encoding="utf-8"
    )
    with Store(tmp_path / "small.db") as store:
        import_catalog(store, csv, None)
        yield store


def test_the_default_is_the_most_accurate_pipeline_that_has_run(titled):
    # Nothing ran: the most accurate one that can run (best needs a trained model).
    assert default_pipeline(titled).name == "ensemble"
    matching.run_pipeline(titled, "baseline")
    assert default_pipeline(titled).name == "baseline"
    assert chosen_pipeline(titled).name == "baseline"
    matching.run_pipeline(titled, "ensemble")
    assert chosen_pipeline(titled).name == "ensemble"


def test_a_choice_is_kept_with_the_catalog_until_cleared(titled, tmp_path):
    matching.run_pipeline(titled, "ensemble")
    choose_pipeline(titled, "baseline")
    with Store(tmp_path / "small.db") as again:
        assert chosen_by_hand(again) == "baseline"
        assert chosen_pipeline(again).name == "baseline"
    choose_pipeline(titled, None)
    assert chosen_by_hand(titled) is None
    assert chosen_pipeline(titled).name == "ensemble"
    with pytest.raises(SameSameError, match="Unknown pipeline 'fastest'"):
        choose_pipeline(titled, "fastest")


def test_changed_settings_are_named_by_their_label_not_their_key(titled):
    assert run_state(titled, "baseline").headline.startswith("The baseline pipeline has no")
    matching.run_pipeline(titled, "baseline")
    assert run_state(titled, "baseline").current

    titled.save_settings(titled.load_settings().replace(baseline_text_cosine=0.4))
    state = run_state(titled, "baseline")
    assert not state.current
    assert state.headline == "Matches are from the old settings — re-run"
    assert state.changed == ("Title TF-IDF cosine ≥ 0.5 → 0.4",)
    assert "baseline_text_cosine" not in state.details
    # A setting the ensemble reads is no reason to re-run the baseline.
    assert run_state(titled, "ensemble").changed == ()
    titled.save_settings(titled.load_settings().replace(ensemble_text_ratio=0.7))
    assert run_state(titled, "baseline").changed == ("Title TF-IDF cosine ≥ 0.5 → 0.4",)


def test_a_changed_catalog_is_said_apart_from_changed_settings(titled, tmp_path):
    matching.run_pipeline(titled, "baseline")
    more = tmp_path / "more.csv"
    more.write_text("posting_id,image,title\np6,,Teh celup 25 sachet\n", encoding="utf-8")
    import_catalog(titled, more, None)
    state = run_state(titled, "baseline")
    assert state.catalog_changed and not state.changed
    assert state.headline == "Matches are from an older catalog — re-run"
    assert "new or changed postings" in state.details


def test_training_options_do_not_make_rule_matches_old():
    for name in ("baseline", "ensemble"):
        fields = matching_fields(get_pipeline(name))
        assert "siamese_epochs" not in fields and "best_n_estimators" not in fields
        assert "max_cluster_size" in fields
    assert "top_k" not in matching_fields(get_pipeline("best"))


@pytest.fixture
def photos_only(grocery_dir: Path, tmp_path: Path) -> Store:
    """Real grocery photos of 8 products (no titles: an image-only catalog), imported."""
    import pandas as pd

    catalog = pd.read_csv(grocery_dir / "catalog.csv", dtype=str, keep_default_na=False)
    chosen = catalog[catalog["label_group"].isin(sorted(catalog["label_group"].unique())[:8])]
    assert (chosen["title"] == "").all()
    chosen.to_csv(tmp_path / "photos.csv", index=False)
    with Store(tmp_path / "photos.db") as store:
        import_catalog(store, tmp_path / "photos.csv", grocery_dir / "images")
        yield store


def test_before_any_run_an_image_only_catalog_starts_with_photo_vectors(photos_only):
    # The ensemble ranks above the baseline and can run, but with no trained Siamese
    # network and no titles it would compare perceptual hashes alone.
    ensemble = get_pipeline("ensemble").readiness(photos_only, photos_only.load_settings())
    assert ensemble.ready and "perceptual hashes stand in" in ensemble.reason
    assert not photos_only.has_titles()
    assert default_pipeline(photos_only).name == "baseline"
    assert chosen_pipeline(photos_only).name == "baseline"
    # Once a pipeline has run, the rule is unchanged: the most accurate that has run.
    matching.run_pipeline(photos_only, "ensemble", hash_only=True)
    assert default_pipeline(photos_only).name == "ensemble"


def test_a_titled_catalog_still_starts_with_the_most_accurate_ready_pipeline(titled):
    assert titled.has_titles()
    assert default_pipeline(titled).name == "ensemble"


@pytest.mark.tf
@pytest.mark.slow
def test_the_photo_vector_default_is_the_better_one_on_real_photos(photos_only, weights_dir):
    # Measured, not assumed: on these real photos the baseline's ImageNet vectors find
    # more of each product than the perceptual hashes the untrained ensemble would use.
    from core.evaluation import evaluate_result

    settings = photos_only.load_settings().replace(
        image_alpha=0.25, image_size=224, weights_dir=str(weights_dir)
    )
    matching.ensure_ready(photos_only, "baseline", settings)
    f1 = {
        name: evaluate_result(
            photos_only, matching.run_pipeline(photos_only, name, settings, save=False)
        )["f1"]
        for name in ("baseline", "ensemble")
    }
    assert default_pipeline(photos_only, settings).name == "baseline"
    assert f1["baseline"] > f1["ensemble"] + 0.05, f1
