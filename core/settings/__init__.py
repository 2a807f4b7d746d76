"""Settings: `MatchSettings` (every threshold and model choice, each described once with its
label, range and help) and where SameSame keeps its files."""

from __future__ import annotations

from core.settings.fields import SettingSpec
from core.settings.match import (
    BACKBONES,
    MOBILENET_ALPHAS,
    NEIGHBOUR_BACKENDS,
    SETTING_SPECS,
    SIAMESE_LOSSES,
    MatchSettings,
    spec_of,
)
from core.settings.paths import data_dir, default_weights_dir

__all__ = [
    "BACKBONES",
    "MOBILENET_ALPHAS",
    "NEIGHBOUR_BACKENDS",
    "SETTING_SPECS",
    "SIAMESE_LOSSES",
    "MatchSettings",
    "SettingSpec",
    "data_dir",
    "default_weights_dir",
    "spec_of",
]
