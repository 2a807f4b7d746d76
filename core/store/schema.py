"""The database's tables and how older versions are brought up to date (in one transaction)."""

from __future__ import annotations

import json
import sqlite3

import numpy as np

from core.matches import SCORE_COLUMNS
from core.text import stored_title

SCHEMA_VERSION = 5

#: Per-pair score columns of the matches table (NULL where a modality is absent).
MATCH_SCORE_COLUMNS = SCORE_COLUMNS

_TABLES = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS postings (
    posting_id TEXT PRIMARY KEY,
    title TEXT NOT NULL DEFAULT '',  -- as its writer meant it: byte escapes decoded (v4)
    title_norm TEXT NOT NULL DEFAULT '',
    raw_title TEXT,             -- the title as the catalog wrote it, where decoding changed it
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
    problem TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'image_unreadable'  -- core.catalog.summary.KINDS (v3)
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
CREATE TABLE IF NOT EXISTS reviews (
    left_id TEXT NOT NULL,
    right_id TEXT NOT NULL,
    verdict TEXT NOT NULL CHECK (verdict IN ('same', 'different')),
    reviewed_at REAL NOT NULL,
    chosen TEXT NOT NULL DEFAULT 'browse',  -- how the pair was picked (v3): browse|queue|sample
    PRIMARY KEY (left_id, right_id)
);
CREATE TABLE IF NOT EXISTS settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

# What pages read one posting at a time (v3): a posting's pairs from either side, and the
# clusters a run formed (postings in clusters of two or more; the others are alone).
_V3 = """
CREATE INDEX IF NOT EXISTS matches_by_match ON matches (pipeline, match_id);
CREATE TABLE IF NOT EXISTS clusters (
    pipeline TEXT NOT NULL,
    posting_id TEXT NOT NULL,
    cluster INTEGER NOT NULL,
    PRIMARY KEY (pipeline, posting_id)
);
CREATE INDEX IF NOT EXISTS clusters_by_number ON clusters (pipeline, cluster);
CREATE TABLE IF NOT EXISTS cluster_summaries (
    pipeline TEXT NOT NULL,
    cluster INTEGER NOT NULL,
    size INTEGER NOT NULL,
    pairs INTEGER NOT NULL,
    density REAL NOT NULL,
    weakest_link REAL,
    component_size INTEGER NOT NULL,
    PRIMARY KEY (pipeline, cluster)
);
"""

# One row per unordered pair (left before right in catalog order); ``listed`` says which side
# counts the other among its matches (1 left, 2 right, 3 both: see core.matches).
_MATCHES = (
    """
CREATE TABLE IF NOT EXISTS matches (
    pipeline TEXT NOT NULL,
    posting_id TEXT NOT NULL,
    match_id TEXT NOT NULL,
    rule TEXT NOT NULL,
    similarity REAL NOT NULL,
    listed INTEGER NOT NULL DEFAULT 3,
    """
    + ",\n    ".join(f"{column} REAL" for column in MATCH_SCORE_COLUMNS)
    + """,
    PRIMARY KEY (pipeline, posting_id, match_id)
);
CREATE TABLE IF NOT EXISTS match_runs (
    pipeline TEXT PRIMARY KEY,
    catalog_revision INTEGER NOT NULL,
    settings TEXT NOT NULL,
    computed_at REAL NOT NULL,
    seconds REAL NOT NULL,
    details TEXT NOT NULL DEFAULT '{}'  -- JSON: notices, postings at the cap, counts, metrics
);
"""
    + _V3
)

# Text read from photos (v5, `core.ocr`): what each image file says, by the digest of its
# bytes and the reader that read it (a photo posted twice, or imported again from another
# folder, is read once), and each file's digest by path, size and modification time (so an
# unchanged file is not hashed again).
_V5 = """
CREATE TABLE IF NOT EXISTS photo_text (
    digest TEXT NOT NULL,       -- SHA-256 of the image file's bytes
    reader TEXT NOT NULL,       -- OCR package, version and sizes (core.ocr.READER)
    lines TEXT NOT NULL,        -- JSON [[text, confidence], ...] in reading order
    seconds REAL NOT NULL,
    read_at REAL NOT NULL,
    PRIMARY KEY (digest, reader)
);
CREATE TABLE IF NOT EXISTS photo_files (
    image_path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    digest TEXT NOT NULL
);
"""


_INSERT_V2_PAIR = (
    "INSERT INTO matches (pipeline, posting_id, match_id, rule, similarity, listed, "
    + ", ".join(MATCH_SCORE_COLUMNS)
    + ") VALUES ("
    + ", ".join("?" * (6 + len(MATCH_SCORE_COLUMNS)))
    + ")"
)


def _statements(script: str) -> list[str]:
    return [s for s in script.split(";") if s.strip()]


def create(conn: sqlite3.Connection) -> None:
    for statement in _statements(_TABLES) + _statements(_MATCHES) + _statements(_V5):
        conn.execute(statement)


def _similarity(scores: dict) -> float:
    """How alike a stored v1 pair is, from the scores it kept (v1 did not store it)."""
    candidates = [
        scores.get("probability"),
        scores.get("image_cosine"),
        None if scores.get("siamese_distance") is None else 1 - scores["siamese_distance"] / 2,
        None if scores.get("hash_distance") is None else 1 - scores["hash_distance"] / 32,
        scores.get("tfidf_cosine"),
        scores.get("text_ratio"),
    ]
    values = [float(v) for v in candidates if v is not None and np.isfinite(v)]
    return float(np.clip(max(values), 0.0, 1.0)) if values else 0.0


def upgrade_to_v3(conn: sqlite3.Connection) -> None:
    """v3 adds the clusters tables and an index (runs stored before get their clusters on
    first use: `core.matching.summarised_run`), how each reviewed pair was chosen, and the
    kind of each import problem, which older versions left to be guessed from its wording."""
    for statement in _statements(_V3):
        conn.execute(statement)
    reviews = {row[1] for row in conn.execute("PRAGMA table_info(reviews)")}
    if "chosen" not in reviews:
        conn.execute("ALTER TABLE reviews ADD COLUMN chosen TEXT NOT NULL DEFAULT 'browse'")
    columns = {row[1] for row in conn.execute("PRAGMA table_info(import_problems)")}
    if "kind" in columns:
        return
    conn.execute(
        "ALTER TABLE import_problems ADD COLUMN kind TEXT NOT NULL DEFAULT 'image_unreadable'"
    )
    rows = conn.execute("SELECT rowid, field, problem FROM import_problems").fetchall()
    conn.executemany(
        "UPDATE import_problems SET kind=? WHERE rowid=?",
        [(_old_problem_kind(field, text), rowid) for rowid, field, text in rows],
    )


def upgrade_to_v4(conn: sqlite3.Connection) -> None:
    """v4 keeps each title as its writer meant it (`core.text.stored_title`): titles stored
    before have their literal byte escapes decoded now, the raw title kept in ``raw_title``.
    Their normalised titles, which every pipeline reads, do not change (normalising decodes
    too), so stored matches, vectors and models stay current."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(postings)")}
    if "raw_title" not in columns:
        conn.execute("ALTER TABLE postings ADD COLUMN raw_title TEXT")
    rows = conn.execute(
        "SELECT rowid, title FROM postings WHERE raw_title IS NULL AND instr(title, ?) > 0",
        ("\\x",),
    ).fetchall()
    decoded = [(*stored_title(title), rowid) for rowid, title in rows]
    conn.executemany(
        "UPDATE postings SET title=?, raw_title=? WHERE rowid=?",
        [row for row in decoded if row[1] is not None],
    )


def upgrade_to_v5(conn: sqlite3.Connection) -> None:
    """v5 adds the photo text cache (empty: photos are read by ``python -m core ocr``);
    nothing stored before changes."""
    for statement in _statements(_V5):
        conn.execute(statement)


def _old_problem_kind(field: str, text: str) -> str:
    """The kind of a problem stored before v3, from its field and the wording v2 used."""
    if field == "title":
        return "no_title"
    if field == "image_phash":
        return "bad_hash"
    if field == "row":
        return "nothing_to_match"
    refused = ("is a URL", "absolute path", "leaves the image folder", "outside the image folder")
    if any(marker in text for marker in refused):
        return "image_refused"
    if "does not exist" in text:
        return "image_missing"
    return "image_unreadable"


def upgrade_from_v1(conn: sqlite3.Connection) -> None:
    """v1 kept per-pair scores as JSON and no similarity: rewrite the two match tables."""
    old = conn.execute(
        "SELECT pipeline, posting_id, match_id, rule, scores FROM matches"
    ).fetchall()
    runs = conn.execute(
        "SELECT pipeline, catalog_revision, settings, computed_at, seconds FROM match_runs"
    ).fetchall()
    conn.execute("DROP TABLE matches")
    conn.execute("DROP TABLE match_runs")
    for statement in _statements(_MATCHES):
        conn.execute(statement)
    rows = []
    for pipeline, left, right, rule, raw in old:
        scores = json.loads(raw)
        rows.append(
            (pipeline, left, right, rule, _similarity(scores), 3)
            + tuple(scores.get(c) for c in MATCH_SCORE_COLUMNS)
        )
    conn.executemany(_INSERT_V2_PAIR, rows)
    conn.executemany(
        "INSERT INTO match_runs (pipeline, catalog_revision, settings, computed_at, seconds) "
        "VALUES (?, ?, ?, ?, ?)",
        runs,
    )
