"""Which engine runs an image model's forward pass: TensorFlow (Keras) or OpenVINO.

Measured on 2 CPU cores, OpenVINO runs MobileNet 2–3x as fast as TensorFlow (VGG16 no faster)
with the same vectors (cosine ≥ 0.99999 per image: BENCHMARKS.md, "Inference backends"); TensorFlow
stays the engine on a GPU and for training. ``auto`` picks OpenVINO on a CPU when it is
installed. A Keras model is converted once (``openvino.convert_model``) and the result kept in
the data folder's ``openvino/``, named by the model and a digest of its weights, so a retrained
or different model never reuses another's; a damaged cached file is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import SameSameError
from core.settings import data_dir
from core.settings.match import INFERENCE_BACKENDS

logger = logging.getLogger(__name__)

BACKENDS = INFERENCE_BACKENDS
#: Full-precision inference: on CPUs with bfloat16 units OpenVINO would otherwise compute in
#: bfloat16 (measured: cosine 0.994 to TensorFlow's vectors instead of 0.9999999).
OPENVINO_CONFIG = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
#: The engine choices that run OpenVINO, with the precision each asks for (a CPU without
#: bfloat16 units computes ``bf16`` in f32).
OPENVINO_PRECISION = {"openvino": "f32", "openvino-bf16": "bf16"}

Runner = Callable[[np.ndarray], np.ndarray]


def openvino_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("openvino") is not None


def _tensorflow_sees_gpu() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def resolve_backend(choice: str) -> str:
    """The engine ``choice`` means here: ``auto`` is OpenVINO on a CPU when installed.

    Raises:
        SameSameError: an unknown choice, or ``openvino`` without OpenVINO installed.
    """
    if choice not in BACKENDS:
        raise SameSameError(f"inference backend must be one of {', '.join(BACKENDS)}: {choice!r}")
    if choice == "auto":
        return "openvino" if openvino_installed() and not _tensorflow_sees_gpu() else "tensorflow"
    if choice in OPENVINO_PRECISION and not openvino_installed():
        raise SameSameError(
            "The openvino backend needs OpenVINO: pip install -r requirements.txt (or choose the "
            "tensorflow backend in Settings)"
        )
    return choice


def cache_folder() -> Path:
    return data_dir() / "openvino"


def weights_digest(model: Any) -> str:
    """A digest of a Keras model's weights (what makes two models' outputs the same)."""
    digest = hashlib.sha256()
    for array in model.get_weights():
        digest.update(str(array.shape).encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:20]


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _cached_model(core: Any, xml: Path) -> Any | None:
    """The converted model in the cache, or None when missing or damaged."""
    stamp = xml.with_suffix(".json")
    if not (xml.is_file() and xml.with_suffix(".bin").is_file() and stamp.is_file()):
        return None
    try:
        expected = json.loads(stamp.read_text())
        for suffix in (".xml", ".bin"):
            if _file_digest(xml.with_suffix(suffix)) != expected[suffix]:
                raise ValueError(f"{xml.with_suffix(suffix).name} does not match its digest")
        return core.read_model(str(xml))
    except Exception as exc:  # damaged files of any kind: convert again
        logger.warning("rebuilding the OpenVINO model %s: %s", xml.name, exc)
        return None


def _convert(model: Any, xml: Path) -> Any:
    import warnings

    import openvino as ov

    with warnings.catch_warnings():
        # Keras warns that the traced input is a tuple; the converted graph is the same.
        warnings.filterwarnings("ignore", message="The structure of `inputs`")
        converted = ov.convert_model(model)
    xml.parent.mkdir(parents=True, exist_ok=True)
    # Per process: server workers may convert the same model at once.
    staging = xml.with_name(f"{xml.stem}.{os.getpid()}.partial.xml")
    # Saved weights stay 32-bit: OpenVINO would halve them to float16 by default, which moves
    # the vectors (cosine about 0.9999 instead of 0.9999999).
    ov.save_model(converted, str(staging), compress_to_fp16=False)
    for suffix in (".xml", ".bin"):
        staging.with_suffix(suffix).replace(xml.with_suffix(suffix))
    stamp = {suffix: _file_digest(xml.with_suffix(suffix)) for suffix in (".xml", ".bin")}
    stamp_file = xml.with_name(f"{xml.stem}.{os.getpid()}.partial.json")
    stamp_file.write_text(json.dumps(stamp))
    stamp_file.replace(xml.with_suffix(".json"))
    return converted


def openvino_runner(model: Any, name: str, precision: str = "f32") -> Runner:
    """The Keras ``model``'s forward pass compiled by OpenVINO for this CPU in ``precision``
    (f32 or bf16), from the cache when it holds this model (same name and weights: the cache
    holds the converted 32-bit graph; the precision is chosen when it is compiled)."""
    import openvino as ov

    core = ov.Core()
    xml = cache_folder() / f"{name}-{weights_digest(model)}-ov{ov.__version__.split('-')[0]}.xml"
    converted = _cached_model(core, xml)
    if converted is None:
        converted = _convert(model, xml)
    compiled = core.compile_model(
        converted, "CPU", {**OPENVINO_CONFIG, "INFERENCE_PRECISION_HINT": precision}
    )
    # Calling a compiled model reuses one inference request: sessions sharing the embedder
    # (the app's resource cache) take turns.
    lock = threading.Lock()

    def run(batch: np.ndarray) -> np.ndarray:
        with lock:
            return np.array(compiled(np.ascontiguousarray(batch, np.float32))[0])

    return run


def runner_for(model: Any, choice: str, name: str) -> tuple[str, Runner | None]:
    """(the engine used, its runner; None means Keras's own ``predict_on_batch``)."""
    backend = resolve_backend(choice)
    if backend in OPENVINO_PRECISION:
        return backend, openvino_runner(model, name, OPENVINO_PRECISION[backend])
    return backend, None
