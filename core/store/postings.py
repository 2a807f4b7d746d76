"""Postings and import bookkeeping (problems found, resume markers)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

from core.errors import SameSameError

_INSERT_PROBLEM = (
    "INSERT INTO import_problems (row, posting_id, field, kind, problem) VALUES (?, ?, ?, ?, ?)"
)


def _problem_row(problem: dict[str, Any]) -> tuple:
    return (
        problem.get("row"),
        problem.get("posting_id"),
        problem["field"],
        problem["kind"],
        problem["problem"],
    )


class PostingsMixin:
    _POSTING_FIELDS = (
        "posting_id",
        "title",
        "title_norm",
        "raw_title",
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

    def postings(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """All postings, in a stable order (insertion), as a DataFrame.

        Args:
            columns: only these (of the postings fields and ``added_at``): a million titles
                take seconds to read, each unneeded column a second more.
        """
        known = (*self._POSTING_FIELDS, "added_at")
        wanted = tuple(columns) if columns is not None else known
        unknown = sorted(set(wanted) - set(known))
        if unknown:
            raise SameSameError(f"Postings have no column(s) {unknown}; they have {known}")
        return pd.read_sql_query(
            "SELECT " + ", ".join(wanted) + " FROM postings ORDER BY rowid", self.conn
        )

    def posting(self, posting_id: str) -> dict[str, Any] | None:
        cursor = self.conn.execute("SELECT * FROM postings WHERE posting_id=?", (posting_id,))
        row = cursor.fetchone()
        if row is None:
            return None
        return dict(zip([d[0] for d in cursor.description], row, strict=True))

    def titles_and_images(self, posting_ids: Sequence[str]) -> dict[str, tuple[str, str | None]]:
        """(title, image_path) of a few postings by id, in one query (unknown ids left out)."""
        rows = self.conn.execute(
            "SELECT posting_id, title, image_path FROM postings "
            "WHERE posting_id IN (SELECT value FROM json_each(?))",
            (json.dumps(list(posting_ids)),),
        )
        return {row[0]: (row[1] or "", row[2]) for row in rows}

    def postings_with_phash(self, phash: str, limit: int = 5) -> list[str]:
        """Ids of postings whose stored perceptual hash is exactly ``phash`` (16 hex digits)."""
        rows = self.conn.execute(
            "SELECT posting_id FROM postings WHERE image_phash = ? ORDER BY posting_id LIMIT ?",
            (phash.lower(), limit),
        )
        return [row[0] for row in rows]

    def count_postings(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM postings").fetchone()[0])

    def has_titles(self) -> bool:
        """Whether any posting has a title (False: an image-only catalog, or an empty one)."""
        row = self.conn.execute("SELECT EXISTS(SELECT 1 FROM postings WHERE title != '')")
        return bool(row.fetchone()[0])

    def replace_import_problems(self, problems: Sequence[dict[str, Any]]) -> None:
        with self.transaction() as conn:
            conn.execute("DELETE FROM import_problems")
            conn.executemany(_INSERT_PROBLEM, [_problem_row(p) for p in problems])

    def import_problems(self) -> pd.DataFrame:
        return pd.read_sql_query(
            "SELECT row, posting_id, field, kind, problem FROM import_problems ORDER BY row",
            self.conn,
        )

    # A chunked catalog import clears the list with its first chunk and appends each chunk's
    # problems in that chunk's transaction, so a resumed import neither loses nor repeats any.
    def clear_import_problems(self) -> None:
        with self.transaction() as conn:
            conn.execute("DELETE FROM import_problems")

    def add_import_problems(self, problems: Sequence[dict[str, Any]]) -> None:
        with self.transaction() as conn:
            conn.executemany(_INSERT_PROBLEM, [_problem_row(p) for p in problems])

    def import_problem_records(self) -> list[dict[str, Any]]:
        """The stored import problems as dicts, in the order they were written."""
        rows = self.conn.execute(
            "SELECT row, posting_id, field, kind, problem FROM import_problems ORDER BY rowid"
        )
        return [
            {"row": r, "posting_id": pid, "field": f, "kind": kind, "problem": text}
            for r, pid, f, kind, text in rows
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
