"""The baseline's image embedder: an ImageNet backbone (MobileNet by default), pooled."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.embedders.backbones import load_backbone, preprocess
from core.embedders.base import ImageEmbedder
from core.embedders.efficientnet_lite import is_lite


class PretrainedEmbedder(ImageEmbedder):
    """Global-average-pooled features of an untrained-for-the-task ImageNet network.

    Args:
        backbone: "mobilenet" (baseline default), "mobilenetv2", "vgg16", "efficientnet-lite0"
            or "efficientnet-lite2".
        alpha: MobileNet width (1.0 in the original; smaller widths are faster).
        image_size: input pixels (224 in the original).
        weights_dir: extra folder to look for the Keras weights file in.
    """

    def __init__(
        self,
        backbone: str = "mobilenet",
        alpha: float = 1.0,
        image_size: int = 224,
        weights_dir: Path | None = None,
        batch_size: int = 32,
    ) -> None:
        self.backbone = backbone
        self.alpha = alpha
        self.image_size = image_size
        self.batch_size = batch_size
        self.model = load_backbone(backbone, alpha, image_size, weights_dir)
        self.name = embedder_name(backbone, alpha, image_size)
        self.version = "imagenet"

    def _prepare(self, pixels: np.ndarray) -> np.ndarray:
        return preprocess(self.backbone, pixels)


def embedder_name(backbone: str, alpha: float, image_size: int) -> str:
    """The name `PretrainedEmbedder` stores its vectors under, without loading the model."""
    width = "" if backbone == "vgg16" or is_lite(backbone) else f"-a{alpha}"
    return f"{backbone}{width}-{image_size}"
