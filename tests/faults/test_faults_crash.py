"""Crash safety: ``python -m core embed`` and ``import`` killed with SIGKILL part-way, then run
again, end exactly where an uninterrupted run ends: no duplicate, no gap, identical vectors."""

from __future__ import annotations

import signal
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


@pytest.mark.slow
def test_import_killed_part_way_leaves_all_or_nothing(tmp_path: Path, shopee_csv: Path) -> None:
    reference_db = tmp_path / "reference.db"
    assert run_cli("import", shopee_csv, "--db", reference_db).returncode == 0
    expected = info(reference_db)["postings"]
    columns = "posting_id, title, title_norm, image, image_status, image_phash, label_group"
    reference = table(reference_db, f"SELECT {columns} FROM postings ORDER BY posting_id")

    db = tmp_path / "crashed.db"
    outcomes = []
    for delay in (0.8, 1.6, 2.4, 3.2):
        process = start_cli("import", shopee_csv, "--db", db)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        if db.exists():
            assert integrity(db) == [("ok",)]
            count = table(db, "SELECT COUNT(*) FROM postings")[0][0]
            assert count in (0, expected), (delay, count)  # never half a catalog
            outcomes.append(count)
    done = run_cli("import", shopee_csv, "--db", db)

    assert done.returncode == 0, done.stderr
    assert table(db, f"SELECT {columns} FROM postings ORDER BY posting_id") == reference
    assert integrity(db) == [("ok",)]
    assert outcomes, "no kill landed after the database was created"
    frame = pd.DataFrame(reference, columns=[c.strip() for c in columns.split(",")])
    assert frame["posting_id"].is_unique and len(frame) == expected
