"""A Ditto-style cross-encoder for pairs of product titles: all-MiniLM-L6-v2 reads both titles at
once ([CLS] a [SEP] b [SEP], token types 0 then 1) and one logit on top says "same product".

It starts from the packaged sentence-transformers weights (`core.embedders.minilm`) and is
fine-tuned on labelled pairs with AdamW and binary cross-entropy. Training saves a checkpoint
after every epoch (weights, optimizer state, the epoch) and a later call with the same folder
continues from the last saved epoch; the batches of each epoch are drawn from the seed and the
epoch, so an interrupted run goes on with the batches an uninterrupted one would have seen. A
trained model is saved in Keras' format (custom layers registered, loaded in safe mode) with its
tokenizer beside it, so scoring needs neither torch nor the model package. Scoring runs on
TensorFlow, or on OpenVINO f32 (`core.embedders.inference`; the same probabilities, slower for
this model on a CPU).

Measured on Walmart-Amazon (benchmarks/bench_cross_encoder.py: 6,142 train pairs, 4 epochs,
48 tokens, 2 shared CPU cores): about 5 minutes an epoch, test F1 0.701 at the threshold chosen
on the valid pairs (AUC 0.956), where the untuned sentence vectors' cosine reaches 0.404; on WDC
shoes (4,503 pairs, 64 tokens, about 3 minutes an epoch) 0.772 against 0.450.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from core.embedders.bert_shape import BertShape
from core.embedders.inference import runner_for
from core.embedders.keras_files import load_model_files, save_model_files
from core.embedders.minilm import (
    custom_layers,
    encoder_layers,
    load_tokenizer,
    model_folder,
    pad_rows,
    place_weights,
    read_weights,
    run_batches,
    tensorflow_runner,
    title_model_backend,
)
from core.embedders.wordpiece import WordPieceTokenizer, longest_first
from core.errors import SameSameError

if TYPE_CHECKING:
    import keras

logger = logging.getLogger(__name__)

MODEL_FILE = "cross_encoder.keras"
SETTINGS_FILE = "cross_encoder.json"
TOKENIZER_FILE = "tokenizer.json"
STATE_FILE = "state.json"
#: Batches are drawn from pools this many batches wide, sorted by length inside a pool (less
#: padding) and then shuffled.
_POOL_BATCHES = 16

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class CrossEncoderSettings:
    """How the cross-encoder reads pairs and learns.

    Args:
        max_length: tokens per pair, [CLS] and both [SEP]s included; the longer title is cut
            first.
        pooling: ``mean`` (mean over the pair's tokens, as the sentence model was trained) or
            ``cls`` (the [CLS] state). Measured on 2,000 Walmart-Amazon train pairs, 2 epochs:
            valid F1 0.354 with ``mean`` against 0.313 with ``cls`` (0.290 and 0.208 after
            one epoch).
        learning_rate: AdamW's peak rate, reached after ``warmup_steps`` and decayed linearly
            to zero over the epochs a `CrossEncoder.fit` call asks for. Measured as above
            (mean pooling): valid F1 0.391 at 1e-4 against 0.354 at 5e-5.
        weight_decay: AdamW's decoupled decay (not applied to biases and LayerNorm).
        batch_size: pairs per training step.
        dropout: BERT's dropout while training.
        seed: the head's initial weights and the order of the batches.
    """

    max_length: int = 64
    pooling: Literal["cls", "mean"] = "mean"
    learning_rate: float = 1e-4
    weight_decay: float = 0.01
    warmup_steps: int = 50
    batch_size: int = 32
    dropout: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        if not 5 <= self.max_length <= 512:
            raise ValueError(f"max_length must be 5 to 512 tokens: {self.max_length}")
        if self.pooling not in ("cls", "mean"):
            raise ValueError(f"pooling must be 'cls' or 'mean': {self.pooling!r}")
        if self.learning_rate <= 0 or self.batch_size < 1 or self.warmup_steps < 0:
            raise ValueError("learning_rate, batch_size must be positive, warmup_steps ≥ 0")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1): {self.dropout}")


def build_model(shape: BertShape, settings: CrossEncoderSettings) -> keras.Model:
    """packed pairs (n, 3, length) → match logits (n, 1); the encoder's weights are random."""
    import keras

    custom = custom_layers()
    packed = keras.Input((3, None), dtype="float32", name="tokens")
    hidden = encoder_layers(packed, shape, dropout=settings.dropout)
    if settings.pooling == "cls":
        pooled = custom["FirstToken"](name="pool")(hidden)
    else:
        pooled = custom["MaskedMean"](name="pool")(hidden, packed)
    pooled = keras.layers.Dropout(settings.dropout, name="head_dropout")(pooled)
    init = keras.initializers.TruncatedNormal(stddev=0.02, seed=settings.seed)
    logit = keras.layers.Dense(1, kernel_initializer=init, name="match")(pooled)
    return keras.Model(packed, logit, name="minilm_cross_encoder")


def _schedule(settings: CrossEncoderSettings, total_steps: int) -> Any:
    import keras

    warmup = max(1, min(settings.warmup_steps, total_steps // 10))
    decay = keras.optimizers.schedules.PolynomialDecay(
        settings.learning_rate, max(1, total_steps - warmup), 0.0
    )

    class WarmupThenDecay(keras.optimizers.schedules.LearningRateSchedule):
        def __call__(self, step):
            from keras import ops

            step = ops.cast(step, "float32")
            rising = settings.learning_rate * (step + 1.0) / warmup
            return ops.where(step < warmup, rising, decay(step - warmup))

    return WarmupThenDecay()


def _fingerprint(settings: CrossEncoderSettings, left, right, labels) -> str:
    digest = hashlib.sha256(json.dumps(dataclasses.asdict(settings)).encode())
    for a, b, label in zip(left, right, labels, strict=True):
        digest.update(f"{a}\x1f{b}\x1f{int(label)}\x1e".encode())
    return digest.hexdigest()[:24]


def _checked_labels(labels: Sequence[int] | np.ndarray, pairs: int) -> np.ndarray:
    labels = np.asarray(labels, dtype=np.float32).reshape(-1)
    if len(labels) != pairs or not pairs:
        raise ValueError(f"{pairs} pairs but {len(labels)} labels")
    if not np.isin(labels, (0.0, 1.0)).all():
        raise ValueError("labels must be 0 (different) or 1 (same product)")
    return labels


def _read_state(folder: Path) -> dict[str, Any] | None:
    path = folder / STATE_FILE
    return json.loads(path.read_text()) if path.is_file() else None


class CrossEncoder:
    """Pairs of titles → probability that they are the same product.

    ``CrossEncoder()`` starts from the packaged all-MiniLM-L6-v2 weights with an untrained
    head; `fit` it on labelled pairs, or `load` a saved one.

    Raises:
        WeightsUnavailableError: (new model) the model package is not installed.
    """

    def __init__(
        self, settings: CrossEncoderSettings | None = None, data_folder: Path | None = None
    ):
        self.settings = settings or CrossEncoderSettings()
        folder = model_folder(data_folder)
        self.tokenizer: WordPieceTokenizer = load_tokenizer(folder)
        self._tokenizer_file = folder / TOKENIZER_FILE
        self.shape, tensors = read_weights(folder)
        self.model = build_model(self.shape, self.settings)
        place_weights(self.model, self.shape, tensors)
        self._runners: dict[str, Any] = {}

    # -- encoding -------------------------------------------------------------------------------

    def _rows(self, left: Sequence[str], right: Sequence[str]) -> list[np.ndarray]:
        """One unpadded (3, length) pair per row."""
        if len(left) != len(right):
            raise ValueError(f"{len(left)} left titles but {len(right)} right titles")
        ids = {t: self.tokenizer.tokenise(t) for t in {*left, *right}}
        tok, rows = self.tokenizer, []
        for a_title, b_title in zip(left, right, strict=True):
            a, b = ids[a_title], ids[b_title]
            keep_a, keep_b = longest_first(len(a), len(b), self.settings.max_length - 3)
            a, b = a[:keep_a], b[:keep_b]
            row = np.ones((3, len(a) + len(b) + 3), np.float32)
            row[0] = [tok.cls, *a, tok.sep, *b, tok.sep]
            row[1, : len(a) + 2] = 0.0
            rows.append(row)
        return rows

    def _epoch_batches(self, lengths: np.ndarray, epoch: int) -> list[np.ndarray]:
        """The pair indices of each batch of ``epoch`` (the same for the same seed and epoch)."""
        rng = np.random.default_rng([self.settings.seed, epoch])
        order = rng.permutation(len(lengths))
        size = self.settings.batch_size
        batches = []
        for start in range(0, len(order), size * _POOL_BATCHES):
            pool = order[start : start + size * _POOL_BATCHES]
            pool = pool[np.argsort(lengths[pool], kind="stable")]
            batches += [pool[i : i + size] for i in range(0, len(pool), size)]
        return [batches[i] for i in rng.permutation(len(batches))]

    # -- training -------------------------------------------------------------------------------

    def _compile(self, total_steps: int) -> None:
        import keras

        optimizer = keras.optimizers.AdamW(
            learning_rate=_schedule(self.settings, total_steps),
            weight_decay=self.settings.weight_decay,
            epsilon=1e-8,
            global_clipnorm=1.0,
        )
        optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
        self.model.compile(
            optimizer=optimizer, loss=keras.losses.BinaryCrossentropy(from_logits=True)
        )
        optimizer.build(self.model.trainable_variables)

    def _save_checkpoint(self, folder: Path, epoch: int, state: dict[str, Any]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        stem = f"epoch-{epoch:03d}"
        self.model.save_weights(folder / f"{stem}.weights.h5")
        variables = [np.asarray(v.numpy()) for v in self.model.optimizer.variables]
        np.savez(folder / f"{stem}.optimizer.npz", *variables)
        state = {**state, "epochs_done": epoch, "checkpoint": stem}
        staging = folder / f"{STATE_FILE}.tmp"
        staging.write_text(json.dumps(state, indent=2))
        staging.replace(folder / STATE_FILE)  # the checkpoint counts from here on
        for old in folder.glob("epoch-*"):
            if not old.name.startswith(stem + "."):
                old.unlink()

    def _restore_checkpoint(self, folder: Path, state: dict[str, Any]) -> None:
        stem = state["checkpoint"]
        self.model.load_weights(folder / f"{stem}.weights.h5")
        with np.load(folder / f"{stem}.optimizer.npz") as saved:
            values = [saved[f"arr_{i}"] for i in range(len(saved.files))]
        variables = self.model.optimizer.variables
        if len(values) != len(variables):
            raise SameSameError(f"the checkpoint in {folder} does not fit this model")
        for variable, value in zip(variables, values, strict=True):
            variable.assign(value)
        self._runners.clear()

    def _resume(self, folder: Path, fingerprint: str, epochs: int) -> list[float]:
        """The losses of the epochs ``folder`` holds, its weights and optimizer restored."""
        saved = _read_state(folder)
        if saved is None:
            return []
        if saved["fingerprint"] != fingerprint:
            raise SameSameError(
                f"{folder} holds training on other pairs or settings: give another "
                "checkpoint folder or delete it"
            )
        self._restore_checkpoint(folder, saved)
        logger.info("resuming after epoch %d from %s", saved["epochs_done"], folder)
        return list(saved.get("losses", []))[: min(saved["epochs_done"], epochs)]

    def fit(
        self,
        left_titles: Sequence[str],
        right_titles: Sequence[str],
        labels: Sequence[int] | np.ndarray,
        epochs: int = 2,
        progress: Progress | None = None,
        checkpoint_dir: Path | None = None,
        on_epoch: Callable[[int, float], None] | None = None,
    ) -> list[float]:
        """Fine-tune on labelled pairs (1 = same product) for ``epochs`` epochs in all.

        With ``checkpoint_dir``, each finished epoch is saved there, and epochs already saved
        by an earlier call on the same pairs and settings are not trained again (a checkpoint
        with more epochs than asked is taken as it is).

        Args:
            progress: called with (batches done, batches in all) after each batch.
            on_epoch: called with (epoch number from 1, its mean loss) after each epoch this
                call trains (after its checkpoint is saved).

        Returns:
            The mean training loss of every epoch (those of the checkpoint included).

        Raises:
            ValueError: lengths differ, labels other than 0/1, or no pairs.
            SameSameError: ``checkpoint_dir`` holds training on other pairs or settings.
        """
        labels = _checked_labels(labels, len(left_titles))
        rows = self._rows(left_titles, right_titles)
        lengths = np.array([row.shape[1] for row in rows])
        steps = -(-len(rows) // self.settings.batch_size)
        self._compile(epochs * steps)
        state = {"fingerprint": _fingerprint(self.settings, left_titles, right_titles, labels)}
        folder = Path(checkpoint_dir) if checkpoint_dir is not None else None
        losses = self._resume(folder, state["fingerprint"], epochs) if folder else []
        for epoch in range(len(losses), epochs):
            batch_losses = []
            for index, batch in enumerate(self._epoch_batches(lengths, epoch)):
                packed = pad_rows([rows[i] for i in batch], self.tokenizer.pad)
                loss = self.model.train_on_batch(packed, labels[batch].reshape(-1, 1))
                batch_losses.append(float(np.asarray(loss).reshape(-1)[0]))
                if progress is not None:
                    progress(epoch * steps + index + 1, epochs * steps)
            losses.append(float(np.mean(batch_losses)))
            self._runners.clear()
            if folder is not None:
                self._save_checkpoint(folder, epoch + 1, {**state, "losses": losses})
            if on_epoch is not None:
                on_epoch(epoch + 1, losses[-1])
        return losses

    # -- scoring --------------------------------------------------------------------------------

    def _runner(self, backend: str) -> Callable[[np.ndarray], np.ndarray]:
        if backend not in self._runners:
            _, runner = runner_for(self.model, backend, "minilm-cross-encoder")
            self._runners[backend] = runner or tensorflow_runner(self.model)
        return self._runners[backend]

    def predict(
        self,
        left_titles: Sequence[str],
        right_titles: Sequence[str],
        batch_size: int = 64,
        backend: str = "tensorflow",
    ) -> np.ndarray:
        """float32 (n,) probabilities that each pair is the same product.

        ``backend``: ``tensorflow`` (also what ``auto`` means here) or ``openvino`` (f32; the
        same probabilities within 5e-6, about 15 % slower: `title_model_backend`).

        Raises:
            ValueError: another backend, or left and right of different lengths.
        """
        backend = title_model_backend(backend)
        if not len(left_titles):
            return np.zeros((0,), np.float32)
        rows = self._rows(left_titles, right_titles)
        logits = run_batches(self._runner(backend), rows, batch_size, self.tokenizer.pad)
        return (1.0 / (1.0 + np.exp(-logits.reshape(-1).astype(np.float64)))).astype(np.float32)

    def get_weights(self) -> list[np.ndarray]:
        """The model's weights (e.g. to keep the best epoch's)."""
        return self.model.get_weights()

    def set_weights(self, weights: list[np.ndarray]) -> None:
        self.model.set_weights(weights)
        self._runners.clear()  # an OpenVINO model holds the old weights

    # -- files ----------------------------------------------------------------------------------

    def save(self, folder: Path) -> None:
        """Write the model (Keras format, no optimizer), its settings and its tokenizer."""
        folder = Path(folder)
        clean = build_model(self.shape, self.settings)
        clean.set_weights(self.model.get_weights())
        settings = {
            "settings": dataclasses.asdict(self.settings),
            "shape": dataclasses.asdict(self.shape),
            "base": "sentence-transformers/all-MiniLM-L6-v2",
        }
        save_model_files(clean, settings, folder, MODEL_FILE, SETTINGS_FILE)
        if self._tokenizer_file.resolve() != (folder / TOKENIZER_FILE).resolve():
            shutil.copyfile(self._tokenizer_file, folder / TOKENIZER_FILE)

    @classmethod
    def load(cls, folder: Path) -> CrossEncoder:
        """A cross-encoder `save` wrote (needs neither the model package nor torch).

        Raises:
            ModelNotTrainedError: the folder holds no saved cross-encoder.
        """
        custom_layers()  # registers the custom layers before safe-mode loading
        folder = Path(folder)
        model, saved = load_model_files(
            folder, MODEL_FILE, SETTINGS_FILE, f"No cross-encoder saved in {folder}"
        )
        encoder = cls.__new__(cls)
        encoder.settings = CrossEncoderSettings(**saved["settings"])
        encoder.shape = BertShape(**saved["shape"])
        encoder._tokenizer_file = folder / TOKENIZER_FILE
        encoder.tokenizer = WordPieceTokenizer.from_file(encoder._tokenizer_file)
        encoder.model = model
        encoder._runners = {}
        return encoder
