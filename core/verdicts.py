"""The reviewer's verdicts as ground truth over every pipeline's matches: a pair said to be
"different" is no match and a pair said to be the "same" product is one, whatever the scores
say.

Applied where matches leave a pipeline for good: when a run is stored (so its clusters and
figures count them, and re-matching keeps them), when stored matches are read back (exports
count the verdicts given since the run) and to one posting's matches on the pages. Verdicts
are kept by posting id, so re-importing the same catalog keeps them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.matches import MatchResult
from core.pair_listing import LISTED_BOTH
from core.pair_table import PairTable

#: The rule of a pair that is a match because the reviewer said so.
REVIEWED = "reviewed"

Pair = tuple[str, str]


def _verdict_sets(reviews: pd.DataFrame) -> tuple[set[Pair], set[Pair]]:
    """(same, different) unordered pairs; `Store.save_review` keeps each pair's ids sorted."""
    same: set[Pair] = set()
    different: set[Pair] = set()
    for left, right, verdict in reviews[["left_id", "right_id", "verdict"]].itertuples(index=False):
        (same if verdict == "same" else different).add((left, right))
    return same, different


def pair_key(left: str, right: str) -> Pair:
    """An unordered pair as `Store.save_review` keeps it: the two ids sorted."""
    return (left, right) if left <= right else (right, left)


def reviewed_pairs(reviews: pd.DataFrame) -> set[Pair]:
    """Every pair a verdict was given on (`Store.reviews`, ids already sorted)."""
    return set(zip(reviews["left_id"], reviews["right_id"], strict=True))


def without_pairs(frame: pd.DataFrame, pairs: set[Pair]) -> pd.DataFrame:
    """The rows of ``frame`` (columns left, right) whose unordered pair is not in ``pairs``."""
    if not pairs:
        return frame
    ends = zip(frame["left"], frame["right"], strict=True)
    return frame[[pair_key(a, b) not in pairs for a, b in ends]]


def _touched(pairs: pd.DataFrame, reviews: pd.DataFrame) -> tuple[list[int], list[Pair]]:
    """Rows of ``pairs`` between two reviewed postings, and their unordered keys: the only
    rows a verdict can concern, found by hash lookups rather than a key per pair."""
    reviewed = pd.Index(pd.unique(reviews[["left_id", "right_id"]].to_numpy().ravel()))
    touched = np.flatnonzero(
        (reviewed.get_indexer(pairs["left"]) >= 0) & (reviewed.get_indexer(pairs["right"]) >= 0)
    )
    lefts, rights = pairs["left"].to_numpy()[touched], pairs["right"].to_numpy()[touched]
    keys = [pair_key(a, b) for a, b in zip(lefts.tolist(), rights.tolist(), strict=True)]
    return touched.tolist(), keys


def _touched_table(table: PairTable, reviews: pd.DataFrame) -> tuple[list[int], list[Pair]]:
    """`_touched` for a `PairTable`: by catalog position, no posting id per pair."""
    ids = table.posting_ids
    reviewed = pd.Index(ids).get_indexer(
        pd.unique(reviews[["left_id", "right_id"]].to_numpy().ravel())
    )
    mask = np.zeros(len(ids), bool)
    mask[reviewed[reviewed >= 0]] = True
    touched = np.flatnonzero(mask[table.left] & mask[table.right])
    lefts, rights = ids[table.left[touched]], ids[table.right[touched]]
    keys = [pair_key(a, b) for a, b in zip(lefts.tolist(), rights.tolist(), strict=True)]
    return touched.tolist(), keys


@dataclass
class _Changes:
    """What the verdicts change in a run's pairs: rows to drop, rows to list from both sides,
    and same-pairs the run lacks (ids and catalog positions, left before right)."""

    drop: list[int]
    confirm: list[int]
    missing: list[tuple[str, str, int, int]]


def _changes(
    touched: list[int], keys: list[Pair], posting_ids: list[str], reviews: pd.DataFrame
) -> _Changes | None:
    """The verdicts' changes to the ``touched`` rows (unordered ``keys``), None if none."""
    same, different = _verdict_sets(reviews)
    drop = [i for i, k in zip(touched, keys, strict=True) if k in different]
    confirm = [i for i, k in zip(touched, keys, strict=True) if k in same]
    missing = []
    absent = sorted(same - set(keys))
    if absent:
        ends = np.asarray(absent, dtype=object)
        catalog = pd.Index(posting_ids)
        positions = np.stack([catalog.get_indexer(ends[:, 0]), catalog.get_indexer(ends[:, 1])])
        known = (positions >= 0).all(axis=0)  # a reviewed posting may have left the catalog
        missing = [
            (a, b, pa, pb) if pa < pb else (b, a, pb, pa)  # left before right in catalog order
            for (a, b), pa, pb, ok in zip(absent, *positions.tolist(), known, strict=True)
            if ok
        ]
    if not drop and not confirm and not missing:
        return None
    return _Changes(drop, confirm, missing)


def apply_verdicts(
    pairs: pd.DataFrame, posting_ids: list[str], reviews: pd.DataFrame
) -> pd.DataFrame:
    """``pairs`` (a `MatchResult.pairs` frame) without the pairs said to be different, with
    the pairs said to be the same listed by both sides, and with the same-pairs the pipeline
    missed added (rule `REVIEWED`, similarity 1). The frame is returned as it is when no
    verdict touches it; only the pairs between reviewed postings are looked at."""
    if reviews.empty:
        return pairs
    changes = _changes(*_touched(pairs, reviews), posting_ids, reviews)
    if changes is None:
        return pairs
    out = pairs.copy()
    if changes.confirm and "listed" in out:
        out.iloc[changes.confirm, out.columns.get_loc("listed")] = LISTED_BOTH
    if changes.drop:
        keep = np.ones(len(out), bool)
        keep[changes.drop] = False
        out = out[keep]
    if changes.missing:
        added = pd.DataFrame(
            {
                "left": [a for a, _, _, _ in changes.missing],
                "right": [b for _, b, _, _ in changes.missing],
                "rule": REVIEWED,
                "similarity": np.float32(1.0),
                "listed": np.int8(LISTED_BOTH),
            }
        )
        out = pd.concat([out, added], ignore_index=True)
    return out.reset_index(drop=True)


def _table_with_verdicts(table: PairTable, reviews: pd.DataFrame) -> PairTable:
    """`apply_verdicts` for a `PairTable` (the same pairs, rows and order)."""
    changes = _changes(*_touched_table(table, reviews), table.posting_ids.tolist(), reviews)
    if changes is None:
        return table
    if changes.confirm:
        table = table.select(np.ones(len(table), bool))  # a copy, so the caller's is kept
        table.listed[changes.confirm] = LISTED_BOTH
    if changes.drop:
        keep = np.ones(len(table), bool)
        keep[changes.drop] = False
        table = table.select(keep)
    if changes.missing:
        lefts = np.array([pa for _, _, pa, _ in changes.missing])
        rights = np.array([pb for _, _, _, pb in changes.missing])
        table = table.appended(lefts, rights, REVIEWED, 1.0, LISTED_BOTH)
    return table


def pipeline_decisions(result: MatchResult, reviews: pd.DataFrame) -> list[list]:
    """For each reviewed pair, whether the pipeline's own rules matched it, before any verdict
    overruled them: [left_id, right_id, matched], what precision and recall are estimated
    from (`core.review_estimates`)."""
    if reviews.empty:
        return []
    if result.table is not None:
        present = set(_touched_table(result.table, reviews)[1])
    else:
        present = set(_touched(result.pairs, reviews)[1])
    return [
        [left, right, (left, right) in present]
        for left, right in zip(reviews["left_id"], reviews["right_id"], strict=True)
    ]


def with_verdicts(result: MatchResult, reviews: pd.DataFrame) -> MatchResult:
    """The result with `apply_verdicts` applied (itself when no verdict touches it)."""
    if reviews.empty:
        return result
    if result.table is not None:
        table = _table_with_verdicts(result.table, reviews)
        if table is result.table:
            return result
        return dataclasses.replace(result, table=table, positions=None, _clusters=None)
    pairs = apply_verdicts(result.pairs, result.posting_ids, reviews)
    if pairs is result.pairs:
        return result
    return dataclasses.replace(result, frame=pairs, positions=None, _clusters=None)


def verdicts_of(reviews: pd.DataFrame, posting_id: str) -> dict[str, str]:
    """The reviewer's verdicts on one posting's pairs: other posting id -> "same"/"different"."""
    mine = reviews[(reviews["left_id"] == posting_id) | (reviews["right_id"] == posting_id)]
    return {
        (row.right_id if row.left_id == posting_id else row.left_id): row.verdict
        for row in mine.itertuples(index=False)
    }


def posting_matches_with_verdicts(matches: pd.DataFrame, verdicts: dict[str, str]) -> pd.DataFrame:
    """One posting's matches (`MatchResult.matches_of` columns) under its verdicts
    (other posting id -> "same" / "different"): a ``matched`` column, False for the postings
    said to be different (kept, so the page can show what was reviewed), and a row for each
    posting said to be the same that the pipeline did not match."""
    out = matches.copy()
    out["matched"] = [verdicts.get(p) != "different" for p in out["posting_id"]]
    listed = set(out["posting_id"])
    added = [p for p, verdict in verdicts.items() if verdict == "same" and p not in listed]
    if added:
        rows = pd.DataFrame(
            {
                "posting_id": added,
                "rule": REVIEWED,
                "similarity": np.float32(1.0),
                "matched": True,
            }
        )
        out = pd.concat([rows, out], ignore_index=True)
    out["matched"] = out["matched"].astype(bool)
    # Matches first (reviewed-same ones among them), best first; the rejected ones last.
    return out.sort_values(
        ["matched", "similarity"], ascending=[False, False], kind="stable"
    ).reset_index(drop=True)


def labels_with_verdicts(
    posting_ids: list[str], labels: list[str], reviews: pd.DataFrame
) -> tuple[list[str], int]:
    """The catalog's labels corrected by the verdicts, for training on both: postings said to
    be the same product join one group (their groups merge), and a posting said to differ
    from one of its group leaves that group for one of its own. Returns the labels and how
    many verdicts changed them."""
    if reviews.empty:
        return list(labels), 0
    label_of = dict(zip(posting_ids, labels, strict=True))
    parent: dict[str, str] = {}

    def root(label: str) -> str:
        while parent.get(label, label) != label:
            label = parent[label]
        return label

    changed = 0
    same = reviews[reviews["verdict"] == "same"]
    for a, b in zip(same["left_id"], same["right_id"], strict=True):
        if a in label_of and b in label_of:
            ra, rb = root(label_of[a]), root(label_of[b])
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
                changed += 1
    merged = {pid: root(label) for pid, label in label_of.items()}
    different = reviews[reviews["verdict"] == "different"]
    for a, b in zip(different["left_id"], different["right_id"], strict=True):
        if a in merged and b in merged and merged[a] == merged[b]:
            merged[b] = f"{merged[b]}~{b}"
            changed += 1
    return [merged[pid] for pid in posting_ids], changed
