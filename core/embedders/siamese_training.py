"""Training the Siamese network: P×K batches, a metric loss, and a distance threshold
calibrated on products held back from training (`core.embedders.calibration`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from core.embedders.backbones import preprocess
from core.embedders.base import decoded_batches, l2_normalise
from core.embedders.calibration import Calibration, calibrate_distance, held_back_products
from core.embedders.efficientnet_lite import PIXEL_CENTRE, PIXEL_SCALE, is_lite
from core.embedders.losses import arcface_loss, boundary_margin_loss, semi_hard_triplet_loss
from core.embedders.siamese import (
    Progress,
    SiameseConfig,
    SiameseEmbedder,
    assemble,
    build_head,
    build_siamese,
    trained_members,
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


def _backbone_features(base, pixels: np.ndarray, backbone: str, augment=None) -> np.ndarray:
    parts = []
    for i in range(0, len(pixels), 64):
        batch = pixels[i : i + 64].astype(np.float32)
        if augment is not None:
            batch = np.clip(np.asarray(augment(batch, training=True)), 0.0, 255.0)
        parts.append(np.asarray(base.predict_on_batch(preprocess(backbone, batch))))
    return np.concatenate(parts)


class _Network:
    """One network being trained (one member: its own head on the shared backbone): model,
    loss, optimiser and the two kinds of step (on precomputed backbone features when the
    backbone is frozen, else on pixels)."""

    def __init__(
        self, config: SiameseConfig, base, head, classes: int, augment, member: int = 0
    ) -> None:
        import keras
        import tensorflow as tf

        self.config = config
        self.base, self.head = base, head
        self.model = assemble(config, base, [head])
        class_head = None
        if config.loss == "arcface":
            class_head = keras.layers.Dense(
                classes,
                use_bias=False,
                name="class_centres",
                # its own seed: built after every head, it would otherwise share the last one's
                kernel_initializer=keras.initializers.GlorotUniform(seed=config.seed + member),
            )
            class_head.build((None, config.embedding_dim))
        self.trained = self.model if config.train_backbone else self.head
        variables = self.trained.trainable_variables + (
            class_head.trainable_variables if class_head else []
        )
        optimizer = keras.optimizers.Adam(config.learning_rate)
        mean = tf.constant([103.939, 116.779, 123.68], dtype=tf.float32)

        def metric_loss(batch_labels, embeddings):
            if config.loss == "triplet":
                return semi_hard_triplet_loss(batch_labels, embeddings, config.triplet_margin)
            if config.loss == "margin":
                return boundary_margin_loss(
                    batch_labels, embeddings, config.boundary, config.margin
                )
            return arcface_loss(
                batch_labels,
                embeddings,
                class_head.kernel,
                config.arcface_scale,
                config.arcface_margin,
            )

        def to_input(batch):
            if config.backbone == "vgg16":
                return batch[..., ::-1] - mean
            if is_lite(config.backbone):
                return (batch - PIXEL_CENTRE) / PIXEL_SCALE
            return batch / 127.5 - 1.0

        @tf.function
        def step_on_pixels(batch, batch_labels):
            with tf.GradientTape() as tape:
                augmented = tf.clip_by_value(augment(batch, training=True), 0.0, 255.0)
                loss = metric_loss(batch_labels, self.model(to_input(augmented), training=True))
            optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
            return loss

        @tf.function
        def step_on_features(batch, batch_labels):
            with tf.GradientTape() as tape:
                loss = metric_loss(batch_labels, self.head(batch, training=True))
            optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
            return loss

        self.to_input = to_input
        self.step_on_pixels = step_on_pixels
        self.step_on_features = step_on_features

    def embed(self, pixels: np.ndarray, features: np.ndarray | None) -> np.ndarray:
        """Embeddings of un-augmented pictures (their backbone features when frozen)."""
        if features is not None:
            return np.asarray(self.head.predict_on_batch(features))
        parts = [
            np.asarray(
                self.model.predict_on_batch(self.to_input(pixels[i : i + 64].astype(np.float32)))
            )
            for i in range(0, len(pixels), 64)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, self.config.embedding_dim))


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
    fitted = [g for g in trainable if int(y[g[0]]) not in held]
    calibration_rows = np.flatnonzero(np.isin(y, sorted(held)))
    fit_rows = np.flatnonzero(~np.isin(y, sorted(held)))

    keras.utils.set_random_seed(config.seed)
    pixels = np.concatenate(list(decoded_batches(list(sources), config.image_size, 64)))
    augment = _augmenter(config.augmentation)
    per_batch = config.groups_per_batch * config.images_per_group
    copies = 1 if config.train_backbone else 1 + config.augment_copies

    def steps_for(chosen_groups: list[np.ndarray]) -> int:
        return max(1, sum(len(g) for g in chosen_groups) * copies // per_batch)

    phases = [(fitted, True)] + ([(trainable, False)] if held and config.calibration_refit else [])
    # Without a refit the best calibrating epoch's weights are the ones kept.
    restore_best = len(phases) == 1
    members = config.members = trained_members(config.members, config.train_backbone)
    total = sum(steps_for(chosen) * config.epochs * members for chosen, _ in phases)
    done = 0
    history: list[dict] = []
    started = time.perf_counter()
    chosen_calibration: tuple[int, Calibration] | None = None
    networks: list[_Network] = []
    clean: np.ndarray | None = None
    bank: np.ndarray | None = None
    for chosen_groups, calibrating in phases:
        rngs = [np.random.default_rng(config.seed + member) for member in range(members)]
        keras.utils.set_random_seed(config.seed)
        _, base, first_head = build_siamese(config, weights_dir)
        if clean is None:  # every phase starts from the same ImageNet backbone
            clean = _backbone_features(base, pixels, config.backbone)
            if not config.train_backbone:
                bank = np.stack(
                    [clean]
                    + [
                        _backbone_features(base, pixels, config.backbone, augment)
                        for _ in range(config.augment_copies)
                    ]
                )  # (copies, n, d)
        feature_dim = int(base.output_shape[-1])
        heads = [first_head] + [build_head(config, feature_dim, m) for m in range(1, members)]
        networks = [
            _Network(config, base, head, len(label_ids), augment, member)
            for member, head in enumerate(heads)
        ]
        rows = fit_rows if calibrating else np.arange(len(y))
        for network in networks:
            network.head.get_layer("feature_norm").adapt(clean[rows])
        epochs = config.epochs if calibrating else chosen_calibration[0]
        steps = steps_for(chosen_groups)
        kept_weights = None
        for epoch in range(1, epochs + 1):
            losses = []
            for network, rng in zip(networks, rngs, strict=True):
                for _ in range(steps):
                    losses.append(_step(network, rng, chosen_groups, y, pixels, bank, config))
                    done += 1
                    if progress is not None:
                        progress(done, total)
            entry = {
                "epoch": epoch,
                "loss": float(np.mean(losses)),
                "seconds": round(time.perf_counter() - started, 2),
            }
            if not calibrating:
                entry["refit"] = True
            if calibrating and len(calibration_rows):
                features = clean[calibration_rows] if bank is not None else None
                vectors = _embed_members(networks, pixels[calibration_rows], features)
                found = calibrate_distance(
                    vectors, [labels[i] for i in calibration_rows], config.boundary
                )
                entry["calibrated_distance"] = found.distance
                entry["calibration_f1"] = found.f1
                if chosen_calibration is None or found.f1 > chosen_calibration[1].f1:
                    chosen_calibration = (epoch, found)
                    if restore_best:
                        kept_weights = [network.trained.get_weights() for network in networks]
            if on_epoch_end is not None:
                current = SiameseEmbedder(_served(config, networks), config, "unsaved", batch_size)
                entry.update(on_epoch_end(epoch, current))
            history.append(entry)
            logger.info("siamese epoch %d: %s", epoch, entry)
        if kept_weights is not None:
            for network, weights in zip(networks, kept_weights, strict=True):
                network.trained.set_weights(weights)
    if progress is not None:
        progress(total, total)
    config.history = history
    if chosen_calibration is not None:
        epoch, found = chosen_calibration
        config.calibrated_distance = found.distance
        config.calibration = {**found.to_dict(), "epoch": epoch, "refit": not restore_best}
    else:
        config.calibrated_distance = None
        config.calibration = {}
    return SiameseEmbedder(
        _served(config, networks), config, version="unsaved", batch_size=batch_size
    )


def _embed_members(networks: list[_Network], pixels: np.ndarray, features) -> np.ndarray:
    if len(networks) == 1:
        return networks[0].embed(pixels, features)
    return l2_normalise(np.hstack([network.embed(pixels, features) for network in networks]))


def _served(config: SiameseConfig, networks: list[_Network]):
    """The model that embeds pixels: the backbone under every head (one head: that network)."""
    return assemble(config, networks[0].base, [network.head for network in networks])


def _step(network: _Network, rng, groups, y, pixels, bank, config: SiameseConfig) -> float:
    """One P×K batch: P groups, K pictures of each (drawn with replacement from small groups)."""
    import tensorflow as tf

    chosen = rng.choice(len(groups), size=min(config.groups_per_batch, len(groups)), replace=False)
    index = np.concatenate(
        [
            rng.choice(
                groups[g],
                size=config.images_per_group,
                replace=len(groups[g]) < config.images_per_group,
            )
            for g in chosen
        ]
    )
    batch_labels = tf.constant(y[index])
    if bank is None:
        return float(network.step_on_pixels(tf.constant(pixels[index], tf.float32), batch_labels))
    copy = rng.integers(0, len(bank), size=len(index))
    return float(network.step_on_features(tf.constant(bank[copy, index]), batch_labels))
