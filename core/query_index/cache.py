"""One process's query indexes, per database, kept in memory across requests and sessions and
replaced only when the catalog changed: the Compare page and the HTTP API share this rule."""

from __future__ import annotations

import threading

from core.query_index.files import add_to_index, open_query_index
from core.query_index.index import INDEXED_QUERY_FROM, QueryIndex
from core.store import Store
from core.workspace import catalog_stamp


class QueryIndexCache:
    """Thread-safe: concurrent requests for a stale index wait for one rebuild."""

    def __init__(self) -> None:
        self._indexes: dict[str, QueryIndex] = {}
        self._lock = threading.Lock()

    def _current(
        self, store: Store, image_model: tuple[str, str | None] | None
    ) -> QueryIndex | None:
        """The kept index when it is of the catalog as it is now (a stamp read: no count of
        the postings, which costs milliseconds per request at a million)."""
        index = self._indexes.get(str(store.path))
        if index is None or index.stamp != catalog_stamp(store):
            return None
        if image_model is not None and image_model[0] not in index.images:
            return None
        return index

    def _wanted(self, store: Store) -> bool:
        return store.path is not None and store.count_postings() >= INDEXED_QUERY_FROM

    def needs_building(self, store: Store, image_model: tuple[str, str | None] | None) -> bool:
        """Whether `get` would open (or build) the index: slow, so callers can say so first."""
        return self._current(store, image_model) is None and self._wanted(store)

    def get(self, store: Store, image_model: tuple[str, str | None] | None) -> QueryIndex | None:
        """The catalog's index when it is large enough to need one (else None)."""
        index = self._current(store, image_model)
        if index is not None or not self._wanted(store):
            return index
        with self._lock:
            index = self._current(store, image_model)  # another request may have built it
            if index is None:
                index = open_query_index(store, [image_model] if image_model else [])
                self._indexes[str(store.path)] = index
            return index

    def grow(self, store: Store, posting_id: str) -> None:
        """A posting added to the catalog joins the in-memory index too (no rebuild)."""
        with self._lock:
            index = self._indexes.get(str(store.path))
            if index is not None:
                add_to_index(store, index, posting_id)
