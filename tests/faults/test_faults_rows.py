"""Row-level problems: the import succeeds, every problem is listed with its row, and the row
stays usable through the evidence it still has. Paths leaving the image folder are refused
without the target ever being opened."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from core.store import Store
from tests.faults.helpers import info, run_cli

REAL_PHOTO = "0000a68812bc7e98c42888dfb1c07da0.jpg"


@pytest.fixture
def messy_catalog(tmp_path: Path, shopee_images: Path) -> tuple[Path, Path]:
    images = tmp_path / "images"
    images.mkdir()
    photo = (shopee_images / REAL_PHOTO).read_bytes()
    (images / "good.jpg").write_bytes(photo)
    (images / "empty.jpg").write_bytes(b"")
    (images / "truncated.jpg").write_bytes(photo[: len(photo) // 3])
    (images / "notes.jpg").write_text("not a picture at all")
    (images / "vector.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    rows = [
        ("ok", "good.jpg", "", "kaos polos hitam"),
        ("missing", "nowhere.jpg", "", "kaos polos hitam xl"),
        ("zero_byte", "empty.jpg", "", "sepatu anak"),
        ("truncated", "truncated.jpg", "", "sepatu anak 30"),
        ("not_image", "notes.jpg", "", "tas wanita"),
        ("unsupported", "vector.svg", "", "tas wanita kulit"),
        ("bad_hash", "", "xyz-not-hex", "botol minum 500ml"),
        ("empty_title", "good.jpg", "", ""),
    ]
    csv_path = tmp_path / "messy.csv"
    lines = ["posting_id,image,image_phash,title"] + [",".join(r) for r in rows]
    csv_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return csv_path, images


def test_bad_rows_are_listed_and_kept(tmp_path: Path, messy_catalog) -> None:
    csv_path, images = messy_catalog
    db = tmp_path / "cat.db"

    done = run_cli("import", csv_path, "--images", images, "--db", db)

    assert done.returncode == 0, done.stderr
    assert "imported 8 postings" in done.stdout
    problems = ["missing", "zero_byte", "truncated", "not_image", "unsupported", "bad_hash"]
    for row, pid in enumerate([*problems, "empty_title"], start=3):
        assert f"row {row} ({pid})" in done.stdout, (pid, done.stdout)
    counts = info(db)
    assert counts["postings"] == 8
    assert counts["images"]["ok"] == 2
    assert counts["images"]["missing"] == 1
    assert counts["images"]["corrupt"] + counts["images"]["refused"] == 4
    with Store(db) as store:
        postings = store.postings().set_index("posting_id")
    # Usable through what is left: the title for broken images, the picture for no title.
    assert postings.at["truncated", "title_norm"] == "sepatu anak 30"
    assert postings.at["empty_title", "image_status"] == "ok"
    assert postings.at["empty_title", "image_phash"] == postings.at["ok", "image_phash"]


def test_rows_still_match_by_their_remaining_evidence(tmp_path: Path, messy_catalog) -> None:
    csv_path, images = messy_catalog
    out = tmp_path / "m.csv"

    done = run_cli("match", "--catalog", csv_path, "--images", images, "--hash-only", "--out", out)

    assert done.returncode == 0, done.stderr
    matches = dict(line.split(",", 1) for line in out.read_text().splitlines()[1:])
    assert "empty_title" in matches["ok"].split()  # same photo, no title
    assert "truncated" in matches["zero_byte"].split()  # broken pictures, similar titles


@pytest.mark.timeout(120)
def test_paths_leaving_the_folder_are_refused_without_opening_them(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    # A FIFO blocks whoever opens it for reading: if the importer ever opened one of these
    # targets, this test would hang and time out instead of passing.
    os.mkfifo(outside / "trap.jpg")
    (images / "escape.jpg").symlink_to(outside / "trap.jpg")
    rows = [
        ("dotdot", "../outside/trap.jpg"),
        ("absolute", str(outside / "trap.jpg")),
        ("symlink", "escape.jpg"),
        ("url", "https://example.com/trap.jpg"),
        ("file_url", f"file://{outside / 'trap.jpg'}"),
    ]
    csv_path = tmp_path / "paths.csv"
    csv_path.write_text(
        "posting_id,image,title\n" + "".join(f"{p},{i},kaos {p}\n" for p, i in rows),
        encoding="utf-8",
    )

    done = run_cli("import", csv_path, "--images", images, "--db", tmp_path / "cat.db")

    assert done.returncode == 0, done.stderr
    assert info(tmp_path / "cat.db")["images"]["refused"] == len(rows)
    for row, (pid, _) in enumerate(rows, start=2):
        assert f"row {row} ({pid}) image:" in done.stdout


def test_upload_rules_match_import_rules_and_stay_in_the_data_folder(
    tmp_path: Path, samesame_home: Path, shopee_images: Path
) -> None:
    from core.errors import SameSameError
    from core.query import NewItem, add_to_catalog
    from core.settings import data_dir

    photo = (shopee_images / REAL_PHOTO).read_bytes()
    with Store(tmp_path / "cat.db") as store:
        for bad, expected in [
            (b"", "is empty"),
            (photo[: len(photo) // 3], "corrupt or truncated"),
            (b"GIF89a" + b"\x00" * 10, "not an image file"),
            (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "not an image file"),
        ]:
            with pytest.raises(SameSameError, match=expected):
                add_to_catalog(store, NewItem("kaos", bad, name="../../etc/x.jpg"), tmp_path)
        assert store.count_postings() == 0
        posting = add_to_catalog(
            store, NewItem("kaos", photo, name="../../evil.jpg"), data_dir() / "uploads"
        )
        stored = Path(store.posting(posting)["image_path"])
    assert stored.is_relative_to(samesame_home.resolve())
    assert "evil" not in stored.name
    assert [p.name for p in tmp_path.iterdir() if p.suffix in {".jpg", ".png"}] == []
    shutil.rmtree(data_dir() / "uploads")


@pytest.mark.timeout(120)
def test_an_image_swapped_for_a_link_after_import_is_refused_when_embedding(
    tmp_path: Path, shopee_images: Path
) -> None:
    """Paths are checked when opened, not only at import: a file replaced by a symlink after
    the import (here to a FIFO, which would hang whoever opens it) is skipped by embedding."""
    from core.embedding import pending_images

    images = tmp_path / "images"
    images.mkdir()
    photo = (shopee_images / REAL_PHOTO).read_bytes()
    for name in ("kept.jpg", "swapped.jpg"):
        (images / name).write_bytes(photo)
    csv_path = tmp_path / "c.csv"
    csv_path.write_text(
        "posting_id,image,title\nkept,kept.jpg,kaos\nswapped,swapped.jpg,kaos\n", encoding="utf-8"
    )
    assert (
        run_cli("import", csv_path, "--images", images, "--db", tmp_path / "c.db").returncode == 0
    )
    trap = tmp_path / "outside" / "trap.jpg"
    trap.parent.mkdir()
    os.mkfifo(trap)
    (images / "swapped.jpg").unlink()
    (images / "swapped.jpg").symlink_to(trap)

    with Store(tmp_path / "c.db") as store:
        ids, paths = pending_images(store, "any-model", "1")

    assert ids == ["kept"] and paths == [(images / "kept.jpg").resolve()]
