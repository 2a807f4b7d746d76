"""Titles as their writers meant them: the real Shopee rows whose titles hold literal UTF-8 byte
escapes (``Nescafe \\xc3\\x89clair``) are stored decoded by the import, the raw title kept, and
neither pages, word evidence nor TF-IDF see escape fragments such as ``x89clair``."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from core.candidates import fit_tfidf
from core.catalog import import_catalog
from core.evidence import title_words
from core.pipelines import MatchInputs
from core.store import Store

ESCAPE = re.compile(r"\\x[0-9a-fA-F]{2}")
HEADER = ["posting_id", "image", "image_phash", "title", "label_group"]

#: Real rows, checked by eye against train.csv: posting id -> the title its writer meant.
EXPECTED = {
    "train_3369186413": "Nescafe \u00c9clair Latte 220ml",
    "train_4175229751": (
        "\u2764 RATU \u2764 MAYCREATE MOISTURIZING SPRAY - LOTION SPRAY MAY CREATE 150ML ORIGINAL"
    ),
    "train_461569087": (
        "\u2764 RATU \u2764 TEH DAUN JATI CINA/TEH JATI CINA HIKMAH HERBAL/TEH PELUNTUR LEMAK/"
        "TPL SASHET (\u2714\ufe0fBPOM) (A17)"
    ),
    "train_2753048616": (
        "Lakm\u00e9 Make Up Lipstick Matte Classics Reinvent Liquid Matte Lace 2,9 ml"
    ),
}


@pytest.fixture(scope="module")
def escaped_rows(shopee_csv: Path) -> dict[str, dict[str, str]]:
    """Every row of train.csv whose title holds a byte escape, exactly as the file has it."""
    with shopee_csv.open(encoding="utf-8", newline="") as handle:
        return {r["posting_id"]: r for r in csv.DictReader(handle) if ESCAPE.search(r["title"])}


@pytest.fixture(scope="module")
def escaped_store(escaped_rows, tmp_path_factory) -> Store:
    """Those rows (plus one title without escapes) imported by the real import path."""
    folder = tmp_path_factory.mktemp("escaped")
    catalog = folder / "escaped.csv"
    with catalog.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(HEADER)
        writer.writerows([r[c] for c in HEADER] for r in escaped_rows.values())
        writer.writerow(["plain", "plain.jpg", "", "Kaos Polos Pria", "1"])
    store = Store(folder / "escaped.db")
    import_catalog(store, catalog)
    yield store
    store.close()


def test_the_real_split_has_532_escaped_titles(escaped_rows) -> None:
    assert len(escaped_rows) == 532
    assert set(EXPECTED) <= set(escaped_rows)


def test_imported_titles_are_decoded_and_the_raw_title_is_kept(
    escaped_store: Store, escaped_rows
) -> None:
    stored = escaped_store.postings().set_index("posting_id")

    assert len(stored) == 533
    left = [t for t in stored["title"] if ESCAPE.search(t)]
    assert left == []  # every escape in this split is valid UTF-8
    for pid, title in EXPECTED.items():
        assert stored.at[pid, "title"] == title
    raw = stored["raw_title"].drop("plain")
    assert raw.to_dict() == {pid: row["title"] for pid, row in escaped_rows.items()}
    assert stored.at["plain", "title"] == "Kaos Polos Pria"
    assert escaped_store.posting("plain")["raw_title"] is None  # kept only where it differs
    assert escaped_store.posting("train_3369186413")["raw_title"] == (
        "Nescafe \\xc3\\x89clair Latte 220ml"
    )


def test_word_evidence_and_tfidf_see_the_characters_not_escape_fragments(
    escaped_store: Store, escaped_rows
) -> None:
    nescafe = escaped_store.posting("train_3369186413")
    assert title_words(nescafe["title"]) == {"nescafe", "\u00e9clair", "latte", "220ml"}
    assert "x89clair" in title_words(nescafe["raw_title"])  # what the raw title gave

    inputs = MatchInputs.from_frame(escaped_store.postings())
    for titles in (inputs.titles, escaped_store.postings()["title"].tolist()):
        vocabulary = fit_tfidf(titles).vocabulary
        fragments = [w for w in vocabulary if re.fullmatch(r"x[0-9a-f]{2}\w*", w)]
        assert "\u00e9clair" in vocabulary
        assert fragments == []
    raw_vocabulary = fit_tfidf([r["title"] for r in escaped_rows.values()]).vocabulary
    assert "x89clair" in raw_vocabulary


def test_reimporting_the_same_rows_changes_nothing(escaped_store: Store) -> None:
    catalog = next(escaped_store.path.parent.glob("*.csv"))
    revision = escaped_store.catalog_revision

    report = import_catalog(escaped_store, catalog)

    assert report.changed == 0
    assert escaped_store.catalog_revision == revision


def test_an_uploaded_item_added_to_the_catalog_is_kept_like_an_imported_row(
    store: Store, escaped_rows, tmp_path: Path
) -> None:
    from core.query import NewItem, add_to_catalog

    raw = escaped_rows["train_4175229751"]["title"]
    added = add_to_catalog(store, NewItem(title=raw), tmp_path / "uploads")

    posting = store.posting(added)
    assert (posting["title"], posting["raw_title"]) == (EXPECTED["train_4175229751"], raw)
