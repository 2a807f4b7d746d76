"""Labelled pairs files (``left_id,right_id,same`` with 1 = same product, 0 = different):
read, checked against a catalog, every problem named by its row.

Published pair files repeat pairs, a few of them with both labels, and now and then pair a
posting with itself (two listings with the same text given one id). By default a pair given
more than once with one label counts once, and a pair given with both labels or a posting paired
with itself is set aside (`PairsReport` says how many, and holds the rows with the reason);
``strict=True`` refuses any repeat and any self pair."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from core.errors import CatalogError
from core.settings import data_dir
from core.verdicts import pair_key

PAIR_COLUMNS = ("left_id", "right_id", "same")
#: Problems listed in one error before "and N more".
SHOWN = 5
#: The ``reason`` of a set-aside row.
BOTH_LABELS = "labelled both same and different"
SELF_PAIR = "a posting paired with itself"


def _no_rows() -> pd.DataFrame:
    return pd.DataFrame({"left_id": [], "right_id": [], "same": [], "row": [], "reason": []})


def _count(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}"


@dataclass(frozen=True)
class PairsReport:
    """What reading a pairs file set right.

    Attributes:
        repeats: pairs given more than once with the same label, now counted once.
        conflicts: pairs given with both labels (same and different), left out.
        self_pairs: postings paired with themselves (whatever the label), left out.
        set_aside: every row of the pairs left out (left_id, right_id, same, row, reason:
            `BOTH_LABELS` or `SELF_PAIR`), a pair's rows together, pairs in the order the file
            first gives them.
    """

    repeats: int = 0
    conflicts: int = 0
    self_pairs: int = 0
    set_aside: pd.DataFrame = field(default_factory=_no_rows, compare=False, repr=False)

    def summary(self, name: str, written: Path | None = None) -> str:
        """One plain sentence ("" when the file gave every pair once, each of two postings).

        Args:
            name: how to call the file (its name).
            written: where the set-aside rows were written, if they were.
        """
        parts = []
        if self.repeats:
            parts.append(_count(self.repeats, "repeated pair", "repeated pairs") + " counted once")
        aside = []
        if self.conflicts:
            aside.append(_count(self.conflicts, "pair", "pairs") + f" {BOTH_LABELS}")
        if self.self_pairs:
            aside.append(
                _count(
                    self.self_pairs, "posting paired with itself", "postings paired with themselves"
                )
            )
        if aside:
            where = f" (written to {written})" if written is not None else ""
            parts.append(" and ".join(aside) + f" set aside{where}")
        return f"{name}: " + "; ".join(parts) if parts else ""


def default_conflicts_path(pairs_path: Path) -> Path:
    """Where the set-aside rows of ``pairs_path`` go unless the caller says: the data folder,
    as ``<file name>-conflicts.csv`` (the pairs file's own folder may be read-only)."""
    return data_dir() / f"{Path(pairs_path).stem}-conflicts.csv"


def _fail(path: Path, problems: list[str]) -> None:
    more = f" (and {len(problems) - SHOWN} more)" if len(problems) > SHOWN else ""
    raise CatalogError(f"{path}: " + "; ".join(problems[:SHOWN]) + more)


def _read_frame(path: Path) -> pd.DataFrame:
    """The file's three columns, stripped, with ``row`` (the file's line number)."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise CatalogError(f"{path}: no such pairs file") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise CatalogError(f"{path}: not a readable CSV ({exc})") from exc
    except pd.errors.EmptyDataError:
        raise CatalogError(f"{path}: the file is empty; give left_id,right_id,same") from None
    missing = [c for c in PAIR_COLUMNS if c not in frame.columns]
    if missing:
        raise CatalogError(
            f"{path}: a pairs file has the columns left_id,right_id,same; this one lacks "
            + ", ".join(missing)
        )
    if frame.empty:
        raise CatalogError(f"{path}: no pairs in the file")
    frame = frame[list(PAIR_COLUMNS)].copy()
    for column in PAIR_COLUMNS:
        frame[column] = frame[column].str.strip()
    frame["row"] = range(2, len(frame) + 2)
    return frame


def _row_problems(frame: pd.DataFrame, known: set[str] | None, *, strict: bool) -> list[str]:
    """Rows no reading can use: a label other than 0/1, an id not in ``known``, and
    (``strict``) a posting paired with itself."""
    problems = []
    for row in frame.itertuples(index=False):
        if row.same not in ("0", "1"):
            problems.append(f"row {row.row}: same is {row.same!r}; give 1 (same) or 0 (different)")
        if strict and row.left_id == row.right_id:
            problems.append(f"row {row.row}: {row.left_id!r} is paired with itself")
        for side in ("left_id", "right_id"):
            value = getattr(row, side)
            if known is not None and value not in known:
                problems.append(f"row {row.row}: {side} {value!r} is not in the catalog")
    return problems


def _repeat_problems(frame: pd.DataFrame) -> list[str]:
    """Every row that gives a pair an earlier row gave (``strict``)."""
    first: dict[tuple[str, str], int] = {}
    problems = []
    for left, right, row in zip(frame["left_id"], frame["right_id"], frame["row"], strict=True):
        key = pair_key(left, right)
        if key in first:
            problems.append(f"rows {first[key]} and {row} give the same pair {key}")
        else:
            first[key] = row
    return problems


def sort_out_pairs(frame: pd.DataFrame) -> tuple[pd.DataFrame, PairsReport]:
    """One row a pair: a pair given again with the same label (either way round) keeps its
    first row; a pair given with both labels, and a posting paired with itself (it always
    matches itself: a 0 contradicts that, a 1 teaches nothing), are left out and reported.

    Args:
        frame: left_id, right_id, same (int 0/1), row.

    Returns:
        The pairs (same columns, file order) and the report.
    """
    keys = pd.DataFrame(
        [pair_key(a, b) for a, b in zip(frame["left_id"], frame["right_id"], strict=True)],
        columns=["lo", "hi"],
        index=frame.index,
    )
    grouped = frame.groupby([keys["lo"], keys["hi"]], sort=False)
    itself = frame["left_id"] == frame["right_id"]
    conflicting = (grouped["same"].transform("nunique") > 1) & ~itself
    aside = itself | conflicting
    set_aside = (
        frame[aside]
        .assign(
            reason=itself[aside].map({True: SELF_PAIR, False: BOTH_LABELS}),
            first=grouped["row"].transform("min")[aside],
        )
        .sort_values(["first", "row"])
        .drop(columns=["first"])
        .reset_index(drop=True)
    )
    repeated = ~aside & keys.duplicated()
    report = PairsReport(
        repeats=len(keys[repeated].drop_duplicates()),
        conflicts=len(keys[conflicting].drop_duplicates()),
        self_pairs=frame.loc[itself, "left_id"].nunique(),
        set_aside=set_aside,
    )
    return frame[~aside & ~repeated].reset_index(drop=True), report


def read_pairs_report(
    path: Path, posting_ids: Iterable[str] | None, *, strict: bool = False
) -> tuple[pd.DataFrame, PairsReport]:
    """The pairs of ``path`` whose ids are all among ``posting_ids`` (None: not checked here,
    the Spark job checks them against a catalog it never collects), one row a pair.

    Args:
        path: the pairs file.
        posting_ids: the catalog's ids, or None.
        strict: refuse a file that gives any pair twice or pairs a posting with itself,
            instead of counting a repeat once and setting aside a pair given with both labels
            and a posting paired with itself.

    Returns:
        Columns left_id, right_id, same (int 0/1), row (the file's line number); and what
        was set right (`PairsReport`).

    Raises:
        CatalogError: the file is missing or unreadable, lacks a column, or has rows with a
            value other than 0/1, an unknown id, or (strict) a posting paired with itself or
            a pair given twice; the message names the rows.
    """
    path = Path(path)
    frame = _read_frame(path)
    known = set(posting_ids) if posting_ids is not None else None
    problems = _row_problems(frame, known, strict=strict)
    if strict:
        problems += _repeat_problems(frame)
    if problems:
        _fail(path, problems)
    frame["same"] = frame["same"].astype(int)
    return sort_out_pairs(frame)


def read_pairs(
    path: Path, posting_ids: Iterable[str] | None, *, strict: bool = False
) -> pd.DataFrame:
    """`read_pairs_report` without the report."""
    return read_pairs_report(path, posting_ids, strict=strict)[0]


def verdict_pairs(reviews: pd.DataFrame) -> pd.DataFrame:
    """A database's verdicts (`Store.reviews`) as labelled pairs."""
    return pd.DataFrame(
        {
            "left_id": reviews["left_id"],
            "right_id": reviews["right_id"],
            "same": (reviews["verdict"] == "same").astype(int),
        }
    )
