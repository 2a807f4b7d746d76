"""Both pipelines end to end: on the demo catalog (hashes, real MobileNet 0.25 vectors, a small
trained Siamese model) and on the real Shopee catalog (titles + hashes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core import evaluation, matching, models
from core.catalog import import_catalog
from core.engine import match_catalog
from core.errors import SameSameError
from core.matches import MatchResult
from core.pipelines import PIPELINES, MatchInputs, get_pipeline, load_inputs
from core.settings import MatchSettings
from core.store import Store

BASELINE_RULES = {"image", "hash", "text"}
ENSEMBLE_RULES = {"image", "hash", "text", "combined"}


def self_only(store: Store) -> MatchResult:
    ids = store.postings()["posting_id"].tolist()
    return MatchResult("none", ids, MatchResult.empty_pairs(), MatchSettings())


def match_baseline(inputs: MatchInputs, settings: MatchSettings | None = None) -> MatchResult:
    return match_catalog(get_pipeline("baseline"), inputs, settings or MatchSettings())


def match_ensemble(inputs: MatchInputs, settings: MatchSettings | None = None) -> MatchResult:
    return match_catalog(get_pipeline("ensemble"), inputs, settings or MatchSettings())


def pair_keys(result: MatchResult) -> set[tuple[str, str]]:
    return set(zip(result.pairs["left"], result.pairs["right"], strict=True))


@pytest.fixture(scope="module")
def demo_store(demo_catalog: Path, tmp_path_factory) -> Store:
    store = Store(tmp_path_factory.mktemp("pipelines") / "demo.db")
    report = import_catalog(store, demo_catalog, demo_catalog.parent / "images")
    assert report.problems == []
    yield store
    store.close()


@pytest.fixture(scope="module")
def demo_inputs(demo_store: Store) -> MatchInputs:
    return load_inputs(demo_store, None)


# -- hash-only on the demo ---------------------------------------------------------------------
def test_hash_only_pipelines_beat_self_only_and_record_their_rules(demo_store, demo_inputs):
    self_f1 = evaluation.evaluate_result(demo_store, self_only(demo_store))["f1"]
    baseline = match_baseline(demo_inputs)
    ensemble = match_ensemble(demo_inputs)

    base_f1 = evaluation.evaluate_result(demo_store, baseline)["f1"]
    ens_f1 = evaluation.evaluate_result(demo_store, ensemble)["f1"]

    # Measured: self-only 0.390, baseline 0.537, ensemble 0.432 (602 postings, 150 products).
    assert 0.3 < self_f1 < 0.45
    assert base_f1 > self_f1 + 0.1
    assert ens_f1 > self_f1 + 0.02
    assert any("perceptual hashes only" in n for n in baseline.notices)

    pairs = baseline.pairs
    assert {r for rule in pairs["rule"] for r in rule.split("+")} == {"hash", "text"}
    assert set(pairs["rule"].str.split("+").explode()) <= BASELINE_RULES
    has_text = pairs["rule"].str.contains("text")
    has_hash = pairs["rule"].str.contains("hash")
    assert (has_text == (pairs["tfidf_cosine"] >= 0.5 - 1e-6)).all()
    assert (has_hash == (pairs["hash_distance"] <= 8)).all()
    assert pairs["image_cosine"].isna().all()

    pairs = ensemble.pairs
    assert set(pairs["rule"].str.split("+").explode()) <= ENSEMBLE_RULES
    assert (pairs["rule"].str.contains("text") == (pairs["text_ratio"] > 0.55)).all()
    assert (pairs["rule"].str.contains("hash") == (pairs["hash_distance"] <= 8)).all()


def test_pairs_are_unique_ordered_by_catalog_position(demo_inputs) -> None:
    position = {pid: i for i, pid in enumerate(demo_inputs.posting_ids)}
    for result in (match_baseline(demo_inputs), match_ensemble(demo_inputs)):
        left = result.pairs["left"].map(position)
        right = result.pairs["right"].map(position)
        assert (left < right).all()
        assert not result.pairs.duplicated(["left", "right"]).any()


@pytest.mark.parametrize(
    ("pipeline", "field", "values"),
    [
        ("baseline", "baseline_text_cosine", [0.3, 0.5, 0.7, 0.95]),
        ("baseline", "hash_max_distance", [16, 8, 4, 0]),
        ("ensemble", "ensemble_text_ratio", [0.5, 0.55, 0.7, 0.9]),
        ("ensemble", "hash_max_distance", [16, 8, 2]),
    ],
)
def test_stricter_thresholds_never_add_pairs(demo_inputs, pipeline, field, values) -> None:
    matcher = match_baseline if pipeline == "baseline" else match_ensemble
    results = [pair_keys(matcher(demo_inputs, MatchSettings(**{field: v}))) for v in values]

    for looser, stricter in zip(results, results[1:], strict=False):
        assert stricter <= looser
    assert len(results[0]) > len(results[-1])


def test_run_pipeline_stores_what_it_returns(demo_store: Store) -> None:
    result = matching.run_pipeline(demo_store, "baseline", MatchSettings(), hash_only=True)
    stored = matching.stored_result(demo_store, "baseline")

    assert stored.match_sets() == result.match_sets()
    assert demo_store.match_run("baseline")["stale"] is False
    assert matching.stored_result(demo_store, "nothing") is None
    with pytest.raises(SameSameError, match="Unknown pipeline 'fancy'; choose one of baseline"):
        matching.run_pipeline(demo_store, "fancy")


def test_the_registry_lists_every_pipeline_once_with_what_it_needs() -> None:
    assert list(PIPELINES) == ["baseline", "ensemble", "best"]
    for name, pipe in PIPELINES.items():
        assert pipe.name == name and pipe.title and pipe.summary
        assert pipe.score_columns
    assert [p.name for p in PIPELINES.values() if p.needs_model] == ["best"]
    assert PIPELINES["ensemble"].image_kind == "siamese"


def test_postings_without_hash_or_title_take_part_safely(store: Store) -> None:
    # Mixed present/missing hashes come back from pandas as str + NaN.
    rows = [
        ("a", "kaos polos hitam", "94974f937d4c2433"),
        ("b", "kaos polos hitam", None),
        ("c", "", "94974f937d4c2433"),
        ("d", "", None),
    ]
    store.upsert_postings(
        [
            {
                "posting_id": p,
                "title": t,
                "title_norm": t,
                "image_status": "none",
                "image_phash": h,
                "source": "catalog",
            }
            for p, t, h in rows
        ]
    )
    for pipeline in ("baseline", "ensemble"):
        result = matching.run_pipeline(store, pipeline, MatchSettings(), save=False)
        assert pair_keys(result) == {("a", "b"), ("a", "c")}
        assert result.match_sets()["d"] == {"d"}


def test_evaluate_needs_labels(store: Store) -> None:
    store.upsert_postings(
        [{"posting_id": "a", "title": "x", "title_norm": "x", "image_status": "none"}]
    )
    with pytest.raises(SameSameError, match="no label_group"):
        evaluation.evaluate_result(store, self_only(store))


# -- the real Shopee catalog -------------------------------------------------------------------
@pytest.mark.slow
def test_shopee_baseline_with_titles_and_hashes(shopee_csv: Path, tmp_path: Path) -> None:
    with Store(tmp_path / "shopee.db") as store:
        report = import_catalog(store, shopee_csv)
        assert report.rows == 27_328 and report.problems == []

        result = matching.run_pipeline(store, "baseline", MatchSettings(), save=False)
        scores = evaluation.evaluate_result(store, result)

    # Measured 0.707 (precision 0.741, recall 0.801); self-only is about 0.47.
    assert scores["postings"] == 27_328
    assert 0.65 < scores["f1"] < 0.8


# -- real MobileNet 0.25 vectors ----------------------------------------------------------------
@pytest.fixture(scope="module")
def mobilenet_settings(weights_dir: Path) -> MatchSettings:
    return MatchSettings(image_alpha=0.25, weights_dir=str(weights_dir), batch_size=64)


@pytest.fixture(scope="module")
def embedded_demo(demo_store: Store, mobilenet_settings: MatchSettings) -> Store:
    added = models.embed_images(demo_store, mobilenet_settings)
    assert added == demo_store.count_postings()
    return demo_store


@pytest.mark.tf
@pytest.mark.slow
def test_baseline_with_mobilenet_vectors(embedded_demo: Store, mobilenet_settings) -> None:
    hash_only = matching.run_pipeline(embedded_demo, "baseline", mobilenet_settings, hash_only=True)
    with_vectors = matching.run_pipeline(embedded_demo, "baseline", mobilenet_settings)

    plain = evaluation.evaluate_result(embedded_demo, hash_only)
    neural = evaluation.evaluate_result(embedded_demo, with_vectors)

    # No fallback: every image has a vector. Generic features rate most packshots alike, so
    # many postings reach the match cap, and the run says so.
    assert not any("hashes" in notice for notice in with_vectors.notices)
    assert with_vectors.capped > 0
    assert any("reached the cap of 50 matches" in notice for notice in with_vectors.notices)
    rules = with_vectors.pairs["rule"].str.split("+").explode()
    assert "image" in set(rules) and "hash" not in set(rules)  # vectors replace hashes
    image = with_vectors.pairs[with_vectors.pairs["rule"].str.contains("image")]
    assert (image["image_cosine"] >= 0.85 - 1e-6).all()
    # Measured: F1 0.18 (precision 0.12, recall 0.92) against hash-only 0.54 (recall 0.51):
    # generic ImageNet features find the group's photos but call most packshots alike at 0.85.
    assert neural["recall"] > plain["recall"] + 0.2
    assert 0.1 < neural["f1"] < plain["f1"]


@pytest.mark.tf
@pytest.mark.slow
def test_stricter_image_threshold_never_adds_pairs(embedded_demo, mobilenet_settings) -> None:
    inputs = load_inputs(embedded_demo, (models.image_model_name(mobilenet_settings), None))
    assert inputs.vector_count == embedded_demo.count_postings()

    # Uncapped (the cap keeps each posting's best, which a stricter rule may reshuffle).
    uncapped = mobilenet_settings.replace(top_k=1000, max_matches=1000)
    found = [
        pair_keys(match_baseline(inputs, uncapped.replace(baseline_image_cosine=t)))
        for t in (0.8, 0.85, 0.9, 0.95)
    ]

    for looser, stricter in zip(found, found[1:], strict=False):
        assert stricter <= looser
    assert len(found[0]) > 2 * len(found[-1])


# -- a small trained Siamese model --------------------------------------------------------------
@pytest.mark.tf
@pytest.mark.slow
def test_siamese_trains_saves_reloads_and_feeds_the_ensemble(
    demo_catalog: Path, weights_dir: Path, tmp_path: Path
) -> None:
    from core.embedders.siamese import SiameseConfig, SiameseEmbedder
    from core.embedders.siamese_training import train_siamese

    frame = pd.read_csv(demo_catalog, dtype=str)
    subset = frame[frame["label_group"].isin(sorted(frame["label_group"].unique())[:16])]
    subset_csv = tmp_path / "subset.csv"
    subset.to_csv(subset_csv, index=False)
    store = Store(tmp_path / "subset.db")
    import_catalog(store, subset_csv, demo_catalog.parent / "images")
    postings = store.postings()
    paths = [Path(p) for p in postings["image_path"]]
    config = SiameseConfig(backbone="mobilenet", alpha=0.25, image_size=96, epochs=2, seed=1)

    trained = train_siamese(
        paths, postings["label_group"].tolist(), config, weights_dir=weights_dir
    )
    assert config.history == [] and config.calibrated_distance is None  # handed in unchanged
    config = trained.config
    before = trained.embed(paths[:12])
    model_dir = tmp_path / "model"
    trained.save(model_dir)
    loaded = SiameseEmbedder.load(model_dir)
    after = loaded.embed(paths[:12])

    assert all(np.isfinite(h["loss"]) for h in config.history)
    assert before.shape == (12, 128)
    np.testing.assert_allclose(np.linalg.norm(before, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(after, before, atol=1e-6)
    assert loaded.version == trained.version == models.siamese_version(model_dir)

    settings = MatchSettings(siamese_image_size=96)
    assert models.embed_siamese(store, settings, model_dir) == len(postings)
    ensemble = matching.run_pipeline(store, "ensemble", settings, model_dir=model_dir)
    hash_only = matching.run_pipeline(store, "ensemble", settings, hash_only=True)
    scores = evaluation.evaluate_result(store, ensemble)
    plain = evaluation.evaluate_result(store, hash_only)

    # Training held three of the 16 products back and calibrated a distance on them; the
    # kept epoch is the one whose distance scored best there.
    calibration = config.calibration
    assert calibration["products"] >= 3 and calibration["f1"] >= calibration["f1_at_default"]
    calibrating = [h for h in config.history if not h.get("refit")]
    assert calibration["epoch"] == 1 + int(np.argmax([h["calibration_f1"] for h in calibrating]))
    # Then trained afresh on all 16 products for that many epochs.
    refit = [h["epoch"] for h in config.history if h.get("refit")]
    assert calibration["refit"] and refit == list(range(1, calibration["epoch"] + 1))
    assert (
        loaded.config.calibrated_distance == config.calibrated_distance == calibration["distance"]
    )
    calibrated = matching.run_pipeline(
        store,
        "ensemble",
        settings.replace(siamese_threshold="calibrated"),
        model_dir=model_dir,
    )
    applied = MatchSettings.from_dict(store.match_run("ensemble")["settings"])
    assert applied.ensemble_image_distance == config.calibrated_distance
    assert calibrated.notices == []
    image_rule = calibrated.pairs["rule"].str.contains("image")
    assert (calibrated.pairs.loc[image_rule, "siamese_distance"] < config.calibrated_distance).all()

    assert ensemble.notices == []
    rules = set(ensemble.pairs["rule"].str.split("+").explode())
    assert "hash" not in rules and rules & {"image", "combined"}
    image = ensemble.pairs[ensemble.pairs["rule"].str.contains("image")]
    assert (image["siamese_distance"] < 0.95).all()
    # Two short epochs on ~65 photos: the score is measured, not tuned for, but the trained
    # vectors must find more of each product's photos than the hashes do.
    self_f1 = evaluation.evaluate_result(store, self_only(store))["f1"]
    assert plain["f1"] > self_f1
    assert scores["recall"] > plain["recall"]
    store.close()
