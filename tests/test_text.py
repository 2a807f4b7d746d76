"""Title normalisation on real Shopee titles, and TF-IDF vectors."""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.candidates import fit_tfidf, tfidf_rows
from core.text import decode_byte_escapes, normalize_title, normalize_titles, stored_title

ESCAPE = re.compile(r"\\x[0-9a-fA-F]{2}")


@pytest.fixture(scope="module")
def shopee_titles(shopee_csv: Path) -> dict[str, str]:
    """posting_id -> raw title, exactly as train.csv holds it."""
    with shopee_csv.open(encoding="utf-8", newline="") as handle:
        return {row["posting_id"]: row["title"] for row in csv.DictReader(handle)}


def test_real_titles_with_byte_escapes_decode_to_their_characters(shopee_titles) -> None:
    raw = shopee_titles["train_3369186413"]
    assert raw == "Nescafe \\xc3\\x89clair Latte 220ml"  # literal backslashes in the file

    assert decode_byte_escapes(raw) == "Nescafe \u00c9clair Latte 220ml"
    assert normalize_title(raw) == "nescafe \u00e9clair latte 220ml"


def test_no_real_title_keeps_escape_fragments(shopee_titles) -> None:
    escaped = [t for t in shopee_titles.values() if ESCAPE.search(t)]
    assert len(escaped) > 500  # the file really has hundreds of them

    leftovers = [t for t in escaped if re.search(r"\bx[0-9a-f]{2}\b", normalize_title(t))]
    assert leftovers == []


def test_escaped_emoji_flags_and_hearts_are_removed(shopee_titles) -> None:
    flags = next(t for t in shopee_titles.values() if "\\xf0\\x9f\\x87\\xb2" in t)
    heart = next(t for t in shopee_titles.values() if t.startswith("\\xe2\\x9d\\xa4 RATU"))

    assert "\U0001f1f2" in decode_byte_escapes(flags)  # regional indicator M
    assert normalize_title(flags).startswith("mg jam tangan fashion wanita")
    assert normalize_title(heart) == (
        "ratu maycreate moisturizing spray lotion spray may create 150ml original"
    )


def test_html_entity_in_real_title_is_unescaped(shopee_titles) -> None:
    raw = shopee_titles["train_222750418"]
    assert "&amp;" in raw

    assert normalize_title(raw) == "headphone bluetooth nia x2 wireless calls music tf card fm"


def test_literal_emoji_fullwidth_and_nbsp_become_plain_words() -> None:
    assert normalize_title("\U0001f525 SALE\u00a0\uff2b\uff21\uff2f\uff33 Polos \u2764\ufe0f") == (
        "sale kaos polos"
    )


def test_normalisation_is_idempotent_on_every_real_title(shopee_titles) -> None:
    once = normalize_titles(shopee_titles.values())
    twice = normalize_titles(once)

    changed = [(a, b) for a, b in zip(once, twice, strict=True) if a != b]
    assert changed == []


@pytest.mark.parametrize(
    "empty", [None, math.nan, np.float64("nan"), "", "   ", "\u2764\ufe0f !!!"]
)
def test_empty_none_nan_and_symbol_only_titles_normalise_to_empty(empty) -> None:
    assert normalize_title(empty) == ""


def test_invalid_utf8_escapes_are_dropped_not_kept() -> None:
    # \xff is never valid UTF-8; the rest of the title survives.
    assert normalize_title("Kaos \\xff\\xfe Polos") == "kaos polos"


def test_tfidf_rows_are_unit_length_and_empty_titles_are_zero() -> None:
    titles = ["kaos polos pria", "kaos polos wanita", "", "sepatu anak"]
    matrix = tfidf_rows(titles)

    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    np.testing.assert_allclose(norms, [1.0, 1.0, 0.0, 1.0], atol=1e-6)
    cosine = (matrix @ matrix.T).toarray()
    assert cosine[0, 1] > cosine[0, 3] == 0.0


def test_tfidf_of_only_empty_titles_is_all_zero() -> None:
    matrix = tfidf_rows(["", ""])
    assert matrix.shape[0] == 2
    assert matrix.nnz == 0


def test_display_title_decodes_escapes_but_keeps_case_and_emoji():
    from core.text import display_title

    assert display_title(r"Kaos \xe2\x9d\xa4 Bimora &amp; Co") == "Kaos ❤ Bimora & Co"
    assert display_title(None) == ""


def test_a_frozen_vocabulary_gives_the_fitted_rows_again() -> None:
    """The query index embeds uploads with the catalog's vocabulary: a title already in the
    catalog must get exactly its fitted row back."""
    titles = ["kaos polos pria", "kaos polos wanita 2 pcs", "", "sepatu anak x"]
    model = fit_tfidf(titles)

    again = model.transform(titles + ["kaos unknownword"])

    np.testing.assert_allclose(again[:4].toarray(), model.matrix.toarray(), atol=1e-6)
    assert again[4].nnz == 1  # the unknown word is dropped


def test_display_titles_decodes_like_display_title_on_real_titles(shopee_csv) -> None:
    import pandas as pd

    from core.text import display_title, display_titles

    titles = pd.read_csv(shopee_csv, usecols=["title"])["title"]
    titles = pd.concat([titles, pd.Series([None, "a &amp; b"])], ignore_index=True)
    decoded = display_titles(titles)
    assert decoded.tolist() == titles.map(display_title).tolist()
    assert (decoded != titles.fillna("")).sum() > 100  # Shopee titles carry escapes


# -- decoding byte escapes (what a catalog import stores as the title) ------------------------


def test_every_escaped_real_title_decodes_completely(shopee_titles) -> None:
    """All 532 titles of the split that hold an escape are valid UTF-8 written out: each
    decodes to a title with no escape left."""
    escaped = {pid: t for pid, t in shopee_titles.items() if ESCAPE.search(t)}
    assert len(escaped) == 532

    leftovers = [t for t in escaped.values() if ESCAPE.search(decode_byte_escapes(t))]
    assert leftovers == []
    heart = shopee_titles["train_4175229751"]
    assert decode_byte_escapes(heart).startswith("\u2764 RATU \u2764 MAYCREATE")


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        ("Kaos \\xff\\xFE Polos", "Kaos \\xff\\xFE Polos"),  # never UTF-8: kept as written
        ("\\xe2\\x9d RATU", "\\xe2\\x9d RATU"),  # a character cut short
        ("\\xC3\\x89clair\\xff", "\u00c9clair\\xff"),  # the valid part of a run decodes
        ("\\xc3\\xe2\\x9d\\xa4\\x89", "\\xc3\u2764\\x89"),
        ("kode \\x41\\x42 \\x00", "kode \\x41\\x42 \\x00"),  # ASCII and controls stay written
        ("\\xc2\\x85 \\xc2\\xa0", "\\xc2\\x85 \u00a0"),  # C1 control stays, NBSP decodes
        ("\\x4 \\xzz \\", "\\x4 \\xzz \\"),
    ],
)
def test_escapes_that_are_not_a_character_are_kept_exactly(raw: str, decoded: str) -> None:
    assert decode_byte_escapes(raw) == decoded
    assert decode_byte_escapes(decoded) == decoded


_ESCAPED_PIECES = st.lists(
    st.one_of(
        st.text(alphabet="ab Z1", max_size=3),
        st.binary(min_size=1, max_size=6).map(lambda b: "".join(f"\\x{x:02x}" for x in b)),
        st.text(alphabet=st.characters(min_codepoint=0xA0), max_size=2).map(
            lambda t: "".join(f"\\x{x:02x}" for x in t.encode("utf-8", "surrogatepass"))
        ),
    ),
    max_size=8,
)


@settings(max_examples=300, deadline=None)
@given(_ESCAPED_PIECES)
def test_decoding_never_raises_loses_text_or_changes_twice(pieces: list[str]) -> None:
    raw = "".join(pieces)
    decoded = decode_byte_escapes(raw)

    assert decode_byte_escapes(decoded) == decoded
    # Writing every decoded character out again gives back exactly what was read.
    again = "".join(
        "".join(f"\\x{x:02x}" for x in ch.encode("utf-8")) if ch >= "\u00a0" else ch
        for ch in decoded
    )
    assert again == raw


def test_stored_title_keeps_the_raw_title_only_when_decoding_changed_it(shopee_titles) -> None:
    raw = shopee_titles["train_3369186413"]
    assert stored_title(raw) == ("Nescafe \u00c9clair Latte 220ml", raw)
    assert stored_title("Kaos Polos") == ("Kaos Polos", None)
    assert stored_title("Kaos \\xff") == ("Kaos \\xff", None)
    assert stored_title(None) == ("", None)
    assert stored_title(math.nan) == ("", None)
