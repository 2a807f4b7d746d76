"""Where a user's databases live, the built-in demo's database, and what identifies a catalog's
current contents."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

from core.catalog import import_catalog
from core.demo import ensure_demo_catalog
from core.settings import data_dir
from core.store import Store

Progress = Callable[[int, int], None]


def default_db_path() -> Path:
    return data_dir() / "samesame.db"


def demo_db_path() -> Path:
    return data_dir() / "demo.db"


def open_demo(progress: Progress | None = None) -> Store:
    """The built-in demo catalog's database, generating and importing it on first use."""
    csv_path = ensure_demo_catalog(data_dir())
    store = Store(demo_db_path())
    if store.count_postings() == 0 or store.meta("demo_catalog") != _file_stamp(csv_path):
        import_catalog(store, csv_path, csv_path.parent / "images", progress=progress)
        store.set_meta("demo_catalog", _file_stamp(csv_path))
    return store


def _file_stamp(path: Path) -> str:
    stat = path.stat()
    return f"{stat.st_size}:{int(stat.st_mtime)}"


def catalog_stamp(store: Store) -> str:
    """Identifies a database's catalog as it is now: changes when postings change, survives
    moving or copying the database file (an id stored in it, not its path)."""
    database_id = store.meta("database_id")
    if database_id is None:
        database_id = uuid.uuid4().hex
        store.set_meta("database_id", database_id)
    return f"{database_id}#{store.catalog_revision}"


def models_folder(store: Store) -> Path:
    """This database's trained models: the data folder, one sub-folder per database file."""
    stem = store.path.stem if store.path is not None else "memory"
    return data_dir() / "models" / stem
