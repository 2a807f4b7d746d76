"""Candidate pairs and pair features for the learned ``best`` pipeline.

Candidates come from top-k nearest neighbours per modality (word TF-IDF, character TF-IDF,
perceptual hash, and optional dense vectors: image embeddings or a learned title encoder).
Each candidate (i < j) then gets a row of features that a pair classifier turns into a match
probability. Every feature is symmetric in (i, j), so the pair's order never matters.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix

from core.images import hamming

Progress = Callable[[int, int], None]

#: Rank given to a pair that is not in a posting's top-k list for a modality.
ABSENT_RANK = 1000


@dataclass
class Neighbours:
    """Top-k lists of one modality: ``index[i]`` best first, ``score[i]`` their similarities.

    Similarity is "higher is closer" for every modality (the hash uses 64 - Hamming distance).
    Rows are padded with -1 / NaN where a posting has fewer than k neighbours.
    """

    name: str
    index: np.ndarray
    score: np.ndarray

    @property
    def k(self) -> int:
        return self.index.shape[1]

    def pairs(self) -> tuple[np.ndarray, np.ndarray]:
        rows = np.repeat(np.arange(len(self.index)), self.k)
        cols = self.index.ravel()
        keep = cols >= 0
        rows, cols = rows[keep], cols[keep]
        return np.minimum(rows, cols), np.maximum(rows, cols)

    def ranks(self, left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rank (0 = nearest) of right in left's list and of left in right's list."""
        n = len(self.index)
        rows = np.repeat(np.arange(n, dtype=np.int64), self.k)
        cols = self.index.ravel().astype(np.int64)
        pos = np.tile(np.arange(self.k, dtype=np.int64), n)
        keep = cols >= 0
        keys = rows[keep] * n + cols[keep]
        order = np.argsort(keys)
        keys, pos = keys[order], pos[keep][order]

        def lookup(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            query = a.astype(np.int64) * n + b
            at = np.searchsorted(keys, query)
            at_c = np.minimum(at, len(keys) - 1)
            found = (
                (at < len(keys)) & (keys[at_c] == query) if len(keys) else np.zeros(len(a), bool)
            )
            return np.where(found, pos[at_c] if len(keys) else 0, ABSENT_RANK).astype(np.float32)

        return lookup(left, right), lookup(right, left)

    def kth_score(self, k: int) -> np.ndarray:
        """Each posting's k-th neighbour similarity (1-based; NaN when it has fewer)."""
        if self.k == 0:
            return np.full(len(self.index), np.nan, np.float32)
        return self.score[:, min(k, self.k) - 1].astype(np.float32)


def _topk_rows(block: np.ndarray, offset: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k columns of each row of a dense similarity block, excluding each row's own column."""
    rows = np.arange(block.shape[0])
    block[rows, rows + offset] = -np.inf
    k = min(k, block.shape[1] - 1)
    if k <= 0:
        shape = (block.shape[0], 0)
        return np.zeros(shape, np.int64), np.zeros(shape, np.float32)
    part = np.argpartition(-block, k - 1, axis=1)[:, :k]
    vals = np.take_along_axis(block, part, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(vals, order, axis=1)


def _pad(idx: list[np.ndarray], vals: list[np.ndarray], n: int, k: int) -> tuple:
    index = np.full((n, k), -1, np.int64)
    score = np.full((n, k), np.nan, np.float32)
    if idx:
        got_i, got_v = np.concatenate(idx), np.concatenate(vals)
        index[:, : got_i.shape[1]] = got_i
        score[:, : got_v.shape[1]] = got_v
    return index, score


def sparse_neighbours(name: str, matrix: csr_matrix, k: int, chunk: int = 1024) -> Neighbours:
    """Top-k cosine neighbours of L2-normalised sparse rows (chunked X·Xᵀ, never n² at once).

    Rows with no terms get no neighbours: an empty title is no evidence.
    """
    n = matrix.shape[0]
    transposed = matrix.T.tocsr()
    empty = np.diff(matrix.indptr) == 0
    idx, vals = [], []
    for start in range(0, n, chunk):
        block = (matrix[start : start + chunk] @ transposed).toarray()
        block[:, empty] = -np.inf
        i, v = _topk_rows(block, start, k)
        idx.append(i)
        vals.append(v)
    index, score = _pad(idx, vals, n, k)
    bad = ~np.isfinite(score) | empty[:, None]
    index[bad], score[bad] = -1, np.nan
    return Neighbours(name, index, score)


def dense_neighbours(
    name: str, vectors: np.ndarray, present: np.ndarray | None, k: int, chunk: int = 2048
) -> Neighbours:
    """Top-k cosine neighbours of L2-normalised dense rows among the rows marked present."""
    n = len(vectors)
    present = np.ones(n, bool) if present is None else np.asarray(present, bool)
    where = np.flatnonzero(present)
    index = np.full((n, k), -1, np.int64)
    score = np.full((n, k), np.nan, np.float32)
    if len(where) >= 2:
        sub = np.ascontiguousarray(vectors[where], dtype=np.float32)
        for start in range(0, len(sub), chunk):
            block = sub[start : start + chunk] @ sub.T
            i, v = _topk_rows(block, start, k)
            rows = where[start : start + chunk]
            index[rows, : i.shape[1]] = where[i]
            score[rows, : v.shape[1]] = v
    return Neighbours(name, index, score)


def hash_neighbours(
    hashes: np.ndarray, present: np.ndarray, k: int, max_distance: int, chunk: int = 1024
) -> Neighbours:
    """Top-k nearest perceptual hashes by Hamming distance, at most ``max_distance`` bits away.

    The score is 64 - distance so that, as for the other modalities, higher means closer.
    """
    n = len(hashes)
    where = np.flatnonzero(present)
    values = hashes[where]
    index = np.full((n, k), -1, np.int64)
    score = np.full((n, k), np.nan, np.float32)
    for start in range(0, len(values), chunk):
        block = 64.0 - hamming(values[start : start + chunk, None], values[None, :]).astype(
            np.float32
        )
        i, v = _topk_rows(block, start, k)
        rows = where[start : start + chunk]
        close = v >= 64 - max_distance
        index[rows, : i.shape[1]] = np.where(close, where[i], -1)
        score[rows, : v.shape[1]] = np.where(close, v, np.nan)
    return Neighbours("hash", index, score)


def candidate_pairs(lists: Sequence[Neighbours]) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (i < j) pairs found in any modality's top-k lists."""
    parts = [nb.pairs() for nb in lists]
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    left = np.concatenate([p[0] for p in parts]).astype(np.int64)
    right = np.concatenate([p[1] for p in parts]).astype(np.int64)
    if len(left) == 0:
        return left, right
    n = int(max(left.max(), right.max())) + 1
    keys = np.unique(left * n + right)
    return keys // n, keys % n


def row_cosine(matrix, left: np.ndarray, right: np.ndarray, chunk: int = 200_000) -> np.ndarray:
    """Cosine of each (left, right) row pair of an L2-normalised matrix (sparse or dense)."""
    out = np.zeros(len(left), np.float32)
    for start in range(0, len(left), chunk):
        a, b = left[start : start + chunk], right[start : start + chunk]
        if isinstance(matrix, np.ndarray):
            out[start : start + chunk] = np.einsum("ij,ij->i", matrix[a], matrix[b])
        else:
            out[start : start + chunk] = np.asarray(
                matrix[a].multiply(matrix[b]).sum(axis=1)
            ).ravel()
    return np.minimum(out, 1.0)


# --- Numbers and units ---------------------------------------------------------------------

# Units to a base unit and factor. Titles are already normalised (lower case, punctuation
# gone), so "0.5L" arrives as "0 5l" and "500 ML" as "500 ml".
_UNITS: dict[str, tuple[str, float]] = {
    "ml": ("ml", 1.0),
    "l": ("ml", 1000.0),
    "lt": ("ml", 1000.0),
    "ltr": ("ml", 1000.0),
    "liter": ("ml", 1000.0),
    "litre": ("ml", 1000.0),
    "cc": ("ml", 1.0),
    "mg": ("g", 0.001),
    "g": ("g", 1.0),
    "gr": ("g", 1.0),
    "gram": ("g", 1.0),
    "grams": ("g", 1.0),
    "gramm": ("g", 1.0),
    "kg": ("g", 1000.0),
    "kilo": ("g", 1000.0),
    "mm": ("m", 0.001),
    "cm": ("m", 0.01),
    "m": ("m", 1.0),
    "meter": ("m", 1.0),
    "inch": ("inch", 1.0),
    "in": ("inch", 1.0),
    "pcs": ("pcs", 1.0),
    "pc": ("pcs", 1.0),
    "pce": ("pcs", 1.0),
    "biji": ("pcs", 1.0),
    "buah": ("pcs", 1.0),
    "lembar": ("pcs", 1.0),
    "lbr": ("pcs", 1.0),
    "sachet": ("pcs", 1.0),
    "pack": ("pack", 1.0),
    "pak": ("pack", 1.0),
    "box": ("pack", 1.0),
    "roll": ("pack", 1.0),
    "set": ("pack", 1.0),
    "tab": ("tab", 1.0),
    "tablet": ("tab", 1.0),
    "kaplet": ("tab", 1.0),
    "kapsul": ("tab", 1.0),
    "caps": ("tab", 1.0),
    "w": ("w", 1.0),
    "watt": ("w", 1.0),
    "v": ("v", 1.0),
    "volt": ("v", 1.0),
    "mah": ("mah", 1.0),
    "gb": ("gb", 1.0),
    "tb": ("gb", 1000.0),
    "mb": ("gb", 0.001),
    "oz": ("oz", 1.0),
    "x": ("x", 1.0),
}
_UNIT_ALT = "|".join(sorted(_UNITS, key=len, reverse=True))
# "0 5 l" is a decimal that lost its point; otherwise a number glued to or followed by a unit.
_QUANTITY = re.compile(rf"\b(?:(0) (\d+)|(\d+)) ?({_UNIT_ALT})\b")
_NUMBER = re.compile(r"\d+")


@dataclass(frozen=True)
class TitleFacts:
    """Per-title facts reused by every pair the title takes part in."""

    tokens: frozenset[str]
    numbers: frozenset[str]
    quantities: frozenset[tuple[str, float]]
    units: frozenset[str]
    chars: int


def title_facts(title: str) -> TitleFacts:
    quantities = set()
    for zero, frac, whole, unit in _QUANTITY.findall(title):
        value = float(f"0.{frac}") if zero else float(whole)
        base, factor = _UNITS[unit]
        quantities.add((base, round(value * factor, 6)))
    return TitleFacts(
        tokens=frozenset(title.split()),
        numbers=frozenset(n.lstrip("0") or "0" for n in _NUMBER.findall(title)),
        quantities=frozenset(quantities),
        units=frozenset(u for u, _ in quantities),
        chars=len(title),
    )


def text_pair_features(
    titles: Sequence[str], left: np.ndarray, right: np.ndarray, difflib_ratio: bool = False
) -> dict[str, np.ndarray]:
    """String-similarity, token and number features of each pair (symmetric in the pair)."""
    from rapidfuzz import fuzz

    facts = [title_facts(t) for t in titles]
    m = len(left)
    names = (
        "fuzz_ratio",
        "fuzz_token_set",
        "fuzz_token_sort",
        "fuzz_partial",
        "token_jaccard",
        "tokens_shared",
        "chars_min",
        "chars_max",
        "tokens_min",
        "tokens_max",
        "numbers_shared",
        "numbers_only_one",
        "numbers_jaccard",
        "quantity_shared",
        "quantity_conflict",
    )
    out = {name: np.zeros(m, np.float32) for name in names}
    if difflib_ratio:
        out["difflib_ratio"] = np.zeros(m, np.float32)
    ratio, token_set, token_sort, partial = (
        fuzz.ratio,
        fuzz.token_set_ratio,
        fuzz.token_sort_ratio,
        fuzz.partial_ratio,
    )
    for p, (a, b) in enumerate(zip(left.tolist(), right.tolist(), strict=True)):
        ta, tb = titles[a], titles[b]
        fa, fb = facts[a], facts[b]
        out["fuzz_ratio"][p] = ratio(ta, tb)
        out["fuzz_token_set"][p] = token_set(ta, tb)
        out["fuzz_token_sort"][p] = token_sort(ta, tb)
        out["fuzz_partial"][p] = partial(ta, tb)
        shared = len(fa.tokens & fb.tokens)
        union = len(fa.tokens | fb.tokens)
        out["token_jaccard"][p] = shared / union if union else 0.0
        out["tokens_shared"][p] = shared
        out["chars_min"][p] = min(fa.chars, fb.chars)
        out["chars_max"][p] = max(fa.chars, fb.chars)
        out["tokens_min"][p] = min(len(fa.tokens), len(fb.tokens))
        out["tokens_max"][p] = max(len(fa.tokens), len(fb.tokens))
        nshared = len(fa.numbers & fb.numbers)
        nunion = len(fa.numbers | fb.numbers)
        out["numbers_shared"][p] = nshared
        out["numbers_only_one"][p] = nunion - nshared
        out["numbers_jaccard"][p] = nshared / nunion if nunion else np.nan
        out["quantity_shared"][p] = len(fa.quantities & fb.quantities)
        # Same kind of unit on both sides (e.g. both volumes) but no common amount: a 250 ml
        # and a 500 ml bottle are different products however alike the rest of the title is.
        common_units = fa.units & fb.units
        conflict = sum(
            1
            for unit in common_units
            if not {q for q in fa.quantities if q[0] == unit}
            & {q for q in fb.quantities if q[0] == unit}
        )
        out["quantity_conflict"][p] = conflict
        if difflib_ratio:
            from core.similarity import sequence_ratio

            out["difflib_ratio"][p] = sequence_ratio(ta, tb)
    return out
