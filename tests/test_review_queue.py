"""The review queue (most telling pairs first) and the precision and recall estimated from
verdicts, on real Shopee titles and hashes with the labels playing the reviewer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core import matching
from core.catalog import import_catalog
from core.errors import SameSameError
from core.review_estimates import review_estimates, wilson
from core.review_queue import review_queue
from core.store import Store

SLICE = 1_500


@pytest.fixture(scope="module")
def matched_db(shopee_csv: Path, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("queue")
    pd.read_csv(shopee_csv, dtype=str).head(SLICE).to_csv(folder / "catalog.csv", index=False)
    db = folder / "slice.db"
    with Store(db) as store:
        import_catalog(store, folder / "catalog.csv", None)
        for pipeline in ("baseline", "ensemble"):
            matching.run_pipeline(store, pipeline)
    return db


@pytest.fixture
def store(matched_db: Path, tmp_path: Path) -> Store:
    """A private copy: the tests write verdicts."""
    with Store(matched_db) as source:
        source.conn.execute("VACUUM INTO ?", (str(tmp_path / "copy.db"),))
    with Store(tmp_path / "copy.db") as opened:
        yield opened


def _labels(store: Store) -> pd.Series:
    return store.postings().set_index("posting_id")["label_group"]


def test_uncertain_pairs_come_before_certain_ones(store: Store) -> None:
    queue = review_queue(store, limit=100_000)
    assert queue["priority"].is_monotonic_decreasing
    assert set(queue["priority"]) == {0, 1, 2, 3, 4}
    # A pair only one pipeline matched comes before every pair both matched with ease.
    disagree = queue[queue["priority"] == 3]
    assert (disagree[["baseline_similarity", "ensemble_similarity"]].isna().sum(axis=1) == 1).all()
    assert "calls it a match" in disagree["reason"].iloc[0]
    confident = queue[queue["priority"] == 0]
    assert confident[["baseline_similarity", "ensemble_similarity"]].notna().all(axis=None)
    assert disagree.index.max() < confident.index.min()
    # Inside a reason, the weakest match first.
    assert disagree["similarity"].is_monotonic_increasing
    # The uncertain pairs are wrong far more often than the confident ones.
    labels = _labels(store)

    def wrong(frame: pd.DataFrame) -> float:
        return float(
            (labels.loc[frame["left"]].to_numpy() != labels.loc[frame["right"]].to_numpy()).mean()
        )

    assert wrong(disagree) > wrong(confident) + 0.2


def test_unsure_pairs_come_first_and_the_rest_keep_their_order(store: Store) -> None:
    from core import review_queue as rq

    queue = review_queue(store, limit=100_000)
    unsure = queue[queue["priority"] == 4]
    # Unsure: 40-60 % likely the same, by the most accurate pipeline that matched the pair.
    assert len(unsure) > 10 and unsure.index.max() < queue[queue["priority"] < 4].index.min()
    assert unsure["probability"].between(0.4 - 1e-6, 0.6).all()
    assert unsure["reason"].str.match(r"the answer is Unsure: \d+% likely the same product").all()
    assert not queue.loc[queue["priority"] < 4, "probability"].between(0.4, 0.6 - 1e-6).any()
    # Without the Unsure tier, the other pairs are in the order they had before it.
    old = rq._combined

    def without_unsure(runs):
        keys, found = old({k: {**v, "unsure": np.zeros_like(v["unsure"])} for k, v in runs.items()})
        return keys, found

    rq._combined = without_unsure
    try:
        before = review_queue(store, limit=100_000)
    finally:
        rq._combined = old
    assert set(before["priority"]) == {0, 1, 2, 3}
    rest = queue[queue["priority"] < 4]
    keys = list(zip(rest["left"], rest["right"], strict=True))
    unsure_keys = set(zip(unsure["left"], unsure["right"], strict=True))
    kept = [k for k in zip(before["left"], before["right"], strict=True) if k not in unsure_keys]
    assert keys == kept


def test_reviewed_pairs_leave_the_queue(store: Store) -> None:
    first = review_queue(store, limit=10)
    store.save_review(first["right"].iloc[0], first["left"].iloc[0], "same", chosen="queue")
    after = review_queue(store, limit=10)
    assert after.iloc[0][["left", "right"]].tolist() == first.iloc[1][["left", "right"]].tolist()


def test_precision_from_a_random_sample_of_matches_brackets_the_truth(store: Store) -> None:
    labels = _labels(store)
    pairs = store.load_match_pairs("baseline")
    same = labels.loc[pairs["left"]].to_numpy() == labels.loc[pairs["right"]].to_numpy()
    truth = same.mean()
    sample = np.random.default_rng(0).choice(len(pairs), 150, replace=False)
    for i in sample:
        verdict = "same" if same[i] else "different"
        store.save_review(pairs["left"].iloc[i], pairs["right"].iloc[i], verdict, chosen="sample")
    found = review_estimates(store, "baseline")
    precision = found["precision"]
    assert precision.unbiased and precision.reviewed == 150
    assert precision.value == pytest.approx(same[sample].mean())
    assert precision.low < truth < precision.high
    assert precision.more_needed > 0  # ±5 points needs a few hundred
    # Every pair said to be the same was matched by the baseline itself.
    assert found["recall"].value == 1.0
    # The verdicts count in the stored run too, and its own decisions are kept.
    matching.run_pipeline(store, "baseline")
    again = review_estimates(store, "baseline")
    assert again["precision"].value == pytest.approx(precision.value)


def test_precision_from_queue_picks_is_marked_pessimistic(store: Store) -> None:
    labels = _labels(store)
    queue = review_queue(store, limit=100_000)
    for row in queue[queue["priority"] == 3].head(40).itertuples():
        verdict = "same" if labels[row.left] == labels[row.right] else "different"
        store.save_review(row.left, row.right, verdict, chosen="queue")
    found = {p: review_estimates(store, p) for p in ("baseline", "ensemble")}
    assert not found["baseline"]["precision"].unbiased
    # The queue's first disagreements are pairs only the baseline matched: of those said to be
    # the same, the baseline found each and the ensemble fewer.
    assert found["baseline"]["recall"].value == 1.0
    assert found["ensemble"]["recall"].value < 1.0
    assert found["ensemble"]["recall"].reviewed == found["baseline"]["recall"].reviewed > 0


def test_wilson_interval() -> None:
    estimate = wilson(45, 50)
    assert estimate.value == 0.9
    assert estimate.low == pytest.approx(0.786, abs=0.002)
    assert estimate.high == pytest.approx(0.957, abs=0.002)
    assert wilson(0, 0).reviewed == 0


@pytest.mark.parametrize(
    ("left", "right", "verdict", "chosen", "message"),
    [
        ("a", "a", "same", "browse", "always the same as itself"),
        ("a", "b", "maybe", "browse", "'same' or 'different'"),
        ("a", "b", "same", "guess", "chosen by one of"),
    ],
)
def test_bad_verdicts_are_refused(store: Store, left, right, verdict, chosen, message) -> None:
    with pytest.raises(SameSameError, match=message):
        store.save_review(left, right, verdict, chosen=chosen)
    assert store.reviews().empty
