"""A run's matched pairs as arrays: catalog positions, which side lists the other, the rule as
a code and float32 scores, with no Python object per pair.

This is what the engine keeps (at most n × max_matches pairs: tens of millions at a million
postings), what a run's clusters and figures are worked out from, and what is written to the
database a slice at a time (`PairTable.frames`): posting ids are looked up for one slice, then
let go. `PairTable.frame` gives the `core.matches.MatchResult.pairs` layout.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Pairs per frame when a table is written or read out a slice at a time.
FRAME_ROWS = 200_000


@dataclass
class PairTable:
    """Unordered pairs (``left`` < ``right``, catalog positions) and their columns.

    ``columns`` holds the pipeline's score columns in frame order: float32 arrays, and the
    rule as int16 codes into ``rules``.
    """

    posting_ids: np.ndarray  # object array of the catalog's ids, in catalog order
    left: np.ndarray  # int32
    right: np.ndarray  # int32
    columns: dict[str, np.ndarray]
    rules: list[str]
    listed: np.ndarray  # int8: LISTED_LEFT / LISTED_RIGHT / LISTED_BOTH

    def __len__(self) -> int:
        return len(self.left)

    @property
    def nbytes(self) -> int:
        arrays = [self.left, self.right, self.listed, *self.columns.values()]
        return sum(a.nbytes for a in arrays)

    def frame(self, start: int = 0, stop: int | None = None) -> pd.DataFrame:
        """Pairs ``start:stop`` as a `MatchResult.pairs` frame: left, right (posting ids), the
        score columns (the rule as a categorical) and listed."""
        part = slice(start, stop)
        frame = pd.DataFrame(
            {
                "left": self.posting_ids[self.left[part]],
                "right": self.posting_ids[self.right[part]],
            }
        )
        for name, values in self.columns.items():
            if name == "rule":
                codes = values[part].astype(np.int64)
                frame[name] = pd.Categorical.from_codes(codes, self.rules)
            else:
                frame[name] = values[part]
        frame["listed"] = self.listed[part].astype(np.int8)
        return frame

    def frames(self, rows: int | None = None) -> Iterator[pd.DataFrame]:
        """The pairs as consecutive frames of at most ``rows`` pairs (default `FRAME_ROWS`),
        at least one."""
        rows = rows or FRAME_ROWS
        yield self.frame(0, min(rows, len(self)))
        for start in range(rows, len(self), rows):
            yield self.frame(start, start + rows)

    def column(self, name: str) -> np.ndarray:
        """``listed`` or a score column (not the rule) as an array."""
        return self.listed if name == "listed" else self.columns[name]

    def select(self, keep: np.ndarray) -> PairTable:
        """The pairs where ``keep`` (a boolean mask) is True, in order."""
        return PairTable(
            self.posting_ids,
            self.left[keep],
            self.right[keep],
            {name: values[keep] for name, values in self.columns.items()},
            self.rules,
            self.listed[keep],
        )

    def appended(
        self, left: np.ndarray, right: np.ndarray, rule: str, similarity: float, listed: int
    ) -> PairTable:
        """The pairs with pairs ``left``–``right`` added at the end, all with one rule,
        similarity and listing (the other score columns NaN)."""
        rules = self.rules if rule in self.rules else [*self.rules, rule]
        count = len(left)
        added = {
            "rule": np.full(count, rules.index(rule), np.int16),
            "similarity": np.full(count, similarity, np.float32),
        }
        columns = {
            name: np.concatenate(
                [values, added[name] if name in added else np.full(count, np.nan, values.dtype)]
            )
            for name, values in self.columns.items()
        }
        return PairTable(
            self.posting_ids,
            np.concatenate([self.left, np.asarray(left, self.left.dtype)]),
            np.concatenate([self.right, np.asarray(right, self.right.dtype)]),
            columns,
            rules,
            np.concatenate([self.listed, np.full(count, listed, self.listed.dtype)]),
        )
