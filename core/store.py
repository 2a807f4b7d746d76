"""The product database: one SQLite file per catalog, versioned schema, writes in transactions.

One `Store` holds one connection; open a new one per thread (Streamlit reruns included)
rather than sharing it, since sqlite3 connections are not meant to cross threads.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.errors import SameSameError
from core.settings import MatchSettings

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS postings (
    posting_id TEXT PRIMARY KEY,
    title TEXT NOT NULL DEFAULT '',
    title_norm TEXT NOT NULL DEFAULT '',
    image TEXT,                 -- file name as written in the catalog
    image_path TEXT,            -- resolved absolute path when the file was usable
    image_status TEXT NOT NULL, -- ok | missing | corrupt | refused | none
    image_phash TEXT,           -- 16 hex digits: from the catalog, else computed from the file
    label_group TEXT,
    source TEXT NOT NULL DEFAULT 'catalog',
    added_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS import_problems (
    row INTEGER,
    posting_id TEXT,
    field TEXT NOT NULL,
    problem TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS translations (
    source_text TEXT NOT NULL,
    target_lang TEXT NOT NULL,
    translated TEXT NOT NULL,
    PRIMARY KEY (source_text, target_lang)
);
CREATE TABLE IF NOT EXISTS embeddings (
    posting_id TEXT NOT NULL REFERENCES postings(posting_id) ON DELETE CASCADE,
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    dim INTEGER NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (model, posting_id)
);
CREATE TABLE IF NOT EXISTS matches (
    pipeline TEXT NOT NULL,
    posting_id TEXT NOT NULL,
    match_id TEXT NOT NULL,
    rule TEXT NOT NULL,
    scores TEXT NOT NULL,       -- JSON of per-modality scores
    PRIMARY KEY (pipeline, posting_id, match_id)
);
CREATE TABLE IF NOT EXISTS match_runs (
    pipeline TEXT PRIMARY KEY,
    catalog_revision INTEGER NOT NULL,
    settings TEXT NOT NULL,
    computed_at REAL NOT NULL,
    seconds REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS reviews (
    left_id TEXT NOT NULL,
    right_id TEXT NOT NULL,
    verdict TEXT NOT NULL CHECK (verdict IN ('same', 'different')),
    reviewed_at REAL NOT NULL,
    PRIMARY KEY (left_id, right_id)
);
CREATE TABLE IF NOT EXISTS settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


class Store:
    """A SameSame product database.

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

    def __enter__(self) -> Store:
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
        try:
            yield self.conn
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
            if version > SCHEMA_VERSION:
                raise SameSameError(
                    f"Database schema version {version} is newer than this SameSame "
                    f"({SCHEMA_VERSION}); upgrade SameSame to open it."
                )
            if version < 1:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
                conn.execute("INSERT OR IGNORE INTO meta VALUES ('catalog_revision', '0')")

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

    # -- postings ---------------------------------------------------------------------------
    _POSTING_FIELDS = (
        "posting_id",
        "title",
        "title_norm",
        "image",
        "image_path",
        "image_status",
        "image_phash",
        "label_group",
        "source",
    )

    def upsert_postings(self, rows: Sequence[dict[str, Any]]) -> int:
        """Insert or update postings; returns how many changed. Changed postings lose their
        embeddings (they describe the old content). Idempotent for identical rows."""
        if not rows:
            return 0
        changed = 0
        now = time.time()
        with self.transaction() as conn:
            for row in rows:
                values = tuple(row.get(f) for f in self._POSTING_FIELDS)
                old = conn.execute(
                    "SELECT "
                    + ", ".join(self._POSTING_FIELDS)
                    + " FROM postings WHERE posting_id=?",
                    (row["posting_id"],),
                ).fetchone()
                if old is not None and tuple(old) == values:
                    continue
                changed += 1
                if old is not None:
                    conn.execute("DELETE FROM embeddings WHERE posting_id=?", (row["posting_id"],))
                conn.execute(
                    "INSERT OR REPLACE INTO postings ("
                    + ", ".join(self._POSTING_FIELDS)
                    + ", added_at) VALUES ("
                    + ", ".join("?" * (len(values) + 1))
                    + ")",
                    (*values, now),
                )
            if changed:
                self._bump_revision(conn)
        return changed

    def delete_postings(self, posting_ids: Iterable[str]) -> None:
        with self.transaction() as conn:
            conn.executemany("DELETE FROM postings WHERE posting_id=?", [(p,) for p in posting_ids])
            self._bump_revision(conn)

    def postings(self) -> pd.DataFrame:
        """All postings, in a stable order (insertion), as a DataFrame."""
        return pd.read_sql_query(
            "SELECT " + ", ".join(self._POSTING_FIELDS) + ", added_at FROM postings ORDER BY rowid",
            self.conn,
        )

    def posting(self, posting_id: str) -> dict[str, Any] | None:
        cursor = self.conn.execute("SELECT * FROM postings WHERE posting_id=?", (posting_id,))
        row = cursor.fetchone()
        if row is None:
            return None
        return dict(zip([d[0] for d in cursor.description], row, strict=True))

    def count_postings(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM postings").fetchone()[0])

    def replace_import_problems(self, problems: Sequence[dict[str, Any]]) -> None:
        with self.transaction() as conn:
            conn.execute("DELETE FROM import_problems")
            conn.executemany(
                "INSERT INTO import_problems VALUES (?, ?, ?, ?)",
                [(p.get("row"), p.get("posting_id"), p["field"], p["problem"]) for p in problems],
            )

    def import_problems(self) -> pd.DataFrame:
        return pd.read_sql_query("SELECT * FROM import_problems ORDER BY row", self.conn)

    # A chunked catalog import clears the list with its first chunk and appends each chunk's
    # problems in that chunk's transaction, so a resumed import neither loses nor repeats any.
    def clear_import_problems(self) -> None:
        with self.transaction() as conn:
            conn.execute("DELETE FROM import_problems")

    def add_import_problems(self, problems: Sequence[dict[str, Any]]) -> None:
        with self.transaction() as conn:
            conn.executemany(
                "INSERT INTO import_problems VALUES (?, ?, ?, ?)",
                [(p.get("row"), p.get("posting_id"), p["field"], p["problem"]) for p in problems],
            )

    def import_problem_records(self) -> list[dict[str, Any]]:
        """The stored import problems as dicts, in the order they were written."""
        rows = self.conn.execute(
            "SELECT row, posting_id, field, problem FROM import_problems ORDER BY rowid"
        )
        return [
            {"row": r, "posting_id": pid, "field": f, "problem": text} for r, pid, f, text in rows
        ]

    #: meta key of the last catalog import's progress (JSON: file fingerprint, image folder,
    #: postings written, complete), written in the same transaction as each chunk.
    IMPORT_MARKER_KEY = "catalog_import"

    def import_marker(self) -> dict[str, Any] | None:
        raw = self.meta(self.IMPORT_MARKER_KEY)
        try:
            marker = json.loads(raw) if raw else None
        except ValueError:
            return None  # unreadable: treated as no marker, so the next import starts afresh
        return marker if isinstance(marker, dict) else None

    def save_import_marker(self, marker: dict[str, Any]) -> None:
        self.set_meta(self.IMPORT_MARKER_KEY, json.dumps(marker, sort_keys=True))

    # -- embeddings -------------------------------------------------------------------------
    def save_embeddings(
        self, model: str, version: str, posting_ids: Sequence[str], vectors: np.ndarray
    ) -> None:
        """Store one batch of vectors (float32) in one transaction."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if len(posting_ids) != len(vectors):
            raise ValueError("posting_ids and vectors differ in length")
        with self.transaction() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?, ?)",
                [
                    (pid, model, version, int(vec.shape[0]), vec.tobytes())
                    for pid, vec in zip(posting_ids, vectors, strict=True)
                ],
            )

    def embedded_ids(self, model: str, version: str) -> set[str]:
        rows = self.conn.execute(
            "SELECT posting_id FROM embeddings WHERE model=? AND version=?", (model, version)
        )
        return {r[0] for r in rows}

    def load_embeddings(
        self, model: str, version: str | None = None
    ) -> tuple[list[str], np.ndarray]:
        """Vectors of one model (any version if ``version`` is None), ordered like `postings()`."""
        sql = (
            "SELECT e.posting_id, e.dim, e.vector FROM embeddings e "
            "JOIN postings p ON p.posting_id = e.posting_id WHERE e.model=?"
        )
        params: tuple[Any, ...] = (model,)
        if version is not None:
            sql += " AND e.version=?"
            params += (version,)
        rows = self.conn.execute(sql + " ORDER BY p.rowid", params).fetchall()
        if not rows:
            return [], np.zeros((0, 0), dtype=np.float32)
        dim = rows[0][1]
        matrix = np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float32).reshape(-1, dim)
        return [r[0] for r in rows], matrix.copy()

    def embedding_counts(self) -> dict[str, int]:
        rows = self.conn.execute("SELECT model, COUNT(*) FROM embeddings GROUP BY model")
        return {model: int(n) for model, n in rows}

    def delete_embeddings(self, model: str) -> None:
        with self.transaction() as conn:
            conn.execute("DELETE FROM embeddings WHERE model=?", (model,))

    # -- translations -----------------------------------------------------------------------
    def translations(self, texts: Iterable[str], target: str) -> dict[str, str]:
        wanted = list(dict.fromkeys(texts))
        found: dict[str, str] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            rows = self.conn.execute(
                "SELECT source_text, translated FROM translations WHERE target_lang=? AND "
                "source_text IN (" + ",".join("?" * len(chunk)) + ")",
                (target, *chunk),
            )
            found.update(dict(rows.fetchall()))
        return found

    def save_translations(self, pairs: dict[str, str], target: str) -> None:
        with self.transaction() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO translations VALUES (?, ?, ?)",
                [(src, target, dst) for src, dst in pairs.items()],
            )

    # -- matches ----------------------------------------------------------------------------
    def save_matches(
        self, pipeline: str, pairs: pd.DataFrame, settings: MatchSettings, seconds: float = 0.0
    ) -> None:
        """Replace the stored matches of one pipeline (pairs: left, right, rule, score columns)."""
        score_cols = [c for c in pairs.columns if c not in ("left", "right", "rule")]
        records = []
        for row in pairs.itertuples(index=False):
            scores = {
                c: (None if pd.isna(v) else float(v))
                for c, v in zip(score_cols, [getattr(row, c) for c in score_cols], strict=True)
            }
            records.append((pipeline, row.left, row.right, row.rule, json.dumps(scores)))
        with self.transaction() as conn:
            conn.execute("DELETE FROM matches WHERE pipeline=?", (pipeline,))
            conn.executemany("INSERT OR REPLACE INTO matches VALUES (?, ?, ?, ?, ?)", records)
            conn.execute(
                "INSERT OR REPLACE INTO match_runs VALUES (?, ?, ?, ?, ?)",
                (
                    pipeline,
                    self.catalog_revision,
                    json.dumps(settings.to_dict()),
                    time.time(),
                    seconds,
                ),
            )

    def load_match_pairs(self, pipeline: str) -> pd.DataFrame:
        rows = self.conn.execute(
            "SELECT posting_id, match_id, rule, scores FROM matches WHERE pipeline=?", (pipeline,)
        ).fetchall()
        records = [
            {"left": a, "right": b, "rule": rule, **json.loads(scores)}
            for a, b, rule, scores in rows
        ]
        return pd.DataFrame.from_records(
            records, columns=None if records else ["left", "right", "rule"]
        )

    def match_run(self, pipeline: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT catalog_revision, settings, computed_at, seconds FROM match_runs "
            "WHERE pipeline=?",
            (pipeline,),
        ).fetchone()
        if row is None:
            return None
        return {
            "catalog_revision": row[0],
            "settings": json.loads(row[1]),
            "computed_at": row[2],
            "seconds": row[3],
            "stale": row[0] != self.catalog_revision,
        }

    def match_counts(self) -> dict[str, int]:
        rows = self.conn.execute("SELECT pipeline, COUNT(*) FROM matches GROUP BY pipeline")
        return {p: int(n) for p, n in rows}

    # -- reviews ----------------------------------------------------------------------------
    def save_review(self, left_id: str, right_id: str, verdict: str) -> None:
        if verdict not in ("same", "different"):
            raise SameSameError(f"A review verdict is 'same' or 'different', not {verdict!r}")
        left_id, right_id = sorted((left_id, right_id))
        with self.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO reviews VALUES (?, ?, ?, ?)",
                (left_id, right_id, verdict, time.time()),
            )

    def reviews(self) -> pd.DataFrame:
        return pd.read_sql_query("SELECT * FROM reviews ORDER BY reviewed_at", self.conn)

    # -- settings ---------------------------------------------------------------------------
    def get_setting(self, key: str, default: Any = None) -> Any:
        row = self.conn.execute("SELECT value FROM settings WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def set_setting(self, key: str, value: Any) -> None:
        with self.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO settings VALUES (?, ?)", (key, json.dumps(value)))

    def load_settings(self) -> MatchSettings:
        stored = self.get_setting("match_settings", {}) or {}
        return MatchSettings.from_dict(stored)

    def save_settings(self, settings: MatchSettings) -> None:
        self.set_setting("match_settings", settings.to_dict())

    # -- summary ----------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
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
