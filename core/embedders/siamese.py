"""The ensemble's image embedder: a Siamese network trained with triplet loss on the catalog's
labelled groups (an ImageNet backbone, a projection, unit-length output).

Distances between its vectors are Euclidean on the unit sphere (0..2); the ensemble rule calls
two postings the same product when the distance is under 0.95.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from core.embedders.backbones import load_backbone, preprocess
from core.embedders.base import ImageEmbedder, decoded_batches
from core.errors import ModelNotTrainedError, SameSameError

logger = logging.getLogger(__name__)

MODEL_FILE = "siamese.keras"
CONFIG_FILE = "siamese.json"

Progress = Callable[[int, int], None]


@dataclass
class SiameseConfig:
    """How the Siamese network is built and trained."""

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
    hidden_units: int = 256
    boundary: float = 0.95
    arcface_scale: float = 30.0
    arcface_margin: float = 0.3
    seed: int = 0
    history: list[dict] = field(default_factory=list)


def semi_hard_triplet_loss(labels, embeddings, margin: float):
    """Triplet loss with semi-hard negatives mined in the batch (FaceNet, Schroff et al. 2015).

    For each anchor–positive pair the negative is the closest one still farther than the
    positive; where no such negative exists, the farthest negative (an easy one) is used, so the
    early, collapsed embedding still gets a gradient pushing groups apart.
    """
    import tensorflow as tf

    labels = tf.reshape(labels, [-1])
    squared = tf.reduce_sum(tf.square(embeddings), axis=1)
    dist2 = (
        squared[:, None]
        - 2.0 * tf.matmul(embeddings, embeddings, transpose_b=True)
        + squared[None, :]
    )
    dist = tf.sqrt(tf.maximum(dist2, 1e-12))
    same = tf.equal(labels[:, None], labels[None, :])
    eye = tf.eye(tf.shape(labels)[0], dtype=tf.bool)
    positive = tf.logical_and(same, tf.logical_not(eye))
    negative = tf.logical_not(same)

    d_ap = dist[:, :, None]  # (anchor, positive, 1)
    d_an = dist[:, None, :]  # (anchor, 1, negative)
    semi_mask = tf.logical_and(negative[:, None, :], d_an > d_ap)
    big = tf.reduce_max(dist) + 1.0
    semi = tf.reduce_min(
        tf.where(semi_mask, tf.broadcast_to(d_an, tf.shape(semi_mask)), big), axis=2
    )
    has_semi = tf.reduce_any(semi_mask, axis=2)
    easiest = tf.reduce_max(tf.where(negative, dist, 0.0), axis=1)[:, None]
    chosen = tf.where(has_semi, semi, tf.broadcast_to(easiest, tf.shape(semi)))
    losses = tf.maximum(dist - chosen + margin, 0.0)
    weights = tf.cast(positive, tf.float32)
    return tf.reduce_sum(losses * weights) / tf.maximum(tf.reduce_sum(weights), 1.0)


def boundary_margin_loss(labels, embeddings, boundary: float, margin: float):
    """Margin-based loss (Wu et al. 2017, "Sampling Matters"): same-group pairs are pulled
    inside ``boundary - margin/2``, other pairs pushed beyond ``boundary + margin/2``.

    Anchoring the loss at the distance the ensemble rule uses (0.95) makes that fixed threshold
    meaningful for the trained model; only pairs that violate their side count (hard mining).
    """
    import tensorflow as tf

    labels = tf.reshape(labels, [-1])
    gram = tf.matmul(embeddings, embeddings, transpose_b=True)
    dist = tf.sqrt(tf.maximum(2.0 - 2.0 * gram, 1e-12))
    same = tf.equal(labels[:, None], labels[None, :])
    off_diagonal = tf.logical_not(tf.eye(tf.shape(labels)[0], dtype=tf.bool))
    positive = tf.cast(tf.logical_and(same, off_diagonal), tf.float32)
    negative = tf.cast(tf.logical_not(same), tf.float32)
    pull = tf.nn.relu(dist - (boundary - margin / 2.0)) * positive
    push = tf.nn.relu((boundary + margin / 2.0) - dist) * negative
    active_pos = tf.reduce_sum(tf.cast(pull > 0, tf.float32))
    active_neg = tf.reduce_sum(tf.cast(push > 0, tf.float32))
    return tf.reduce_sum(pull) / tf.maximum(active_pos, 1.0) + tf.reduce_sum(push) / tf.maximum(
        active_neg, 1.0
    )


def arcface_loss(labels, embeddings, class_kernel, scale: float, margin: float):
    """Additive angular margin softmax (ArcFace, Deng et al. 2019) over the training groups.

    Embeddings are unit length; the class centres are the columns of ``class_kernel``, normalised
    here. The target class's angle is widened by ``margin`` so groups must sit tighter than the
    plain softmax needs; the class head is thrown away after training.
    """
    import math

    import tensorflow as tf

    centres = tf.math.l2_normalize(class_kernel, axis=0)
    cosine = tf.clip_by_value(tf.matmul(embeddings, centres), -1.0 + 1e-7, 1.0 - 1e-7)
    sine = tf.sqrt(1.0 - tf.square(cosine))
    with_margin = cosine * math.cos(margin) - sine * math.sin(margin)
    # Past pi - margin the angle would wrap around; fall back to a linear penalty (as ArcFace).
    with_margin = tf.where(
        cosine > math.cos(math.pi - margin),
        with_margin,
        cosine - math.sin(math.pi - margin) * margin,
    )
    one_hot = tf.one_hot(tf.reshape(labels, [-1]), tf.shape(centres)[1])
    logits = scale * tf.where(one_hot > 0, with_margin, cosine)
    return tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(one_hot, logits))


def build_head(config: SiameseConfig, feature_dim: int):
    """Pooled backbone features → standardised → MLP → unit-length embedding."""
    import keras

    features = keras.Input((feature_dim,), name="features")
    # Pooled ReLU features all point into one orthant, so a random projection of them starts
    # with every picture close to every other; standardising them first (statistics adapted on
    # the training pictures) starts training from well-spread embeddings instead.
    x = keras.layers.Normalization(name="feature_norm")(features)
    x = keras.layers.Dense(config.hidden_units, activation="relu", name="hidden")(x)
    x = keras.layers.Dense(config.embedding_dim, name="projection")(x)
    outputs = keras.layers.UnitNormalization(name="unit")(x)
    return keras.Model(features, outputs, name="head")


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
    inputs = keras.Input((config.image_size, config.image_size, 3), name="pixels")
    model = keras.Model(inputs, head(base(inputs)), name="siamese")
    return model, base, head


def _augmenter():
    import keras

    return keras.Sequential(
        [
            keras.layers.RandomFlip("horizontal"),
            keras.layers.RandomRotation(0.05, fill_mode="reflect"),
            keras.layers.RandomZoom((-0.2, 0.1), fill_mode="reflect"),
            keras.layers.RandomTranslation(0.08, 0.08, fill_mode="reflect"),
            keras.layers.RandomContrast(0.2),
            keras.layers.RandomBrightness(0.15, value_range=(0.0, 255.0)),
        ],
        name="augment",
    )


def _backbone_features(base, pixels: np.ndarray, backbone: str, augment=None) -> np.ndarray:
    parts = []
    for i in range(0, len(pixels), 64):
        batch = pixels[i : i + 64].astype(np.float32)
        if augment is not None:
            batch = np.clip(np.asarray(augment(batch, training=True)), 0.0, 255.0)
        parts.append(np.asarray(base.predict_on_batch(preprocess(backbone, batch))))
    return np.concatenate(parts)


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
    import tensorflow as tf

    if len(sources) != len(labels):
        raise ValueError("sources and labels differ in length")
    if config.loss not in ("triplet", "margin", "arcface"):
        raise SameSameError(f"Unknown Siamese loss {config.loss!r}; use margin, triplet or arcface")
    label_ids = {label: i for i, label in enumerate(dict.fromkeys(labels))}
    y = np.array([label_ids[label] for label in labels], dtype=np.int32)
    groups = [np.flatnonzero(y == g) for g in range(len(label_ids))]
    trainable = [g for g in groups if len(g) >= 2]
    if len(trainable) < 2:
        raise SameSameError(
            "Training the Siamese model needs at least two label groups with two or more images "
            f"each; this catalog has {len(trainable)}."
        )
    keras.utils.set_random_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    pixels = np.concatenate(list(decoded_batches(list(sources), config.image_size, 64)))
    model, base, head = build_siamese(config, weights_dir)
    augment = _augmenter()
    clean_features = _backbone_features(base, pixels, config.backbone)
    head.get_layer("feature_norm").adapt(clean_features)
    bank = None
    if not config.train_backbone:
        copies = [clean_features] + [
            _backbone_features(base, pixels, config.backbone, augment)
            for _ in range(config.augment_copies)
        ]
        bank = np.stack(copies)  # (copies, n, d)

    class_head = None
    if config.loss == "arcface":
        class_head = keras.layers.Dense(len(label_ids), use_bias=False, name="class_centres")
        class_head.build((None, config.embedding_dim))
    trained = model if config.train_backbone else head
    variables = trained.trainable_variables + (class_head.trainable_variables if class_head else [])
    optimizer = keras.optimizers.Adam(config.learning_rate)
    mean = tf.constant([103.939, 116.779, 123.68], dtype=tf.float32)

    def metric_loss(batch_labels, embeddings):
        if config.loss == "triplet":
            return semi_hard_triplet_loss(batch_labels, embeddings, config.triplet_margin)
        if config.loss == "margin":
            return boundary_margin_loss(batch_labels, embeddings, config.boundary, config.margin)
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
        return batch / 127.5 - 1.0

    @tf.function
    def step_on_pixels(batch, batch_labels):
        with tf.GradientTape() as tape:
            augmented = tf.clip_by_value(augment(batch, training=True), 0.0, 255.0)
            loss = metric_loss(batch_labels, model(to_input(augmented), training=True))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return loss

    @tf.function
    def step_on_features(batch, batch_labels):
        with tf.GradientTape() as tape:
            loss = metric_loss(batch_labels, head(batch, training=True))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return loss

    per_batch = config.groups_per_batch * config.images_per_group
    seen_per_epoch = sum(len(g) for g in trainable) * (1 if bank is None else len(bank))
    steps = max(1, seen_per_epoch // per_batch)
    total = steps * config.epochs
    history = []
    started = time.perf_counter()
    for epoch in range(config.epochs):
        losses = []
        for step in range(steps):
            chosen = rng.choice(
                len(trainable), size=min(config.groups_per_batch, len(trainable)), replace=False
            )
            index = np.concatenate(
                [
                    rng.choice(
                        trainable[g],
                        size=config.images_per_group,
                        replace=len(trainable[g]) < config.images_per_group,
                    )
                    for g in chosen
                ]
            )
            batch_labels = tf.constant(y[index])
            if bank is None:
                loss = step_on_pixels(tf.constant(pixels[index], tf.float32), batch_labels)
            else:
                copy = rng.integers(0, len(bank), size=len(index))
                loss = step_on_features(tf.constant(bank[copy, index]), batch_labels)
            losses.append(float(loss))
            if progress is not None:
                progress(epoch * steps + step + 1, total)
        entry = {
            "epoch": epoch + 1,
            "loss": float(np.mean(losses)),
            "seconds": round(time.perf_counter() - started, 2),
        }
        if on_epoch_end is not None:
            current = SiameseEmbedder(model, config, version="unsaved", batch_size=batch_size)
            entry.update(on_epoch_end(epoch + 1, current))
        history.append(entry)
        logger.info("siamese epoch %d: %s", epoch + 1, entry)
    config.history = history
    return SiameseEmbedder(model, config, version="unsaved", batch_size=batch_size)
