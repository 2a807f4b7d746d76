"""Training the Siamese network: P×K batches, a metric loss, and a distance threshold
calibrated on products held back from training (`core.embedders.calibration`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from core.embedders.base import decoded_batches
from core.embedders.calibration import Calibration, calibrate_distance, held_back_products
from core.embedders.siamese import (
    Progress,
    SiameseConfig,
    SiameseEmbedder,
    build_head,
    build_siamese,
    trained_members,
)
from core.embedders.siamese_network import (
    TrainingNetwork,
    backbone_features,
    embed_members,
    served_model,
    train_step,
)
from core.errors import SameSameError

logger = logging.getLogger(__name__)

LOSSES = ("triplet", "margin", "arcface")


AUGMENTATIONS = ("standard", "shelf")


def _augmenter(kind: str = "standard"):
    """Random changes of a photo the network must ignore. "shelf" mimics photos taken in
    shops: tighter crops, tilted and skewed views, harsher light and colour, blur, and parts
    hidden by other things on the shelf."""
    import keras

    if kind not in AUGMENTATIONS:
        raise SameSameError(f"Unknown augmentation {kind!r}; use {' or '.join(AUGMENTATIONS)}")
    if kind == "standard":
        layers = [
            keras.layers.RandomFlip("horizontal"),
            keras.layers.RandomRotation(0.05, fill_mode="reflect"),
            keras.layers.RandomZoom((-0.2, 0.1), fill_mode="reflect"),
            keras.layers.RandomTranslation(0.08, 0.08, fill_mode="reflect"),
            keras.layers.RandomContrast(0.2),
            keras.layers.RandomBrightness(0.15, value_range=(0.0, 255.0)),
        ]
    else:
        layers = [
            keras.layers.RandomFlip("horizontal"),
            keras.layers.RandomRotation(0.1, fill_mode="reflect"),
            keras.layers.RandomZoom((-0.4, 0.1), fill_mode="reflect"),
            keras.layers.RandomTranslation(0.12, 0.12, fill_mode="reflect"),
            keras.layers.RandomPerspective(factor=0.5, scale=0.5),
            keras.layers.RandomContrast(0.3),
            keras.layers.RandomBrightness(0.3, value_range=(0.0, 255.0)),
            keras.layers.RandomSaturation((0.35, 0.65), value_range=(0.0, 255.0)),
            keras.layers.RandomGaussianBlur(factor=0.2, sigma=(0.0, 1.0), value_range=(0.0, 255.0)),
            keras.layers.RandomErasing(factor=0.5, scale=(0.02, 0.2), value_range=(0.0, 255.0)),
        ]
    return keras.Sequential(layers, name="augment")


@dataclass(frozen=True)
class _Groups:
    """The training pictures' label groups.

    Attributes:
        labels: each picture's label, as a string.
        y: (pictures,) int32 label numbers.
        classes: how many labels there are.
        trainable: the pictures of each group of two or more (single ones serve as negatives).
        fitted: the trainable groups not held back to calibrate.
        held: the label numbers held back to calibrate the distance.
        calibration_rows, fit_rows: the pictures held back, and the others.
    """

    labels: list[str]
    y: np.ndarray
    classes: int
    trainable: list[np.ndarray]
    fitted: list[np.ndarray]
    held: set[int]
    calibration_rows: np.ndarray
    fit_rows: np.ndarray


def _label_groups(labels: Sequence[str], config: SiameseConfig) -> _Groups:
    """The label groups, and which are held back to calibrate.

    Raises:
        SameSameError: fewer than two groups with at least two images.
    """
    labels = [str(label) for label in labels]
    label_ids = {label: i for i, label in enumerate(dict.fromkeys(labels))}
    y = np.array([label_ids[label] for label in labels], dtype=np.int32)
    groups = [np.flatnonzero(y == g) for g in range(len(label_ids))]
    trainable = [g for g in groups if len(g) >= 2]
    if len(trainable) < 2:
        raise SameSameError(
            "Training the Siamese model needs at least two label groups with two or more images "
            f"each; this catalog has {len(trainable)}."
        )
    held = {label_ids[label] for label in held_back_products(labels, config.calibration_share)}
    return _Groups(
        labels=labels,
        y=y,
        classes=len(label_ids),
        trainable=trainable,
        fitted=[g for g in trainable if int(y[g[0]]) not in held],
        held=held,
        calibration_rows=np.flatnonzero(np.isin(y, sorted(held))),
        fit_rows=np.flatnonzero(~np.isin(y, sorted(held))),
    )


class _Trainer:
    """Trains the networks phase by phase (calibrating on the held-back products, then
    optionally a refit on every product) and keeps what the phases share: the pictures, their
    backbone features, the progress count, the history and the best calibrating epoch."""

    def __init__(
        self,
        config: SiameseConfig,
        groups: _Groups,
        pixels: np.ndarray,
        augment,
        weights_dir: Path | None,
        progress: Progress | None,
    ) -> None:
        self.config, self.groups, self.pixels, self.augment = config, groups, pixels, augment
        self.weights_dir, self.progress = weights_dir, progress
        self.per_batch = config.groups_per_batch * config.images_per_group
        self.copies = 1 if config.train_backbone else 1 + config.augment_copies
        refit = bool(groups.held) and config.calibration_refit
        self.phases = [(groups.fitted, True)] + ([(groups.trainable, False)] if refit else [])
        # Without a refit the best calibrating epoch's weights are the ones kept.
        self.restore_best = len(self.phases) == 1
        self.members = trained_members(config.members, config.train_backbone)
        self.config = config = replace(config, members=self.members)
        self.total = sum(
            self.steps_for(chosen) * config.epochs * self.members for chosen, _ in self.phases
        )
        self.done = 0
        self.history: list[dict] = []
        self.started = time.perf_counter()
        self.chosen_calibration: tuple[int, Calibration] | None = None
        self.clean: np.ndarray | None = None
        self.bank: np.ndarray | None = None

    def steps_for(self, chosen_groups: list[np.ndarray]) -> int:
        """Steps per epoch and network: each chosen picture (and copy) seen about once."""
        return max(1, sum(len(g) for g in chosen_groups) * self.copies // self.per_batch)

    def _backbone_bank(self, base) -> None:
        """The clean pictures' backbone features, and with a frozen backbone a bank of
        (copies, pictures, features): the clean ones and ``augment_copies`` augmented ones."""
        config = self.config
        self.clean = backbone_features(base, self.pixels, config.backbone)
        if not config.train_backbone:
            augmented = [
                backbone_features(base, self.pixels, config.backbone, self.augment)
                for _ in range(config.augment_copies)
            ]
            self.bank = np.stack([self.clean] + augmented)

    def _networks(self, calibrating: bool) -> list[TrainingNetwork]:
        """Fresh networks from the ImageNet backbone, their feature standardisation adapted to
        the pictures the phase learns from."""
        import keras

        config = self.config
        keras.utils.set_random_seed(config.seed)
        _, base, first_head = build_siamese(config, self.weights_dir)
        if self.clean is None:  # every phase starts from the same ImageNet backbone
            self._backbone_bank(base)
        feature_dim = int(base.output_shape[-1])
        heads = [first_head] + [build_head(config, feature_dim, m) for m in range(1, self.members)]
        networks = [
            TrainingNetwork(config, base, head, self.groups.classes, self.augment, member)
            for member, head in enumerate(heads)
        ]
        rows = self.groups.fit_rows if calibrating else np.arange(len(self.groups.y))
        for network in networks:
            network.head.get_layer("feature_norm").adapt(self.clean[rows])
        return networks

    def _train_epoch(
        self, networks: list[TrainingNetwork], rngs: list, chosen_groups: list[np.ndarray]
    ) -> float:
        """One epoch of every network; returns the mean loss."""
        steps = self.steps_for(chosen_groups)
        losses = []
        for network, rng in zip(networks, rngs, strict=True):
            for _ in range(steps):
                losses.append(
                    train_step(
                        network,
                        rng,
                        chosen_groups,
                        self.groups.y,
                        self.pixels,
                        self.bank,
                        self.config,
                    )
                )
                self.done += 1
                if self.progress is not None:
                    self.progress(self.done, self.total)
        return float(np.mean(losses))

    def _calibrate(self, networks: list[TrainingNetwork], epoch: int, entry: dict) -> bool:
        """The held-back products' best distance after this epoch, into ``entry``; True when
        it is the best epoch so far."""
        rows = self.groups.calibration_rows
        features = self.clean[rows] if self.bank is not None else None
        vectors = embed_members(networks, self.pixels[rows], features)
        labels = [self.groups.labels[i] for i in rows]
        found = calibrate_distance(vectors, labels, self.config.boundary)
        entry["calibrated_distance"] = found.distance
        entry["calibration_f1"] = found.f1
        if self.chosen_calibration is None or found.f1 > self.chosen_calibration[1].f1:
            self.chosen_calibration = (epoch, found)
            return True
        return False

    def run_phase(
        self,
        chosen_groups: list[np.ndarray],
        calibrating: bool,
        on_epoch_end: Callable[[int, SiameseEmbedder], dict] | None,
        batch_size: int,
    ) -> list[TrainingNetwork]:
        """Train fresh networks on ``chosen_groups``: calibrating, for ``config.epochs``;
        refitting, for as many epochs as calibrated best."""
        config = self.config
        rngs = [np.random.default_rng(config.seed + member) for member in range(self.members)]
        networks = self._networks(calibrating)
        epochs = config.epochs if calibrating else self.chosen_calibration[0]
        kept_weights = None
        for epoch in range(1, epochs + 1):
            entry = {
                "epoch": epoch,
                "loss": self._train_epoch(networks, rngs, chosen_groups),
                "seconds": round(time.perf_counter() - self.started, 2),
            }
            if not calibrating:
                entry["refit"] = True
            if calibrating and len(self.groups.calibration_rows):
                if self._calibrate(networks, epoch, entry) and self.restore_best:
                    kept_weights = [network.trained.get_weights() for network in networks]
            if on_epoch_end is not None:
                current = SiameseEmbedder(
                    served_model(config, networks), config, "unsaved", batch_size
                )
                entry.update(on_epoch_end(epoch, current))
            self.history.append(entry)
            logger.info("siamese epoch %d: %s", epoch, entry)
        if kept_weights is not None:
            for network, weights in zip(networks, kept_weights, strict=True):
                network.trained.set_weights(weights)
        return networks

    def record(self) -> SiameseConfig:
        """The configuration with the history and the chosen calibration."""
        distance, calibration = None, {}
        if self.chosen_calibration is not None:
            epoch, found = self.chosen_calibration
            distance = found.distance
            calibration = {**found.to_dict(), "epoch": epoch, "refit": not self.restore_best}
        return replace(
            self.config,
            history=self.history,
            calibrated_distance=distance,
            calibration=calibration,
        )


def train_siamese(
    sources: Sequence[Path | bytes],
    labels: Sequence[str],
    config: SiameseConfig,
    *,
    weights_dir: Path | None = None,
    progress: Progress | None = None,
    batch_size: int = 32,
    on_epoch_end: Callable[[int, SiameseEmbedder], dict] | None = None,
) -> SiameseEmbedder:
    """Train the Siamese network on P×K batches (P groups × K pictures) with a metric loss.

    With ``config.train_backbone`` False (default) the backbone is frozen: features of each
    picture and of ``augment_copies`` augmented copies (crops, flips, rotation, colour jitter)
    are computed once and the head learns from them. With True, the whole network is fine-tuned
    with augmentation applied on the fly.

    With ``config.calibration_share`` > 0 and enough products, that share of the products is
    held back: after each epoch the distance threshold with the best per-posting F1 among their
    photos is found, the epoch whose threshold scores best is kept (early stopping on unseen
    products), and its threshold is stored in ``config.calibrated_distance``. With
    ``config.calibration_refit`` the network is then trained afresh on every product for that
    many epochs.

    Args:
        sources: image files (or bytes), one per posting.
        labels: their label groups; groups with a single image only serve as negatives.
        progress: called with (steps done, total steps).
        on_epoch_end: called with (epoch, current model); the dict it returns (e.g. held-out
            F1) is added to that epoch's history entry.

    Raises:
        SameSameError: fewer than two groups with at least two images, or an unknown loss.
    """
    import keras

    if len(sources) != len(labels):
        raise ValueError("sources and labels differ in length")
    if config.loss not in LOSSES:
        raise SameSameError(f"Unknown Siamese loss {config.loss!r}; use margin, triplet or arcface")
    groups = _label_groups(labels, config)
    keras.utils.set_random_seed(config.seed)
    pixels = np.concatenate(list(decoded_batches(list(sources), config.image_size, 64)))
    augment = _augmenter(config.augmentation)
    trainer = _Trainer(config, groups, pixels, augment, weights_dir, progress)
    networks: list[TrainingNetwork] = []
    for chosen_groups, calibrating in trainer.phases:
        networks = trainer.run_phase(chosen_groups, calibrating, on_epoch_end, batch_size)
    if progress is not None:
        progress(trainer.total, trainer.total)
    trained = trainer.record()
    return SiameseEmbedder(
        served_model(trained, networks), trained, version="unsaved", batch_size=batch_size
    )
