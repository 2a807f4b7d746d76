"""Concurrent use of one database: an import and an embedding at once, and several sessions
writing together: no "database is locked", no lost write."""

from __future__ import annotations

import csv
import threading
import time
from pathlib import Path

import pytest

from core.store import Store
from tests.faults.helpers import info, integrity, run_cli, start_cli, table


@pytest.mark.slow
@pytest.mark.tf
def test_import_while_embedding_loses_nothing(
    tmp_path: Path, demo_catalog: Path, shopee_csv: Path, weights_dir: Path
) -> None:
    db = tmp_path / "cat.db"
    done = run_cli("import", demo_catalog, "--images", demo_catalog.parent / "images", "--db", db)
    assert done.returncode == 0, done.stderr
    demo_images = info(db)["images"]["ok"]
    with shopee_csv.open(encoding="utf-8", newline="") as handle:
        rows = [row for _, row in zip(range(4000), csv.DictReader(handle), strict=False)]
    extra = tmp_path / "shopee_part.csv"
    with extra.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    embedding = start_cli("embed", "--db", db, "--alpha", "0.25", "--weights-dir", weights_dir)
    deadline = time.monotonic() + 240
    while table(db, "SELECT COUNT(*) FROM embeddings")[0][0] == 0:
        assert embedding.poll() is None, embedding.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    importing = run_cli("import", extra, "--db", db)  # runs while the embedder writes batches
    out, err = embedding.communicate(timeout=600)

    assert importing.returncode == 0, importing.stderr
    assert embedding.returncode == 0, err
    for stderr in (importing.stderr, err):
        assert "locked" not in stderr and "Traceback" not in stderr
    after = info(db)
    assert after["postings"] == 602 + len(rows)
    assert after["embeddings"] == {"mobilenet-a0.25-224": demo_images}
    assert integrity(db) == [("ok",)]


def test_sessions_writing_at_once_lose_no_write(tmp_path: Path) -> None:
    db = tmp_path / "cat.db"
    with Store(db) as store:
        store.upsert_postings(
            [
                {"posting_id": f"p{i}", "title": f"t{i}", "title_norm": f"t{i}"}
                | {"image_status": "none", "image_phash": None, "label_group": None}
                | {"image": None, "image_path": None, "source": "catalog"}
                for i in range(50)
            ]
        )
    errors: list[BaseException] = []

    def session(worker: int) -> None:
        try:
            with Store(db) as store:  # each app session opens its own connection
                for i in range(49):
                    store.save_review(f"p{i}", f"p{i + 1}", "same" if worker % 2 else "different")
                    store.set_setting(f"worker{worker}", i)
                    store.info()  # reads between the writes of the others
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=session, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    with Store(db) as store:
        assert len(store.reviews()) == 49  # the same 49 pairs, last verdict wins
        assert [store.get_setting(f"worker{w}") for w in range(4)] == [48] * 4
    assert integrity(db) == [("ok",)]
