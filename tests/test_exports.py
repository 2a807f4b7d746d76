"""Exports a shop can take away: matches, clusters, verdicts and the Kaggle layout, as CSV and
Excel, from the demo catalog's stored runs; read back with pandas; the command line's refusals
(exit code 2, a message, no traceback)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from core import exports, matching
from core.catalog import import_catalog
from core.cli import main
from core.errors import SameSameError
from core.store import Store

PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def matched_db(demo_catalog: Path, tmp_path_factory) -> Path:
    """The demo catalog with baseline and ensemble runs stored (no verdicts)."""
    db = tmp_path_factory.mktemp("exports") / "demo.db"
    with Store(db) as store:
        import_catalog(store, demo_catalog, demo_catalog.parent / "images")
        for pipeline in ("baseline", "ensemble"):
            matching.run_pipeline(store, pipeline)
    return db


@pytest.fixture
def db(matched_db: Path, tmp_path: Path) -> Path:
    """A private copy: tests add verdicts."""
    return Path(shutil.copy(matched_db, tmp_path / "demo.db"))


def _read(path: Path) -> pd.DataFrame:
    if path.suffix == ".xlsx":
        return pd.read_excel(path, dtype={"left_id": str, "right_id": str}, keep_default_na=False)
    return pd.read_csv(path, keep_default_na=False)


def _keys(frame: pd.DataFrame) -> set[frozenset[str]]:
    return {frozenset(p) for p in zip(frame["left_id"], frame["right_id"], strict=True)}


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_matches_open_in_pandas_with_real_values(db: Path, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"matches.{fmt}"
    with Store(db) as store:
        rows = exports.export(store, "matches", fmt, "ensemble", out)
        stored = store.load_match_pairs("ensemble")
        postings = store.postings(["posting_id", "title", "image"]).set_index("posting_id")
    frame = _read(out)

    assert frame.columns.tolist() == list(exports.COLUMNS["matches"])
    assert rows == len(frame) == len(stored) > 100
    assert _keys(frame) == {frozenset(p) for p in zip(stored["left"], stored["right"], strict=True)}
    row = frame.iloc[0]
    assert row["left_title"] == postings.loc[row["left_id"], "title"]
    assert row["right_image"] == postings.loc[row["right_id"], "image"]
    assert frame["probability"].between(0.0, 1.0).all()
    # Calibrated on Shopee pairs: a rule match may well be less likely than not the same.
    assert set(frame["verdict"]) <= {"Same", "Probably same", "Unsure", "Different"}
    assert not frame["reviewed_by_person"].astype(bool).any()
    assert set(frame["probability_from"]) == {"calibrated rule scores"}
    assert frame["evidence"].str.contains("photos").all()


def test_verdicts_count_in_the_matches_and_have_their_own_export(db: Path, tmp_path: Path):
    with Store(db) as store:
        stored = store.load_match_pairs("baseline")
        a, b = stored["left"].iat[0], stored["right"].iat[0]
        matched = {frozenset(p) for p in zip(stored["left"], stored["right"], strict=True)}
        ids = store.postings()["posting_id"].tolist()
        c, d = next(
            (x, y) for x, y in zip(ids, ids[1:], strict=False) if frozenset((x, y)) not in matched
        )
        store.save_review(a, b, "different")
        store.save_review(c, d, "same")
        exports.export(store, "matches", "xlsx", "baseline", tmp_path / "m.xlsx")
        exports.export(store, "verdicts", "csv", None, tmp_path / "v.csv")
        title_c = store.posting(c)["title"]
    matches = _read(tmp_path / "m.xlsx")
    verdicts = _read(tmp_path / "v.csv")

    assert frozenset((a, b)) not in _keys(matches)
    added = matches[matches["left_id"].isin([c, d]) & matches["right_id"].isin([c, d])]
    assert added["verdict"].tolist() == ["Same"]
    assert added["reviewed_by_person"].astype(bool).tolist() == [True]
    assert added["rule"].tolist() == ["reviewed"]
    assert len(matches) == len(stored)  # one pair left, one added
    assert verdicts.columns.tolist() == list(exports.COLUMNS["verdicts"])
    assert verdicts["verdict"].tolist() == ["Different", "Same"]
    assert title_c in set(verdicts["left_title"]) | set(verdicts["right_title"])
    assert verdicts["reviewed_at"].str.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d").all()


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_clusters_list_members_and_strength(db: Path, tmp_path: Path, fmt: str) -> None:
    with Store(db) as store:
        exports.export(store, "clusters", fmt, "baseline", tmp_path / f"c.{fmt}")
        frame = _read(tmp_path / f"c.{fmt}")
        first = frame.iloc[0]
        members, summary = store.cluster_of("baseline", first["members"].split()[0])

    assert frame.columns.tolist() == list(exports.COLUMNS["clusters"])
    assert len(frame) > 20 and (frame["size"] >= 2).all()
    assert (frame["members"].str.split().str.len() == frame["size"]).all()
    assert (frame["titles"].str.count(" \\| ") == frame["size"] - 1).all()
    assert frame["strength"].between(0.0, 1.0).all()
    assert first["members"].split() == members and first["cluster_id"] == summary["cluster"]


def test_kaggle_layout_is_one_option_in_both_formats(db: Path, tmp_path: Path) -> None:
    with Store(db) as store:
        exports.export(store, "kaggle", "csv", "baseline", tmp_path / "k.csv")
        exports.export(store, "kaggle", "xlsx", "baseline", tmp_path / "k.xlsx", clusters=True)
        plain = matching.stored_result(store, "baseline").submission()
        clustered = matching.stored_result(store, "baseline").submission(clusters=True)
    assert pd.read_csv(tmp_path / "k.csv", dtype=str).equals(plain)
    assert pd.read_excel(tmp_path / "k.xlsx", dtype=str).equals(clustered)


def test_matches_written_in_small_chunks_are_the_same_file(db: Path) -> None:
    with Store(db) as store:
        whole = pd.concat(exports.match_chunks(store, "baseline"), ignore_index=True)
        chunked = pd.concat(
            exports.match_chunks(store, "baseline", chunk_rows=50), ignore_index=True
        )
    assert len(whole) > 200
    pd.testing.assert_frame_equal(whole, chunked)


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path, monkeypatch):
    out = tmp_path / "m.xlsx"
    out.write_bytes(b"old")
    monkeypatch.setattr(exports, "EXCEL_MAX_ROWS", 3)
    chunks = [pd.DataFrame({"a": ["=1+1", "x\x01y"]}), pd.DataFrame({"a": ["b", "c"]})]
    with pytest.raises(SameSameError, match="use csv"):
        exports.write_chunks(iter(chunks), ("a",), out, "xlsx", "sheet")
    assert out.read_bytes() == b"old" and sorted(tmp_path.iterdir()) == [out]
    # Text stays text: no formula, no character Excel refuses.
    exports.write_chunks(iter(chunks[:1]), ("a",), out, "xlsx", "sheet")
    assert pd.read_excel(out)["a"].tolist() == ["=1+1", "xy"]


def test_export_bytes_for_a_download(db: Path) -> None:
    with Store(db) as store:
        data = exports.export_bytes(store, "matches", "xlsx", "baseline")
    assert data[:2] == b"PK"  # a zip: the xlsx container


# -- the command line --------------------------------------------------------------------------


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    try:
        code = main([str(a) for a in args])
    except SystemExit as exc:  # argparse's refusals
        code = int(exc.code)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--pipeline", "nope"], "unknown pipeline 'nope'"),
        (["--pipeline", "best"], "No stored best matches"),
        (["--what", "sales"], "invalid choice: 'sales'"),
        (["--format", "pdf"], "invalid choice: 'pdf'"),
        (["--what", "matches", "--clusters"], "--clusters is for --what kaggle"),
    ],
)
def test_bad_requests_exit_2_with_a_message(db, tmp_path, capsys, args, message) -> None:
    code, _, err = _cli(capsys, "--db", db, "export", *args, "--out", tmp_path / "x.csv")
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "x.csv").exists()


def test_an_unwritable_path_is_a_message(db: Path, tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code, _, err = _cli(
        capsys, "--db", db, "export", "--what", "matches", "--out", blocker / "x.csv"
    )
    assert code == 2 and err.startswith(f"error: cannot write {blocker / 'x.csv'}")
    code, _, err = _cli(capsys, "--db", db, "export", "--out", tmp_path)
    assert code == 2 and "cannot write" in err


def test_the_command_writes_each_export(db: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "core", "--db", str(db), "export", "--what", "matches"]
        + ["--pipeline", "ensemble", "--out", str(tmp_path / "m.xlsx")],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    frame = pd.read_excel(tmp_path / "m.xlsx")  # xlsx from the file name
    assert done.stdout.strip() == f"wrote {len(frame)} matched pairs to {tmp_path / 'm.xlsx'}"


def test_the_default_is_still_the_kaggle_csv(db: Path, tmp_path: Path, capsys) -> None:
    code, out, err = _cli(capsys, "--db", db, "export", "--out", tmp_path / "k.csv")
    assert code == 0, err
    frame = pd.read_csv(tmp_path / "k.csv")
    assert frame.columns.tolist() == ["posting_id", "matches"]
    assert out.strip() == f"wrote {len(frame)} postings to {tmp_path / 'k.csv'}"
    code, out, _ = _cli(
        capsys, "--db", db, "export", "--what", "verdicts", "--out", tmp_path / "v.csv"
    )
    assert code == 0 and out.startswith("wrote 0 verdicts")


# -- the HTTP API ------------------------------------------------------------------------------


def test_the_service_sends_exports_and_refuses_bad_requests(db: Path) -> None:
    import io

    import requests

    from tests.test_service import Server

    server = Server(db, warm=False)
    try:
        reply = requests.get(f"{server.url}/v1/exports/matches?format=xlsx", timeout=60)
        refusals = {
            query: requests.get(f"{server.url}/v1/exports/{query}", timeout=60)
            for query in (
                "sales",
                "matches?format=pdf",
                "matches?pipeline=nope",
                "kaggle?pipeline=best",
            )
        }
    finally:
        server.stop()
    assert reply.status_code == 200
    # The most accurate pipeline with stored matches, by default.
    assert 'filename="ensemble-matches.xlsx"' in reply.headers["content-disposition"]
    frame = pd.read_excel(io.BytesIO(reply.content))
    assert frame.columns.tolist() == list(exports.COLUMNS["matches"]) and len(frame) > 100
    fields = {q: (r.status_code, r.json()["error"]["field"]) for q, r in refusals.items()}
    assert fields == {
        "sales": (400, "what"),
        "matches?format=pdf": (400, "format"),
        "matches?pipeline=nope": (400, "pipeline"),
        "kaggle?pipeline=best": (409, "pipeline"),
    }
