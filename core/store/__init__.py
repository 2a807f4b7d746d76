"""The product database: one SQLite file per catalog, versioned schema, writes in transactions.

One `Store` holds one connection; open a new one per thread (Streamlit reruns included)
rather than sharing it, since sqlite3 connections are not meant to cross threads.
"""

from __future__ import annotations

from core.store.base import StoreBase
from core.store.matches import MatchesMixin
from core.store.photo_text import PhotoTextMixin
from core.store.postings import PostingsMixin
from core.store.schema import SCHEMA_VERSION
from core.store.vectors import VectorsMixin


class Store(PostingsMixin, VectorsMixin, MatchesMixin, PhotoTextMixin, StoreBase):
    """A SameSame product database.

    Args:
        path: SQLite file; created (with parent folders) if missing. ``":memory:"`` works too.
    """


__all__ = ["SCHEMA_VERSION", "Store"]
