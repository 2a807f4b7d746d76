"""Labelled pairs files (``left_id,right_id,same`` with 1 = same product, 0 = different):
read, checked against a catalog, every problem named by its row."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from core.errors import CatalogError
from core.verdicts import pair_key

PAIR_COLUMNS = ("left_id", "right_id", "same")
#: Problems listed in one error before "and N more".
SHOWN = 5


def _fail(path: Path, problems: list[str]) -> None:
    more = f" (and {len(problems) - SHOWN} more)" if len(problems) > SHOWN else ""
    raise CatalogError(f"{path}: " + "; ".join(problems[:SHOWN]) + more)


def read_pairs(path: Path, posting_ids: Iterable[str] | None) -> pd.DataFrame:
    """The pairs of ``path`` whose ids are all among ``posting_ids`` (None: not checked here,
    the Spark job checks them against a catalog it never collects).

    Returns:
        Columns left_id, right_id, same (int 0/1), row (the file's line number).

    Raises:
        CatalogError: the file is missing or unreadable, lacks a column, or has rows with a
            value other than 0/1, an unknown id, a posting paired with itself, or a pair
            given twice; the message names the rows.
    """
    path = Path(path)
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
    known = set(posting_ids) if posting_ids is not None else None
    problems = []
    for row in frame.itertuples(index=False):
        if row.same not in ("0", "1"):
            problems.append(f"row {row.row}: same is {row.same!r}; give 1 (same) or 0 (different)")
        if row.left_id == row.right_id:
            problems.append(f"row {row.row}: {row.left_id!r} is paired with itself")
        for side in ("left_id", "right_id"):
            value = getattr(row, side)
            if known is not None and value not in known:
                problems.append(f"row {row.row}: {side} {value!r} is not in the catalog")
    keys = [pair_key(*p) for p in zip(frame["left_id"], frame["right_id"], strict=True)]
    first: dict[tuple[str, ...], int] = {}
    for key, row in zip(keys, frame["row"], strict=True):
        if key in first:
            problems.append(f"rows {first[key]} and {row} give the same pair {key}")
        else:
            first[key] = row
    if problems:
        _fail(path, problems)
    frame["same"] = frame["same"].astype(int)
    return frame.reset_index(drop=True)


def verdict_pairs(reviews: pd.DataFrame) -> pd.DataFrame:
    """A database's verdicts (`Store.reviews`) as labelled pairs."""
    return pd.DataFrame(
        {
            "left_id": reviews["left_id"],
            "right_id": reviews["right_id"],
            "same": (reviews["verdict"] == "same").astype(int),
        }
    )
