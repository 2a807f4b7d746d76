"""Exact top-k neighbours by difflib's SequenceMatcher ratio, for catalogs small enough to
compare every pair (`EXACT_RATIO_UP_TO` titles).

Why the prefilter is exact: SequenceMatcher.ratio() = 2·M / (|a| + |b|), where M is the total
size of its matching blocks. Those blocks appear in the same order in both strings, so they form
a common subsequence and M <= LCS(a, b). rapidfuzz's `fuzz.ratio` is the normalised Indel
similarity 2·LCS / (|a| + |b|) · 100. Hence difflib's ratio never exceeds fuzz.ratio / 100, and a
pair that fails fuzz.ratio >= cutoff cannot pass difflib's ratio >= cutoff: rapidfuzz compares
every pair in C++, difflib runs only on the survivors.

Each unordered pair is compared once (upper triangle, in blocks) and offered to both postings'
lists, which are trimmed to k after every block: memory is n × k plus one block.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from core.candidates.base import Neighbours

#: Up to this many titles the ensemble's text candidates are exact (every pair bounded).
EXACT_RATIO_UP_TO = 50_000
#: Cells of one rapidfuzz block (rows × titles): bounds the block's memory (float32).
BLOCK_CELLS = 8_000_000

Progress = Callable[[int, int], None]


def sequence_ratio(a: str, b: str) -> float:
    """difflib's SequenceMatcher ratio, except that an empty title is no evidence (0.0, not
    difflib's 1.0).

    Computed by cydifflib, a C++ port of difflib's algorithm (autojunk heuristic included)
    that gives the very same ratios several times faster (tested against difflib on real
    titles, long ones too).
    """
    if not a or not b:
        return 0.0
    from cydifflib import SequenceMatcher

    return SequenceMatcher(None, a, b).ratio()


def passing_pairs(
    titles: Sequence[str],
    present: np.ndarray,
    block: np.ndarray,
    first: int,
    upper: bool,
    min_ratio: float,
    workers: int = -1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs (position in ``block``'s rows, title from ``first`` on; later titles only when
    ``upper``) whose SequenceMatcher ratio exceeds ``min_ratio``: rapidfuzz's bound first, then
    difflib's ratio on the survivors. One machine's `RatioIndex` and the Spark job's blocks
    both call this."""
    from rapidfuzz import fuzz, process

    # A hair under the cutoff so float rounding in rapidfuzz can never drop a true pair.
    cutoff = max(0.0, min_ratio * 100 - 1e-3)
    bound = process.cdist(
        [titles[r] for r in block.tolist()],
        titles[first:],
        scorer=fuzz.ratio,
        score_cutoff=cutoff,
        dtype=np.float32,
        workers=workers,
    )
    r, c = np.nonzero(bound)
    i, j = block[r], c + first
    keep = (j > i if upper else j != i) & present[i] & present[j]
    i, j = i[keep], j[keep]
    # ratio(earlier title, later title), whichever side asked.
    a, b = np.minimum(i, j), np.maximum(i, j)
    ratios = np.fromiter(
        (sequence_ratio(titles[x], titles[y]) for x, y in zip(a, b, strict=True)),
        np.float32,
        len(a),
    )
    passed = ratios > min_ratio
    return i[passed], j[passed], ratios[passed]


def _keep_top(
    index: np.ndarray, score: np.ndarray, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray
) -> None:
    """Offer (row, col, val) entries to the per-row top-k lists, in place."""
    if len(rows) == 0:
        return
    k = index.shape[1]
    touched = np.unique(rows)
    old_rows = np.repeat(touched, k)
    old_cols = index[touched].ravel()
    old_vals = score[touched].ravel()
    filled = old_cols >= 0
    all_rows = np.concatenate([old_rows[filled], rows])
    all_cols = np.concatenate([old_cols[filled], cols])
    all_vals = np.concatenate([old_vals[filled], vals])
    # Best first; equal ratios keep the earlier posting (stable, as the exact scan finds them).
    order = np.lexsort((all_cols, -all_vals, all_rows))
    all_rows, all_cols, all_vals = all_rows[order], all_cols[order], all_vals[order]
    start = np.searchsorted(all_rows, all_rows, side="left")
    slot = np.arange(len(all_rows)) - start
    fits = slot < k
    index[touched] = -1
    score[touched] = np.nan
    index[all_rows[fits], slot[fits]] = all_cols[fits]
    score[all_rows[fits], slot[fits]] = all_vals[fits]


class RatioIndex:
    """Every title's k best partners by SequenceMatcher ratio above ``min_ratio``.

    The ratio of a pair is always taken as ratio(earlier title, later title) in catalog order
    (difflib's ratio is not symmetric), as every pipeline path scores it.
    """

    def __init__(
        self,
        name: str,
        titles: Sequence[str],
        k: int,
        min_ratio: float,
        progress: Progress | None = None,
        rows: np.ndarray | None = None,
    ) -> None:
        """Lists for every posting, or with ``rows`` only for those (a new item's query)."""
        self.name = name
        self.titles = list(titles)
        n = len(self.titles)
        self.k = k
        self.index = np.full((n, k), -1, np.int64)
        self.score = np.full((n, k), np.nan, np.float32)
        self.present = np.fromiter((bool(t) for t in self.titles), bool, n)
        self.min_ratio = min_ratio
        asked = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64)
        rows_per_block = max(1, BLOCK_CELLS // max(1, n))
        for start in range(0, len(asked), rows_per_block):
            block = asked[start : start + rows_per_block]
            # All postings: each pair once (upper triangle); a few rows: against everyone.
            upper = rows is None
            i, j, ratios = self._block(block, int(block[0]) if upper else 0, upper)
            if rows is None:
                i, j, ratios = np.concatenate([i, j]), np.concatenate([j, i]), np.tile(ratios, 2)
            _keep_top(self.index, self.score, i, j, ratios)
            if progress is not None:
                progress(min(len(asked), start + rows_per_block), len(asked))

    def _block(
        self, block: np.ndarray, first: int, upper: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return passing_pairs(self.titles, self.present, block, first, upper, self.min_ratio)

    @property
    def size(self) -> int:
        return len(self.titles)

    def search_rows(self, rows: np.ndarray, k: int, min_score: float | None = None) -> Neighbours:
        rows = np.asarray(rows, dtype=np.int64)
        k = min(k, self.k)
        index, score = self.index[rows, :k].copy(), self.score[rows, :k].copy()
        if min_score is not None:
            low = ~(score > min_score)
            index[low], score[low] = -1, np.nan
        return Neighbours(self.name, index, score, rows)

    def search(self, queries, k: int, min_score: float | None = None) -> Neighbours:
        raise NotImplementedError("ratio neighbours are for catalog postings; score an upload")

    def known(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """The ratio of each (left, right) pair when one side lists the other, else NaN."""
        n = len(self.index)
        found = np.full(len(left), np.nan, np.float32)
        if n == 0 or len(left) == 0:
            return found
        rows = np.repeat(np.arange(n, dtype=np.int64), self.k)
        cols = self.index.ravel()
        filled = cols >= 0
        keys = rows[filled] * n + cols[filled]
        vals = self.score.ravel()[filled]
        order = np.argsort(keys)
        keys, vals = keys[order], vals[order]
        if len(keys) == 0:
            return found
        for a, b in ((left, right), (right, left)):
            query = a.astype(np.int64) * n + b
            at = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
            hit = (keys[at] == query) & np.isnan(found)
            found[hit] = vals[at[hit]]
        return found
