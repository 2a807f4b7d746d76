"""Is an uploaded photo already in the catalog? The same picture posted again is the commonest
duplicate a shop uploads, and it deserves a plain answer before any ranked list."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from core.query import NewItem
from core.store import Store

#: An image-vector cosine at least this high is the same picture, re-encoded or resized.
SAME_PHOTO_COSINE = 0.995


@dataclass(frozen=True)
class CatalogCopy:
    posting_id: str
    #: "identical perceptual hash" or "image cosine 0.998"
    evidence: str


def catalog_copies(
    store: Store, item: NewItem, results: Iterable[pd.DataFrame] = (), limit: int = 5
) -> list[CatalogCopy]:
    """Catalog postings holding this item's very photo: the same perceptual hash, or an image
    cosine of at least ``SAME_PHOTO_COSINE`` in any of the query ``results`` already made."""
    item_hash = item.image_hash()
    if item_hash is None:
        return []
    found = {
        pid: "identical perceptual hash"
        for pid in store.postings_with_phash(f"{item_hash:016x}", limit)
    }
    for frame in results:
        if "image_cosine" not in frame:
            continue
        close = frame[frame["image_cosine"] >= SAME_PHOTO_COSINE]
        for pid, cosine in zip(close["posting_id"], close["image_cosine"], strict=True):
            found.setdefault(pid, f"image cosine {cosine:.3f}")
    return [CatalogCopy(pid, why) for pid, why in list(found.items())[:limit]]
