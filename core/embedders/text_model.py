"""A small learned title encoder for the ``best`` pipeline (Keras, CPU-friendly).

Input: each title as hashed word unigrams and character n-grams of its words (fastText-style
buckets, stable CRC32 hashing so ids do not depend on the Python process). Model: an embedding
bag (masked mean) → dense → unit-length vector, trained with an ArcFace (additive angular
margin) head over the label groups. Only the encoder is saved, as a ``.keras`` file of stock
layers loaded with ``safe_mode=True``: loading executes no code.

Used by the pair classifier, the encoder's cosines must look on training pairs as they will on
unseen products, so `TitleEncoder.fit_cross` trains one encoder per held-out split and embeds
each split with the encoder that never saw it.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from core.embedders.keras_files import load_model_files, save_model_files, side_by_side

MODEL_FILE = "title_encoder.keras"
CONFIG_FILE = "title_encoder.json"


@dataclass
class TitleEncoderConfig:
    buckets: int = 1 << 17
    ngram_min: int = 3
    ngram_max: int = 5
    max_tokens: int = 200
    embedding_dim: int = 96
    output_dim: int = 96
    epochs: int = 12
    batch_size: int = 256
    learning_rate: float = 3e-3
    arc_scale: float = 30.0
    arc_margin: float = 0.3
    seed: int = 0
    members: int = 1


def title_token_ids(titles: Sequence[str], config: TitleEncoderConfig) -> np.ndarray:
    """(n, max_tokens) int32 bucket ids, 0 = padding (words first, then their n-grams)."""
    out = np.zeros((len(titles), config.max_tokens), np.int32)
    size = config.buckets - 1
    for row, title in enumerate(titles):
        pieces: list[str] = []
        words = title.split()
        pieces.extend("w:" + w for w in words)
        for w in words:
            padded = f"<{w}>"
            for n in range(config.ngram_min, config.ngram_max + 1):
                pieces.extend(padded[i : i + n] for i in range(len(padded) - n + 1))
        ids = [1 + zlib.crc32(p.encode("utf-8")) % size for p in pieces[: config.max_tokens]]
        out[row, : len(ids)] = ids
    return out


def _build_encoder(config: TitleEncoderConfig, name: str = "title_encoder"):
    import keras

    tokens = keras.Input(shape=(config.max_tokens,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(config.buckets, config.embedding_dim, mask_zero=True)(tokens)
    x = keras.layers.GlobalAveragePooling1D()(x)
    x = keras.layers.Dense(config.output_dim)(x)
    x = keras.layers.UnitNormalization()(x)
    return keras.Model(tokens, x, name=name)


def _train_encoder(
    ids: np.ndarray, labels: np.ndarray, config: TitleEncoderConfig, name: str = "title_encoder"
):
    """Train one encoder with an ArcFace head over the label groups (the head is discarded)."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(config.seed)
    _, y = np.unique(labels, return_inverse=True)
    classes = int(y.max()) + 1
    encoder = _build_encoder(config, name)
    centres = tf.Variable(
        tf.random.normal((config.output_dim, classes), stddev=0.05, seed=config.seed),
        name="arc_centres",
    )
    optimizer = keras.optimizers.Adam(config.learning_rate)
    cos_m, sin_m = np.cos(config.arc_margin), np.sin(config.arc_margin)
    variables = [*encoder.trainable_variables, centres]

    @tf.function
    def step(batch_ids, batch_y):
        with tf.GradientTape() as tape:
            emb = encoder(batch_ids, training=True)
            cos = tf.matmul(emb, tf.math.l2_normalize(centres, axis=0))
            cos = tf.clip_by_value(cos, -1.0 + 1e-6, 1.0 - 1e-6)
            sin = tf.sqrt(1.0 - tf.square(cos))
            # cos(θ + m) on the true class only; easy-margin variant keeps it monotone.
            with_margin = tf.where(cos > 0, cos * cos_m - sin * sin_m, cos)
            onehot = tf.one_hot(batch_y, classes)
            logits = config.arc_scale * (onehot * with_margin + (1.0 - onehot) * cos)
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels=batch_y, logits=logits)
            )
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads, variables, strict=True))
        return loss

    rng = np.random.default_rng(config.seed)
    for _ in range(config.epochs):
        order = rng.permutation(len(ids))
        for start in range(0, len(order), config.batch_size):
            batch = order[start : start + config.batch_size]
            step(tf.constant(ids[batch]), tf.constant(y[batch].astype(np.int32)))
    return encoder


class TitleEncoder:
    """A trained title encoder; `encode` gives unit-length float32 vectors."""

    def __init__(self, model, config: TitleEncoderConfig) -> None:
        self.model = model
        self.config = config

    def encode(self, titles: Sequence[str], batch_size: int = 2048) -> np.ndarray:
        ids = title_token_ids(titles, self.config)
        if len(ids) == 0:
            return np.zeros((0, self.dim), np.float32)
        out = [
            np.asarray(self.model(ids[s : s + batch_size], training=False))
            for s in range(0, len(ids), batch_size)
        ]
        vectors = np.concatenate(out).astype(np.float32)
        vectors[~ids.any(axis=1)] = 0.0  # an empty title is no evidence
        return vectors

    @property
    def dim(self) -> int:
        return int(self.model.output_shape[-1])

    @classmethod
    def fit(
        cls, titles: Sequence[str], labels: Sequence[str], config: TitleEncoderConfig | None = None
    ) -> TitleEncoder:
        config = config or TitleEncoderConfig()
        ids = title_token_ids(titles, config)
        return cls(_train_encoder(ids, np.asarray(labels), config), config)

    @classmethod
    def fit_cross(
        cls,
        titles: Sequence[str],
        labels: Sequence[str],
        split: np.ndarray,
        config: TitleEncoderConfig | None = None,
    ) -> tuple[TitleEncoder, np.ndarray]:
        """One encoder per split value, trained on the other splits' groups.

        Returns:
            (the members combined into one encoder for new catalogs, vectors where each
            posting is embedded by the member that never saw its group; compare vectors only
            within one split).
        """
        config = config or TitleEncoderConfig()
        ids = title_token_ids(titles, config)
        labels = np.asarray(labels)
        members = []
        vectors = None
        for s in np.unique(split):
            mine = split == s
            # Distinct names: the members become sub-models of one combined model.
            encoder = _train_encoder(ids[~mine], labels[~mine], config, f"title_encoder_{s}")
            members.append(encoder)
            part = np.asarray(encoder(ids[mine], training=False), np.float32)
            if vectors is None:
                vectors = np.zeros((len(ids), part.shape[1]), np.float32)
            vectors[mine] = part
        combined = TitleEncoderConfig(**{**asdict(config), "members": len(members)})
        assert vectors is not None
        vectors[~ids.any(axis=1)] = 0.0
        served = side_by_side(members, "title_encoder_ensemble", "int32", "tokens")
        return cls(served, combined), vectors

    def save(self, folder: Path) -> None:
        save_model_files(self.model, asdict(self.config), folder, MODEL_FILE, CONFIG_FILE)

    @classmethod
    def load(cls, folder: Path) -> TitleEncoder:
        """Load a saved encoder (Keras format, safe_mode: no code is executed on load)."""
        model, settings = load_model_files(
            folder, MODEL_FILE, CONFIG_FILE, f"No trained title encoder in {folder}"
        )
        return cls(model, TitleEncoderConfig(**settings))
