"""Importing a catalog into the store: validated first, then written in resumable chunks."""

from __future__ import annotations

import collections
import itertools
import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from core.catalog.reader import (
    DEFAULT_CHUNK_ROWS,
    CatalogScan,
    CatalogSource,
    Progress,
    _CatalogReader,
    scan_catalog,
)
from core.catalog.rows import _image_folder, prepare_postings
from core.errors import CatalogError
from core.store import Store

logger = logging.getLogger(__name__)


@dataclass
class ImportReport:
    """What an import did: rows read, postings changed, and every row-level problem.

    ``resumed_from`` is how many postings an interrupted run of the same import had already
    written (0 for a fresh import); ``changed`` and ``problems`` include that run's."""

    rows: int
    changed: int
    problems: list[dict] = field(default_factory=list)
    resumed_from: int = 0

    @property
    def problems_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            self.problems, columns=["row", "posting_id", "field", "kind", "problem"]
        )


@dataclass
class _Progress:
    """How far an import got: rows written, postings changed, the problems found so far."""

    done: int = 0
    changed: int = 0
    problems: list[dict] = field(default_factory=list)


def _resume_point(store: Store, scan: CatalogScan, identity: dict[str, str]) -> _Progress:
    """Where an interrupted run of the same import (``identity``) stopped; a fresh start
    otherwise."""
    marker = store.import_marker() or {}
    resume = (
        not marker.get("complete", True)
        and all(marker.get(key) == value for key, value in identity.items())
        and 0 < int(marker.get("rows_done", 0)) < scan.rows
    )
    if not resume:
        return _Progress()
    done = int(marker["rows_done"])
    logger.info("resuming the import of %s after %d of %d rows", scan.label, done, scan.rows)
    # Problems of the chunks already written are in the database, not in this run's memory.
    return _Progress(done, int(marker.get("changed", 0)), store.import_problem_records())


def _write_chunk(
    store: Store,
    chunk: list,
    root: Path | None,
    scan: CatalogScan,
    identity: dict[str, str],
    state: _Progress,
    progress: Progress | None,
) -> None:
    """Check one chunk of rows and write it in one transaction, with the marker saying how
    far the import got (so a run that dies leaves whole chunks only)."""
    base = state.done

    def checked(n: int, _total: int) -> None:
        if progress is not None:
            progress(base + n, scan.rows)

    postings, chunk_problems = prepare_postings(chunk, root, checked)
    state.done += len(chunk)
    with store.transaction():
        if base == 0:
            store.clear_import_problems()  # a fresh import replaces the old list
        state.changed += store.upsert_postings(postings)
        store.add_import_problems(chunk_problems)
        store.save_import_marker(
            {
                **identity,
                "rows": scan.rows,
                "rows_done": state.done,
                "changed": state.changed,
                "complete": state.done >= scan.rows,
            }
        )
    state.problems.extend(chunk_problems)
    if progress is not None:
        progress(state.done, scan.rows)


def import_catalog(
    store: Store,
    catalog: CatalogSource,
    image_root: Path | None = None,
    *,
    name: str | None = None,
    progress: Progress | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> ImportReport:
    """Validate a catalog, then write it ``chunk_rows`` postings per transaction.

    A bad file raises before anything is written. A run that dies part-way leaves whole chunks
    (never part of one) and a marker saying how far it got; importing the same file with the
    same image folder again continues from there and ends with the database an uninterrupted
    run gives. Any other import starts afresh. ``progress(done, total)`` counts postings.

    Raises:
        CatalogError: on any file-level problem; the database is unchanged.
    """
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, not {chunk_rows}")
    scan = scan_catalog(catalog, name)
    root = _image_folder(image_root)
    # What identifies "the same import": the exact bytes, and where its images are looked up
    # (the same file with another folder gives other image statuses).
    identity = {"fingerprint": scan.fingerprint, "images": str(root.resolve()) if root else ""}
    state = _resume_point(store, scan, identity)
    resumed_from = state.done
    reader = _CatalogReader(catalog, name)
    records = reader.records()
    try:
        collections.deque(itertools.islice(records, state.done), maxlen=0)  # skip what is written
        if progress is not None and state.done:
            progress(state.done, scan.rows)
        while chunk := list(itertools.islice(records, chunk_rows)):
            _write_chunk(store, chunk, root, scan, identity, state, progress)
    finally:
        records.close()
    if (reader.size, reader.sha256) != (scan.size, scan.sha256) or state.done != scan.rows:
        raise CatalogError(
            f"{scan.label}: the file changed while it was being imported; import it again"
        )
    logger.info(
        "imported %d rows (%d changed, %d problems, %d written before)",
        scan.rows,
        state.changed,
        len(state.problems),
        resumed_from,
    )
    return ImportReport(
        rows=scan.rows, changed=state.changed, problems=state.problems, resumed_from=resumed_from
    )
