"""Text read from photos (`core.ocr`): real grocery packs, the per-image cache, a missing
package, broken files, the schema upgrade, and ``best`` trained and matched with it."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest

from core import ocr
from core.catalog import import_catalog
from core.pipelines.best import catalog_training
from core.store import SCHEMA_VERSION, Store
from core.text import normalize_title
from tests.conftest import require

#: Real grocery photos and words printed on them, checked by eye (the pack's brand and kind).
ALPRO_SOY_MILK = "75f6571826083d846671.jpg"  # catalogue photo: "alpro", "SOYA"
OATLY_OATGHURT = "abe1db8630b1db12b913.jpg"  # shop photo: "HAVRE", "-GURT"
#: Six packaged products, five photos each (labels of ../shared/data/grocery).
SLICE_LABELS = (
    "Alpro-Fresh-Soy-Milk",
    "Alpro-Vanilla-Soyghurt",
    "Oatly-Natural-Oatghurt",
    "Arla-Standard-Milk",
    "God-Morgon-Apple-Juice",
    "Bravo-Orange-Juice",
)


@pytest.fixture(scope="module")
def reader_ready() -> None:
    require(ocr.ocr_available(), f"OCR package not installed ({ocr.INSTALL_HINT})")


def _slice(grocery_dir: Path, per_product: int = 5) -> pd.DataFrame:
    catalog = pd.read_csv(grocery_dir / "catalog.csv", dtype=str, keep_default_na=False)
    names = pd.read_csv(grocery_dir / "label_names.csv", dtype=str)
    catalog = catalog.merge(names[["posting_id", "label"]], on="posting_id")
    picked = catalog[catalog["label"].isin(SLICE_LABELS)].groupby("label").head(per_product)
    return picked.drop(columns=["label"]).reset_index(drop=True)


def _import(store: Store, frame: pd.DataFrame, images: Path, tmp: Path) -> None:
    path = tmp / f"catalog-{len(frame)}.csv"
    frame.to_csv(path, index=False)
    import_catalog(store, path, images)


@pytest.fixture(scope="module")
def read_slice(grocery_dir: Path, reader_ready, tmp_path_factory) -> tuple[Path, ocr.OcrReport]:
    """A database of the grocery slice whose photos have been read once."""
    tmp = tmp_path_factory.mktemp("ocr-slice")
    db = tmp / "slice.db"
    with Store(db) as store:
        _import(store, _slice(grocery_dir), grocery_dir / "images", tmp)
        report = ocr.read_catalog_photos(store, batch=7)
    return db, report


@pytest.mark.slow
def test_a_printed_pack_yields_its_brand(grocery_dir: Path, reader_ready) -> None:
    alpro = normalize_title(ocr.read_photo_text(grocery_dir / "images" / ALPRO_SOY_MILK))
    oatly = normalize_title(ocr.read_photo_text(grocery_dir / "images" / OATLY_OATGHURT))

    assert {"alpro", "soya"} <= set(alpro.split())
    assert "havre" in oatly.split()


@pytest.mark.slow
def test_a_photo_without_print_says_nothing_confident(grocery_dir: Path, reader_ready) -> None:
    names = pd.read_csv(grocery_dir / "label_names.csv", dtype=str)
    catalog = pd.read_csv(grocery_dir / "catalog.csv", dtype=str)
    bananas = catalog[catalog["posting_id"].isin(names[names["label"] == "Banana"]["posting_id"])]

    lines = ocr.photo_lines(grocery_dir / "images" / bananas["image"].iloc[0])

    assert all(score < ocr.MIN_CONFIDENCE for _, score in lines)
    assert ocr.text_of(lines) == ""


@pytest.mark.slow
def test_each_photo_is_read_once(read_slice, grocery_dir: Path, tmp_path: Path) -> None:
    db, first = read_slice
    copy = tmp_path / "db.db"
    shutil.copy(db, copy)
    # The same photos again under other posting ids, from another folder (a re-import or a
    # second catalog): their content has been read, so nothing is read again.
    folder = tmp_path / "moved"
    shutil.copytree(grocery_dir / "images", folder)
    again = _slice(grocery_dir).assign(posting_id=lambda f: "again_" + f["posting_id"])
    with Store(copy) as store:
        second = ocr.read_catalog_photos(store)
        _import(store, again, folder, tmp_path)
        third = ocr.read_catalog_photos(store)
        texts = ocr.catalog_photo_texts(store)

    assert (first.read, first.failed, first.reused) == (30, 0, 0)
    assert first.with_text >= 15  # packs: most photos show their brand
    assert (second.read, second.reused) == (0, 30)
    assert (third.read, third.reused, third.failed) == (0, 60, 0)
    assert len(texts) == 60
    first_id = _slice(grocery_dir)["posting_id"].iloc[0]
    assert texts["again_" + first_id] == texts[first_id]
    assert second.sentence() == "read text from 0 photos (0 had text); 0 failed; 30 already read"


@pytest.mark.slow
def test_an_interrupted_run_keeps_its_batches(grocery_dir: Path, reader_ready, tmp_path):
    def stop_inside_second_batch(done: int, total: int) -> None:
        if done == 3:
            raise KeyboardInterrupt

    with Store(tmp_path / "db.db") as store:
        _import(store, _slice(grocery_dir, per_product=1), grocery_dir / "images", tmp_path)
        with pytest.raises(KeyboardInterrupt):
            ocr.read_catalog_photos(store, batch=2, progress=stop_inside_second_batch)
        kept = len(ocr.catalog_photo_texts(store))
        rest = ocr.read_catalog_photos(store, batch=2)

    assert kept == 2  # the first batch; the one in hand when interrupted is not half-saved
    assert (rest.read, rest.reused, rest.failed) == (4, 2, 0)


@pytest.mark.slow
def test_a_broken_photo_is_skipped_and_counted(grocery_dir: Path, reader_ready, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    frame = _slice(grocery_dir, per_product=1).head(3)
    for name in frame["image"]:
        shutil.copy(grocery_dir / "images" / name, folder / name)
    with Store(tmp_path / "db.db") as store:
        _import(store, frame, folder, tmp_path)
        # Damaged after the import: the first half of the file is all that is left.
        broken = folder / frame["image"].iloc[1]
        broken.write_bytes(broken.read_bytes()[:200])
        report = ocr.read_catalog_photos(store)
        again = ocr.read_catalog_photos(store)

    assert (report.read, report.failed) == (2, 1)
    assert report.failures[0].startswith(frame["posting_id"].iloc[1] + ":")
    assert "corrupt or truncated" in report.failures[0]
    assert (again.read, again.reused, again.failed) == (0, 2, 1)  # failures are not cached


def test_a_missing_package_names_the_pip_command(monkeypatch, tmp_path: Path, capsys) -> None:
    from core.cli import main

    monkeypatch.setitem(sys.modules, "rapidocr_onnxruntime", None)  # import raises
    ocr._engine.cache_clear()
    try:
        assert not ocr.ocr_available()
        with pytest.raises(ocr.OcrUnavailableError, match="pip install rapidocr-onnxruntime"):
            ocr.read_photo_text(b"not even read")
        code = main(["--db", str(tmp_path / "db.db"), "ocr"])
    finally:
        ocr._engine.cache_clear()
    said = capsys.readouterr()

    assert code == 2
    assert "pip install rapidocr-onnxruntime==1.4.4" in said.err
    assert "Traceback" not in said.err + said.out


def test_a_version_4_database_gains_the_photo_text_cache(tmp_path: Path) -> None:
    path = tmp_path / "v4.db"
    with Store(path) as old:
        old.conn.execute("DROP TABLE photo_text")
        old.conn.execute("DROP TABLE photo_files")
        old.conn.execute(
            "INSERT INTO postings (posting_id, title, title_norm, image_status, added_at) "
            "VALUES ('p1', 'Kaos', 'kaos', 'none', 0)"
        )
        old.conn.execute("UPDATE meta SET value='4' WHERE key='schema_version'")
        revision = old.catalog_revision

    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION == 5
        assert store.count_postings() == 1 and store.catalog_revision == revision
        store.save_photo_reads([("/x.jpg", 1, 2, "d1")], [("d1", [["alpro", 0.99]], 0.5)], "r")
        assert store.read_digests(["d1", "d2"], "r") == {"d1"}


def test_only_confident_lines_count() -> None:
    lines = [["ALPRO", 0.99], ["公", 0.04], ["SOYA", 0.9], ["--", 0.99], ["noise", 0.41]]

    assert ocr.text_of(lines) == "ALPRO SOYA"
    assert ocr.title_with_photo_text("susu", "ALPRO SOYA 1L") == "susu alpro soya 1l"
    assert ocr.title_with_photo_text("susu", "") == "susu"


@pytest.mark.slow
def test_best_trains_and_matches_with_photo_text(read_slice, grocery_dir, tmp_path) -> None:
    from core import models
    from core.matching import run_pipeline
    from core.pipelines.best.model import BestMatcher
    from core.query import NewItem, query_item
    from core.settings import MatchSettings

    db, _ = read_slice
    settings = MatchSettings(best_photo_text=True, best_image_head=False, best_train_splits="3")
    model_dir = tmp_path / "model"
    with Store(db) as store:
        report = catalog_training.train_best_model(store, settings, model_dir)
        result = run_pipeline(store, "best", settings, model_dir=model_dir, save=False)
        photo = Path(store.postings()["image_path"].iloc[0]).read_bytes()
        notices: list[str] = []
        answer = query_item(
            store,
            NewItem(image=photo),
            "best",
            settings,
            best_matcher=BestMatcher.load(model_dir),
            notices=notices,
        )
    # A catalog nobody has read the photos of, matched by that model: a note, not a crash.
    with Store(tmp_path / "unread.db") as other:
        _import(other, _slice(grocery_dir, per_product=2), grocery_dir / "images", tmp_path)
        unread = run_pipeline(other, "best", settings, model_dir=model_dir, save=False)

    assert report["photo_text"] is True
    assert models.best_model_info(model_dir)["photo_text"] is True
    assert not any("photo" in n for n in result.notices)
    assert len(result.pairs) > 0
    assert notices == [] and len(answer) > 0
    assert any("none of these 12 photos has been read" in n for n in unread.notices)


def test_training_with_photo_text_needs_read_photos(store: Store, grocery_dir: Path, tmp_path):
    from core.settings import MatchSettings

    _import(store, _slice(grocery_dir, per_product=2), grocery_dir / "images", tmp_path)

    with pytest.raises(ocr.SameSameError, match="python -m core ocr"):
        catalog_training.train_best_model(
            store, MatchSettings(best_photo_text=True), tmp_path / "m"
        )
