"""Property-based tests (hypothesis): arbitrary unicode and bytes through title normalisation and
catalog import. Nothing escapes but SameSame's own error type with a message, and a refused
import writes nothing."""

from __future__ import annotations

import csv
import io

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.catalog import import_catalog
from core.errors import SameSameError
from core.store import Store
from core.text import display_title, normalize_title

HEADER = ["posting_id", "image", "image_phash", "title", "label_group"]
# Text as users paste it: any code point but lone surrogates (not encodable in UTF-8 files).
ANY_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=200)


@given(ANY_TEXT)
def test_normalised_titles_are_lowercase_single_spaced_and_stable(text: str) -> None:
    normal = normalize_title(text)

    assert normal == normal.strip()
    assert "  " not in normal
    assert normal == normal.lower() or normal.lower() != normal.casefold()
    assert normalize_title(normal) == normal
    assert isinstance(display_title(text), str)


@given(st.one_of(st.none(), st.integers(), st.floats(), st.binary(max_size=50)))
def test_titles_that_are_not_text_do_not_crash(value: object) -> None:
    assert isinstance(normalize_title(value), str)


def _state(store: Store) -> tuple:
    return store.info(), store.postings().to_dict("records")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2_000))
def test_arbitrary_bytes_are_imported_or_refused_cleanly(data: bytes) -> None:
    with Store(":memory:") as store:
        before = _state(store)
        try:
            report = import_catalog(store, data, name="upload.csv")
        except SameSameError as exc:
            assert str(exc).startswith("upload.csv: ") and len(str(exc)) > len("upload.csv: ")
            assert _state(store) == before
        else:
            assert store.count_postings() == report.rows > 0


ROWS = st.lists(
    st.tuples(
        st.text(st.characters(exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp")), min_size=1),
        ANY_TEXT,
        st.text(alphabet="abcdefg", max_size=3),
    ),
    min_size=1,
    max_size=12,
    unique_by=lambda row: row[0].strip(),
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ROWS, st.sampled_from(["utf-8", "utf-8-sig", "utf-16"]))
def test_well_formed_catalogs_round_trip_any_unicode(rows, encoding: str) -> None:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows([(pid, "", "", title, group) for pid, title, group in rows])
    data = buffer.getvalue().encode(encoding)

    with Store(":memory:") as store:
        try:
            import_catalog(store, data, name="shop.csv")
        except SameSameError as exc:
            # Refusals must name the file; the only ones expected here are field-size limits
            # and ids that differ only by surrounding whitespace.
            assert str(exc).startswith("shop.csv: ")
            return
        stored = store.postings().set_index("posting_id")
    for pid, title, _ in rows:
        assert stored.at[pid.strip(), "title"] == title
