"""Image vectors per model and version, and cached title translations."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np


class VectorsMixin:
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

    def embedding_models(self, version: str) -> list[str]:
        """The models with vectors of ``version`` stored."""
        sql = "SELECT DISTINCT model FROM embeddings WHERE version=?"
        rows = self.conn.execute(sql, (version,))
        return sorted(r[0] for r in rows)

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

    def count_embeddings(self, model: str, version: str | None = None) -> int:
        """How many current postings have a vector of this model (and version)."""
        sql = (
            "SELECT COUNT(*) FROM embeddings e JOIN postings p ON p.posting_id = e.posting_id "
            "WHERE e.model=?"
        )
        params: tuple[Any, ...] = (model,)
        if version is not None:
            sql += " AND e.version=?"
            params += (version,)
        return int(self.conn.execute(sql, params).fetchone()[0])
