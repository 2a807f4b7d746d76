"""Settings with the original write-ups' thresholds as defaults, and where data lives."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

from core.errors import SameSameError

NeighbourBackend = Literal["auto", "sklearn", "faiss", "hnsw"]
ImageBackbone = Literal["mobilenet", "mobilenetv2", "vgg16"]
SiameseLoss = Literal["margin", "triplet", "arcface"]

_BACKBONES = ("mobilenet", "mobilenetv2", "vgg16")
_MOBILENET_ALPHAS = (0.25, 0.5, 0.75, 1.0)


def data_dir() -> Path:
    """The folder holding databases, the demo catalog, uploads and trained models.

    ``SAMESAME_HOME`` wins; otherwise the XDG user data folder (``~/.local/share/samesame``).
    """
    explicit = os.environ.get("SAMESAME_HOME")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "samesame"


def default_weights_dir() -> Path:
    """Where pretrained ``.h5`` files are looked up before Keras tries to download them."""
    return data_dir() / "weights"


@dataclass(frozen=True)
class MatchSettings:
    """Every threshold and model choice of the pipelines; frozen so a result knows its inputs.

    Defaults are the original write-ups' numbers: baseline image cosine >= 0.85 and TF-IDF
    cosine >= 0.5; ensemble Siamese distance < 0.95, SequenceMatcher ratio > 0.55, or
    distance + (1 - ratio) < 1.4.
    """

    baseline_image_cosine: float = 0.85
    baseline_text_cosine: float = 0.5
    hash_max_distance: int = 8
    ensemble_image_distance: float = 0.95
    ensemble_text_ratio: float = 0.55
    ensemble_combined: float = 1.4
    top_k: int = 50
    neighbour_backend: NeighbourBackend = "auto"
    image_backbone: ImageBackbone = "mobilenet"
    image_alpha: float = 1.0
    image_size: int = 224
    siamese_backbone: ImageBackbone = "vgg16"
    siamese_alpha: float = 1.0
    siamese_image_size: int = 200
    siamese_embedding_dim: int = 128
    siamese_epochs: int = 6
    siamese_loss: SiameseLoss = "margin"
    siamese_train_backbone: bool = False
    translate_titles: bool = False
    batch_size: int = 32
    weights_dir: str = ""

    def __post_init__(self) -> None:
        problems = []
        for name in ("baseline_image_cosine", "baseline_text_cosine", "ensemble_text_ratio"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                problems.append(f"{name} must be between 0 and 1, got {value}")
        if not 0 <= self.hash_max_distance <= 64:
            problems.append(f"hash_max_distance must be 0..64 bits, got {self.hash_max_distance}")
        if not 0.0 <= self.ensemble_image_distance <= 2.0:
            problems.append("ensemble_image_distance must be between 0 and 2 (unit vectors)")
        if not 0.0 <= self.ensemble_combined <= 3.0:
            problems.append("ensemble_combined must be between 0 and 3")
        if self.top_k < 1:
            problems.append(f"top_k must be at least 1, got {self.top_k}")
        if self.neighbour_backend not in ("auto", "sklearn", "faiss", "hnsw"):
            problems.append(
                "neighbour_backend must be auto, sklearn, faiss or hnsw, not "
                f"{self.neighbour_backend!r}"
            )
        for name in ("image_backbone", "siamese_backbone"):
            if getattr(self, name) not in _BACKBONES:
                problems.append(f"{name} must be one of {', '.join(_BACKBONES)}")
        for name in ("image_alpha", "siamese_alpha"):
            if getattr(self, name) not in _MOBILENET_ALPHAS:
                problems.append(f"{name} must be one of {_MOBILENET_ALPHAS}")
        for name in ("image_size", "siamese_image_size"):
            if not 32 <= getattr(self, name) <= 1024:
                problems.append(f"{name} must be between 32 and 1024 pixels")
        if self.siamese_loss not in ("margin", "triplet", "arcface"):
            problems.append("siamese_loss must be margin, triplet or arcface")
        if self.batch_size < 1:
            problems.append("batch_size must be at least 1")
        if self.siamese_epochs < 1:
            problems.append("siamese_epochs must be at least 1")
        if problems:
            raise SameSameError("Invalid settings: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> MatchSettings:
        """Build from stored or user values, ignoring unknown keys (older/newer versions)."""
        known = {f.name: f for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in values.items():
            if key not in known:
                continue
            default = known[key].default
            try:
                if isinstance(default, bool):
                    kwargs[key] = (
                        value
                        if isinstance(value, bool)
                        else str(value).lower() in ("1", "true", "yes", "on")
                    )
                elif isinstance(default, int):
                    kwargs[key] = int(value)
                elif isinstance(default, float):
                    kwargs[key] = float(value)
                else:
                    kwargs[key] = str(value)
            except (TypeError, ValueError) as exc:
                raise SameSameError(f"Setting {key!r} has an invalid value {value!r}") from exc
        return cls(**kwargs)

    def replace(self, **changes: Any) -> MatchSettings:
        return dataclasses.replace(self, **changes)

    def resolved_weights_dir(self) -> Path:
        return Path(self.weights_dir).expanduser() if self.weights_dir else default_weights_dir()
