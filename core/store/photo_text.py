"""Text read from photos (`core.ocr`): the lines each image file says, by the digest of its
bytes, and each file's digest by its path and stamp (schema v5)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence


class PhotoTextMixin:
    def photo_postings(self, after: int, limit: int) -> list[tuple[int, str, str]]:
        """Up to ``limit`` postings with a usable image, after catalog position (rowid)
        ``after``: (rowid, posting_id, image_path), in catalog order."""
        rows = self.conn.execute(
            "SELECT rowid, posting_id, image_path FROM postings WHERE image_status='ok' "
            "AND image_path IS NOT NULL AND rowid > ? ORDER BY rowid LIMIT ?",
            (after, limit),
        )
        return [(int(r[0]), r[1], r[2]) for r in rows]

    def count_photo_postings(self) -> int:
        return int(
            self.conn.execute(
                "SELECT COUNT(*) FROM postings WHERE image_status='ok' AND image_path IS NOT NULL"
            ).fetchone()[0]
        )

    def photo_posting_ids(self) -> set[str]:
        rows = self.conn.execute(
            "SELECT posting_id FROM postings WHERE image_status='ok' AND image_path IS NOT NULL"
        )
        return {r[0] for r in rows}

    def file_digests(self, paths: Sequence[str]) -> dict[str, tuple[int, int, str]]:
        """(size, mtime_ns, digest) of each path hashed before."""
        found: dict[str, tuple[int, int, str]] = {}
        for start in range(0, len(paths), 500):
            chunk = list(paths[start : start + 500])
            rows = self.conn.execute(
                "SELECT image_path, size, mtime_ns, digest FROM photo_files WHERE image_path IN ("
                + ",".join("?" * len(chunk))
                + ")",
                chunk,
            )
            found.update({r[0]: (int(r[1]), int(r[2]), r[3]) for r in rows})
        return found

    def read_digests(self, digests: Iterable[str], reader: str) -> set[str]:
        """Which of these image contents ``reader`` has read already."""
        wanted = list(dict.fromkeys(digests))
        found: set[str] = set()
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            rows = self.conn.execute(
                "SELECT digest FROM photo_text WHERE reader=? AND digest IN ("
                + ",".join("?" * len(chunk))
                + ")",
                (reader, *chunk),
            )
            found.update(r[0] for r in rows)
        return found

    def save_photo_reads(
        self,
        files: Sequence[tuple[str, int, int, str]],
        reads: Sequence[tuple[str, list, float]],
        reader: str,
    ) -> None:
        """One batch in one transaction: files hashed, (path, size, mtime_ns, digest), and
        photos read, (digest, [[text, confidence], ...], seconds)."""
        now = time.time()
        with self.transaction() as conn:
            conn.executemany("INSERT OR REPLACE INTO photo_files VALUES (?, ?, ?, ?)", files)
            conn.executemany(
                "INSERT OR REPLACE INTO photo_text VALUES (?, ?, ?, ?, ?)",
                [(digest, reader, json.dumps(lines), s, now) for digest, lines, s in reads],
            )

    def photo_lines_by_posting(self, reader: str) -> dict[str, list]:
        """Each posting's photo lines as ``reader`` read them, for postings whose image file
        has been read ([[text, confidence], ...]; an empty list: read, no text)."""
        rows = self.conn.execute(
            "SELECT p.posting_id, t.lines FROM postings p "
            "JOIN photo_files f ON f.image_path = p.image_path "
            "JOIN photo_text t ON t.digest = f.digest AND t.reader = ? "
            "WHERE p.image_status = 'ok'",
            (reader,),
        )
        return {pid: json.loads(lines) for pid, lines in rows}

    def photo_read_seconds(self, reader: str) -> list[float]:
        """How long each stored photo took ``reader`` to read."""
        rows = self.conn.execute("SELECT seconds FROM photo_text WHERE reader=?", (reader,))
        return [float(r[0]) for r in rows]
