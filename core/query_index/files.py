"""Where a catalog's query index lives, opening (or building) it, and growing it by uploads."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from core.errors import SameSameError
from core.query_index.index import DELTA_FILE, QueryIndex
from core.settings import data_dir
from core.store import Store
from core.workspace import catalog_stamp

logger = logging.getLogger(__name__)


def index_folder(store: Store) -> Path:
    """Where a database's query index lives: the data folder, one sub-folder per database."""
    database_id = catalog_stamp(store).split("#", 1)[0]
    return data_dir() / "indexes" / database_id


def open_query_index(
    store: Store, image_models: Sequence[tuple[str, str | None]] = ()
) -> QueryIndex:
    """The catalog's query index: loaded when it is current, otherwise built and saved.

    An index built for an earlier revision is rebuilt (postings were re-imported or changed);
    uploads added through `add_to_index` keep it current without a rebuild.
    """
    folder = index_folder(store)
    stamp = catalog_stamp(store)
    index = None
    if (folder / "index.json").exists():
        try:
            index = QueryIndex.load(folder)
        except SameSameError as exc:
            logger.warning("%s", exc)
        if index is not None and index.stamp != stamp:
            index = None
    wanted = [(m, v) for m, v in image_models if m not in (index.images if index else {})]
    if index is None:
        index = QueryIndex.build(store, image_models)
        index.save(folder)
    elif wanted:
        for model, version in wanted:
            index.add_image_model(store, model, version)
        index.save(folder)
    return index


def add_to_index(
    store: Store,
    index: QueryIndex,
    posting_id: str,
    vectors: dict[str, np.ndarray] | None = None,
) -> None:
    """Append one stored posting (just added to the catalog) to the index in place, and one line
    to the index's delta file: the base files are not rewritten.

    The index stays current only when nothing else changed the catalog since it was built or
    last extended (the revision moved by exactly this one write); otherwise the next
    `open_query_index` rebuilds it.
    """
    row = store.posting(posting_id)
    if row is None:
        raise SameSameError(f"posting {posting_id!r} is not in the catalog")
    title, phash = row.get("title_norm") or "", row.get("image_phash")
    index.add_postings([posting_id], [title], [phash], vectors)
    database, revision = index.stamp.split("#", 1)
    now = catalog_stamp(store)
    if now != f"{database}#{int(revision) + 1}":
        return  # someone else changed the catalog too: leave the files stale, rebuild on open
    index.stamp = now
    folder = index_folder(store)
    if not (folder / "index.json").exists():
        return
    entry = {
        "stamp": now,
        "posting_id": posting_id,
        "title": title,
        "phash": phash,
        "vectors": {m: np.asarray(v, dtype=float).tolist() for m, v in (vectors or {}).items()},
    }
    with open(folder / DELTA_FILE, "a", encoding="utf-8") as delta:
        delta.write(json.dumps(entry) + "\n")
