"""Top-k cosine search: scikit-learn and FAISS against numpy brute force, ties allowed."""

from __future__ import annotations

import numpy as np
import pytest

from core.neighbours import search, similar_pairs


def unit_vectors(n: int, d: int, seed: int = 0, duplicates: int = 0) -> np.ndarray:
    """Seeded unit vectors; the last ``duplicates`` rows copy earlier ones, creating exact ties."""
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, d)).astype(np.float32)
    if duplicates:
        vectors[-duplicates:] = vectors[:duplicates]
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def assert_valid_top_k(index, queries, sims, idx, k, tol=1e-5) -> None:
    """Tie-tolerant check: scores are the true cosines, sorted, and nothing left out beats the
    k-th score (so any order among equal scores is accepted)."""
    exact = queries.astype(np.float64) @ index.astype(np.float64).T
    assert sims.shape == idx.shape == (len(queries), min(k, len(index)))
    for q in range(len(queries)):
        assert len(set(idx[q].tolist())) == idx.shape[1]
        np.testing.assert_allclose(sims[q], exact[q, idx[q]], atol=tol)
        assert np.all(np.diff(sims[q]) <= tol)
        left_out = np.setdiff1d(np.arange(len(index)), idx[q])
        if len(left_out):
            assert exact[q, left_out].max() <= sims[q, -1] + tol


@pytest.mark.parametrize("k", [1, 5, 17])
def test_sklearn_top_k_equals_brute_force(k: int) -> None:
    index = unit_vectors(300, 24, duplicates=40)
    queries = np.vstack([index[:30], unit_vectors(10, 24, seed=1)])

    sims, idx = search(index, queries, k, backend="sklearn")

    assert_valid_top_k(index, queries, sims, idx, k)


@pytest.mark.faiss
@pytest.mark.parametrize("k", [1, 5, 17])
def test_faiss_agrees_with_sklearn_and_brute_force(k: int) -> None:
    pytest.importorskip("faiss")
    index = unit_vectors(300, 24, duplicates=40)
    queries = np.vstack([index[:30], unit_vectors(10, 24, seed=1)])

    f_sims, f_idx = search(index, queries, k, backend="faiss")
    s_sims, s_idx = search(index, queries, k, backend="sklearn")

    assert_valid_top_k(index, queries, f_sims, f_idx, k)
    np.testing.assert_allclose(f_sims, s_sims, atol=1e-5)
    # Where the k-th score is not tied, both return the same neighbour sets.
    for q in range(len(queries)):
        if k == len(index) or abs(f_sims[q, -1] - np.sort(queries[q] @ index.T)[-k - 1]) > 1e-5:
            assert set(f_idx[q]) == set(s_idx[q])


@pytest.mark.parametrize("backend", ["sklearn", pytest.param("faiss", marks=pytest.mark.faiss)])
def test_k_larger_than_the_index_is_capped(backend: str) -> None:
    if backend == "faiss":
        pytest.importorskip("faiss")
    index = unit_vectors(4, 8)

    sims, idx = search(index, index, 10, backend=backend)

    assert idx.shape == (4, 4)
    assert sorted(idx[0].tolist()) == [0, 1, 2, 3]
    assert idx[:, 0].tolist() == [0, 1, 2, 3]  # each vector is its own best match
    np.testing.assert_allclose(sims[:, 0], 1.0, atol=1e-5)


@pytest.mark.parametrize("backend", ["sklearn", "faiss", "auto"])
def test_empty_inputs_give_empty_results(backend: str) -> None:
    none = np.zeros((0, 8), np.float32)
    some = unit_vectors(3, 8)

    for index, queries in ((none, some), (some, none), (none, none)):
        sims, idx = search(index, queries, 5, backend=backend)
        assert sims.shape == idx.shape == (len(queries), 0)
    left, right, cos = similar_pairs(none, 0.5, 5, backend=backend)
    assert len(left) == len(right) == len(cos) == 0


def test_unknown_backend_is_an_error() -> None:
    vectors = unit_vectors(5, 4)
    with pytest.raises(ValueError, match="unknown neighbour backend 'annoy'"):
        search(vectors, vectors, 2, backend="annoy")  # type: ignore[arg-type]


def test_auto_uses_sklearn_for_small_indexes(monkeypatch) -> None:
    import core.neighbours as neighbours

    assert neighbours._choose("auto", 100) == "sklearn"
    monkeypatch.setattr(neighbours, "FAISS_FROM", 10)
    vectors = unit_vectors(50, 8)
    sims, idx = search(vectors, vectors[:3], 3, backend="auto")
    assert_valid_top_k(vectors, vectors[:3], sims, idx, 3)


@pytest.mark.parametrize("backend", ["sklearn", pytest.param("faiss", marks=pytest.mark.faiss)])
def test_similar_pairs_equal_brute_force_within_top_k(backend: str) -> None:
    if backend == "faiss":
        pytest.importorskip("faiss")
    vectors = unit_vectors(200, 6, seed=3, duplicates=20)  # low dimension: many close pairs
    k, threshold = 8, 0.8

    left, right, cos = similar_pairs(vectors, threshold, k, backend=backend)

    found = {(int(a), int(b)): float(c) for a, b, c in zip(left, right, cos, strict=True)}
    assert all(a < b for a, b in found)
    exact = vectors.astype(np.float64) @ vectors.T.astype(np.float64)
    np.fill_diagonal(exact, -np.inf)
    # Every pair with cosine >= threshold where one side is in the other's clear top-k.
    order = np.argsort(-exact, axis=1)
    kth = exact[np.arange(len(vectors)), order[:, k - 1]]
    clear = (exact > kth[:, None] + 1e-5) | (exact > kth[None, :] + 1e-5)
    a, b = np.nonzero(np.triu(clear & (exact >= threshold + 1e-5), k=1))
    assert {(int(i), int(j)) for i, j in zip(a, b, strict=True)} <= found.keys()
    assert len(found) > 50
    assert all(c >= threshold - 1e-5 and abs(c - exact[p]) < 1e-5 for p, c in found.items())


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
    queries = vectors[::25]
    k = 10
    exact_sims, exact_idx = search(vectors, queries, k, backend="faiss")
    sims, idx = search(vectors, queries, k, backend="hnsw")
    hits = sum(len(set(a) & set(b)) for a, b in zip(exact_idx.tolist(), idx.tolist(), strict=True))
    assert hits / exact_idx.size >= 0.95
    found = idx >= 0
    true = np.einsum("qd,qkd->qk", queries, vectors[np.where(found, idx, 0)])
    np.testing.assert_allclose(sims[found], true[found], atol=1e-4)


def test_auto_switches_to_hnsw_for_large_indexes(monkeypatch) -> None:
    pytest.importorskip("faiss")
    import core.neighbours as neighbours

    assert neighbours._choose("auto", neighbours.HNSW_FROM - 1) == "faiss"
    assert neighbours._choose("auto", neighbours.HNSW_FROM) == "hnsw"
    monkeypatch.setattr(neighbours, "HNSW_FROM", 100)
    monkeypatch.setattr(neighbours, "FAISS_FROM", 10)
    vectors = unit_vectors(300, 8, seed=5)
    sims, idx = search(vectors, vectors[:20], 5, backend="auto")
    assert (idx[:, 0] == np.arange(20)).all()  # every vector finds itself first
