"""What a stored run keeps for pages that show one posting at a time: its clusters, its
figures against the labels, the worst postings, and each posting's matches read through the
indexes, equal to what the whole result says."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from core import matching, pair_table
from core.catalog import import_catalog
from core.clusters import describe_cluster
from core.evaluation import evaluate_result, worst_postings
from core.pair_table import PairTable
from core.store import SCHEMA_VERSION, Store

#: Real Shopee postings (titles and perceptual hashes) from groups of several postings.
SLICE = 1_500


@pytest.fixture(scope="module")
def shopee_slice_store(shopee_csv: Path, tmp_path_factory) -> Store:
    frame = pd.read_csv(shopee_csv, dtype=str).head(SLICE)
    folder = tmp_path_factory.mktemp("shopee_slice")
    frame.to_csv(folder / "catalog.csv", index=False)
    store = Store(folder / "slice.db")
    import_catalog(store, folder / "catalog.csv", None)
    matching.run_pipeline(store, "baseline")
    yield store
    store.close()


def test_each_postings_stored_matches_are_what_the_whole_result_lists(
    shopee_slice_store: Store,
) -> None:
    store = shopee_slice_store
    result = matching.stored_result(store, "baseline")
    matched = pd.unique(result.pairs[["left", "right"]].to_numpy().ravel())
    assert len(matched) > 200
    for pid in list(matched[:150]) + [p for p in result.posting_ids[:50] if p not in matched]:
        from_store = store.matches_of("baseline", pid)
        whole = result.matches_of(pid)
        assert sorted(from_store["posting_id"]) == sorted(whole["posting_id"]), pid
        assert from_store["similarity"].is_monotonic_decreasing
        merged = from_store.merge(whole, on="posting_id", suffixes=("", "_whole"))
        assert (merged["rule"] == merged["rule_whole"]).all()
        assert merged["similarity"].tolist() == pytest.approx(merged["similarity_whole"].tolist())


def test_each_postings_stored_cluster_is_its_cluster_in_the_whole_result(
    shopee_slice_store: Store,
) -> None:
    store = shopee_slice_store
    clustering = matching.stored_result(store, "baseline").clusters()
    sizes = clustering.summary.set_index("cluster")["size"]
    assert (sizes > 1).sum() > 50
    for pid in clustering.posting_ids[:300]:
        cluster = clustering.cluster_of(pid)
        members, summary = store.cluster_of("baseline", pid)
        assert members == clustering.members(cluster)
        assert describe_cluster(summary) == clustering.describe(cluster)


def test_a_run_keeps_its_figures_and_worst_postings(shopee_slice_store: Store) -> None:
    store = shopee_slice_store
    result = matching.stored_result(store, "baseline")
    details = store.match_run("baseline")["details"]
    plain = evaluate_result(store, result)
    clustered = evaluate_result(store, result, clusters=True)
    assert details["metrics"]["f1"] == pytest.approx(plain["f1"])
    assert details["metrics"]["cluster_f1"] == pytest.approx(clustered["f1"])
    assert 0.3 < plain["f1"] < 1.0
    kept = pd.DataFrame(details["worst"])
    fresh = worst_postings(store, result, n=matching.WORST_POSTINGS)
    assert kept["posting_id"].tolist() == fresh["posting_id"].tolist()
    assert kept["f1"].tolist() == pytest.approx(fresh["f1"].tolist())


def test_a_posting_removed_after_the_run_leaves_its_cluster(shopee_slice_store: Store) -> None:
    store = shopee_slice_store
    clustering = matching.stored_result(store, "baseline").clusters()
    big = clustering.summary.sort_values("size").iloc[-1]
    members = clustering.members(int(big["cluster"]))
    path = store.path.parent / "removed.db"
    store.conn.execute("VACUUM INTO ?", (str(path),))
    with Store(path) as copy:
        copy.delete_postings([members[0]])
        assert copy.cluster_of("baseline", members[1])[0] == members[1:]


def test_a_run_stored_before_clusters_were_kept_gets_them_once(
    shopee_slice_store: Store, tmp_path: Path
) -> None:
    """A schema-2 database: no clusters tables, runs without figures. It opens as schema 3
    and the first page that needs a run's clusters works them out and keeps them."""
    path = tmp_path / "v2.db"
    shopee_slice_store.conn.execute("VACUUM INTO ?", (str(path),))
    with Store(path) as old:
        details = old.match_run("baseline")["details"]
        for name in ("summarised", "metrics", "worst"):
            details.pop(name)
        old.conn.execute("UPDATE match_runs SET details=?", (json.dumps(details),))
        old.conn.execute("DROP TABLE clusters")
        old.conn.execute("DROP TABLE cluster_summaries")
        old.conn.execute("DROP INDEX matches_by_match")
        old.conn.execute("UPDATE meta SET value='2' WHERE key='schema_version'")
    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION == 5
        pid = store.load_match_pairs("baseline")["left"].iloc[0]
        assert store.cluster_of("baseline", pid)[0] == [pid]  # nothing kept yet
        run = matching.summarised_run(store, "baseline")
        assert run["details"]["summarised"] and "f1" in run["details"]["metrics"]
        expected = shopee_slice_store.cluster_of("baseline", pid)
        assert store.cluster_of("baseline", pid) == expected
        assert len(expected[0]) > 1


def test_a_run_goes_to_the_database_a_slice_at_a_time(tmp_path: Path, monkeypatch) -> None:
    """Storing a run (verdicts, clusters, figures, pairs) reads the engine's pairs a slice of
    `FRAME_ROWS` at a time and never makes them one frame of posting ids; what is stored is
    every pair with its scores, the verdicts applied."""
    base = "kaos polos cotton combed premium unisex lengan pendek"
    rows = [
        (f"p{v:02d}{c:02d}", "", f"{base} varian {v}" + (" promo" if c % 2 else ""), f"g{v}")
        for v in range(30)
        for c in range(50)
    ]
    frame = pd.DataFrame(rows, columns=["posting_id", "image", "title", "label_group"])
    frame.to_csv(tmp_path / "dense.csv", index=False)
    sizes: list[int] = []
    whole_frame = PairTable.frame

    def frame_of(table: PairTable, start: int = 0, stop: int | None = None) -> pd.DataFrame:
        sizes.append(min(len(table), len(table) if stop is None else stop) - start)
        return whole_frame(table, start, stop)

    monkeypatch.setattr(PairTable, "frame", frame_of)
    monkeypatch.setattr(pair_table, "FRAME_ROWS", 1_000)
    with Store(tmp_path / "dense.db") as store:
        import_catalog(store, tmp_path / "dense.csv", None)
        store.save_review("p0000", "p0001", "different")
        store.save_review("p0000", "p2949", "same")
        result = matching.run_pipeline(store, "baseline")

        assert result.frame is None  # the run was never one frame of ids
        assert result.pair_count > 20_000
        assert max(sizes) <= 1_000 and sum(sizes) == result.pair_count
        stored = store.load_match_pairs("baseline")
        figures = store.match_run("baseline")["details"]["metrics"]
        whole = result.pairs
        assert figures["f1"] == pytest.approx(evaluate_result(store, result)["f1"])

    def ordered(pairs: pd.DataFrame) -> pd.DataFrame:
        pairs = pairs.astype({"rule": str}).sort_values(["left", "right"])
        return pairs[["left", "right", "rule", "similarity", "listed", "tfidf_cosine"]]

    pd.testing.assert_frame_equal(
        ordered(stored).reset_index(drop=True), ordered(whole).reset_index(drop=True)
    )
    keys = set(zip(stored["left"], stored["right"], strict=True))
    assert ("p0000", "p0001") not in keys and ("p0000", "p2949") in keys
