"""Match sets, groups and the submission layout."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from core.matches import (
    MatchResult,
    connected_groups,
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


def test_connected_groups_follow_chains() -> None:
    groups = connected_groups(IDS, PAIRS)

    assert groups["p1"] == groups["p2"] == groups["p3"]
    assert groups["p4"] == groups["p5"]
    assert len({groups["p1"], groups["p4"], groups["p6"]}) == 3


def test_no_pairs_means_every_posting_alone() -> None:
    empty = pd.DataFrame(columns=["left", "right", "rule"])
    assert match_sets(IDS, empty) == {pid: {pid} for pid in IDS}
    assert len(set(connected_groups(IDS, empty).values())) == len(IDS)


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
