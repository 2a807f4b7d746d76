"""MatchSettings: defaults from the write-ups, validation, (de)serialisation; the data folder."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from core.errors import SameSameError
from core.settings import MatchSettings, data_dir, default_weights_dir


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
        ({"hash_max_distance": 65}, "hash_max_distance must be 0..64 bits, got 65"),
        ({"ensemble_image_distance": 2.5}, "ensemble_image_distance must be between 0 and 2"),
        ({"ensemble_combined": -1.0}, "ensemble_combined must be between 0 and 3"),
        ({"top_k": 0}, "top_k must be at least 1, got 0"),
        ({"neighbour_backend": "annoy"}, "neighbour_backend must be auto, sklearn, faiss or hnsw"),
        ({"image_backbone": "resnet"}, "image_backbone must be one of mobilenet"),
        ({"image_alpha": 0.3}, r"image_alpha must be one of \(0.25, 0.5, 0.75, 1.0\)"),
        ({"siamese_image_size": 16}, "siamese_image_size must be between 32 and 1024"),
        ({"batch_size": 0}, "batch_size must be at least 1"),
        ({"siamese_epochs": 0}, "siamese_epochs must be at least 1"),
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
