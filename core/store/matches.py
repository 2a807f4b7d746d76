"""Stored match runs (one per pipeline: its pairs, settings and what it reported) and the
reviewer's verdicts."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from core.errors import SameSameError
from core.pair_listing import LISTED_LEFT, LISTED_RIGHT
from core.settings import MatchSettings
from core.store.schema import MATCH_SCORE_COLUMNS

if TYPE_CHECKING:
    from core.clusters import Clustering

#: How a reviewed pair was chosen (`MatchesMixin.save_review`).
REVIEW_SOURCES = ("browse", "queue", "sample")

_PAIR_COLUMNS = ("posting_id", "match_id", "rule", "similarity", "listed", *MATCH_SCORE_COLUMNS)
_BASE_COLUMNS = _PAIR_COLUMNS[:5]


def _insert_pair(scores: tuple[str, ...]) -> str:
    """The INSERT for pairs carrying these score columns (the others stay NULL). Column names
    come from `MATCH_SCORE_COLUMNS` only; values always travel as parameters."""
    columns = (*_BASE_COLUMNS, *(c for c in MATCH_SCORE_COLUMNS if c in scores))
    return (
        "INSERT OR REPLACE INTO matches (pipeline, "
        + ", ".join(columns)
        + ") VALUES ("
        + ", ".join("?" * (len(columns) + 1))
        + ")"
    )


_SELECT_PAIRS = "SELECT " + ", ".join(_PAIR_COLUMNS) + " FROM matches WHERE pipeline=?"


_SCORE_LIST = ", ".join(("rule", "similarity", "listed", *MATCH_SCORE_COLUMNS))
# One posting's pairs from either side, each side only where it lists the other.
_SELECT_MATCHES_OF = (
    "SELECT match_id AS posting_id, "
    + _SCORE_LIST
    + " FROM matches WHERE pipeline=? AND posting_id=? AND (listed & ?) > 0 "
    + "UNION ALL SELECT posting_id, "
    + _SCORE_LIST
    + " FROM matches WHERE pipeline=? AND match_id=? AND (listed & ?) > 0"
)

#: Rows converted to Python values and inserted at a time (memory: one batch, not the run).
_INSERT_BATCH = 50_000


def _column(pairs: pd.DataFrame, name: str, default: Any) -> list:
    if name not in pairs:
        return [default] * len(pairs)
    values = pairs[name]
    if values.dtype.kind == "f":
        # NaN means "no such evidence": SQL NULL.
        return [None if v != v else v for v in values.astype(float).tolist()]
    return values.astype(object).tolist() if values.dtype == "category" else values.tolist()


def _rows(pipeline: str, pairs: pd.DataFrame, scores: tuple[str, ...]):
    """The insert parameters, one batch of pairs at a time."""
    for start in range(0, len(pairs), _INSERT_BATCH):
        batch = pairs.iloc[start : start + _INSERT_BATCH]
        columns = [
            _column(batch, "left", None),
            _column(batch, "right", None),
            _column(batch, "rule", ""),
            _column(batch, "similarity", 0.0),
            [int(v) for v in _column(batch, "listed", 3)],
            *(_column(batch, name, None) for name in MATCH_SCORE_COLUMNS if name in scores),
        ]
        for row in zip(*columns, strict=True):
            yield (pipeline, *row)


class MatchesMixin:
    def save_matches(
        self,
        pipeline: str,
        pairs: pd.DataFrame | Iterable[pd.DataFrame],
        settings: MatchSettings,
        seconds: float = 0.0,
        details: dict[str, Any] | None = None,
        clustering: Clustering | None = None,
    ) -> None:
        """Replace the stored matches of one pipeline (and its clusters) in one transaction:
        a failure part-way leaves the last run as it was.

        Args:
            pairs: left, right, rule, similarity, listed and score columns (`MatchResult`),
                as one frame or as consecutive frames (`MatchResult.pair_frames`), each
                written and let go before the next is read.
            details: what the run reported (notices, postings at the cap, counts), as JSON.
            clustering: the clusters of these pairs, stored for pages that show one posting's.
        """
        frames = [pairs] if isinstance(pairs, pd.DataFrame) else pairs
        with self.transaction() as conn:
            conn.execute("DELETE FROM matches WHERE pipeline=?", (pipeline,))
            for frame in frames:
                scores = tuple(c for c in MATCH_SCORE_COLUMNS if c in frame)
                conn.executemany(_insert_pair(scores), _rows(pipeline, frame, scores))
                del frame
            conn.execute(
                "INSERT OR REPLACE INTO match_runs VALUES (?, ?, ?, ?, ?, ?)",
                (
                    pipeline,
                    self.catalog_revision,
                    json.dumps(settings.to_dict()),
                    time.time(),
                    seconds,
                    json.dumps(details or {}, default=_json_default),
                ),
            )
            if clustering is not None:
                self._save_clusters(conn, pipeline, clustering)

    def save_run_summary(
        self, pipeline: str, clustering: Clustering, details: dict[str, Any]
    ) -> None:
        """Add clusters and figures to a run stored without them (the pairs stay as they are)."""
        with self.transaction() as conn:
            conn.execute(
                "UPDATE match_runs SET details=? WHERE pipeline=?",
                (json.dumps(details, default=_json_default), pipeline),
            )
            self._save_clusters(conn, pipeline, clustering)

    @staticmethod
    def _save_clusters(conn: sqlite3.Connection, pipeline: str, clustering: Clustering) -> None:
        conn.execute("DELETE FROM clusters WHERE pipeline=?", (pipeline,))
        conn.execute("DELETE FROM cluster_summaries WHERE pipeline=?", (pipeline,))
        summary = clustering.summary[clustering.summary["size"] > 1]
        grouped = set(summary["cluster"].tolist())
        conn.executemany(
            "INSERT INTO clusters VALUES (?, ?, ?)",
            (
                (pipeline, pid, label)
                for pid, label in zip(
                    clustering.posting_ids, clustering.labels.tolist(), strict=True
                )
                if label in grouped
            ),
        )
        conn.executemany(
            "INSERT INTO cluster_summaries VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                (
                    pipeline,
                    int(row.cluster),
                    int(row.size),
                    int(row.pairs),
                    float(row.density),
                    None if row.weakest_link != row.weakest_link else float(row.weakest_link),
                    int(row.component_size),
                )
                for row in summary.itertuples(index=False)
            ),
        )

    def load_match_pairs(self, pipeline: str) -> pd.DataFrame:
        """The stored pairs of one pipeline (columns as `MatchResult.pairs`)."""
        frame = pd.read_sql_query(_SELECT_PAIRS, self.conn, params=(pipeline,))
        return _typed_pairs(frame)

    def iter_match_pairs(self, pipeline: str, chunk_rows: int = 200_000) -> Iterator[pd.DataFrame]:
        """The stored pairs of one pipeline in chunks (columns as `load_match_pairs`): for
        readers that keep a few numbers per pair, so the rows' Python objects never exist all
        at once (millions of pairs at 200k postings)."""
        for frame in pd.read_sql_query(
            _SELECT_PAIRS, self.conn, params=(pipeline,), chunksize=chunk_rows
        ):
            yield _typed_pairs(frame)

    def matches_of(self, pipeline: str, posting_id: str) -> pd.DataFrame:
        """The postings ``posting_id`` lists under a stored run, best first (columns as
        `MatchResult.matches_of`): read through the indexes, whatever the catalog's size."""
        frame = pd.read_sql_query(
            _SELECT_MATCHES_OF,
            self.conn,
            params=(pipeline, posting_id, LISTED_LEFT, pipeline, posting_id, LISTED_RIGHT),
        )
        frame["listed"] = frame["listed"].astype(np.int8)
        for name in ("similarity", *MATCH_SCORE_COLUMNS):
            frame[name] = frame[name].astype(np.float32)
        frame = frame.sort_values("similarity", ascending=False, kind="stable")
        return frame.reset_index(drop=True)

    def cluster_of(self, pipeline: str, posting_id: str) -> tuple[list[str], dict[str, Any]]:
        """The members of the posting's stored cluster (catalog order) and how it formed
        (`core.clusters.Clustering.summary`'s columns); a posting in no stored cluster is
        alone."""
        row = self.conn.execute(
            "SELECT s.cluster, s.size, s.pairs, s.density, s.weakest_link, s.component_size "
            "FROM clusters c JOIN cluster_summaries s "
            "ON s.pipeline = c.pipeline AND s.cluster = c.cluster "
            "WHERE c.pipeline=? AND c.posting_id=?",
            (pipeline, posting_id),
        ).fetchone()
        if row is None:
            alone = {"size": 1, "pairs": 0, "density": 1.0, "weakest_link": None}
            return [posting_id], {**alone, "cluster": None, "component_size": 1}
        members = [
            pid
            for (pid,) in self.conn.execute(
                "SELECT c.posting_id FROM clusters c JOIN postings p USING (posting_id) "
                "WHERE c.pipeline=? AND c.cluster=? ORDER BY p.rowid",
                (pipeline, row[0]),
            )
        ]
        names = ("cluster", "size", "pairs", "density", "weakest_link", "component_size")
        return members, dict(zip(names, row, strict=True))

    def match_run(self, pipeline: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT catalog_revision, settings, computed_at, seconds, details FROM match_runs "
            "WHERE pipeline=?",
            (pipeline,),
        ).fetchone()
        if row is None:
            return None
        try:
            details = json.loads(row[4] or "{}")
        except ValueError:
            details = {}
        return {
            "catalog_revision": row[0],
            "settings": json.loads(row[1]),
            "computed_at": row[2],
            "seconds": row[3],
            "details": details,
            "notices": list(details.get("notices", [])),
            "stale": row[0] != self.catalog_revision,
        }

    def match_counts(self) -> dict[str, int]:
        rows = self.conn.execute("SELECT pipeline, COUNT(*) FROM matches GROUP BY pipeline")
        return {p: int(n) for p, n in rows}

    # -- reviews ----------------------------------------------------------------------------
    def save_review(
        self, left_id: str, right_id: str, verdict: str, chosen: str = "browse"
    ) -> None:
        """Keep a verdict on a pair (the later one wins).

        Args:
            chosen: how the pair came to be reviewed: "browse" (a posting's matches), "queue"
                (the review queue's most telling pairs) or "sample" (matches drawn at random,
                which estimate precision without bias).
        """
        if verdict not in ("same", "different"):
            raise SameSameError(f"A review verdict is 'same' or 'different', not {verdict!r}")
        if chosen not in REVIEW_SOURCES:
            raise SameSameError(f"A review is chosen by one of {REVIEW_SOURCES}, not {chosen!r}")
        if left_id == right_id:
            raise SameSameError(f"A posting is always the same as itself: {left_id!r}")
        left_id, right_id = sorted((left_id, right_id))
        with self.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO reviews VALUES (?, ?, ?, ?, ?)",
                (left_id, right_id, verdict, time.time(), chosen),
            )

    def delete_review(self, left_id: str, right_id: str) -> None:
        """Forget the verdict on a pair (undo)."""
        left_id, right_id = sorted((left_id, right_id))
        with self.transaction() as conn:
            conn.execute("DELETE FROM reviews WHERE left_id=? AND right_id=?", (left_id, right_id))

    def reviews(self) -> pd.DataFrame:
        """Every verdict, oldest first: left_id, right_id (sorted), verdict, reviewed_at, chosen."""
        return pd.read_sql_query(
            "SELECT left_id, right_id, verdict, reviewed_at, chosen FROM reviews "
            "ORDER BY reviewed_at",
            self.conn,
        )


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "__dataclass_fields__"):
        from dataclasses import asdict

        return asdict(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _typed_pairs(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.rename(columns={"posting_id": "left", "match_id": "right"})
    frame["listed"] = frame["listed"].astype(np.int8)
    for name in ("similarity", *MATCH_SCORE_COLUMNS):
        frame[name] = frame[name].astype(np.float32)
    return frame
