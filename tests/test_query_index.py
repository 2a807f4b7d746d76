"""The persisted query index for large catalogs: agrees with the exact query, reloads without a
rebuild, grows by uploads without a rebuild, and is rebuilt when the catalog changes."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core import query_index as qi
from core.catalog import import_catalog
from core.errors import SameSameError
from core.query import NewItem, add_to_catalog, query_item
from core.settings import MatchSettings
from core.store import Store

SETTINGS = MatchSettings()


@pytest.fixture(scope="module")
def shopee_store(shopee_csv: Path, tmp_path_factory) -> Store:
    store = Store(tmp_path_factory.mktemp("qi") / "shopee.db")
    import_catalog(store, shopee_csv)
    yield store
    store.close()


@pytest.fixture(scope="module")
def queries(shopee_csv: Path) -> pd.DataFrame:
    """Real postings re-posted by a new seller: title reworded, hash two bits away."""
    frame = pd.read_csv(shopee_csv, dtype=str, keep_default_na=False).sample(15, random_state=3)
    rng = np.random.default_rng(3)
    frame["query_title"] = [" ".join(t.split()[::-1][:-1] or t.split()) for t in frame["title"]]
    frame["query_hash"] = [
        f"{int(h, 16) ^ (1 << int(rng.integers(64))) ^ (1 << int(rng.integers(64))):016x}"
        for h in frame["image_phash"]
    ]
    return frame


def matched(frame: pd.DataFrame) -> set[str]:
    return set(frame.loc[frame["matched"], "posting_id"])


@pytest.mark.slow
@pytest.mark.parametrize(("pipeline", "min_agreement"), [("baseline", 0.93), ("ensemble", 0.9)])
def test_indexed_query_agrees_with_the_exact_query(
    shopee_store: Store, queries: pd.DataFrame, pipeline: str, min_agreement: float
) -> None:
    index = qi.open_query_index(shopee_store)
    agreements = []
    for row in queries.itertuples():
        item = NewItem(title=row.query_title, phash=row.query_hash)
        exact = matched(query_item(shopee_store, item, pipeline, SETTINGS))
        indexed = matched(query_item(shopee_store, item, pipeline, SETTINGS, index=index))
        assert row.posting_id in exact and row.posting_id in indexed  # its own source posting
        agreements.append(len(exact & indexed) / len(exact | indexed))
    assert np.mean(agreements) >= min_agreement, agreements


@pytest.mark.slow
def test_index_reloads_without_a_rebuild_and_answers_the_same(
    shopee_store: Store, queries: pd.DataFrame, monkeypatch
) -> None:
    first = qi.open_query_index(shopee_store)
    monkeypatch.setattr(qi.QueryIndex, "build", classmethod(lambda *a, **k: pytest.fail("rebuilt")))
    again = qi.open_query_index(shopee_store)
    assert again.posting_ids == first.posting_ids
    for row in queries.head(10).itertuples():
        item = NewItem(title=row.query_title, phash=row.query_hash)
        a = query_item(shopee_store, item, "baseline", SETTINGS, index=first)
        b = query_item(shopee_store, item, "baseline", SETTINGS, index=again)
        pd.testing.assert_frame_equal(a, b)


@pytest.fixture
def small_store(shopee_csv: Path, tmp_path: Path) -> Store:
    """The first 600 Shopee postings, with 8-d vectors for a stand-in image model."""
    rows = list(csv.DictReader(shopee_csv.open(encoding="utf-8", newline="")))[:600]
    path = tmp_path / "small.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    store = Store(tmp_path / "small.db")
    import_catalog(store, path)
    ids = store.postings()["posting_id"].tolist()
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(len(ids), 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    store.save_embeddings("stand-in", "1", ids, vectors)
    yield store
    store.close()


def test_an_upload_grows_the_index_without_rebuilding_it(
    small_store: Store, tmp_path: Path, monkeypatch
) -> None:
    index = qi.open_query_index(small_store, [("stand-in", "1")])
    folder = qi.index_folder(small_store)
    base_files = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    item = NewItem(title="Sepatu Lari Xq-77 Zebra Biru Muda", phash="0123456789abcdef")
    posting_id = add_to_catalog(small_store, item, tmp_path / "uploads")
    vector = np.zeros(8, dtype=np.float32)
    vector[3] = 1.0
    qi.add_to_index(small_store, index, posting_id, {"stand-in": vector})

    # The new posting is found by title, hash and vector, from memory...
    found = query_item(small_store, item, "baseline", SETTINGS, index=index)
    assert found.iloc[0]["posting_id"] == posting_id and found.iloc[0]["matched"]
    cosines, positions = index.images["stand-in"].search(vector, 1)
    assert index.posting_ids[positions[0]] == posting_id and cosines[0] == pytest.approx(1.0)
    # ...the base files were not rewritten, only one delta line appended...
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir() if p.name in base_files} == (
        base_files
    )
    assert len((folder / qi.DELTA_FILE).read_text().splitlines()) == 1
    # ...and opening it again (a new app session) replays the delta instead of rebuilding.
    monkeypatch.setattr(qi.QueryIndex, "build", classmethod(lambda *a, **k: pytest.fail("rebuilt")))
    reopened = qi.open_query_index(small_store, [("stand-in", "1")])
    assert reopened.posting_ids == index.posting_ids and reopened.stamp == index.stamp
    again = query_item(small_store, item, "baseline", SETTINGS, index=reopened)
    pd.testing.assert_frame_equal(found, again)
    assert reopened.images["stand-in"].search(vector, 1)[1][0] == positions[0]


def test_a_changed_catalog_rebuilds_the_index(small_store: Store, shopee_csv: Path) -> None:
    index = qi.open_query_index(small_store)
    small_store.delete_postings([index.posting_ids[0]])
    rebuilt = qi.open_query_index(small_store)
    assert rebuilt.stamp != index.stamp
    assert len(rebuilt.posting_ids) == len(index.posting_ids) - 1
    assert index.posting_ids[0] not in rebuilt.posting_ids


def test_large_catalogs_answer_from_the_index(small_store: Store, monkeypatch) -> None:
    # core.query reads the size it opens an index from at module level, as imported.
    monkeypatch.setattr("core.query.INDEXED_QUERY_FROM", 100)
    title = small_store.postings()["title"].iloc[5]
    found = query_item(small_store, NewItem(title=title), "baseline", SETTINGS)
    assert (qi.index_folder(small_store) / "index.json").exists()
    assert found.iloc[0]["matched"]


def test_a_damaged_index_is_rebuilt_not_trusted(small_store: Store) -> None:
    qi.open_query_index(small_store)
    folder = qi.index_folder(small_store)
    (folder / "rows.npz").write_bytes(b"not an index")
    with pytest.raises(SameSameError, match="not a readable query index"):
        qi.QueryIndex.load(folder)
    index = qi.open_query_index(small_store)  # warns, rebuilds
    assert len(index.posting_ids) == small_store.count_postings()


def test_a_hash_only_item_needs_a_valid_hash(small_store: Store) -> None:
    with pytest.raises(SameSameError, match="not 16 hex digits"):
        query_item(small_store, NewItem(phash="xyz"), "baseline", SETTINGS)
    row = small_store.postings().iloc[0]
    found = query_item(small_store, NewItem(phash=row["image_phash"]), "baseline", SETTINGS)
    assert row["posting_id"] in matched(found)
