"""The SQLite store: schema, postings, embeddings, matches, caches and transactions."""

from __future__ import annotations

import gc
import sqlite3
import weakref
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.errors import SameSameError
from core.settings import MatchSettings
from core.store import SCHEMA_VERSION, Store


def posting(pid: str, title: str = "kaos polos", **extra) -> dict:
    row = {
        "posting_id": pid,
        "title": title,
        "title_norm": title.lower(),
        "image": None,
        "image_path": None,
        "image_status": "none",
        "image_phash": None,
        "label_group": None,
        "source": "catalog",
    }
    row.update(extra)
    return row


def test_new_store_has_the_schema_and_revision_zero(tmp_path: Path) -> None:
    with Store(tmp_path / "sub" / "new.db") as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.catalog_revision == 0
        info = store.info()
    assert info["postings"] == 0
    assert info["images"] == {"ok": 0, "missing": 0, "corrupt": 0, "refused": 0, "none": 0}
    assert (tmp_path / "sub" / "new.db").is_file()


def test_reopening_keeps_the_data(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    with Store(path) as store:
        store.upsert_postings([posting("p1")])
    with Store(path) as store:
        assert store.count_postings() == 1
        assert store.catalog_revision == 1


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    with Store(path) as store:
        store.set_meta("schema_version", str(SCHEMA_VERSION + 1))
    with pytest.raises(SameSameError, match="newer than this SameSame"):
        Store(path)


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("just some text, long enough to look like a header of something" * 10)
    with pytest.raises(SameSameError, match="not a usable SameSame database"):
        Store(path)


def test_upsert_is_idempotent_and_bumps_revision_only_on_change(store: Store) -> None:
    assert store.upsert_postings([posting("p1"), posting("p2")]) == 2
    assert store.catalog_revision == 1

    assert store.upsert_postings([posting("p1"), posting("p2")]) == 0
    assert store.catalog_revision == 1

    assert store.upsert_postings([posting("p1", title="kaos baru"), posting("p2")]) == 1
    assert store.catalog_revision == 2
    assert store.posting("p1")["title"] == "kaos baru"
    assert store.posting("nope") is None


def test_embeddings_round_trip_in_catalog_order(store: Store) -> None:
    store.upsert_postings([posting("p1"), posting("p2"), posting("p3")])
    vectors = np.arange(12, dtype=np.float32).reshape(3, 4)
    store.save_embeddings("m", "v1", ["p3", "p1"], vectors[:2])
    store.save_embeddings("m", "v1", ["p2"], vectors[2:])

    ids, matrix = store.load_embeddings("m", "v1")

    assert ids == ["p1", "p2", "p3"]
    np.testing.assert_array_equal(matrix, vectors[[1, 2, 0]])
    assert matrix.dtype == np.float32
    assert store.embedded_ids("m", "v1") == {"p1", "p2", "p3"}
    assert store.embedded_ids("m", "v2") == set()
    none_ids, none_matrix = store.load_embeddings("other")
    assert none_ids == [] and none_matrix.shape == (0, 0)
    with pytest.raises(ValueError, match="differ in length"):
        store.save_embeddings("m", "v1", ["p1"], vectors)


def test_deleting_or_changing_a_posting_drops_its_embeddings(store: Store) -> None:
    store.upsert_postings([posting("p1"), posting("p2"), posting("p3")])
    store.save_embeddings("m", "v1", ["p1", "p2", "p3"], np.ones((3, 2), np.float32))

    store.delete_postings(["p1"])
    store.upsert_postings([posting("p2", title="changed")])

    assert store.embedded_ids("m", "v1") == {"p3"}
    assert store.embedding_counts() == {"m": 1}
    assert store.catalog_revision == 3


def test_matches_round_trip_with_scores_and_staleness(store: Store) -> None:
    store.upsert_postings([posting("p1"), posting("p2"), posting("p3")])
    pairs = pd.DataFrame(
        {
            "left": ["p1", "p1"],
            "right": ["p2", "p3"],
            "rule": ["text", "hash"],
            "tfidf_cosine": [0.75, np.nan],
            "hash_distance": [np.nan, 3.0],
        }
    )
    settings = MatchSettings(top_k=7)
    store.save_matches("baseline", pairs, settings, seconds=1.5)

    back = store.load_match_pairs("baseline").sort_values("right").reset_index(drop=True)
    run = store.match_run("baseline")

    assert back[["left", "right", "rule"]].values.tolist() == [
        ["p1", "p2", "text"],
        ["p1", "p3", "hash"],
    ]
    assert back["tfidf_cosine"].iloc[0] == 0.75 and pd.isna(back["tfidf_cosine"].iloc[1])
    assert run["settings"]["top_k"] == 7 and run["seconds"] == 1.5 and not run["stale"]
    assert store.match_counts() == {"baseline": 2}

    store.upsert_postings([posting("p4")])
    assert store.match_run("baseline")["stale"]
    store.save_matches("baseline", pairs.iloc[:0], settings)
    assert store.load_match_pairs("baseline").empty
    assert store.match_run("ensemble") is None


def _pair_slices(count: int, rows: int, alive: list, fail_after: int | None = None):
    """``count`` frames of ``rows`` pairs of postings p0..p9, made one at a time; each call
    for the next first checks that the consumer let go of every frame it was given."""
    for i in range(count):
        gc.collect()  # frames hold reference cycles: only a frame still referenced survives
        held = sum(ref() is not None for ref in alive)
        assert held == 0, f"{held} frame(s) still held when frame {i} was asked for"
        if fail_after is not None and i == fail_after:
            raise RuntimeError("boom")
        box = [
            pd.DataFrame(
                {
                    "left": [f"p{i % 10}"] * rows,
                    "right": [f"q{i}-{j}" for j in range(rows)],
                    "rule": "text",
                    "similarity": np.float32(0.8),
                    "tfidf_cosine": np.float32(0.8),
                    "listed": np.int8(3),
                }
            )
        ]
        alive.append(weakref.ref(box[0]))
        yield box.pop()  # this generator keeps no reference to what it gave


def test_matches_are_written_a_slice_at_a_time(store: Store) -> None:
    """`save_matches` takes the pairs as an iterator of frames and lets each go before it
    reads the next: a run is never held whole on the way to the database."""
    alive: list = []

    store.save_matches("baseline", _pair_slices(6, 1_000, alive), MatchSettings())

    assert store.match_counts() == {"baseline": 6_000}
    back = store.load_match_pairs("baseline")
    assert back["right"].nunique() == 6_000 and back["rule"].eq("text").all()
    with pytest.raises(AssertionError, match="still held"):
        kept = list(_pair_slices(3, 10, []))  # a consumer that gathers the frames fails
        assert kept


def test_a_write_that_fails_part_way_leaves_the_last_run(store: Store) -> None:
    alive: list = []
    store.save_matches("baseline", _pair_slices(2, 500, alive), MatchSettings(), seconds=1.0)
    before = store.load_match_pairs("baseline")

    with pytest.raises(RuntimeError, match="boom"):
        store.save_matches(
            "baseline", _pair_slices(5, 500, [], fail_after=3), MatchSettings(), seconds=2.0
        )

    pd.testing.assert_frame_equal(store.load_match_pairs("baseline"), before)
    assert store.match_run("baseline")["seconds"] == 1.0
    assert store.conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_translations_are_cached_per_language(store: Store) -> None:
    store.save_translations({"kaos": "t-shirt", "sepatu": "shoes"}, "en")
    assert store.translations(["kaos", "sepatu", "topi"], "en") == {
        "kaos": "t-shirt",
        "sepatu": "shoes",
    }
    assert store.translations(["kaos"], "de") == {}
    many = [f"title {i}" for i in range(1200)]  # more than one IN (...) chunk
    store.save_translations({t: t.upper() for t in many}, "en")
    assert len(store.translations(many, "en")) == 1200


def test_reviews_are_unordered_pairs_and_verdicts_are_checked(store: Store) -> None:
    store.save_review("p2", "p1", "same")
    store.save_review("p1", "p2", "different")

    reviews = store.reviews()
    assert reviews[["left_id", "right_id", "verdict"]].values.tolist() == [
        ["p1", "p2", "different"]
    ]
    with pytest.raises(SameSameError, match="'same' or 'different'"):
        store.save_review("p1", "p2", "maybe")


def test_settings_persist(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with Store(path) as store:
        assert store.load_settings() == MatchSettings()
        store.save_settings(MatchSettings(baseline_text_cosine=0.42))
        store.set_setting("anything", {"a": [1, 2]})
    with Store(path) as store:
        assert store.load_settings().baseline_text_cosine == 0.42
        assert store.get_setting("anything") == {"a": [1, 2]}
        assert store.get_setting("missing", "default") == "default"


def test_a_failed_transaction_writes_nothing(store: Store) -> None:
    store.upsert_postings([posting("p1")])
    before = store.info()

    with pytest.raises(RuntimeError, match="boom"), store.transaction():
        store.upsert_postings([posting("p2")])
        store.save_translations({"a": "b"}, "en")
        raise RuntimeError("boom")

    assert store.info() == before
    assert store.translations(["a"], "en") == {}
    assert store.conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_a_second_connection_sees_committed_writes(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    with Store(path) as writer, Store(path) as reader:
        writer.upsert_postings([posting("p1")])
        assert reader.count_postings() == 1
        assert sqlite3.connect(path).execute("SELECT COUNT(*) FROM postings").fetchone() == (1,)


def test_memory_store_works() -> None:
    with Store(":memory:") as store:
        assert store.path is None
        store.upsert_postings([posting("p1", label_group="g")])
        assert store.info()["label_groups"] == 1


#: The tables of schema version 1 (SameSame before the engine), as that version created them.
SCHEMA_V1 = """
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


def test_a_version_1_database_is_upgraded_with_its_matches_and_runs(tmp_path: Path) -> None:
    """Databases written before the engine (schema 1: scores as JSON, no similarity, no
    'listed') open with their postings, stored matches and runs intact."""
    import json

    statements = SCHEMA_V1
    path = tmp_path / "v1.db"
    with sqlite3.connect(path) as conn:
        for statement in statements.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
        conn.execute("INSERT INTO meta VALUES ('catalog_revision', '3')")
        for pid in ("p1", "p2", "p3"):
            conn.execute(
                "INSERT INTO postings (posting_id, title, title_norm, image_status, added_at) "
                "VALUES (?, 'kaos', 'kaos', 'none', 0)",
                (pid,),
            )
        conn.execute(
            "INSERT INTO matches VALUES ('baseline', 'p1', 'p2', 'text', ?)",
            (json.dumps({"tfidf_cosine": 0.75, "hash_distance": None}),),
        )
        conn.execute(
            "INSERT INTO matches VALUES ('baseline', 'p1', 'p3', 'hash', ?)",
            (json.dumps({"hash_distance": 8.0}),),
        )
        conn.execute(
            "INSERT INTO match_runs VALUES ('baseline', 3, ?, 100.0, 2.5)",
            (json.dumps(MatchSettings().to_dict()),),
        )

    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION == 5
        assert store.count_postings() == 3 and store.catalog_revision == 3
        pairs = store.load_match_pairs("baseline").sort_values("right").reset_index(drop=True)
        run = store.match_run("baseline")

    assert pairs[["left", "right", "rule"]].values.tolist() == [
        ["p1", "p2", "text"],
        ["p1", "p3", "hash"],
    ]
    assert pairs["listed"].tolist() == [3, 3]
    assert pairs["similarity"].tolist() == pytest.approx([0.75, 0.75])  # 1 - 8/32 for the hash
    assert pairs["tfidf_cosine"].iloc[0] == pytest.approx(0.75)
    assert run["seconds"] == 2.5 and not run["stale"] and run["notices"] == []


def test_a_version_3_database_gains_raw_titles_and_keeps_its_rows(tmp_path: Path) -> None:
    """Databases written before raw titles were kept (schema 3: no ``raw_title`` column, titles
    stored with their byte escapes) open with every posting and vector; escaped titles are
    decoded, the raw one kept, and nothing derived from them goes stale."""
    path = tmp_path / "v3.db"
    raw = "Nescafe \\xc3\\x89clair Latte 220ml"  # a real Shopee title, as train.csv has it
    with Store(path) as old:
        old.conn.execute("ALTER TABLE postings DROP COLUMN raw_title")
        for pid, title, norm in (
            ("p1", raw, "nescafe \u00e9clair latte 220ml"),
            ("p2", "Kaos \\xff Polos", "kaos polos"),
            ("p3", "kaos polos", "kaos polos"),
        ):
            old.conn.execute(
                "INSERT INTO postings (posting_id, title, title_norm, image_status, added_at) "
                "VALUES (?, ?, ?, 'none', 0)",
                (pid, title, norm),
            )
        old.save_embeddings("mobilenet", "v1", ["p1", "p2"], np.eye(2, dtype=np.float32))
        old.conn.execute("UPDATE meta SET value='3' WHERE key='schema_version'")
        revision = old.catalog_revision

    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION == 5
        rows = store.postings().set_index("posting_id")
        kept = {pid: store.posting(pid)["raw_title"] for pid in ("p1", "p2", "p3")}
        assert store.catalog_revision == revision
        assert store.embedding_counts() == {"mobilenet": 2}

    assert rows["title"].to_dict() == {
        "p1": "Nescafe \u00c9clair Latte 220ml",
        "p2": "Kaos \\xff Polos",  # not UTF-8: left as written
        "p3": "kaos polos",
    }
    assert kept == {"p1": raw, "p2": None, "p3": None}
    assert rows["title_norm"].tolist() == [
        "nescafe \u00e9clair latte 220ml",
        "kaos polos",
        "kaos polos",
    ]


def test_postings_can_be_read_a_few_columns_at_a_time(store: Store) -> None:
    store.upsert_postings([posting("p1"), posting("p2", title="sepatu")])
    frame = store.postings(["posting_id", "title"])
    assert list(frame.columns) == ["posting_id", "title"]
    assert frame["title"].tolist() == ["kaos polos", "sepatu"]
    with pytest.raises(SameSameError, match=r"no column\(s\) \['price'\]"):
        store.postings(["posting_id", "price"])
