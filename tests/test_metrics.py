"""The competition metric on cases small enough to work out by hand."""

from __future__ import annotations

import pytest

from core.errors import SameSameError
from core.metrics import evaluate, per_posting_scores, true_match_sets

# Truth: a, b, c are one product (group 1); d is alone (group 2).
LABELS = {"a": 1, "b": 1, "c": 1, "d": 2}


def test_true_match_sets_include_the_posting_itself() -> None:
    truth = true_match_sets(LABELS)
    assert truth == {"a": {"a", "b", "c"}, "b": {"a", "b", "c"}, "c": {"a", "b", "c"}, "d": {"d"}}


def test_self_only_prediction() -> None:
    truth = true_match_sets(LABELS)
    predicted = {pid: {pid} for pid in LABELS}

    result = evaluate(predicted, truth)

    # a, b, c: hits 1, |pred| 1, |true| 3 -> P 1, R 1/3, F1 2*1/(1+3) = 0.5
    # d:       hits 1, |pred| 1, |true| 1 -> P 1, R 1,   F1 1
    # means: F1 (0.5*3 + 1)/4 = 0.625, P 1, R (1/3*3 + 1)/4 = 0.5
    assert result == pytest.approx({"f1": 0.625, "precision": 1.0, "recall": 0.5, "postings": 4})


def test_mixed_prediction_by_hand() -> None:
    truth = true_match_sets(LABELS)
    predicted = {"a": {"a", "b"}, "b": {"a", "b"}, "c": {"c", "d"}, "d": {"c", "d"}}

    scores = per_posting_scores(predicted, truth).set_index("posting_id")
    result = evaluate(predicted, truth)

    # a: pred {a,b}, true {a,b,c}: hits 2 -> P 2/2 = 1, R 2/3, F1 2*2/(2+3) = 0.8
    # b: same as a                                    -> P 1, R 2/3, F1 0.8
    # c: pred {c,d}, true {a,b,c}: hits 1 -> P 1/2, R 1/3, F1 2*1/(2+3) = 0.4
    # d: pred {c,d}, true {d}:     hits 1 -> P 1/2, R 1,   F1 2*1/(2+1) = 2/3
    assert scores.loc["a", "f1"] == pytest.approx(0.8)
    assert scores.loc["c", ["precision", "recall", "f1"]].tolist() == pytest.approx(
        [0.5, 1 / 3, 0.4]
    )
    assert scores.loc["d", "f1"] == pytest.approx(2 / 3)
    assert scores.loc["d", ["predicted", "true"]].tolist() == [2, 1]
    # F1 mean (0.8 + 0.8 + 0.4 + 2/3)/4 = 2.6667/4 = 0.66667
    # P  mean (1 + 1 + 0.5 + 0.5)/4 = 0.75;  R mean (2/3 + 2/3 + 1/3 + 1)/4 = 2/3
    assert result["f1"] == pytest.approx((0.8 + 0.8 + 0.4 + 2 / 3) / 4)
    assert result["precision"] == pytest.approx(0.75)
    assert result["recall"] == pytest.approx(2 / 3)


def test_perfect_and_everything_predictions() -> None:
    truth = true_match_sets(LABELS)
    assert evaluate(truth, truth)["f1"] == 1.0

    everything = {pid: set(LABELS) for pid in LABELS}
    # a, b, c: hits 3, pred 4, true 3 -> F1 6/7; d: hits 1, pred 4, true 1 -> F1 2/5
    assert evaluate(everything, truth)["f1"] == pytest.approx((3 * 6 / 7 + 2 / 5) / 4)


def test_a_submission_is_scored_exactly_as_written() -> None:
    """A row that leaves its own id out is not helped: d predicts nothing and scores 0."""
    truth = true_match_sets(LABELS)
    without_self = {"a": {"b", "c"}, "b": {"a", "c"}, "c": {"a", "b"}, "d": set()}
    scores = per_posting_scores(without_self, truth).set_index("posting_id")
    # a: pred {b,c}, true {a,b,c}: hits 2 -> P 1, R 2/3, F1 4/5; d: nothing -> 0.
    assert scores.loc["a", ["precision", "recall", "f1"]].tolist() == pytest.approx(
        [1.0, 2 / 3, 0.8]
    )
    assert scores.loc["d", ["precision", "recall", "f1"]].tolist() == [0.0, 0.0, 0.0]
    assert evaluate(without_self, truth)["f1"] == pytest.approx((0.8 * 3 + 0) / 4)


def test_evaluating_nothing_is_an_error() -> None:
    with pytest.raises(SameSameError, match="nothing to score"):
        evaluate({}, {})


def test_matches_to_unlabelled_postings_are_counted_apart() -> None:
    import pandas as pd

    from core.metrics import pair_scores, summary

    ids = ["a", "b", "c", "d", "x"]  # x has no label
    pairs = pd.DataFrame({"left": ["a", "a", "d"], "right": ["b", "x", "x"]})
    scores = pair_scores(ids, pairs, LABELS)

    assert "x" not in set(scores["posting_id"])
    figures = summary(scores)
    assert figures["unlabelled_matches"] == 2  # a->x and d->x, not judged
    by_id = scores.set_index("posting_id")
    assert by_id.loc["a", "predicted"] == 2  # itself and b


def test_mismatched_ids_are_an_error() -> None:
    truth = true_match_sets(LABELS)
    with pytest.raises(SameSameError, match=r"1 unpredicted, 0 unlabelled.*\['d'\]"):
        evaluate({"a": {"a"}, "b": {"b"}, "c": {"c"}}, truth)
    with pytest.raises(SameSameError, match=r"0 unpredicted, 1 unlabelled.*\['e'\]"):
        evaluate({**{pid: {pid} for pid in LABELS}, "e": {"e"}}, truth)
