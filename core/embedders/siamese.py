"""The ensemble's image embedder: a Siamese network trained with triplet loss on the catalog's
labelled groups (an ImageNet backbone, a projection, unit-length output).

Distances between its vectors are Euclidean on the unit sphere (0..2); the ensemble rule calls
two postings the same product when the distance is under 0.95.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from core.embedders.backbones import load_backbone, preprocess
from core.embedders.base import ImageEmbedder
from core.embedders.keras_files import side_by_side
from core.errors import ModelNotTrainedError
from core.settings import MatchSettings

logger = logging.getLogger(__name__)

MODEL_FILE = "siamese.keras"
CONFIG_FILE = "siamese.json"

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class SiameseConfig:
    """How the Siamese network is built and trained, and what its training found (history,
    calibrated distance). Immutable: `train_siamese` returns a model holding a new record."""

    backbone: str = "vgg16"
    alpha: float = 1.0
    image_size: int = 200
    embedding_dim: int = 128
    epochs: int = 6
    groups_per_batch: int = 8
    images_per_group: int = 4
    learning_rate: float = 1e-3
    #: margin loss: how far past the boundary each pair is pushed
    margin: float = 0.3
    #: triplet loss: how much nearer a product's photo must be than another product's; chosen
    #: by nested selection on training products only (BENCHMARKS.md, grocery)
    triplet_margin: float = 0.8
    #: "triplet" (semi-hard mining, the original write-up's loss), "margin" (pairs pushed to
    #: either side of the match boundary) or "arcface" (normalised softmax, angular margin)
    loss: str = "triplet"
    #: False: the ImageNet backbone stays frozen and only the head learns, on features of
    #: augmented copies computed once. On small catalogs this generalises better to unseen
    #: products (measured on the grocery photos) and trains several times faster on a CPU.
    train_backbone: bool = False
    augment_copies: int = 4
    #: "standard" (flips, small crops and turns, light) or "shelf" (stronger: tighter crops,
    #: perspective, colour, blur, hidden parts; see `siamese_training._augmenter`)
    augmentation: str = "standard"
    hidden_units: int = 256
    boundary: float = 0.95
    arcface_scale: float = 30.0
    arcface_margin: float = 0.3
    #: share of the products held back to calibrate the distance threshold and stop early
    #: (`core.embedders.calibration`); 0 trains on every product with no calibration
    calibration_share: float = 0.2
    #: after calibrating, train afresh on every product (held-back ones too) for the epochs
    #: that calibrated best; chosen by nested selection on the grocery training products
    #: (BENCHMARKS.md): the model then matches as well at the fixed 0.95 as one trained on all
    calibration_refit: bool = True
    #: heads trained side by side from different random starts (one shared frozen backbone,
    #: so embedding costs nearly the same); the served vector puts theirs side by side, its
    #: distance comes from the mean of their cosines. A fine-tuned backbone trains one.
    members: int = 1
    seed: int = 0
    #: set by training: the distance with the best F1 on the held-back products, or None
    calibrated_distance: float | None = None
    calibration: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)

    @classmethod
    def from_settings(
        cls, settings: MatchSettings, backbone: str, image_size: int, alpha: float | None = None
    ) -> SiameseConfig:
        """What the settings choose for training on ``backbone`` at ``image_size`` pixels
        (resolved by the caller: `backbones.resolve_siamese_inputs`); ``alpha`` defaults to
        the settings' MobileNet width."""
        return cls(
            backbone=backbone,
            alpha=settings.siamese_alpha if alpha is None else alpha,
            image_size=image_size,
            embedding_dim=settings.siamese_embedding_dim,
            epochs=settings.siamese_epochs,
            loss=settings.siamese_loss,
            train_backbone=settings.siamese_train_backbone,
            members=settings.siamese_members,
            boundary=settings.ensemble_image_distance,
        )


def trained_members(members: int, train_backbone: bool) -> int:
    """How many networks training makes: they share one backbone, which only stays shared
    while it is frozen, so a fine-tuned backbone trains one."""
    return 1 if train_backbone else max(1, members)


def build_head(config: SiameseConfig, feature_dim: int, member: int = 0):
    """Pooled backbone features → standardised → MLP → unit-length embedding. Members after
    the first start from their own seed and carry their number in the name."""
    import keras

    if member:
        keras.utils.set_random_seed(config.seed + member)

    features = keras.Input((feature_dim,), name="features")
    # Pooled ReLU features all point into one orthant, so a random projection of them starts
    # with every picture close to every other; standardising them first (statistics adapted on
    # the training pictures) starts training from well-spread embeddings instead.
    x = keras.layers.Normalization(name="feature_norm")(features)
    x = keras.layers.Dense(config.hidden_units, activation="relu", name="hidden")(x)
    x = keras.layers.Dense(config.embedding_dim, name="projection")(x)
    outputs = keras.layers.UnitNormalization(name="unit")(x)
    return keras.Model(features, outputs, name=f"head_{member}" if member else "head")


def assemble(config: SiameseConfig, base, heads: list):
    """pixels → backbone → the heads' vectors side by side at unit length."""
    import keras

    inputs = keras.Input((config.image_size, config.image_size, 3), name="pixels")
    return keras.Model(inputs, side_by_side(heads, "heads")(base(inputs)), name="siamese")


def build_siamese(config: SiameseConfig, weights_dir: Path | None):
    """(full model pixels → embedding, backbone, head)."""
    import keras

    base = load_backbone(config.backbone, config.alpha, config.image_size, weights_dir)
    # Setting ``trainable`` on a model sets it on every layer inside, so the backbone's flag
    # comes first; then its BatchNorm layers are frozen even when the rest is fine-tuned:
    # batches of 32 on a CPU are too small for BatchNorm statistics, ImageNet's are kept.
    base.trainable = config.train_backbone
    for layer in base.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    head = build_head(config, int(base.output_shape[-1]))
    return assemble(config, base, [head]), base, head


class SiameseEmbedder(ImageEmbedder):
    """A trained Siamese network; load with `SiameseEmbedder.load(folder)`."""

    name = "siamese"

    def __init__(self, model, config: SiameseConfig, version: str, batch_size: int = 32) -> None:
        self.model = model
        self.config = config
        self.image_size = config.image_size
        self.version = version
        self.batch_size = batch_size

    def _prepare(self, pixels: np.ndarray) -> np.ndarray:
        return preprocess(self.config.backbone, pixels)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        tmp_model = folder / (MODEL_FILE + ".tmp.keras")
        self.model.save(tmp_model)
        tmp_model.replace(folder / MODEL_FILE)
        self.version = _file_digest(folder / MODEL_FILE)
        (folder / CONFIG_FILE).write_text(
            json.dumps({**asdict(self.config), "version": self.version}, indent=2)
        )

    @classmethod
    def load(cls, folder: Path, batch_size: int = 32) -> SiameseEmbedder:
        """Load a saved model (Keras' own format, safe_mode: no code is executed on load)."""
        import keras

        model_path, config_path = Path(folder) / MODEL_FILE, Path(folder) / CONFIG_FILE
        if not model_path.is_file() or not config_path.is_file():
            raise ModelNotTrainedError(
                f"No trained Siamese model in {folder}. Train one first "
                "(python -m core train … or the Embed page)."
            )
        try:
            stored = json.loads(config_path.read_text())
            stored.pop("version", None)
            config = SiameseConfig(**stored)
            model = keras.models.load_model(model_path, safe_mode=True, compile=False)
        except Exception as exc:  # Keras raises ValueError, TypeError, OSError, zipfile errors…
            raise ModelNotTrainedError(
                f"The Siamese model in {folder} cannot be loaded safely: its files are damaged, "
                "from another version, or hold custom code (which is refused). Retrain it."
            ) from exc
        return cls(model, config, _file_digest(model_path), batch_size)


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
