"""File-level problems through the CLI: exit code 2, one clear message naming the problem and the
row or column, and the database exactly as it was (``info`` and ``PRAGMA integrity_check``)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from tests.faults.helpers import info, integrity, run_cli, table

HEADER = ["posting_id", "image", "image_phash", "title", "label_group"]
OK_ROW = ["p1", "", "", "kaos polos", "g1"]


def csv_bytes(rows: list[list[str]], header: list[str] = HEADER, encoding: str = "utf-8") -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode(encoding)


#: name → (file bytes, what the one error line must say)
BAD_FILES = {
    "not_a_csv_png": (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "binary file, not a CSV"),
    "not_a_csv_text": (b"hello world\nthis is prose\n", "missing required column(s)"),
    "empty": (b"", "the file is empty"),
    "header_only": (csv_bytes([]), "the header is there but the file has no postings"),
    "missing_columns": (
        csv_bytes([["p1", "kaos"]], header=["id", "name"]),
        "missing required column(s) posting_id, image, title; found id, name",
    ),
    "duplicate_ids": (csv_bytes([OK_ROW, OK_ROW]), "duplicate posting_id: 'p1' in rows 2, 3"),
    "empty_id": (csv_bytes([OK_ROW, ["", "", "", "b", ""]]), "empty posting_id in row(s) 3"),
    "undecodable": (
        csv_bytes([OK_ROW, ["p2", "", "", "caf\u00e9", ""]], encoding="latin-1"),
        "cannot read the text as UTF-8 (bad byte at line 3",
    ),
    "malformed_quoting": (
        csv_bytes([OK_ROW]) + b'p2,,,"kaos "polos",g2\n',
        "malformed CSV near line 3",
    ),
    "absurd_field": (
        csv_bytes([OK_ROW, ["p2", "", "", "x" * 6_000, ""]]),
        "row 3, column title is 6,000 characters long",
    ),
}


@pytest.fixture(scope="module")
def seeded_db(tmp_path_factory) -> Path:
    """A database that already holds a good catalog: the one a failed import must not touch."""
    folder = tmp_path_factory.mktemp("seeded")
    good = folder / "good.csv"
    good.write_bytes(csv_bytes([OK_ROW, ["p2", "", "", "sepatu anak", "g2"]]))
    done = run_cli("import", good, "--db", folder / "cat.db")
    assert done.returncode == 0, done.stderr
    return folder / "cat.db"


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_file_exits_2_with_one_message_and_changes_nothing(
    seeded_db: Path, tmp_path: Path, case: str
) -> None:
    data, message = BAD_FILES[case]
    path = tmp_path / f"{case}.csv"
    path.write_bytes(data)
    before = info(seeded_db), table(seeded_db, "SELECT * FROM postings ORDER BY posting_id")

    done = run_cli("import", path, "--db", seeded_db)

    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error: {path}: ") and message in lines[0], lines[0]
    assert "Traceback" not in done.stderr
    after = info(seeded_db), table(seeded_db, "SELECT * FROM postings ORDER BY posting_id")
    assert after == before
    assert integrity(seeded_db) == [("ok",)]


@pytest.mark.parametrize(("encoding", "bom"), [("utf-8-sig", "UTF-8"), ("utf-16", "UTF-16")])
def test_files_with_a_byte_order_mark_are_read_correctly(
    tmp_path: Path, encoding: str, bom: str
) -> None:
    title = "Kaos \u00e9t\u00e9 \u2764 \u8863\u670d"
    path = tmp_path / f"{bom}.csv"
    path.write_bytes(csv_bytes([["p1", "", "", title, "g1"]], encoding=encoding))

    done = run_cli("import", path, "--db", tmp_path / "cat.db")

    assert done.returncode == 0, done.stderr
    assert table(tmp_path / "cat.db", "SELECT posting_id, title FROM postings") == [("p1", title)]


def test_a_file_that_is_not_a_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    not_db = tmp_path / "notes.db"
    not_db.write_bytes(b"my shopping list\n" * 100)

    done = run_cli("info", "--db", not_db, "--json")

    assert done.returncode == 2
    assert "is not a usable SameSame database" in done.stderr
    assert "Traceback" not in done.stderr
    assert not_db.read_bytes() == b"my shopping list\n" * 100
