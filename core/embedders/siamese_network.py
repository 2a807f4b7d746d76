"""One Siamese network being trained (`core.embedders.siamese_training`): a head on the shared
backbone, its metric loss, its optimiser and its two kinds of training step, plus the P×K
batches they learn from.

Keras and TensorFlow are imported inside the functions that use them, so importing this module
stays light.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from core.embedders.backbones import preprocess
from core.embedders.base import l2_normalise
from core.embedders.efficientnet_lite import PIXEL_CENTRE, PIXEL_SCALE, is_lite
from core.embedders.losses import arcface_loss, boundary_margin_loss, semi_hard_triplet_loss
from core.embedders.siamese import SiameseConfig, assemble

#: Pictures per backbone or model call when embedding.
BATCH = 64
#: The ImageNet channel means (BGR order) VGG16 subtracts from its input.
VGG_MEAN = (103.939, 116.779, 123.68)


def backbone_features(base, pixels: np.ndarray, backbone: str, augment=None) -> np.ndarray:
    """The backbone's features of every picture (of a randomly augmented copy when
    ``augment`` is given)."""
    parts = []
    for i in range(0, len(pixels), BATCH):
        batch = pixels[i : i + BATCH].astype(np.float32)
        if augment is not None:
            batch = np.clip(np.asarray(augment(batch, training=True)), 0.0, 255.0)
        parts.append(np.asarray(base.predict_on_batch(preprocess(backbone, batch))))
    return np.concatenate(parts)


def _class_centres(config: SiameseConfig, classes: int, member: int):
    """ArcFace's learnt class centres (a bias-free dense layer), built at once."""
    import keras

    class_head = keras.layers.Dense(
        classes,
        use_bias=False,
        name="class_centres",
        # its own seed: built after every head, it would otherwise share the last one's
        kernel_initializer=keras.initializers.GlorotUniform(seed=config.seed + member),
    )
    class_head.build((None, config.embedding_dim))
    return class_head


def _metric_loss(config: SiameseConfig, class_head) -> Callable:
    """(batch labels, embeddings) → the loss ``config.loss`` names."""

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

    return metric_loss


def _pixel_input(config: SiameseConfig) -> Callable:
    """Pixels (0..255, RGB) → the backbone's input, written in TensorFlow so that it runs
    inside the compiled training step."""
    import tensorflow as tf

    mean = tf.constant(list(VGG_MEAN), dtype=tf.float32)

    def to_input(batch):
        if config.backbone == "vgg16":
            return batch[..., ::-1] - mean
        if is_lite(config.backbone):
            return (batch - PIXEL_CENTRE) / PIXEL_SCALE
        return batch / 127.5 - 1.0

    return to_input


class TrainingNetwork:
    """One network being trained (one member: its own head on the shared backbone): model,
    loss, optimiser and the two kinds of step (on precomputed backbone features when the
    backbone is frozen, else on pixels)."""

    def __init__(
        self, config: SiameseConfig, base, head, classes: int, augment, member: int = 0
    ) -> None:
        import keras

        self.config = config
        self.base, self.head = base, head
        self.model = assemble(config, base, [head])
        class_head = _class_centres(config, classes, member) if config.loss == "arcface" else None
        self.trained = self.model if config.train_backbone else self.head
        variables = self.trained.trainable_variables + (
            class_head.trainable_variables if class_head else []
        )
        self.to_input = _pixel_input(config)
        self._compile_steps(
            augment,
            _metric_loss(config, class_head),
            keras.optimizers.Adam(config.learning_rate),
            variables,
        )

    def _compile_steps(self, augment, metric_loss: Callable, optimizer, variables: list) -> None:
        """The compiled steps: ``step_on_pixels`` (augmented on the fly, through the whole
        model) and ``step_on_features`` (the head alone, on backbone features)."""
        import tensorflow as tf

        @tf.function
        def step_on_pixels(batch, batch_labels):
            with tf.GradientTape() as tape:
                augmented = tf.clip_by_value(augment(batch, training=True), 0.0, 255.0)
                loss = metric_loss(
                    batch_labels, self.model(self.to_input(augmented), training=True)
                )
            optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
            return loss

        @tf.function
        def step_on_features(batch, batch_labels):
            with tf.GradientTape() as tape:
                loss = metric_loss(batch_labels, self.head(batch, training=True))
            optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
            return loss

        self.step_on_pixels = step_on_pixels
        self.step_on_features = step_on_features

    def embed(self, pixels: np.ndarray, features: np.ndarray | None) -> np.ndarray:
        """Embeddings of un-augmented pictures (their backbone features when frozen)."""
        if features is not None:
            return np.asarray(self.head.predict_on_batch(features))
        parts = [
            np.asarray(
                self.model.predict_on_batch(self.to_input(pixels[i : i + BATCH].astype(np.float32)))
            )
            for i in range(0, len(pixels), BATCH)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, self.config.embedding_dim))


def embed_members(networks: list[TrainingNetwork], pixels: np.ndarray, features) -> np.ndarray:
    """The served vectors: one network's, or every member's side by side at unit length."""
    if len(networks) == 1:
        return networks[0].embed(pixels, features)
    return l2_normalise(np.hstack([network.embed(pixels, features) for network in networks]))


def served_model(config: SiameseConfig, networks: list[TrainingNetwork]):
    """The model that embeds pixels: the backbone under every head (one head: that network)."""
    return assemble(config, networks[0].base, [network.head for network in networks])


def train_step(
    network: TrainingNetwork,
    rng: np.random.Generator,
    groups: list[np.ndarray],
    y: np.ndarray,
    pixels: np.ndarray,
    bank: np.ndarray | None,
    config: SiameseConfig,
) -> float:
    """One P×K batch: P groups, K pictures of each (drawn with replacement from small groups);
    from ``bank`` (copies × pictures × features), a random copy of each, when the backbone is
    frozen. Returns the batch's loss."""
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
