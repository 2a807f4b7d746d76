"""A Siamese head over stored image vectors: what ``best`` learns about photos.

The Siamese network of the ensemble trains a head on frozen ImageNet backbone features with
triplet loss; this is the same head (`core.embedders.siamese.build_head`) and the same loss,
trained on the pooled vectors a catalog already stores, so ``best`` needs no pixels to use it
and every path that has the vectors (batch, single item, Spark) embeds the same way. Like the
learned title encoder it is cross-fitted: each posting of the training catalog is embedded by a
member that never saw its product, so the classifier learns how far to trust the head on
products it has not seen.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from core.embedders.keras_files import load_model_files, save_model_files, side_by_side
from core.embedders.losses import semi_hard_triplet_loss
from core.embedders.siamese import SiameseConfig, build_head

MODEL_FILE = "image_head.keras"
CONFIG_FILE = "image_head.json"


@dataclass
class VectorHeadConfig:
    """How the head is trained (P×K batches, semi-hard triplet loss)."""

    epochs: int = 30
    embedding_dim: int = 128
    hidden_units: int = 256
    triplet_margin: float = 0.8
    groups_per_batch: int = 8
    images_per_group: int = 4
    learning_rate: float = 1e-3
    seed: int = 0
    #: At most this many batches per member, so a catalog of millions of photos trains in
    #: minutes (about 640k photos seen); small catalogs stop at ``epochs`` long before.
    max_steps: int = 20_000
    #: set by `VectorHead.fit_cross`: how many members the served head averages
    members: int = 1


def _train_head(vectors: np.ndarray, labels: np.ndarray, config: VectorHeadConfig, name: str):
    """One head trained on ``vectors`` (rows of products with two or more photos learn; the
    rest only standardise)."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(config.seed)
    shape = SiameseConfig(hidden_units=config.hidden_units, embedding_dim=config.embedding_dim)
    head = build_head(shape, vectors.shape[1])
    head.name = name
    head.get_layer("feature_norm").adapt(vectors)
    _, y = np.unique(labels, return_inverse=True)
    order = np.argsort(y, kind="stable")
    starts = np.flatnonzero(np.diff(y[order])) + 1
    groups = [g for g in np.split(order, starts) if len(g) >= 2]
    if len(groups) < 2:
        return head  # nothing to contrast: the standardised random projection
    optimizer = keras.optimizers.Adam(config.learning_rate)
    variables = head.trainable_variables

    @tf.function
    def step(batch, batch_labels):
        with tf.GradientTape() as tape:
            loss = semi_hard_triplet_loss(
                batch_labels, head(batch, training=True), config.triplet_margin
            )
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return loss

    rng = np.random.default_rng(config.seed)
    per_batch = config.groups_per_batch * config.images_per_group
    rows = sum(len(g) for g in groups)
    for _ in range(min(config.max_steps, config.epochs * max(1, rows // per_batch))):
        chosen = rng.choice(len(groups), min(config.groups_per_batch, len(groups)), replace=False)
        index = np.concatenate(
            [
                rng.choice(
                    groups[g],
                    config.images_per_group,
                    replace=len(groups[g]) < config.images_per_group,
                )
                for g in chosen
            ]
        )
        step(tf.constant(vectors[index]), tf.constant(y[index]))
    return head


def can_fit_cross(present: np.ndarray, labels: np.ndarray, split: np.ndarray) -> bool:
    """Whether every member of `VectorHead.fit_cross` would have something to learn: outside
    each split value, at least two products with two or more photos."""
    labels = np.asarray(labels)
    for s in np.unique(split):
        learn = present & (split != s)
        _, counts = np.unique(labels[learn], return_counts=True)
        if int((counts >= 2).sum()) < 2:
            return False
    return True


class VectorHead:
    """A trained head; `embed` maps stored image vectors to unit-length float32 vectors."""

    def __init__(self, model, config: VectorHeadConfig) -> None:
        self.model = model
        self.config = config

    def embed(self, vectors: np.ndarray, present: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        """The head's vectors (zero where ``present`` is False: no photo is no evidence)."""
        out = np.zeros((len(vectors), int(self.model.output_shape[-1])), np.float32)
        rows = np.flatnonzero(present)
        for start in range(0, len(rows), batch_size):
            chunk = rows[start : start + batch_size]
            out[chunk] = np.asarray(self.model(vectors[chunk], training=False), np.float32)
        return out

    @classmethod
    def fit_cross(
        cls,
        vectors: np.ndarray,
        present: np.ndarray,
        labels: np.ndarray,
        split: np.ndarray,
        config: VectorHeadConfig | None = None,
    ) -> tuple[VectorHead, np.ndarray]:
        """One head per split value, trained on the other splits' photos.

        Returns:
            (the members combined into one head for new catalogs, vectors where each posting
            is embedded by the member that never saw its product; compare them only within
            one split).
        """
        config = config or VectorHeadConfig()
        labels = np.asarray(labels)
        out = np.zeros((len(vectors), config.embedding_dim), np.float32)
        members = []
        for number, s in enumerate(np.unique(split)):
            learn = present & (split != s)
            member = _train_head(vectors[learn], labels[learn], config, f"image_head_{number}")
            members.append(member)
            mine = np.flatnonzero(present & (split == s))
            if len(mine):
                out[mine] = np.asarray(member(vectors[mine], training=False), np.float32)
        served = VectorHeadConfig(**{**asdict(config), "members": len(members)})
        return cls(side_by_side(members, "image_head"), served), out

    def save(self, folder: Path) -> None:
        save_model_files(self.model, asdict(self.config), folder, MODEL_FILE, CONFIG_FILE)

    @classmethod
    def load(cls, folder: Path) -> VectorHead:
        """Load a saved head (Keras format, safe_mode: no code is executed on load)."""
        model, settings = load_model_files(
            folder,
            MODEL_FILE,
            CONFIG_FILE,
            f"No trained image head in {folder}: the model folder is incomplete; retrain it",
        )
        return cls(model, VectorHeadConfig(**settings))
