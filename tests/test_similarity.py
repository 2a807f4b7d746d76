"""Pair scorers against brute force on real Shopee titles and hashes."""

from __future__ import annotations

import csv
import difflib
from pathlib import Path

import numpy as np
import pytest

from core.images import phash_to_uint64
from core.similarity import (
    hash_pairs_within,
    sequence_ratio,
    text_pairs_above,
    text_pairs_above_naive,
    tfidf_pairs_above,
    tfidf_pairs_blocked,
)
from core.text import normalize_title, tfidf_vectors


@pytest.fixture(scope="module")
def shopee_rows(shopee_csv: Path) -> list[dict[str, str]]:
    with shopee_csv.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def sample_titles(shopee_rows) -> list[str]:
    """~400 normalised real titles: whole label groups (so near-duplicates), the first groups by
    label, plus escape-laden titles and a few empty ones."""
    groups = sorted({r["label_group"] for r in shopee_rows})[:120]
    chosen = set(groups)
    titles = [normalize_title(r["title"]) for r in shopee_rows if r["label_group"] in chosen]
    escaped = [r["title"] for r in shopee_rows if "\\xe2\\x9d\\xa4" in r["title"]][:20]
    titles += [normalize_title(t) for t in escaped]
    titles[5:5] = ["", ""]
    titles.append("")
    return titles


def index_pairs(mask: np.ndarray) -> set[tuple[int, int]]:
    rows, cols = np.nonzero(mask)
    return set(zip(rows.tolist(), cols.tolist(), strict=True))


def as_set(pairs) -> dict[tuple[int, int], float]:
    left, right, values = pairs
    return {(int(a), int(b)): float(v) for a, b, v in zip(left, right, values, strict=True)}


@pytest.fixture(scope="module")
def naive_pairs(sample_titles) -> dict[tuple[int, int], float]:
    """difflib on every pair once, at the lowest cutoff. Higher cutoffs filter these, which is
    what text_pairs_above_naive does at them; the filter uses the exact (float64) ratio, since
    the float32 the functions return rounds e.g. a ratio of exactly 0.8 to 0.80000001."""
    pairs = as_set(text_pairs_above_naive(sample_titles, 0.3))
    return {(a, b): sequence_ratio(sample_titles[a], sample_titles[b]) for a, b in pairs}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("cutoff", "chunk", "size"), [(0.55, 1024, None), (0.8, 97, None), (0.3, 64, 200)]
)
def test_rapidfuzz_prefilter_is_exact(sample_titles, naive_pairs, cutoff, chunk, size) -> None:
    # At 0.3 nearly every pair survives the prefilter, so that cutoff runs on the first 200
    # titles (whose naive pairs are exactly the fixture's pairs among them) to save time.
    titles = sample_titles[:size] if size else sample_titles
    assert 380 <= len(sample_titles) <= 480
    expected = {(a, b): v for (a, b), v in naive_pairs.items() if v > cutoff and b < len(titles)}
    assert len(expected) > 100  # the sample really has near-duplicates at every cutoff

    found = as_set(text_pairs_above(titles, cutoff, chunk=chunk))

    assert found.keys() == expected.keys()
    assert all(found[k] == pytest.approx(expected[k], abs=1e-6) for k in expected)


def test_prefilter_matches_naive_on_a_small_exact_check(sample_titles) -> None:
    # Same property on a quick slice, so a run without slow tests still guards it.
    titles = sample_titles[:80]
    fast = as_set(text_pairs_above(titles, 0.55, chunk=50))
    slow = as_set(text_pairs_above_naive(titles, 0.55))
    assert fast.keys() == slow.keys() and len(fast) > 20
    assert all(fast[k] == pytest.approx(slow[k], abs=1e-6) for k in slow)


def test_empty_titles_never_match() -> None:
    assert difflib.SequenceMatcher(None, "", "").ratio() == 1.0  # what we must not inherit
    assert sequence_ratio("", "") == 0.0
    assert sequence_ratio("kaos", "") == 0.0

    titles = ["", "", "kaos polos", "kaos polos", ""]
    for pairs in (text_pairs_above(titles, 0.0), text_pairs_above_naive(titles, 0.0)):
        assert as_set(pairs) == {(2, 3): 1.0}


def test_pairs_are_strictly_above_the_cutoff() -> None:
    titles = ["abcd", "abce"]  # ratio exactly 0.75
    assert sequence_ratio(*titles) == 0.75
    assert as_set(text_pairs_above(titles, 0.75)) == {}
    assert as_set(text_pairs_above(titles, 0.749)) == {(0, 1): 0.75}


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.8])
def test_tfidf_pairs_equal_dense_cosine(sample_titles, threshold: float) -> None:
    matrix = tfidf_vectors(sample_titles)
    dense = matrix.toarray().astype(np.float64)
    cosine = dense @ dense.T

    found = as_set(tfidf_pairs_above(matrix, threshold, chunk=77))

    upper = np.triu(np.ones_like(cosine, dtype=bool), k=1)
    sure_in = index_pairs(upper & (cosine >= threshold + 1e-5))
    maybe = index_pairs(upper & (cosine >= threshold - 1e-5))
    assert sure_in <= found.keys() <= maybe
    assert len(sure_in) > 50
    assert all(abs(v - cosine[k]) < 1e-5 for k, v in found.items())


@pytest.mark.parametrize("backend", ["numpy", "faiss"])
def test_hash_pairs_equal_brute_force_hamming(shopee_rows, backend: str) -> None:
    hashes = [r["image_phash"] for r in shopee_rows[:1500]]
    hashes[::7] = [None] * len(hashes[::7])  # postings without a hash take no part
    values, present = phash_to_uint64(hashes)

    found = hash_pairs_within(values, present, 10, chunk=113, backend=backend)

    bits = np.unpackbits(values.view(np.uint8).reshape(-1, 8), axis=1).astype(np.int16)
    distance = (bits[:, None, :] != bits[None, :, :]).sum(axis=2)
    ok = np.triu(np.ones_like(distance, dtype=bool), k=1) & present[:, None] & present[None, :]
    a, b = np.nonzero(ok & (distance <= 10))
    expected = {(int(i), int(j)): float(distance[i, j]) for i, j in zip(a, b, strict=True)}
    assert len(expected) > 50  # real duplicates exist among these rows
    assert as_set(found) == expected


@pytest.mark.parametrize("backend", ["numpy", "faiss"])
def test_hash_pairs_with_no_hashes_are_empty(backend: str) -> None:
    empty = np.zeros(3, np.uint64), np.zeros(3, bool)
    left, right, dist = hash_pairs_within(*empty, 8, backend=backend)
    assert len(left) == len(right) == len(dist) == 0


def test_faiss_hash_pairs_are_the_numpy_pairs_on_the_whole_shopee_catalog(shopee_rows) -> None:
    values, present = phash_to_uint64([r["image_phash"] for r in shopee_rows])

    numpy_pairs = hash_pairs_within(values, present, 8, backend="numpy")
    faiss_pairs = hash_pairs_within(values, present, 8, backend="faiss")

    assert len(numpy_pairs[0]) > 10_000
    for a, b in zip(numpy_pairs, faiss_pairs, strict=True):
        np.testing.assert_array_equal(a, b)


# -- large-catalog methods ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def shopee_titles(shopee_rows) -> list[str]:
    return [normalize_title(r["title"]) for r in shopee_rows]


@pytest.mark.slow
def test_blocked_tfidf_pairs_are_a_near_complete_subset_of_the_exact_ones(shopee_titles) -> None:
    """On all 27k real titles: every blocked pair is an exact pair with the exact cosine, and
    blocking on each title's 4 rarest words loses under 2% of the exact pairs."""
    matrix = tfidf_vectors(shopee_titles)
    exact = as_set(tfidf_pairs_above(matrix, 0.5, method="exact"))
    blocked = as_set(tfidf_pairs_above(matrix, 0.5, method="blocked"))
    assert blocked.keys() <= exact.keys()
    for pair, cosine in blocked.items():
        assert cosine == pytest.approx(exact[pair], abs=1e-5)
    recall = len(blocked) / len(exact)
    assert recall >= 0.98, recall
    # More key words can only find more: the dial trades time for recall.
    wider = as_set(tfidf_pairs_blocked(matrix, 0.5, key_words=6))
    assert blocked.keys() <= wider.keys() <= exact.keys()


def test_unknown_pair_methods_are_errors(sample_titles) -> None:
    with pytest.raises(ValueError, match="exact or blocked"):
        tfidf_pairs_above(tfidf_vectors(sample_titles), 0.5, method="lsh")
    with pytest.raises(ValueError, match="exact or candidates"):
        text_pairs_above(sample_titles, 0.55, method="lsh")


def test_ratio_candidates_find_most_pairs_and_score_them_exactly(sample_titles) -> None:
    exact = as_set(text_pairs_above(sample_titles, 0.55, method="exact"))
    found = as_set(text_pairs_above(sample_titles, 0.55, method="candidates"))
    assert found.keys() <= exact.keys()
    for pair, ratio in found.items():
        assert ratio == pytest.approx(exact[pair], abs=1e-6)
    assert len(found) / len(exact) >= 0.8


@pytest.mark.slow
def test_multi_index_hashing_finds_exactly_the_full_scan_pairs(shopee_rows) -> None:
    hashes, present = phash_to_uint64([r["image_phash"] for r in shopee_rows])
    for distance in (0, 4, 8):
        full = hash_pairs_within(hashes, present, distance, backend="faiss")
        multi = hash_pairs_within(hashes, present, distance, backend="multihash")
        for a, b in zip(full, multi, strict=True):
            np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="exact up to 8 bits"):
        hash_pairs_within(hashes, present, 9, backend="multihash")
