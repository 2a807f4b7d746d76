"""MatchSettings: defaults from the write-ups, validation, (de)serialisation; the data folder."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from core.errors import SameSameError
from core.settings import SETTING_SPECS, MatchSettings, data_dir, default_weights_dir


def test_defaults_are_the_write_ups_thresholds() -> None:
    settings = MatchSettings()
    assert (settings.baseline_image_cosine, settings.baseline_text_cosine) == (0.85, 0.5)
    assert settings.ensemble_image_distance == 0.95
    assert settings.ensemble_text_ratio == 0.55
    assert settings.ensemble_combined == 1.4


def test_settings_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        MatchSettings().top_k = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"baseline_image_cosine": 1.5}, "baseline_image_cosine must be between 0 and 1, got 1.5"),
        ({"ensemble_text_ratio": -0.1}, "ensemble_text_ratio must be between 0 and 1"),
        ({"hash_max_distance": 65}, "hash_max_distance must be between 0 and 64, got 65"),
        ({"ensemble_image_distance": 2.5}, "ensemble_image_distance must be between 0 and 2"),
        ({"ensemble_combined": -1.0}, "ensemble_combined must be between 0 and 3"),
        ({"top_k": 0}, "top_k must be between 1 and 1000, got 0"),
        (
            {"neighbour_backend": "annoy"},
            "neighbour_backend must be one of auto, sklearn, faiss, hnsw",
        ),
        ({"image_backbone": "resnet"}, "image_backbone must be one of mobilenet"),
        ({"image_alpha": 0.3}, "image_alpha must be one of 0.25, 0.5, 0.75, 1.0, not 0.3"),
        ({"siamese_image_size": 16}, r"siamese_image_size must be 0 \(the backbone's own size\)"),
        ({"batch_size": 0}, "batch_size must be between 1 and 4096"),
        ({"siamese_epochs": 0}, "siamese_epochs must be between 1 and 500"),
    ],
)
def test_invalid_values_are_refused_with_the_field_named(changes: dict, message: str) -> None:
    with pytest.raises(SameSameError, match=message):
        MatchSettings(**changes)
    with pytest.raises(SameSameError, match=message):
        MatchSettings().replace(**changes)


def test_all_problems_are_reported_together() -> None:
    with pytest.raises(SameSameError, match="top_k.*batch_size"):
        MatchSettings(top_k=0, batch_size=0)


def test_dict_round_trip_and_coercion() -> None:
    custom = MatchSettings(baseline_text_cosine=0.6, top_k=10, translate_titles=True)
    assert MatchSettings.from_dict(custom.to_dict()) == custom

    coerced = MatchSettings.from_dict(
        {"top_k": "12", "baseline_text_cosine": "0.7", "translate_titles": "yes", "future": 1}
    )
    assert (coerced.top_k, coerced.baseline_text_cosine, coerced.translate_titles) == (
        12,
        0.7,
        True,
    )
    assert MatchSettings.from_dict({"translate_titles": "off"}).translate_titles is False


def test_from_dict_names_an_invalid_value() -> None:
    with pytest.raises(SameSameError, match="Setting 'top_k' has an invalid value 'many'"):
        MatchSettings.from_dict({"top_k": "many"})


def test_data_dir_follows_samesame_home_then_xdg(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SAMESAME_HOME", str(tmp_path / "home"))
    assert data_dir() == tmp_path / "home"
    assert default_weights_dir() == tmp_path / "home" / "weights"

    monkeypatch.delenv("SAMESAME_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert data_dir() == tmp_path / "xdg" / "samesame"


def test_weights_dir_setting_wins(tmp_path: Path, samesame_home: Path) -> None:
    assert MatchSettings().resolved_weights_dir() == samesame_home / "weights"
    assert MatchSettings(weights_dir=str(tmp_path)).resolved_weights_dir() == tmp_path


def test_every_setting_is_described_once_for_people() -> None:
    """Label, help, group and a range (or choices) for each field: the CLI, the Settings page
    and the Evaluate sliders are generated from these."""
    names = [spec.name for spec in SETTING_SPECS]
    assert names == [f.name for f in dataclasses.fields(MatchSettings)]
    for spec in SETTING_SPECS:
        assert spec.label and spec.group and len(spec.help) > 20, spec.name
        if spec.kind in (int, float) and spec.choices is None:
            assert spec.minimum is not None and spec.maximum is not None and spec.step, spec.name
            assert spec.minimum <= spec.default <= spec.maximum, spec.name
    assert {s.scope for s in SETTING_SPECS if s.name in ("weights_dir", "batch_size")} == {
        "machine"
    }


def test_generated_cli_flags_set_the_fields() -> None:
    from core.cli import build_parser
    from core.cli.common import settings_from

    args = build_parser().parse_args(
        [
            "match",
            "--max-matches",
            "7",
            "--cluster-min-link",
            "0.4",
            "--no-translate",
            "--best-k-word",
            "9",
            "--alpha",
            "0.25",
        ]
    )

    class Stored:
        def load_settings(self) -> MatchSettings:
            return MatchSettings(top_k=20)

    chosen = settings_from(args, Stored())
    assert (chosen.max_matches, chosen.cluster_min_link, chosen.best_k_word) == (7, 0.4, 9)
    assert chosen.translate_titles is False and chosen.image_alpha == 0.25 and chosen.top_k == 20


def test_machine_settings_apply_to_every_catalog_thresholds_stay_with_theirs(
    tmp_path, samesame_home
) -> None:
    from core.settings.machine import MACHINE_FILE
    from core.store import Store

    with Store(tmp_path / "a.db") as first:
        first.save_settings(
            MatchSettings(image_alpha=0.25, weights_dir=str(tmp_path), baseline_image_cosine=0.9)
        )
    with Store(tmp_path / "b.db") as second:
        seen = second.load_settings()
        # The model and the weights folder were set once, for this computer...
        assert seen.image_alpha == 0.25 and seen.weights_dir == str(tmp_path)
        # ...the threshold belongs to the first catalog only.
        assert seen.baseline_image_cosine == MatchSettings().baseline_image_cosine
    assert (samesame_home / MACHINE_FILE).is_file()
    with Store(tmp_path / "a.db") as first:
        assert first.load_settings().baseline_image_cosine == 0.9


def test_an_unreadable_machine_settings_file_means_the_defaults(tmp_path, samesame_home) -> None:
    from core.settings.machine import MACHINE_FILE
    from core.store import Store

    (samesame_home / MACHINE_FILE).write_text("{ not json")
    with Store(tmp_path / "a.db") as store:
        assert store.load_settings().image_alpha == MatchSettings().image_alpha


@pytest.mark.parametrize(
    ("flag", "threshold", "distance"),
    [("calibrated", "calibrated", 0.95), ("0.7", "fixed", 0.7), ("fixed", "fixed", 0.95)],
)
def test_siamese_threshold_flag_takes_calibrated_or_a_number(flag, threshold, distance) -> None:
    from core.cli import build_parser
    from core.cli.common import settings_from

    class Stored:
        def load_settings(self) -> MatchSettings:
            return MatchSettings(siamese_threshold="calibrated")

    args = build_parser().parse_args(["match", "--siamese-threshold", flag])
    chosen = settings_from(args, Stored())
    assert (chosen.siamese_threshold, chosen.ensemble_image_distance) == (threshold, distance)


def test_siamese_threshold_flag_refuses_anything_else(capsys) -> None:
    from core.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["match", "--siamese-threshold", "loose"])
    assert "use fixed, calibrated or a number, not 'loose'" in capsys.readouterr().err


def test_calibrated_setting_reads_the_distance_stored_with_the_model(tmp_path: Path) -> None:
    import json

    from core.pipelines import get_pipeline
    from core.pipelines.ensemble import with_calibrated_distance

    calibrated = MatchSettings(siamese_threshold="calibrated")
    (tmp_path / "siamese.json").write_text(json.dumps({"calibrated_distance": 0.61}))
    assert with_calibrated_distance(calibrated, tmp_path)[0].ensemble_image_distance == 0.61
    # The Spark job has a model folder and no store; the Evaluate page pins the number.
    ensemble = get_pipeline("ensemble")
    pinned, _ = ensemble.settings_for(None, calibrated, tmp_path, pin=True)
    assert (pinned.ensemble_image_distance, pinned.siamese_threshold) == (0.61, "fixed")
    # A fixed choice ignores what the model calibrated.
    fixed, note = with_calibrated_distance(MatchSettings(), tmp_path)
    assert (fixed.ensemble_image_distance, note) == (0.95, None)

    (tmp_path / "siamese.json").write_text(json.dumps({"calibrated_distance": None}))
    kept, note = with_calibrated_distance(calibrated, tmp_path)
    assert kept.ensemble_image_distance == 0.95
    assert "trained without one (retrain it to calibrate)" in note
    _, note = with_calibrated_distance(calibrated, tmp_path / "missing")
    assert note.startswith("No calibrated Siamese distance: there is no trained Siamese model")


def test_a_new_backbone_brings_its_own_photo_threshold_unless_one_was_set_by_hand() -> None:
    from core.settings.match import BACKBONE_IMAGE_COSINE

    lite2 = BACKBONE_IMAGE_COSINE["efficientnet-lite2"]
    assert lite2 != 0.85
    chosen = MatchSettings().replace(image_backbone="efficientnet-lite2")
    assert chosen.baseline_image_cosine == lite2
    assert chosen.replace(image_backbone="mobilenet").baseline_image_cosine == 0.85
    # Given with the backbone, or set by hand before: the person's number stays.
    given = MatchSettings().replace(image_backbone="efficientnet-lite2", baseline_image_cosine=0.7)
    assert given.baseline_image_cosine == 0.7
    by_hand = MatchSettings(baseline_image_cosine=0.9).replace(image_backbone="efficientnet-lite2")
    assert by_hand.baseline_image_cosine == 0.9
    # A form hands back every field: only what differs counts as changed.
    form = {**MatchSettings().to_dict(), "image_backbone": "efficientnet-lite0"}
    from_form = MatchSettings().with_values(form)
    assert from_form.baseline_image_cosine == BACKBONE_IMAGE_COSINE["efficientnet-lite0"]


def test_the_backbone_flag_brings_its_threshold_and_an_explicit_one_wins(tmp_path) -> None:
    import argparse

    from core.cli.common import settings_args, settings_from
    from core.settings.match import BACKBONE_IMAGE_COSINE
    from core.store import Store

    parser = argparse.ArgumentParser()
    settings_args(parser)
    with Store(tmp_path / "flags.db") as store:
        args = parser.parse_args(["--backbone", "efficientnet-lite2"])
        assert (
            settings_from(args, store).baseline_image_cosine
            == (BACKBONE_IMAGE_COSINE["efficientnet-lite2"])
        )
        args = parser.parse_args(["--backbone", "efficientnet-lite2", "--image-threshold", "0.6"])
        assert settings_from(args, store).baseline_image_cosine == 0.6


def test_a_backbone_chosen_from_another_catalog_brings_its_threshold_here_too(tmp_path) -> None:
    from core.settings.match import BACKBONE_IMAGE_COSINE
    from core.store import Store

    with Store(tmp_path / "a.db") as first, Store(tmp_path / "b.db") as second:
        first.save_settings(MatchSettings())  # MobileNet, its own 0.85
        second.save_settings(MatchSettings(baseline_image_cosine=0.9))  # set by hand
        # The backbone is a machine setting: chosen while the first catalog is open …
        first.save_settings(first.load_settings().replace(image_backbone="efficientnet-lite2"))
        lite2 = BACKBONE_IMAGE_COSINE["efficientnet-lite2"]
        assert first.load_settings().baseline_image_cosine == lite2
        # … it applies to the second too, whose hand-set threshold stays.
        assert second.load_settings().image_backbone == "efficientnet-lite2"
        assert second.load_settings().baseline_image_cosine == 0.9
        # Back to MobileNet: the first catalog's threshold follows.
        first.save_settings(first.load_settings().replace(image_backbone="mobilenet"))
        assert first.load_settings().baseline_image_cosine == 0.85
