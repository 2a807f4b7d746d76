"""What the HTTP service loads once per process and shares between requests: database
connections (one per worker thread), image models, the trained best matcher and the query
indexes. Each is replaced when what it was made from changes (a retrained model, an import),
so the service picks up catalog changes without a restart."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core import models
from core.embedders.base import ImageEmbedder
from core.embedders.siamese import SiameseEmbedder
from core.pipelines.best.model import CONFIG_FILE, BestMatcher
from core.query_index.cache import QueryIndexCache
from core.settings import MatchSettings
from core.store import Store

if TYPE_CHECKING:
    from core.pipelines.best.model import BestMatcher


class SerialEmbedder(ImageEmbedder):
    """An embedder shared by request threads, one embedding at a time: TensorFlow runs a call
    on every core already, and a Keras model is not documented as safe to call concurrently."""

    def __init__(self, inner: ImageEmbedder) -> None:
        self.inner = inner
        self.name, self.version = inner.name, inner.version
        self.image_size, self.batch_size = inner.image_size, inner.batch_size
        self._lock = threading.Lock()

    def embed(self, sources, *args, **kwargs) -> np.ndarray:  # type: ignore[override]
        with self._lock:
            return self.inner.embed(sources, *args, **kwargs)


class ServiceModels:
    """Per-process resources of one database, safe to use from many request threads."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = Path(db_path)
        self.indexes = QueryIndexCache()
        self._lock = threading.Lock()
        self._local = threading.local()
        self._embedders: dict[tuple, ImageEmbedder] = {}
        self._best: tuple[str, BestMatcher] | None = None

    def store(self) -> Store:
        """This thread's connection (SQLite in WAL mode: readers never wait for each other;
        every statement reads the latest committed catalog)."""
        store = getattr(self._local, "store", None)
        if store is None:
            store = self._local.store = Store(self.db_path)
        return store

    def pretrained(self, settings: MatchSettings) -> ImageEmbedder:
        key = ("pretrained", *models.pretrained_identity(settings))
        return self._embedder(key, lambda: models.load_image_embedder(settings))

    def siamese(self, folder: Path, version: str, settings: MatchSettings) -> ImageEmbedder:
        key = ("siamese", str(folder), version, settings.batch_size, settings.inference_backend)
        return self._embedder(
            key,
            lambda: SiameseEmbedder.load(Path(folder), settings.batch_size).serve_with(
                settings.inference_backend
            ),
        )

    def _embedder(self, key: tuple, load) -> ImageEmbedder:
        with self._lock:
            if key not in self._embedders:
                self._embedders[key] = SerialEmbedder(load())
            return self._embedders[key]

    def best_matcher(self, store: Store) -> BestMatcher | None:
        """The database's trained best matcher (reloaded when retrained), None without one."""
        config = models.best_dir(store) / CONFIG_FILE
        if not config.is_file():
            return None
        stamp = f"{config}:{config.stat().st_mtime_ns}"
        with self._lock:
            if self._best is None or self._best[0] != stamp:
                self._best = (stamp, BestMatcher.load(config.parent))
            return self._best[1]
