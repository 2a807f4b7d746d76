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
    epochs: int = 5
    groups_per_batch: int = 8
    images_per_group: int = 4
    learning_rate: float = 3e-4
    margin: float = 0.3
    loss: str = "triplet"  # "triplet" (semi-hard mining) or "arcface" (normalised softmax)
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


def build_siamese(config: SiameseConfig, weights_dir: Path | None):
    import keras

    base = load_backbone(config.backbone, config.alpha, config.image_size, weights_dir)
    # Batches of 32 on a CPU are too small for BatchNorm statistics: keep ImageNet's.
    for layer in base.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    inputs = keras.Input((config.image_size, config.image_size, 3), name="pixels")
    features = base(inputs)
    projected = keras.layers.Dense(config.embedding_dim, name="projection")(features)
    outputs = keras.layers.UnitNormalization(name="unit")(projected)
    return keras.Model(inputs, outputs, name="siamese")


class SiameseEmbedder(ImageEmbedder):
    """A trained Siamese network; load with `SiameseEmbedder.load(folder)`."""

    name = "siamese"

    def __init__(self, model, config: SiameseConfig, version: str, batch_size: int = 32) -> None:
        self.model = model
        self.config = config
        self.image_size = config.image_size
        self.version = version
        self.batch_size = batch_size

    def _embed_batch(self, pixels: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict_on_batch(preprocess(self.config.backbone, pixels)))

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
        stored = json.loads(config_path.read_text())
        stored.pop("version", None)
        config = SiameseConfig(**stored)
        model = keras.models.load_model(model_path, safe_mode=True, compile=False)
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
    """Fine-tune an ImageNet backbone with semi-hard triplet (or ArcFace) loss on P×K batches,
    with augmentation (crops, flips, rotation, colour jitter).

    Args:
        sources: image files (or bytes), one per posting.
        labels: their label groups; groups with a single image only serve as negatives.
        progress: called with (steps done, total steps).
        on_epoch_end: called with (epoch, current model); the dict it returns (e.g. held-out
            F1) is added to that epoch's history entry.

    Raises:
        SameSameError: fewer than two groups with at least two images.
    """
    import keras
    import tensorflow as tf

    if len(sources) != len(labels):
        raise ValueError("sources and labels differ in length")
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
    model = build_siamese(config, weights_dir)
    augment = keras.Sequential(
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
    optimizer = keras.optimizers.Adam(config.learning_rate)
    class_head = None
    if config.loss == "arcface":
        class_head = keras.layers.Dense(len(label_ids), use_bias=False, name="class_centres")
        class_head.build((None, config.embedding_dim))
    elif config.loss != "triplet":
        raise SameSameError(f"Unknown Siamese loss {config.loss!r}; use triplet or arcface")
    variables = model.trainable_variables + (class_head.trainable_variables if class_head else [])
    mean = tf.constant([103.939, 116.779, 123.68], dtype=tf.float32)

    def to_input(batch):
        if config.backbone == "vgg16":
            return batch[..., ::-1] - mean
        return batch / 127.5 - 1.0

    @tf.function
    def train_step(batch, batch_labels):
        with tf.GradientTape() as tape:
            augmented = tf.clip_by_value(augment(batch, training=True), 0.0, 255.0)
            embeddings = model(to_input(augmented), training=True)
            if class_head is None:
                loss = semi_hard_triplet_loss(batch_labels, embeddings, config.margin)
            else:
                loss = arcface_loss(
                    batch_labels,
                    embeddings,
                    class_head.kernel,
                    config.arcface_scale,
                    config.arcface_margin,
                )
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads, variables, strict=True))
        return loss

    per_batch = config.groups_per_batch * config.images_per_group
    steps = max(1, sum(len(g) for g in trainable) // per_batch)
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
            loss = train_step(tf.constant(pixels[index], tf.float32), tf.constant(y[index]))
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
