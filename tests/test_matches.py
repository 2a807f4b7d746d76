"""Match sets, groups and the submission layout."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from core.matches import (
    LISTED_LEFT,
    MatchResult,
    match_sets,
    read_submission,
    submission_frame,
)
from core.settings import MatchSettings

IDS = ["p1", "p2", "p3", "p4", "p5", "p6"]
# p1-p2, p2-p3 (a chain), p4-p5; p6 alone.
PAIRS = pd.DataFrame(
    {
        "left": ["p1", "p2", "p4"],
        "right": ["p2", "p3", "p5"],
        "rule": ["text", "image", "hash"],
    }
)


def test_match_sets_are_symmetric_and_include_self() -> None:
    sets = match_sets(IDS, PAIRS)

    assert sets == {
        "p1": {"p1", "p2"},
        "p2": {"p1", "p2", "p3"},
        "p3": {"p2", "p3"},
        "p4": {"p4", "p5"},
        "p5": {"p4", "p5"},
        "p6": {"p6"},
    }
    for pid, members in sets.items():
        assert pid in members
        assert all(pid in sets[other] for other in members)


def test_a_posting_at_its_cap_does_not_list_what_lists_it() -> None:
    one_sided = PAIRS.assign(listed=[3, LISTED_LEFT, 3])

    sets = match_sets(IDS, one_sided)

    assert "p3" in sets["p2"] and "p2" not in sets["p3"]
    assert sets["p1"] == {"p1", "p2"} and sets["p4"] == {"p4", "p5"}


def test_matches_of_a_posting_are_what_it_lists_best_first() -> None:
    pairs = PAIRS.assign(similarity=[0.6, 0.9, 0.7], listed=[3, 3, LISTED_LEFT])
    result = MatchResult("baseline", IDS, pairs, MatchSettings())

    assert result.matches_of("p2")["posting_id"].tolist() == ["p3", "p1"]
    assert result.matches_of("p4")["posting_id"].tolist() == ["p5"]
    assert result.matches_of("p5").empty


def test_no_pairs_means_every_posting_alone() -> None:
    empty = MatchResult.empty_pairs()
    assert match_sets(IDS, empty) == {pid: {pid} for pid in IDS}


def test_submission_puts_the_posting_first_then_the_rest_sorted() -> None:
    frame = submission_frame(match_sets(IDS, PAIRS), IDS)

    assert frame.columns.tolist() == ["posting_id", "matches"]
    assert frame["posting_id"].tolist() == IDS
    rows = dict(zip(frame["posting_id"], frame["matches"], strict=True))
    assert rows["p2"] == "p2 p1 p3"
    assert rows["p3"] == "p3 p2"
    assert rows["p6"] == "p6"


def test_submission_round_trips_through_csv(tmp_path: Path) -> None:
    result = MatchResult("baseline", IDS, PAIRS, MatchSettings())
    path = tmp_path / "submission.csv"
    result.submission().to_csv(path, index=False)

    text = path.read_text().splitlines()
    assert text[0] == "posting_id,matches"
    assert text[2] == "p2,p2 p1 p3"
    back = read_submission(pd.read_csv(path, dtype=str))
    assert back == result.match_sets()
