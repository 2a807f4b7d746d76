"""Catalog import: every bad file is refused with a message naming the problem and where, and
leaves the database exactly as it was; bad rows are reported and kept."""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import core.catalog.rows as catalog_module
from core.catalog import import_catalog, read_catalog_csv
from core.engine import match_catalog
from core.errors import CatalogError
from core.pipelines import MatchInputs, get_pipeline
from core.settings import MatchSettings
from core.store import Store

HEADER = ["posting_id", "image", "image_phash", "title", "label_group"]
# Three real Shopee photos and their rows in train.csv (two postings share 001e1114…jpg).
REAL_FILES = (
    "0000a68812bc7e98c42888dfb1c07da0.jpg",
    "001e11145b8e9bf5ac51110c0fdd8697.jpg",
    "0019a3c6755a194cb2e2c12bfc63972e.jpg",
)


def csv_bytes(rows: list[list[str]], header: list[str] = HEADER, encoding: str = "utf-8") -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode(encoding)


def snapshot(store: Store) -> tuple:
    """Everything an import could change, plus SQLite's own consistency check."""
    return (
        store.info(),
        store.postings().to_dict("records"),
        store.import_problems().to_dict("records"),
        store.conn.execute("PRAGMA integrity_check").fetchall(),
    )


@pytest.fixture(scope="module")
def real_rows(shopee_csv: Path) -> list[list[str]]:
    with shopee_csv.open(encoding="utf-8", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["image"] in REAL_FILES]
    return [[r[c] for c in HEADER] for r in rows]


@pytest.fixture
def image_dir(tmp_path: Path, shopee_images: Path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    for name in REAL_FILES:
        shutil.copy(shopee_images / name, folder / name)
    return folder


@pytest.fixture
def seeded(store: Store, tmp_path: Path, image_dir: Path, real_rows) -> Store:
    """A store that already holds a valid catalog (the one a failed import must not touch)."""
    path = tmp_path / "good.csv"
    path.write_bytes(csv_bytes(real_rows))
    report = import_catalog(store, path, image_dir)
    assert report.rows == len(real_rows) >= 4
    assert report.problems == []
    return store


# -- file-level problems: nothing written ------------------------------------------------------
OK_ROW = ["p1", "a.jpg", "", "kaos polos", "g1"]

BAD_FILES = {
    "missing_columns": (
        csv_bytes([["p1", "a.jpg", "kaos"]], header=["id", "image", "name"]),
        r"missing required column\(s\) posting_id, title; found id, image, name",
    ),
    "duplicate_ids": (
        csv_bytes([OK_ROW, ["p2", "", "", "b", ""], ["p1", "", "", "c", ""]]),
        r"duplicate posting_id: 'p1' in rows 2, 4",
    ),
    "empty_ids": (
        csv_bytes([OK_ROW, ["  ", "", "", "b", ""], ["p3", "", "", "c", ""], ["", "", "", "", ""]]),
        r"empty posting_id in row\(s\) 3$",
    ),
    "latin1_bytes": (
        csv_bytes([OK_ROW, ["p2", "", "", "caf\u00e9 susu", ""]], encoding="latin-1"),
        r"cannot read the text as UTF-8 \(bad byte at line 3, byte \d+\)",
    ),
    "empty_file": (b"", "the file is empty"),
    "whitespace_only": (b" \r\n\n  ", "the file is empty"),
    "header_only": (csv_bytes([]), "the header is there but the file has no postings"),
    "header_and_blank_rows": (b"posting_id,image,title\n,,\n , ,\n", "every row is blank"),
    "binary_file": (bytes(range(256)) * 8, "this is a binary file, not a CSV catalog"),
    "malformed_quoting": (
        csv_bytes([OK_ROW]) + b'p2,b.jpg,,"kaos "polos",g2\n',
        r"malformed CSV near line 3: .*Check the quoting",
    ),
    "unterminated_quote": (
        csv_bytes([OK_ROW]) + b'p2,b.jpg,,"kaos polos,g2\n',
        r"malformed CSV near line \d+: unexpected end of data",
    ),
    "wrong_field_count": (
        csv_bytes([OK_ROW]) + b"p2,b.jpg,,kaos, polos,g2\n",
        r"row 3 has 6 fields but the header has 5",
    ),
    "absurd_field": (
        csv_bytes([OK_ROW, ["p2", "b.jpg", "", "x" * 6_000, "g2"]]),
        r"row 3, column title is 6,000 characters long \(limit 5,000\)",
    ),
    "field_beyond_csv_limit": (
        csv_bytes([["p1", "a.jpg", "", "y" * 30_000, "g1"]]),
        r"malformed CSV near line 2: field larger than field limit",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_file_is_refused_and_database_unchanged(seeded: Store, tmp_path: Path, case) -> None:
    data, message = BAD_FILES[case]
    path = tmp_path / f"{case}.csv"
    path.write_bytes(data)
    before = snapshot(seeded)

    with pytest.raises(CatalogError, match=message) as caught:
        import_catalog(seeded, path, tmp_path)

    assert str(caught.value).startswith(str(path))
    assert snapshot(seeded) == before
    assert before[3] == [("ok",)]


def test_bad_uploaded_bytes_are_named_by_the_upload(seeded: Store) -> None:
    before = snapshot(seeded)
    with pytest.raises(CatalogError, match=r"^shop\.csv: duplicate posting_id"):
        import_catalog(seeded, csv_bytes([OK_ROW, OK_ROW]), name="shop.csv")
    assert snapshot(seeded) == before


def test_missing_file_folder_and_image_folder_are_refused(seeded: Store, tmp_path: Path) -> None:
    before = snapshot(seeded)
    good = tmp_path / "ok.csv"
    good.write_bytes(csv_bytes([OK_ROW]))

    with pytest.raises(CatalogError, match="file not found"):
        import_catalog(seeded, tmp_path / "nope.csv")
    with pytest.raises(CatalogError, match="is a folder"):
        import_catalog(seeded, tmp_path)
    with pytest.raises(CatalogError, match="image folder .*nowhere does not exist"):
        import_catalog(seeded, good, tmp_path / "nowhere")
    assert snapshot(seeded) == before


def test_csv_field_limit_of_the_process_is_left_alone() -> None:
    before = csv.field_size_limit()
    read_catalog_csv(csv_bytes([OK_ROW]))
    with pytest.raises(CatalogError):
        read_catalog_csv(csv_bytes([["p1", "", "", "z" * 30_000, ""]]))
    assert csv.field_size_limit() == before


# -- encodings ---------------------------------------------------------------------------------
TITLE = "Caf\u00e9 Susu \u00c9clair \u2764 \u4e2d\u6587"


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-be-bom", "utf-8"])
def test_bom_files_are_read_correctly(store: Store, tmp_path: Path, encoding: str) -> None:
    text = csv_bytes([["p1", "", "", TITLE, "g"], ["p2", "", "", "kaos", "g"]]).decode()
    if encoding == "utf-16-be-bom":
        data = b"\xfe\xff" + text.encode("utf-16-be")
    else:
        data = text.encode(encoding)
    path = tmp_path / "bom.csv"
    path.write_bytes(data)

    report = import_catalog(store, path)

    assert report.rows == 2
    postings = store.postings()
    assert postings["posting_id"].tolist() == ["p1", "p2"]
    assert postings["title"].iloc[0] == TITLE
    assert postings["title_norm"].iloc[0] == "caf\u00e9 susu \u00e9clair \u4e2d\u6587"


# -- row-level problems: reported, row kept -----------------------------------------------------
def problems_by_id(report) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for problem in report.problems:
        found.setdefault(problem["posting_id"], []).append(problem)
    return found


@pytest.fixture
def outside_file(tmp_path: Path, shopee_images: Path) -> Path:
    """A perfectly good JPEG outside the image folder: reading it would be the bug."""
    target = tmp_path / "x.jpg"
    shutil.copy(shopee_images / REAL_FILES[0], target)
    return target


def test_paths_leaving_the_folder_are_refused_and_never_opened(
    store: Store, tmp_path: Path, image_dir: Path, outside_file: Path, monkeypatch
) -> None:
    os.symlink(outside_file, image_dir / "link.jpg")
    opened: list[str] = []
    real_open = catalog_module.open_image

    def spy(source, *args, **kwargs):
        opened.append(str(source))
        return real_open(source, *args, **kwargs)

    monkeypatch.setattr(catalog_module, "open_image", spy)
    rows = [
        ["dotdot", "../x.jpg", "", "kaos polos hitam", ""],
        ["absolute", str(outside_file), "", "kaos polos putih", ""],
        ["url", "https://example.com/x.jpg", "", "kaos polos merah", ""],
        ["symlink", "link.jpg", "", "kaos polos biru", ""],
        ["fine", REAL_FILES[0], "", "kaos polos hijau", ""],
    ]
    path = tmp_path / "c.csv"
    path.write_bytes(csv_bytes(rows))

    report = import_catalog(store, path, image_dir)

    assert opened == [str(image_dir.resolve() / REAL_FILES[0])]
    found = problems_by_id(report)
    expected = {"dotdot": 2, "absolute": 3, "url": 4, "symlink": 5}
    for pid, row in expected.items():
        assert [(p["row"], p["field"]) for p in found[pid]] == [(row, "image")]
        assert store.posting(pid)["image_status"] == "refused"
        assert store.posting(pid)["image_path"] is None
    assert "leaves the image folder" in found["dotdot"][0]["problem"]
    assert "absolute path" in found["absolute"][0]["problem"]
    assert "URL" in found["url"][0]["problem"]
    assert "outside the image folder" in found["symlink"][0]["problem"]
    assert store.posting("fine")["image_status"] == "ok"
    assert store.info()["images"]["refused"] == 4


def test_broken_images_are_reported_and_rows_still_match_by_title(
    store: Store, tmp_path: Path, image_dir: Path
) -> None:
    real = (image_dir / REAL_FILES[0]).read_bytes()
    (image_dir / "empty.jpg").write_bytes(b"")
    (image_dir / "cut.jpg").write_bytes(real[: len(real) // 3])
    (image_dir / "text.jpg").write_text("this is not a picture\n")
    title = "Nescafe Eclair Latte 220ml kopi susu"
    rows = [
        ["missing", "nope.jpg", "", title, "g"],
        ["empty", "empty.jpg", "", title + " ori", "g"],
        ["cut", "cut.jpg", "", title + " murah", "g"],
        ["text", "text.jpg", "", title + " cod", "g"],
        ["good", REAL_FILES[2], "", title, "g"],
    ]
    path = tmp_path / "c.csv"
    path.write_bytes(csv_bytes(rows))

    report = import_catalog(store, path, image_dir)

    found = problems_by_id(report)
    assert "does not exist" in found["missing"][0]["problem"]
    assert "empty (0 bytes)" in found["empty"][0]["problem"]
    assert "truncated" in found["cut"][0]["problem"]
    assert "not an image file" in found["text"][0]["problem"]
    for pid, row in {"missing": 2, "empty": 3, "cut": 4, "text": 5}.items():
        assert [(p["row"], p["field"]) for p in found[pid]] == [(row, "image")]
        assert str(image_dir) not in found[pid][0]["problem"]  # the catalog's name, not ours
    status = {pid: store.posting(pid)["image_status"] for pid in found}
    assert status == {"missing": "missing", "empty": "corrupt", "cut": "corrupt", "text": "corrupt"}
    assert store.count_postings() == 5

    result = match_catalog(
        get_pipeline("baseline"), MatchInputs.from_frame(store.postings()), MatchSettings()
    )
    matched = result.match_sets()
    assert matched["missing"] == {"missing", "empty", "cut", "text", "good"}
    assert set(result.pairs["rule"]) == {"text"}


def test_bad_hash_and_empty_title_are_row_problems(
    store: Store, tmp_path: Path, image_dir: Path, real_rows
) -> None:
    with_image = real_rows[0]
    rows = [
        ["badhash", "", "not-a-hash", "kaos polos", ""],
        ["badhash_img", with_image[1], "zzzzzzzzzzzzzzzz", "kaos", ""],
        ["notitle", with_image[1], "", "  \u2764\ufe0f !! ", ""],
        ["nothing", "", "", "", ""],
    ]
    path = tmp_path / "c.csv"
    path.write_bytes(csv_bytes(rows))

    report = import_catalog(store, path, image_dir)

    found = problems_by_id(report)
    assert [(p["row"], p["field"]) for p in found["badhash"]] == [(2, "image_phash")]
    assert "'not-a-hash' is not 16 hex digits" in found["badhash"][0]["problem"]
    assert store.posting("badhash")["image_phash"] is None
    # A bad hash is ignored; the image's own hash takes its place (it equals train.csv's).
    assert store.posting("badhash_img")["image_phash"] == with_image[2]
    assert [(p["row"], p["field"]) for p in found["notitle"]] == [(4, "title")]
    assert "empty title" in found["notitle"][0]["problem"]
    assert [p["field"] for p in found["nothing"]] == ["title", "row"]
    assert store.count_postings() == 4
    assert store.import_problems()["row"].tolist() == [2, 3, 4, 5, 5]


def test_reimport_is_idempotent(seeded: Store, tmp_path: Path, image_dir: Path, real_rows) -> None:
    path = tmp_path / "again.csv"
    path.write_bytes(csv_bytes(real_rows))
    before = snapshot(seeded)

    report = import_catalog(seeded, path, image_dir)

    assert report.changed == 0
    assert report.rows == len(real_rows)
    assert snapshot(seeded) == before


def test_changed_rows_bump_revision_and_drop_their_embeddings(
    seeded: Store, tmp_path: Path, image_dir: Path, real_rows
) -> None:
    import numpy as np

    ids = [r[0] for r in real_rows]
    seeded.save_embeddings("m", "1", ids, np.eye(len(ids), 4, dtype=np.float32))
    revision = seeded.catalog_revision
    edited = [list(r) for r in real_rows]
    edited[0][3] = edited[0][3] + " NEW"
    path = tmp_path / "edit.csv"
    path.write_bytes(csv_bytes(edited))

    report = import_catalog(seeded, path, image_dir)

    assert report.changed == 1
    assert seeded.catalog_revision == revision + 1
    assert seeded.embedded_ids("m", "1") == set(ids[1:])


def test_shared_image_file_and_hashes_from_csv(seeded: Store, real_rows) -> None:
    postings = seeded.postings().set_index("posting_id")
    for pid, image, phash, _title, label in real_rows:
        assert postings.loc[pid, "image_phash"] == phash
        assert postings.loc[pid, "label_group"] == label
        assert postings.loc[pid, "image_status"] == "ok"
        assert Path(postings.loc[pid, "image_path"]).name == image
    assert seeded.info()["images"]["ok"] == len(real_rows)


def test_optional_columns_may_be_absent_and_progress_reaches_the_end(
    store: Store, tmp_path: Path
) -> None:
    path = tmp_path / "min.csv"
    path.write_bytes(
        csv_bytes([["a", "", "kaos"], ["b", "", "baju"]], header=["Title", "Image", "posting_id"])
    )
    # Column order and case do not matter; values follow their header.
    calls: list[tuple[int, int]] = []

    report = import_catalog(store, path, progress=lambda done, total: calls.append((done, total)))

    assert report.rows == 2
    assert calls[-1] == (2, 2)
    postings = store.postings()
    assert postings["posting_id"].tolist() == ["kaos", "baju"]
    assert postings["title"].tolist() == ["a", "b"]
    assert postings["label_group"].isna().all()
    assert store.info()["labelled_postings"] == 0


# -- chunked, resumable, streaming import ------------------------------------------------------
CHUNK = 4000


def contents(store: Store) -> tuple:
    """What two imports of one file must agree on: postings (not their timestamps), the row
    problems in the order they were written, and SQLite's consistency check."""
    postings = store.postings().drop(columns=["added_at"]).to_dict("records")
    checked = store.conn.execute("PRAGMA integrity_check").fetchall()
    return postings, store.import_problem_records(), checked


@pytest.fixture(scope="module")
def shopee_catalog(shopee_csv: Path, tmp_path_factory) -> Path:
    """train.csv with a bad hash every 997th posting and a blank line every 3001st, so every
    chunk has row problems to keep and row numbers are not posting counts."""
    path = tmp_path_factory.mktemp("shopee") / "train_with_problems.csv"
    with shopee_csv.open(encoding="utf-8", newline="") as src, path.open("w", newline="") as dst:
        reader = csv.reader(src)
        writer = csv.writer(dst, lineterminator="\n")
        writer.writerow(next(reader))
        for i, row in enumerate(reader):
            if i % 997 == 5:
                row[2] = "not-a-hash"
            if i % 3001 == 7:
                writer.writerow([])
            writer.writerow(row)
    return path


@pytest.fixture(scope="module")
def reference(shopee_catalog: Path, tmp_path_factory) -> tuple:
    """An uninterrupted import with CHUNK-posting chunks: (contents, report, info)."""
    with Store(tmp_path_factory.mktemp("reference") / "ref.db") as store:
        report = import_catalog(store, shopee_catalog, chunk_rows=CHUNK)
        return contents(store), report, store.info()


class FailingUpserts:
    """Store.upsert_postings that raises on its ``fail_on``-th call (a full disk, a crash) and
    counts the postings it was given."""

    def __init__(self, monkeypatch, fail_on: int | None = None) -> None:
        self.calls = 0
        self.rows = 0
        self.fail_on = fail_on
        real = Store.upsert_postings

        def upsert(store: Store, rows):
            self.calls += 1
            if self.calls == self.fail_on:
                raise OSError("disk full")
            self.rows += len(rows)
            return real(store, rows)

        monkeypatch.setattr(Store, "upsert_postings", upsert)


def test_chunked_import_equals_one_big_chunk(tmp_path: Path, shopee_catalog: Path, reference):
    ref_contents, ref_report, ref_info = reference
    with Store(tmp_path / "one.db") as store:
        report = import_catalog(store, shopee_catalog, chunk_rows=1_000_000)
        assert contents(store) == ref_contents
        revision = store.catalog_revision

    assert report.rows == ref_report.rows == 27_328
    assert report.changed == ref_report.changed == 27_328
    assert report.problems == ref_report.problems == ref_contents[1]
    assert [p["field"] for p in report.problems] == ["image_phash"] * 28
    assert ref_contents[2] == [("ok",)]
    # Every chunk that changed something bumps the revision, so readers between chunks see
    # their stored matches go stale.
    assert (revision, ref_info["catalog_revision"]) == (1, -(-27_328 // CHUNK))


def test_import_failing_part_way_resumes_to_the_same_database(
    tmp_path: Path, shopee_catalog: Path, reference, monkeypatch
) -> None:
    ref_contents, ref_report, ref_info = reference
    with Store(tmp_path / "crashed.db") as store:
        failing = FailingUpserts(monkeypatch, fail_on=3)
        with pytest.raises(OSError, match="disk full"):
            import_catalog(store, shopee_catalog, chunk_rows=CHUNK)
        assert failing.calls == 3
        # Two whole chunks and their problems are kept, the third left no trace.
        assert store.count_postings() == 2 * CHUNK
        kept = store.import_problem_records()
        assert kept == [p for p in ref_contents[1] if store.posting(p["posting_id"])]
        assert kept and max(p["row"] for p in kept) < 2 * CHUNK + 2
        assert store.import_marker()["rows_done"] == 2 * CHUNK
        assert store.import_marker()["complete"] is False
        monkeypatch.undo()

        written = FailingUpserts(monkeypatch)
        calls: list[tuple[int, int]] = []
        report = import_catalog(
            store, shopee_catalog, chunk_rows=CHUNK, progress=lambda *c: calls.append(c)
        )

        assert report.resumed_from == 2 * CHUNK
        assert written.rows == 27_328 - 2 * CHUNK  # nothing written twice
        assert calls[0] == (2 * CHUNK, 27_328) and calls[-1] == (27_328, 27_328)
        assert contents(store) == ref_contents
        assert store.info() == ref_info  # revision included: one bump per chunk either way
        assert (report.rows, report.changed) == (ref_report.rows, ref_report.changed)
        assert report.problems == ref_report.problems
        assert store.import_marker()["complete"] is True

        again = import_catalog(store, shopee_catalog, chunk_rows=CHUNK)  # complete: afresh
        assert (again.resumed_from, again.changed) == (0, 0)
        assert written.rows == 2 * 27_328 - 2 * CHUNK
        assert contents(store) == ref_contents and store.info() == ref_info


@pytest.mark.parametrize(
    "change",
    # With a folder, 27k missing images are looked up three times over.
    ["edited_file", pytest.param("other_image_folder", marks=pytest.mark.slow)],
)
def test_another_import_does_not_resume_from_the_old_marker(
    tmp_path: Path, shopee_catalog: Path, monkeypatch, change: str
) -> None:
    data = shopee_catalog.read_bytes()
    edited, folder = shopee_catalog, None
    if change == "edited_file":
        edited = tmp_path / "edited.csv"
        edited.write_bytes(data.replace(b",not-a-hash,", b",,", 1))  # one problem fewer
    else:
        folder = tmp_path / "images"
        folder.mkdir()
    with Store(tmp_path / "fresh.db") as store:
        fresh = import_catalog(store, edited, folder, chunk_rows=CHUNK)
        expected = contents(store)

    with Store(tmp_path / "cat.db") as store:
        FailingUpserts(monkeypatch, fail_on=3)
        with pytest.raises(OSError):
            import_catalog(store, shopee_catalog, chunk_rows=CHUNK)
        monkeypatch.undo()
        written = FailingUpserts(monkeypatch)

        report = import_catalog(store, edited, folder, chunk_rows=CHUNK)

        assert report.resumed_from == 0
        assert written.rows == 27_328  # every posting checked and written again
        assert report.problems == fresh.problems
        assert contents(store) == expected  # the interrupted import's problems are gone
        assert store.import_marker()["rows_done"] == 27_328


def test_a_bad_file_leaves_the_resume_marker_alone(
    tmp_path: Path, shopee_catalog: Path, monkeypatch
) -> None:
    with Store(tmp_path / "cat.db") as store:
        FailingUpserts(monkeypatch, fail_on=2)
        with pytest.raises(OSError):
            import_catalog(store, shopee_catalog, chunk_rows=CHUNK)
        monkeypatch.undo()
        marker = store.import_marker()
        bad = tmp_path / "bad.csv"
        bad.write_bytes(csv_bytes([OK_ROW, OK_ROW]))
        with pytest.raises(CatalogError, match="duplicate posting_id"):
            import_catalog(store, bad, chunk_rows=CHUNK)
        assert store.import_marker() == marker

        assert import_catalog(store, shopee_catalog, chunk_rows=CHUNK).resumed_from == CHUNK


def test_streamed_upload_bytes_and_file_import_alike(tmp_path: Path, shopee_catalog: Path):
    with Store(tmp_path / "a.db") as a, Store(tmp_path / "b.db") as b:
        from_file = import_catalog(a, shopee_catalog, chunk_rows=CHUNK)
        from_bytes = import_catalog(b, shopee_catalog.read_bytes(), name="up.csv", chunk_rows=999)
        assert contents(a) == contents(b)
    assert from_file.problems == from_bytes.problems
    frame = read_catalog_csv(shopee_catalog)
    assert len(frame) == 27_328 and frame["posting_id"].is_unique
    assert frame.columns.tolist() == [
        "row",
        "posting_id",
        "image",
        "title",
        "image_phash",
        "label_group",
    ]


_MEASURE_IMPORT = """
import resource, sys
from pathlib import Path
from core.catalog import import_catalog
from core.store import Store

with Store(sys.argv[2]) as store:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    report = import_catalog(store, Path(sys.argv[1]))
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(report.rows, (after - before) // 1024)
"""


@pytest.mark.slow
def test_memory_stays_bounded_on_a_large_catalog(tmp_path: Path, shopee_csv: Path) -> None:
    """200k postings (19 MB): the whole-file reader grew the process by about 350 MB here
    (bytes, text, rows and a DataFrame at once); streaming needs the posting-id set and one
    chunk, about 25 MB."""
    with shopee_csv.open(encoding="utf-8", newline="") as handle:
        rows = [[r[c] for c in HEADER] for r in csv.DictReader(handle)]
    big = tmp_path / "big.csv"
    with big.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(HEADER)
        for i in range(200_000):
            pid, _image, phash, title, label = rows[i % len(rows)]
            writer.writerow([f"big{i:07d}", "", phash, title, label])

    done = subprocess.run(
        [sys.executable, "-c", _MEASURE_IMPORT, big, tmp_path / "big.db"],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=600,
    )

    assert done.returncode == 0, done.stderr
    postings, growth_mb = map(int, done.stdout.split())
    assert postings == 200_000
    assert growth_mb < 120, growth_mb
