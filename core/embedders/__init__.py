"""Image embedders: each turns RGB pictures into L2-normalised float32 vectors.

TensorFlow is imported only inside these modules' functions, never at package import.
"""

from __future__ import annotations

from core.embedders.base import ImageEmbedder

__all__ = ["ImageEmbedder"]
