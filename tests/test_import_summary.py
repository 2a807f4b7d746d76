"""An import's row problems grouped by kind, in words, from a real import of a small catalog."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from PIL import Image

from core.catalog import import_catalog, summarize_problems
from core.store import Store


def test_each_kind_of_row_problem_is_one_sentence_with_its_count(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    Image.new("RGB", (64, 64), (200, 30, 30)).save(images / "red.jpg")
    (images / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    rows = [
        ("ok", "red.jpg", "kaos merah", ""),
        ("untitled_1", "red.jpg", "", ""),
        ("untitled_2", "red.jpg", "  ", ""),
        ("gone", "nope.jpg", "kaos biru", ""),
        ("escape", "../red.jpg", "kaos hijau", ""),
        ("corrupt", "broken.jpg", "kaos hitam", ""),
        ("bad_hash", "red.jpg", "kaos putih", "xyz"),
        ("nothing", "nope2.jpg", "", ""),
    ]
    csv = tmp_path / "catalog.csv"
    pd.DataFrame(rows, columns=["posting_id", "image", "title", "image_phash"]).to_csv(
        csv, index=False
    )
    with Store(tmp_path / "c.db") as store:
        report = import_catalog(store, csv, images)

    groups = {g.kind: g for g in summarize_problems(report.problems_frame)}

    assert groups["no_title"].count == 2
    assert groups["no_title"].sentence == "2 postings without a title: matched by image only"
    # "nothing" lacks a title and its image too, but is told once: it can match nothing.
    assert groups["image_missing"].count == 1
    assert groups["image_refused"].count == 1
    assert groups["image_unreadable"].count == 1
    assert groups["bad_hash"].sentence.startswith("1 posting with an image_phash that is not 16")
    assert not groups["nothing_to_match"].usable
    assert groups["nothing_to_match"].examples["posting_id"].tolist() == ["nothing"]
    # Postings that can match nothing come first; every other group leaves them usable.
    ordered = summarize_problems(report.problems_frame)
    assert ordered[0].kind == "nothing_to_match"
    assert all(g.usable for g in ordered[1:])


def test_no_problems_no_groups() -> None:
    empty = pd.DataFrame(columns=["row", "posting_id", "field", "kind", "problem"])
    assert summarize_problems(empty) == []


def test_problems_stored_before_kinds_were_kept_get_theirs(tmp_path: Path) -> None:
    """A schema-2 database kept only each problem's wording: the upgrade works out its kind."""
    with Store(tmp_path / "old.db") as store:
        store.conn.execute("DROP TABLE import_problems")
        store.conn.execute(
            "CREATE TABLE import_problems (row INTEGER, posting_id TEXT, field TEXT NOT NULL, "
            "problem TEXT NOT NULL)"
        )
        store.conn.executemany(
            "INSERT INTO import_problems VALUES (?, ?, ?, ?)",
            [
                (2, "a", "title", "empty title: this posting is matched by its image only"),
                (3, "b", "image", "image 'x.jpg' does not exist in the image folder"),
                (4, "c", "image", "image 'http://x/y.jpg' is a URL; only files inside …"),
                (5, "d", "image", "image 'z.jpg' is empty (0 bytes)"),
                (6, "e", "row", "no usable title, image or hash"),
            ],
        )
        store.conn.execute("UPDATE meta SET value='2' WHERE key='schema_version'")
    with Store(tmp_path / "old.db") as store:
        kinds = store.import_problems().set_index("posting_id")["kind"].to_dict()
    assert kinds == {
        "a": "no_title",
        "b": "image_missing",
        "c": "image_refused",
        "d": "image_unreadable",
        "e": "nothing_to_match",
    }
