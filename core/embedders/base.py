"""The one interface every image embedder follows, plus the parallel decode → model loop."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from core.embedders.inference import runner_for
from core.images import load_for_model

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def decoded_batches(
    sources: Sequence[Path | bytes],
    size: int,
    batch_size: int,
    workers: int = 2,
    prepare: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Iterator[np.ndarray]:
    """(b, size, size, 3) uint8 batches, decoded by a thread pool one batch ahead of the model.

    Pillow releases the GIL while decoding and resizing (and numpy while converting), so
    decoding the next batch overlaps the network's forward pass on the current one.

    Args:
        prepare: applied to each stacked batch in the decoding thread (e.g. the network's
            uint8 → float scaling), so the model's thread does nothing but run the model.
    """
    with ThreadPoolExecutor(max_workers=workers) as pool:

        def decode(chunk: Sequence[Path | bytes]) -> np.ndarray:
            batch = np.stack(list(pool.map(lambda s: load_for_model(s, size), chunk)))
            return prepare(batch) if prepare is not None else batch

        chunks = [sources[i : i + batch_size] for i in range(0, len(sources), batch_size)]
        if not chunks:
            return
        with ThreadPoolExecutor(max_workers=1) as ahead:
            pending = ahead.submit(decode, chunks[0]) if chunks else None
            for next_chunk in [*chunks[1:], None]:
                batch = pending.result()
                pending = ahead.submit(decode, next_chunk) if next_chunk is not None else None
                yield batch


class ImageEmbedder:
    """Base class: subclasses set `name`, `version`, `image_size` and implement `_embed_batch`
    (the network on model-ready input), optionally `_prepare` (uint8 pixels → model input,
    run in the decoding thread).

    `embed` returns (n, d) float32 L2-normalised vectors, one per source, in order.
    """

    name: str = "image"
    version: str = "0"
    image_size: int = 224
    batch_size: int = 32
    #: The Keras model, for embedders that have one (`serve_with` runs it on another engine).
    model: Any = None
    #: The engine that runs the forward pass (`core.embedders.inference`).
    backend: str = "tensorflow"
    _runner: Any = None

    def _prepare(self, pixels: np.ndarray) -> np.ndarray:
        return pixels

    def _embed_batch(self, prepared: np.ndarray) -> np.ndarray:
        if self._runner is not None:
            return self._runner(prepared)
        if self.model is None:  # pragma: no cover - interface
            raise NotImplementedError
        return np.asarray(self.model.predict_on_batch(prepared))

    def serve_with(self, choice: str) -> ImageEmbedder:
        """Run the forward pass on the engine ``choice`` names (auto, tensorflow, openvino,
        openvino-bf16).

        Raises:
            SameSameError: ``openvino`` without OpenVINO installed.
        """
        if self.model is not None:
            key = f"{self.name}-{self.version}"
            self.backend, self._runner = runner_for(self.model, choice, key)
        return self

    def embed_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """Vectors for already-decoded (b, s, s, 3) uint8 pictures."""
        return l2_normalise(self._embed_batch(self._prepare(pixels)))

    def embed(
        self, sources: Sequence[Path | bytes], progress: Progress | None = None
    ) -> np.ndarray:
        parts = []
        done = 0
        for batch in decoded_batches(
            sources, self.image_size, self.batch_size, prepare=self._prepare
        ):
            parts.append(l2_normalise(self._embed_batch(batch)))
            done += len(batch)
            if progress is not None:
                progress(done, len(sources))
        if not parts:
            return np.zeros((0, 0), dtype=np.float32)
        return np.concatenate(parts)
