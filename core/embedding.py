"""Embedding a catalog: resumable, in batches that are each saved in their own transaction, so
leaving the page, a crash or a restart loses at most one batch of work."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from core.embedders.base import ImageEmbedder
from core.errors import ImageError
from core.images import check_stored_path
from core.store import Store

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


def pending_images(store: Store, model: str, version: str) -> tuple[list[str], list[Path]]:
    """Postings with a usable image and no vector yet from this model version; each stored
    path is checked again (`core.images.check_stored_path`) and refused ones are left out."""
    postings = store.postings()
    done = store.embedded_ids(model, version)
    usable = postings[(postings["image_status"] == "ok") & ~postings["posting_id"].isin(done)]
    ids, paths = [], []
    for pid, stored in zip(usable["posting_id"], usable["image_path"], strict=True):
        try:
            paths.append(check_stored_path(stored))
        except ImageError as exc:
            logger.warning("skipping %s: %s", pid, exc)
            continue
        ids.append(pid)
    return ids, paths


def embed_catalog(
    store: Store, embedder: ImageEmbedder, *, chunk: int = 128, progress: Progress | None = None
) -> int:
    """Embed every posting image not yet embedded by ``embedder``; returns how many were added.

    Vectors of an older version of the same model are replaced as postings are reached.
    """
    ids, paths = pending_images(store, embedder.name, embedder.version)
    already = len(store.embedded_ids(embedder.name, embedder.version))
    total = already + len(ids)
    added = 0
    for start in range(0, len(ids), chunk):
        batch_ids, batch_paths = ids[start : start + chunk], paths[start : start + chunk]
        try:
            vectors = embedder.embed(batch_paths)
        except ImageError:
            # One bad file must not sink the batch: redo it one by one and skip the culprit.
            kept_ids, kept = [], []
            for pid, path in zip(batch_ids, batch_paths, strict=True):
                try:
                    kept.append(embedder.embed([path])[0])
                    kept_ids.append(pid)
                except ImageError as exc:
                    logger.warning("skipping %s: %s", pid, exc)
            batch_ids, vectors = kept_ids, np.array(kept, dtype=np.float32)
        if len(batch_ids):
            store.save_embeddings(embedder.name, embedder.version, batch_ids, vectors)
        added += len(batch_ids)
        if progress is not None:
            progress(already + start + len(batch_paths), total)
    return added
