"""The reviewer's verdicts overrule every pipeline: "different" removes a match, "same" adds
one, in the stored matches, their clusters and figures, the exports, one posting's matches on
the pages, after re-matching and after re-importing the catalog. Real Shopee titles and
hashes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from core import matching
from core.catalog import import_catalog
from core.matches import read_submission
from core.pipelines.best import catalog_training
from core.store import Store
from core.verdicts import REVIEWED, apply_verdicts, posting_matches_with_verdicts

SLICE = 1_200


@pytest.fixture
def shopee_db(shopee_csv: Path, tmp_path: Path) -> Path:
    frame = pd.read_csv(shopee_csv, dtype=str).head(SLICE)
    frame.to_csv(tmp_path / "catalog.csv", index=False)
    db = tmp_path / "slice.db"
    with Store(db) as store:
        import_catalog(store, tmp_path / "catalog.csv", None)
    return db


def _a_match_and_a_miss(store: Store, pipeline: str) -> tuple[tuple[str, str], tuple[str, str]]:
    """A pair the pipeline matched, and a same-label pair it did not."""
    result = matching.stored_result(store, pipeline)
    matched = result.pairs.iloc[0]
    sets = result.match_sets()
    labels = store.postings().set_index("posting_id")["label_group"]
    for _, members in labels.groupby(labels).groups.items():
        members = list(members)
        for other in members[1:]:
            if other not in sets[members[0]]:
                return (matched["left"], matched["right"]), (members[0], other)
    raise AssertionError("every labelled pair is matched")


def _train_best_from_pairs(store: Store) -> None:
    """A best matcher for the slice, trained from pairs its labels give (no label groups)."""
    from core import models
    from core.settings import MatchSettings

    labels = store.postings().set_index("posting_id")["label_group"]
    found = matching.run_pipeline(store, "ensemble", save=False).pairs.head(300)
    pairs = pd.DataFrame(
        {
            "left_id": found["left"],
            "right_id": found["right"],
            "same": (
                labels.loc[found["left"]].to_numpy() == labels.loc[found["right"]].to_numpy()
            ).astype(int),
        }
    )
    catalog_training.train_best_from_pairs(store, MatchSettings(), models.best_dir(store), pairs)


@pytest.mark.parametrize("pipeline", ["baseline", "ensemble", "best"])
def test_verdicts_overrule_a_pipeline_when_it_runs_again(shopee_db: Path, pipeline: str) -> None:
    with Store(shopee_db) as store:
        if pipeline == "best":
            _train_best_from_pairs(store)
        matching.run_pipeline(store, pipeline)
        (a, b), (c, d) = _a_match_and_a_miss(store, pipeline)
        before = matching.stored_result(store, pipeline).match_sets()
        store.save_review(a, b, "different")
        store.save_review(c, d, "same")
        matching.run_pipeline(store, pipeline)
        pairs = store.load_match_pairs(pipeline)
        result = matching.stored_result(store, pipeline)
        members, _ = store.cluster_of(pipeline, c)

    keys = {frozenset(p) for p in zip(pairs["left"], pairs["right"], strict=True)}
    assert frozenset((a, b)) not in keys
    assert frozenset((c, d)) in keys
    added = pairs[(pairs["left"].isin([c, d])) & (pairs["right"].isin([c, d]))]
    assert added["rule"].tolist() == [REVIEWED]
    sets = result.match_sets()
    assert b not in sets[a] and a not in sets[b]
    assert d in sets[c] and c in sets[d]
    # Only the reviewed pairs changed.
    changed = {p for p in sets if sets[p] != before[p]}
    assert changed == {a, b, c, d}
    assert d in members  # the clusters were formed with the verdicts


def test_verdicts_given_after_a_run_count_in_its_export(shopee_db: Path) -> None:
    with Store(shopee_db) as store:
        matching.run_pipeline(store, "baseline")
        (a, b), (c, d) = _a_match_and_a_miss(store, "baseline")
        store.save_review(a, b, "different")
        store.save_review(c, d, "same")
        exported = read_submission(matching.stored_result(store, "baseline").submission())

    assert b not in exported[a] and a not in exported[b]
    assert d in exported[c] and c in exported[d]


def test_verdicts_survive_reimporting_the_catalog(shopee_db: Path) -> None:
    with Store(shopee_db) as store:
        matching.run_pipeline(store, "baseline")
        (a, b), _ = _a_match_and_a_miss(store, "baseline")
        store.save_review(a, b, "different")
        import_catalog(store, shopee_db.parent / "catalog.csv", None)
        matching.run_pipeline(store, "baseline")
        sets = matching.stored_result(store, "baseline").match_sets()
    assert b not in sets[a]


def test_one_postings_matches_show_what_was_reviewed(shopee_db: Path) -> None:
    with Store(shopee_db) as store:
        matching.run_pipeline(store, "baseline")
        (a, b), (c, d) = _a_match_and_a_miss(store, "baseline")
        shown = posting_matches_with_verdicts(
            store.matches_of("baseline", a), {b: "different", "nobody": "same"}
        )
    # The rejected match stays visible, not counted, after every match.
    assert shown.iloc[-1]["posting_id"] == b and not shown.iloc[-1]["matched"]
    added = shown[shown["posting_id"] == "nobody"].iloc[0]
    assert added["matched"] and added["rule"] == REVIEWED


def test_a_verdict_about_a_posting_no_longer_in_the_catalog_changes_nothing(
    shopee_db: Path,
) -> None:
    with Store(shopee_db) as store:
        result = matching.run_pipeline(store, "baseline", save=False)
        store.save_review(result.posting_ids[0], "gone-posting", "same")
        pairs = apply_verdicts(result.pairs, result.posting_ids, store.reviews())
    assert pairs is result.pairs


def test_verdicts_correct_the_labels_best_trains_on() -> None:
    from core.verdicts import labels_with_verdicts

    ids = ["a", "b", "c", "d", "e"]
    labels = ["1", "1", "2", "3", "3"]
    reviews = pd.DataFrame(
        {
            "left_id": ["a", "d", "x"],
            "right_id": ["c", "e", "y"],
            "verdict": ["same", "different", "same"],
        }
    )
    corrected, changed = labels_with_verdicts(ids, labels, reviews)
    # a and c are one product: groups 1 and 2 merge; e leaves d's group; x, y are unknown.
    assert corrected[0] == corrected[1] == corrected[2]
    assert corrected[3] != corrected[4] and corrected[3] == "3"
    assert changed == 2
    assert labels_with_verdicts(ids, labels, reviews.iloc[:0]) == (labels, 0)
