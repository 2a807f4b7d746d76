"""The database connection: opening and upgrading the schema, transactions, metadata, the
catalog revision, settings and a summary of what it holds."""

from __future__ import annotations

import copy
import json
import logging
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from core.errors import SameSameError
from core.settings import MatchSettings
from core.settings.machine import MACHINE_NAMES, load_machine_values, save_machine_values
from core.store import schema

logger = logging.getLogger(__name__)
#: Key, beside a catalog's settings, of the image backbone its photo threshold was saved with.
THRESHOLD_BACKBONE = "photo_threshold_backbone"

#: Database path -> ((path, database id, data revision), `StoreBase.info` counts).
_INFO_CACHE: dict[str, tuple[tuple, dict[str, Any]]] = {}


class StoreBase:
    """The connection and what every part of the store shares.

    Args:
        path: SQLite file; created (with parent folders) if missing. ``":memory:"`` works too.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path) if str(path) != ":memory:" else None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.conn = sqlite3.connect(
                str(path), timeout=30.0, isolation_level=None, check_same_thread=False
            )
            self.conn.execute("PRAGMA busy_timeout = 30000")
            if self.path is not None:
                self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.execute("PRAGMA synchronous = NORMAL")
            self.conn.execute("PRAGMA foreign_keys = ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise SameSameError(f"{path} is not a usable SameSame database: {exc}") from exc

    # -- plumbing ---------------------------------------------------------------------------
    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> StoreBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All writes inside commit together or not at all (BEGIN IMMEDIATE takes the lock early,
        so two writers wait on busy_timeout instead of failing half-way)."""
        if self.conn.in_transaction:
            yield self.conn
            return
        self.conn.execute("BEGIN IMMEDIATE")
        changes = self.conn.total_changes
        try:
            yield self.conn
            if self.conn.total_changes != changes:
                # Every write moves the data revision, which `info` is remembered under.
                self.conn.execute(
                    "INSERT INTO meta VALUES ('data_revision', '1') ON CONFLICT (key) DO UPDATE "
                    "SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)"
                )
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")

    def _migrate(self) -> None:
        with self.transaction() as conn:
            existing = conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name='meta'"
            ).fetchone()
            version = 0
            if existing:
                row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
                version = int(row[0]) if row else 0
            if version > schema.SCHEMA_VERSION:
                raise SameSameError(
                    f"Database schema version {version} is newer than this SameSame "
                    f"({schema.SCHEMA_VERSION}); upgrade SameSame to open it."
                )
            if version == schema.SCHEMA_VERSION:
                return
            if version < 1:
                schema.create(conn)
                conn.execute("INSERT OR IGNORE INTO meta VALUES ('catalog_revision', '0')")
            else:
                logger.info("upgrading %s from schema %d", self.path, version)
                if version < 2:
                    schema.upgrade_from_v1(conn)
                schema.upgrade_to_v3(conn)
                schema.upgrade_to_v4(conn)
                schema.upgrade_to_v5(conn)
            # The id names this catalog wherever the file is copied or moved (models record
            # which catalog they learnt from); given at creation so every copy shares it.
            conn.execute(
                "INSERT OR IGNORE INTO meta VALUES ('database_id', ?)", (uuid.uuid4().hex,)
            )
            conn.execute(
                "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)",
                (str(schema.SCHEMA_VERSION),),
            )

    def meta(self, key: str, default: str | None = None) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    @property
    def schema_version(self) -> int:
        return int(self.meta("schema_version", "0") or 0)

    @property
    def catalog_revision(self) -> int:
        """Bumped whenever postings change, so stored matches and models know they are stale."""
        return int(self.meta("catalog_revision", "0") or 0)

    def _bump_revision(self, conn: sqlite3.Connection) -> None:
        conn.execute(
            "UPDATE meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) "
            "WHERE key = 'catalog_revision'"
        )

    # -- settings ---------------------------------------------------------------------------
    def get_setting(self, key: str, default: Any = None) -> Any:
        row = self.conn.execute("SELECT value FROM settings WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def set_setting(self, key: str, value: Any) -> None:
        with self.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO settings VALUES (?, ?)", (key, json.dumps(value)))

    def load_settings(self) -> MatchSettings:
        """This catalog's thresholds with this computer's machine settings (image models,
        batch size, weights folder), which apply to every catalog."""
        stored = self.get_setting("match_settings", {}) or {}
        machine = load_machine_values()
        # The catalog's photo threshold belongs to the backbone it was saved with; a backbone
        # chosen since (machine-wide, from any catalog) brings its own unless set by hand.
        saved_with = {"image_backbone": stored.get(THRESHOLD_BACKBONE, "mobilenet")}
        settings = MatchSettings.from_dict({**stored, **machine, **saved_with})
        return settings.replace(
            image_backbone=machine.get("image_backbone", MatchSettings().image_backbone)
        )

    def save_settings(self, settings: MatchSettings) -> None:
        catalog = {k: v for k, v in settings.to_dict().items() if k not in MACHINE_NAMES}
        catalog[THRESHOLD_BACKBONE] = settings.image_backbone
        self.set_setting("match_settings", catalog)
        save_machine_values(settings)

    # -- summary ----------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """Counts of what the database holds. Remembered, for every connection of this process,
        until the database's next write: pages ask several times per run (readiness of each
        pipeline, the sidebar) with a connection of their own, and the counts scan the
        postings and matches tables (30 ms at 27k postings, growing with the catalog)."""
        stamp = dict(
            self.conn.execute(
                "SELECT key, value FROM meta WHERE key IN ('database_id', 'data_revision')"
            )
        )
        key = (str(self.path), stamp.get("database_id"), stamp.get("data_revision"))
        cached = _INFO_CACHE.get(key[0])
        if self.path is not None and cached is not None and cached[0] == key:
            return copy.deepcopy(cached[1])
        found = self._count_everything()
        if self.path is not None:
            _INFO_CACHE[key[0]] = (key, found)
        return copy.deepcopy(found)

    def _count_everything(self) -> dict[str, Any]:
        status_counts = dict(
            self.conn.execute("SELECT image_status, COUNT(*) FROM postings GROUP BY image_status")
        )
        labelled = self.conn.execute(
            "SELECT COUNT(*), COUNT(DISTINCT label_group) FROM postings "
            "WHERE label_group IS NOT NULL"
        ).fetchone()
        hashes = self.conn.execute(
            "SELECT COUNT(*) FROM postings WHERE image_phash IS NOT NULL"
        ).fetchone()[0]
        return {
            "schema_version": self.schema_version,
            "catalog_revision": self.catalog_revision,
            "postings": self.count_postings(),
            "labelled_postings": int(labelled[0]),
            "label_groups": int(labelled[1]),
            "images": {
                s: int(status_counts.get(s, 0))
                for s in ("ok", "missing", "corrupt", "refused", "none")
            },
            "hashes": int(hashes),
            "embeddings": self.embedding_counts(),
            "matches": self.match_counts(),
            "reviews": int(self.conn.execute("SELECT COUNT(*) FROM reviews").fetchone()[0]),
        }
