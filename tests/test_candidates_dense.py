"""Dense top-k search (`DenseIndex`): scikit-learn and FAISS against numpy brute force, ties
allowed; a posting never lists itself; HNSW recall on clustered vectors."""

from __future__ import annotations

import numpy as np
import pytest

from core.candidates import DenseIndex, all_rows
from core.candidates import dense as dense_module

EXACT = ["sklearn", pytest.param("faiss", marks=pytest.mark.faiss)]


def unit_vectors(n: int, d: int, seed: int = 0, duplicates: int = 0) -> np.ndarray:
    """Seeded unit vectors; the last ``duplicates`` rows copy earlier ones, creating exact ties."""
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, d)).astype(np.float32)
    if duplicates:
        vectors[-duplicates:] = vectors[:duplicates]
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def assert_valid_top_k(vectors, rows, index, score, k, tol=1e-5) -> None:
    """Tie-tolerant: scores are the true cosines, sorted, no posting lists itself, and nothing
    left out beats the k-th score (any order among equal scores is accepted)."""
    exact = vectors.astype(np.float64) @ vectors.astype(np.float64).T
    for r, q in enumerate(rows.tolist()):
        found = index[r][index[r] >= 0]
        assert q not in found.tolist()
        assert len(set(found.tolist())) == len(found) == min(k, len(vectors) - 1)
        np.testing.assert_allclose(score[r][: len(found)], exact[q, found], atol=tol)
        assert np.all(np.diff(score[r][: len(found)]) <= tol)
        left_out = np.setdiff1d(np.delete(np.arange(len(vectors)), q), found)
        if len(left_out):
            assert exact[q, left_out].max() <= score[r][len(found) - 1] + tol


@pytest.mark.parametrize("backend", EXACT)
@pytest.mark.parametrize("k", [1, 5, 17])
def test_exact_backends_give_the_brute_force_top_k_without_self(backend: str, k: int) -> None:
    vectors = unit_vectors(300, 24, duplicates=40)
    rows = np.arange(0, 300, 7)

    found = DenseIndex("image", vectors, backend=backend).search_rows(rows, k)

    assert found.index.shape == (len(rows), k)
    assert_valid_top_k(vectors, rows, found.index, found.score, k)


@pytest.mark.parametrize("backend", EXACT)
def test_postings_without_a_vector_are_never_searched_nor_found(backend: str) -> None:
    vectors = unit_vectors(50, 8, seed=2)
    present = np.ones(50, bool)
    present[::3] = False

    found = all_rows(DenseIndex("image", vectors, present, backend), 50, 5)

    assert (found.index[~present] == -1).all()
    listed = found.index[found.index >= 0]
    assert present[listed].all()


@pytest.mark.parametrize("backend", EXACT)
def test_min_score_and_k_larger_than_the_catalog(backend: str) -> None:
    vectors = unit_vectors(4, 8)
    index = DenseIndex("image", vectors, backend=backend)

    found = index.search_rows(np.arange(4), 10)
    strict = index.search_rows(np.arange(4), 10, min_score=0.99)

    assert found.index.shape == (4, 10)
    assert ((found.index >= 0).sum(axis=1) == 3).all()  # everyone else, never itself
    assert (strict.index == -1).all()  # random directions are not that alike
    outside = index.search(vectors[:2], 2)
    assert outside.index[:, 0].tolist() == [0, 1]  # an outside query may equal a posting


def test_empty_catalog_and_unknown_backend() -> None:
    empty = DenseIndex("image", np.zeros((0, 8), np.float32))
    assert empty.search(unit_vectors(3, 8), 5).index.shape == (3, 5)
    assert (empty.search(unit_vectors(3, 8), 5).index == -1).all()
    with pytest.raises(ValueError, match="unknown neighbour backend 'annoy'"):
        DenseIndex("image", unit_vectors(5, 4), backend="annoy")  # type: ignore[arg-type]


def test_auto_picks_by_size() -> None:
    pytest.importorskip("faiss")
    assert dense_module._choose("auto", 100) == "sklearn"
    assert dense_module._choose("auto", dense_module.FAISS_FROM) == "faiss"
    assert dense_module._choose("auto", dense_module.HNSW_FROM) == "hnsw"


@pytest.mark.faiss
def test_hnsw_recall_at_k_against_exact_search_on_clustered_vectors() -> None:
    """Products as clusters (2-6 noisy copies of a direction), as image vectors look: the HNSW
    graph must return nearly every exact top-10 neighbour, with exact cosines."""
    pytest.importorskip("faiss")
    rng = np.random.default_rng(7)
    centres = rng.normal(size=(3_000, 32)).astype(np.float32)
    members = np.repeat(centres, rng.integers(2, 7, size=len(centres)), axis=0)
    vectors = members + 0.6 * rng.normal(size=members.shape).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    rows = np.arange(0, len(vectors), 25)
    exact = DenseIndex("image", vectors, backend="faiss").search_rows(rows, 10)
    approx = DenseIndex("image", vectors, backend="hnsw").search_rows(rows, 10)
    hits = sum(
        len(set(a) & set(b))
        for a, b in zip(exact.index.tolist(), approx.index.tolist(), strict=True)
    )
    assert hits / exact.index.size >= 0.95
    found = approx.index >= 0
    true = np.einsum("qd,qkd->qk", vectors[rows], vectors[np.where(found, approx.index, 0)])
    np.testing.assert_allclose(approx.score[found], true[found], atol=1e-4)
