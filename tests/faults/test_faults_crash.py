"""Crash safety: ``python -m core embed`` and ``import`` killed with SIGKILL part-way, then run
again, end exactly where an uninterrupted run ends: no duplicate, no gap, identical vectors and
postings."""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.store import Store
from tests.faults.helpers import info, integrity, run_cli, start_cli, table

MODEL = "mobilenet-a0.25-224"


def _embed_args(db: Path, weights: Path) -> list[object]:
    return ["embed", "--db", db, "--alpha", "0.25", "--weights-dir", weights]


def _vectors(db: Path) -> tuple[list[str], np.ndarray]:
    with Store(db) as store:
        return store.load_embeddings(MODEL, "imagenet")


def _kill_when(process, db: Path, condition, deadline_s: float = 240) -> int:
    """SIGKILL ``process`` as soon as ``condition(rows embedded)`` holds; returns that count."""
    started = time.monotonic()
    while time.monotonic() - started < deadline_s:
        count = table(db, "SELECT COUNT(*) FROM embeddings")[0][0] if db.exists() else 0
        if condition(count) or process.poll() is not None:
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    return count


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory, demo_catalog: Path) -> Path:
    db = tmp_path_factory.mktemp("crash") / "demo.db"
    done = run_cli("import", demo_catalog, "--images", demo_catalog.parent / "images", "--db", db)
    assert done.returncode == 0, done.stderr
    return db


@pytest.mark.slow
@pytest.mark.tf
def test_embedding_killed_at_several_points_resumes_to_the_same_vectors(
    tmp_path: Path, demo_db: Path, weights_dir: Path
) -> None:
    reference_db = tmp_path / "reference.db"
    reference_db.write_bytes(demo_db.read_bytes())
    done = run_cli(*_embed_args(reference_db, weights_dir))
    assert done.returncode == 0, done.stderr
    ref_ids, ref_vectors = _vectors(reference_db)
    images = info(reference_db)["images"]["ok"]
    assert len(ref_ids) == images > 256

    crashed_db = tmp_path / "crashed.db"
    crashed_db.write_bytes(demo_db.read_bytes())
    seen = []
    # Early (model still loading, or the first chunk), after a saved chunk, and near the end.
    for condition in (None, lambda n: n >= 1, lambda n: n >= images - 200):
        process = start_cli(*_embed_args(crashed_db, weights_dir))
        if condition is None:
            time.sleep(2)
            condition = lambda n: True  # noqa: E731
        seen.append(_kill_when(process, crashed_db, condition))
        assert process.returncode == -signal.SIGKILL, "finished before it could be killed"
        assert integrity(crashed_db) == [("ok",)]
    assert 0 < seen[1] < images and seen[1] <= seen[2] < images, seen
    resumed = run_cli(*_embed_args(crashed_db, weights_dir))

    assert resumed.returncode == 0, resumed.stderr
    assert f"{images - seen[2]} image(s) embedded" in resumed.stdout
    ids, vectors = _vectors(crashed_db)
    assert len(ids) == len(set(ids)) == images  # no duplicates, no gaps
    assert ids == ref_ids
    np.testing.assert_allclose(vectors, ref_vectors, atol=1e-5)
    counts = table(crashed_db, "SELECT model, version, COUNT(*) FROM embeddings GROUP BY 1, 2")
    assert counts == [(MODEL, "imagenet", images)]


IMPORT_CHUNK = 500  # 55 chunks of train.csv: a kill lands between two of them


def _postings(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        return table(db, "SELECT COUNT(*) FROM postings")[0][0]
    except sqlite3.OperationalError:  # the schema is not created yet
        return 0


def _import_until(db: Path, csv_path: Path, at_least: int, deadline_s: float = 120) -> int:
    """Start an import and SIGKILL it once ``at_least`` postings are committed."""
    process = start_cli("import", csv_path, "--db", db, "--chunk-rows", IMPORT_CHUNK)
    started = time.monotonic()
    while _postings(db) < at_least and process.poll() is None:
        assert time.monotonic() - started < deadline_s, "the import made no progress"
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL, "finished before it could be killed"
    return _postings(db)


def _contents(db: Path) -> dict:
    """``info`` without the database's own path."""
    return {key: value for key, value in info(db).items() if key != "database"}


@pytest.mark.slow
def test_import_killed_part_way_keeps_whole_chunks_and_resumes(
    tmp_path: Path, shopee_csv: Path
) -> None:
    reference_db = tmp_path / "reference.db"
    done = run_cli("import", shopee_csv, "--db", reference_db, "--chunk-rows", IMPORT_CHUNK)
    assert done.returncode == 0, done.stderr
    expected = _contents(reference_db)
    columns = "posting_id, title, title_norm, image, image_status, image_phash, label_group"
    postings_sql = f"SELECT {columns} FROM postings ORDER BY rowid"
    problems_sql = "SELECT * FROM import_problems ORDER BY rowid"
    reference = table(reference_db, postings_sql)
    total = expected["postings"]

    db = tmp_path / "crashed.db"
    killed_at = []
    # Killed after its first chunk; then run again and killed half-way: each run resumes.
    for at_least in (1, total // 2):
        count = _import_until(db, shopee_csv, at_least)
        assert integrity(db) == [("ok",)]
        # A prefix of whole chunks (train.csv has no blank lines: postings = rows), never half
        # of one, and a marker saying exactly how far the import got.
        assert count % IMPORT_CHUNK == 0 and 0 < count < total, count
        assert table(db, postings_sql) == reference[:count]
        marker = json.loads(table(db, "SELECT value FROM meta WHERE key='catalog_import'")[0][0])
        assert (marker["rows_done"], marker["complete"]) == (count, False)
        killed_at.append(count)
    assert killed_at[0] < killed_at[1], killed_at
    done = run_cli("import", shopee_csv, "--db", db, "--chunk-rows", IMPORT_CHUNK)

    assert done.returncode == 0, done.stderr
    assert f"{killed_at[1]} postings were already written" in done.stdout
    assert f"imported {total} postings ({total} new or changed)" in done.stdout
    assert table(db, postings_sql) == reference
    assert table(db, problems_sql) == table(reference_db, problems_sql)
    assert _contents(db) == expected  # catalog_revision too: one bump per chunk either way
    assert integrity(db) == [("ok",)]
    frame = pd.DataFrame(reference, columns=[c.strip() for c in columns.split(",")])
    assert frame["posting_id"].is_unique and len(frame) == total

    again = run_cli("import", shopee_csv, "--db", db)  # complete: re-imported, nothing changes
    assert again.returncode == 0, again.stderr
    assert f"imported {total} postings (0 new or changed)" in again.stdout
    assert _contents(db) == expected
