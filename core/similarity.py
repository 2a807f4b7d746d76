"""Pair scorers: TF-IDF cosine, Hamming distance on perceptual hashes, and difflib's
SequenceMatcher ratio with an exact rapidfuzz prefilter.

Why the prefilter is exact: SequenceMatcher.ratio() = 2·M / (|a| + |b|), where M is the total
size of its matching blocks. Those blocks appear in the same order in both strings, so they form
a common subsequence and M <= LCS(a, b). rapidfuzz's `fuzz.ratio` is the normalised Indel
similarity 2·LCS / (|a| + |b|) · 100. Hence difflib's ratio never exceeds fuzz.ratio / 100, and a
pair that fails fuzz.ratio >= cutoff cannot pass difflib's ratio >= cutoff.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence

import numpy as np

from core.images import hamming

Progress = Callable[[int, int], None]


def sequence_ratio(a: str, b: str) -> float:
    """difflib's ratio, except that an empty title is no evidence (0.0, not difflib's 1.0)."""
    if not a or not b:
        return 0.0
    return difflib.SequenceMatcher(None, a, b).ratio()


#: Up to this many titles, SequenceMatcher pairs are exact (every pair bounded by rapidfuzz).
EXACT_RATIO_UP_TO = 50_000
#: Past it, only pairs whose word TF-IDF cosine reaches this are scored (candidate recall of
#: the exact pairs is in BENCHMARKS.md, Scale).
RATIO_CANDIDATE_COSINE = 0.2


def text_pairs_above(
    titles: Sequence[str],
    min_ratio: float,
    chunk: int = 1024,
    progress: Progress | None = None,
    method: str = "auto",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs (i < j) whose SequenceMatcher ratio is strictly above ``min_ratio``.

    Args:
        method: "exact" (rapidfuzz's `cdist` discards pairs whose upper bound fuzz.ratio is
            below the cutoff, and only the survivors pay for an exact difflib call: every pair
            is found, but the bound is still checked n²/2 times), "candidates" (only pairs
            with word TF-IDF cosine >= RATIO_CANDIDATE_COSINE are checked; for catalogs too
            large for n²), or "auto" (exact up to EXACT_RATIO_UP_TO titles).
    """
    from rapidfuzz import fuzz, process

    n = len(titles)
    if method == "auto":
        method = "exact" if n <= EXACT_RATIO_UP_TO else "candidates"
    if method == "candidates":
        return _text_pairs_from_candidates(titles, min_ratio, progress)
    if method != "exact":
        raise ValueError(f"unknown ratio pair method {method!r}; use auto, exact or candidates")
    # A hair under the cutoff so float rounding in rapidfuzz can never drop a true pair.
    cutoff = max(0.0, min_ratio * 100 - 1e-3)
    lefts, rights, ratios = [], [], []
    present = np.array([bool(t) for t in titles])
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        # Only compare to later titles: each unordered pair once.
        scores = process.cdist(
            titles[start:stop],
            titles[start:],
            scorer=fuzz.ratio,
            score_cutoff=cutoff,
            dtype=np.float32,
            workers=-1,
        )
        r, c = np.nonzero(scores)
        c = c + start
        i = r + start
        keep = (c > i) & present[i] & present[c]
        for a, b in zip(i[keep], c[keep], strict=True):
            ratio = difflib.SequenceMatcher(None, titles[a], titles[b]).ratio()
            if ratio > min_ratio:
                lefts.append(a)
                rights.append(b)
                ratios.append(ratio)
        if progress is not None:
            progress(stop, n)
    return (
        np.asarray(lefts, dtype=np.int64),
        np.asarray(rights, dtype=np.int64),
        np.asarray(ratios, dtype=np.float32),
    )


def _text_pairs_from_candidates(
    titles: Sequence[str], min_ratio: float, progress: Progress | None = None, chunk: int = 500_000
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from rapidfuzz import fuzz, process

    from core.text import tfidf_vectors

    left, right, _ = tfidf_pairs_blocked(tfidf_vectors(titles), RATIO_CANDIDATE_COSINE)
    cutoff = max(0.0, min_ratio * 100 - 1e-3)
    lefts, rights, ratios = [], [], []
    total = len(left)
    for start in range(0, total, chunk):
        a, b = left[start : start + chunk], right[start : start + chunk]
        # The same exact bound as the all-pairs path, pair by pair, in rapidfuzz's threads.
        bound = process.cpdist(
            [titles[i] for i in a],
            [titles[j] for j in b],
            scorer=fuzz.ratio,
            score_cutoff=cutoff,
            dtype=np.float32,
            workers=-1,
        )
        for i, j in zip(a[bound > 0].tolist(), b[bound > 0].tolist(), strict=True):
            ratio = sequence_ratio(titles[i], titles[j])
            if ratio > min_ratio:
                lefts.append(i)
                rights.append(j)
                ratios.append(ratio)
        if progress is not None:
            progress(min(total, start + chunk), total)
    return (
        np.asarray(lefts, dtype=np.int64),
        np.asarray(rights, dtype=np.int64),
        np.asarray(ratios, dtype=np.float32),
    )


def text_pairs_above_naive(
    titles: Sequence[str], min_ratio: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The same as `text_pairs_above` by calling difflib on every pair (reference, slow)."""
    lefts, rights, ratios = [], [], []
    for a in range(len(titles)):
        for b in range(a + 1, len(titles)):
            ratio = sequence_ratio(titles[a], titles[b])
            if ratio > min_ratio:
                lefts.append(a)
                rights.append(b)
                ratios.append(ratio)
    return np.asarray(lefts, np.int64), np.asarray(rights, np.int64), np.asarray(ratios, np.float32)


#: Up to this many postings, TF-IDF pairs are exact (X·Xᵀ); above, blocked on rare words.
EXACT_TFIDF_UP_TO = 150_000


#: Blocked search: each title's rarest words (those in 2 to KEY_WORD_MAX_DF titles) that
#: generate its candidates. Recall of the exact pairs is measured in BENCHMARKS.md (Scale).
KEY_WORDS = 4
KEY_WORD_MAX_DF = 2_000


def tfidf_pairs_above(
    matrix, min_cosine: float, chunk: int = 2048, method: str = "auto"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs (i < j) of L2-normalised sparse rows with cosine >= min_cosine.

    Args:
        method: "exact" (chunked X·Xᵀ: every pair, quadratic in common words), "blocked"
            (`tfidf_pairs_blocked`: candidates share a rarer word, exact cosine for each), or
            "auto" (exact up to EXACT_TFIDF_UP_TO rows).
    """
    n = matrix.shape[0]
    if method == "auto":
        method = "exact" if n <= EXACT_TFIDF_UP_TO else "blocked"
    if method == "blocked":
        return tfidf_pairs_blocked(matrix, min_cosine)
    if method != "exact":
        raise ValueError(f"unknown TF-IDF pair method {method!r}; use auto, exact or blocked")
    transposed = matrix.T.tocsc()
    lefts, rights, sims = [], [], []
    for start in range(0, n, chunk):
        block = (matrix[start : start + chunk] @ transposed).tocoo()
        i = block.row + start
        keep = (block.col > i) & (block.data >= min_cosine - 1e-6)
        lefts.append(i[keep])
        rights.append(block.col[keep])
        sims.append(block.data[keep])
    if not lefts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    return (
        np.concatenate(lefts).astype(np.int64),
        np.concatenate(rights).astype(np.int64),
        np.minimum(np.concatenate(sims), 1.0).astype(np.float32),
    )


def tfidf_pairs_blocked(
    matrix,
    min_cosine: float,
    key_words: int = KEY_WORDS,
    max_df: int = KEY_WORD_MAX_DF,
    chunk: int = 2048,
    progress: Progress | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TF-IDF pairs for large catalogs: candidates share one of either title's rarest words.

    Exact X·Xᵀ costs the sum of squared document frequencies, which common words dominate at a
    million postings. Here each title keys on its ``key_words`` rarest words that occur in 2 to
    ``max_df`` titles (rare words carry most of a title's TF-IDF weight); a pair is a candidate
    when one title holds a key word of the other, and each candidate's cosine is then computed
    exactly, block by block, so memory holds one block of candidates at a time. Pairs that share
    none of either side's key words are missed (measured, not bounded).
    """
    from scipy.sparse import csr_matrix

    rows_matrix = csr_matrix(matrix, dtype=np.float32)
    n, words = rows_matrix.shape
    frequency = np.bincount(rows_matrix.indices, minlength=words)
    counts = np.diff(rows_matrix.indptr)
    row_of = np.repeat(np.arange(n), counts)
    entry_df = frequency[rows_matrix.indices]
    usable = (entry_df >= 2) & (entry_df <= max_df)
    # Within each row: usable entries first, rarest first; then keep the first key_words.
    order = np.lexsort((entry_df, ~usable, row_of))
    rank = np.arange(len(order)) - np.repeat(rows_matrix.indptr[:-1], counts)
    chosen = order[(rank < key_words) & usable[order]]
    keys = csr_matrix(
        (np.ones(len(chosen), np.float32), (row_of[chosen], rows_matrix.indices[chosen])),
        shape=(n, words),
    )
    inverted = rows_matrix.T.tocsr()
    keys_inverted = keys.T.tocsr()
    lefts, rights, sims = [], [], []
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        # j holds a key word of i, or i holds a key word of j.
        hits = (keys[start:stop] @ inverted + rows_matrix[start:stop] @ keys_inverted).tocoo()
        i = hits.row.astype(np.int64) + start
        j = hits.col.astype(np.int64)
        later = j > i
        i, j = i[later], j[later]
        cosine = np.asarray(rows_matrix[i].multiply(rows_matrix[j]).sum(axis=1)).ravel()
        keep = cosine >= min_cosine - 1e-6
        lefts.append(i[keep])
        rights.append(j[keep])
        sims.append(cosine[keep].astype(np.float32))
        if progress is not None:
            progress(stop, n)
    if not lefts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    left, right = np.concatenate(lefts), np.concatenate(rights)
    order = np.lexsort((right, left))
    return left[order], right[order], np.minimum(np.concatenate(sims)[order], 1.0)


def hash_pairs_within(
    hashes: np.ndarray,
    present: np.ndarray,
    max_distance: int,
    chunk: int = 512,
    backend: str = "auto",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs (i < j) of postings with hashes at most ``max_distance`` bits apart (exact).

    Args:
        backend: "faiss" (binary index, SIMD popcount: about 7x faster on the 27k Shopee
            hashes, same pairs), "multihash" (FAISS multi-index hashing: no all-pairs scan,
            for large catalogs; exact while ``max_distance`` <= MULTIHASH_MAX_DISTANCE),
            "numpy", or "auto" (FAISS when installed, multi-index hashing from
            MULTIHASH_FROM hashes).
    """
    where = np.flatnonzero(present)
    if backend == "auto":
        try:
            import faiss  # noqa: F401
        except ImportError:
            backend = "numpy"
        else:
            large = len(where) >= MULTIHASH_FROM and max_distance <= MULTIHASH_MAX_DISTANCE
            backend = "multihash" if large else "faiss"
    if backend in ("faiss", "multihash") and len(where) > 1:
        return _hash_pairs_faiss(
            hashes[where], where, max_distance, multihash=backend == "multihash"
        )
    values = hashes[where]
    lefts, rights, dists = [], [], []
    for start in range(0, len(values), chunk):
        block = hamming(values[start : start + chunk, None], values[None, start:])
        r, c = np.nonzero(block <= max_distance)
        i = r + start
        c = c + start
        keep = c > i
        lefts.append(where[i[keep]])
        rights.append(where[c[keep]])
        dists.append(block[r[keep], c[keep] - start])
    if not lefts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int16)
    return np.concatenate(lefts), np.concatenate(rights), np.concatenate(dists)


#: From this many hashes, "auto" hash pairs use multi-index hashing instead of a full scan.
MULTIHASH_FROM = 200_000
#: Multi-index hashing splits 63 of the 64 bits into 3 tables of 21 and probes every key within
#: 2 flipped bits of each: a pair at most 8 bits apart differs by at most 2 bits in at least one
#: table (pigeonhole: 3 tables x 3 bits > 8), so no pair within 8 bits is missed.
MULTIHASH_TABLES, MULTIHASH_BITS, MULTIHASH_FLIPS = 3, 21, 2
MULTIHASH_MAX_DISTANCE = MULTIHASH_TABLES * (MULTIHASH_FLIPS + 1) - 1


def _hash_pairs_faiss(
    values: np.ndarray,
    where: np.ndarray,
    max_distance: int,
    chunk: int = 65_536,
    multihash: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import faiss

    # Big-endian bytes, so FAISS's bit order does not matter: Hamming distance is the same.
    codes = np.ascontiguousarray(values.astype(">u8").view(np.uint8).reshape(-1, 8))
    if multihash:
        if max_distance > MULTIHASH_MAX_DISTANCE:
            raise ValueError(
                f"multi-index hashing is exact up to {MULTIHASH_MAX_DISTANCE} bits, "
                f"not {max_distance}"
            )
        index = faiss.IndexBinaryMultiHash(64, MULTIHASH_TABLES, MULTIHASH_BITS)
        index.nflip = MULTIHASH_FLIPS
    else:
        index = faiss.IndexBinaryFlat(64)
    index.add(codes)
    lefts, rights, dists = [], [], []
    for start in range(0, len(codes), chunk):
        # range_search keeps distances strictly below the radius.
        lims, distance, found = index.range_search(codes[start : start + chunk], max_distance + 1)
        rows = start + np.repeat(np.arange(len(lims) - 1), np.diff(lims).astype(np.int64))
        keep = found > rows
        lefts.append(where[rows[keep]])
        rights.append(where[found[keep]])
        dists.append(distance[keep].astype(np.int16))
    left, right, dist = np.concatenate(lefts), np.concatenate(rights), np.concatenate(dists)
    order = np.lexsort((right, left))
    return left[order].astype(np.int64), right[order].astype(np.int64), dist[order]
