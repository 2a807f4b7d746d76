"""Clusters of matches: strength- and size-aware, never chaining products through one weak match."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from core.clusters import cluster_matches
from core.pair_listing import LISTED_BOTH, LISTED_LEFT


def pairs_of(edges: list[tuple[str, str, float]], listed: int = LISTED_BOTH) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "left": [a for a, _, _ in edges],
            "right": [b for _, b, _ in edges],
            "similarity": [w for _, _, w in edges],
            "listed": [listed] * len(edges),
        }
    )


def clique(ids: list[str], weight: float) -> list[tuple[str, str, float]]:
    return [(a, b, weight) for a, b in itertools.combinations(ids, 2)]


def test_two_products_joined_by_one_weak_match_stay_apart() -> None:
    lemons = [f"lemon{i}" for i in range(5)]
    limes = [f"lime{i}" for i in range(4)]
    edges = clique(lemons, 0.9) + clique(limes, 0.85) + [("lemon0", "lime0", 0.6)]

    found = cluster_matches(lemons + limes, pairs_of(edges))

    assert found.cluster_of("lemon3") == found.cluster_of("lemon0") != found.cluster_of("lime0")
    assert sorted(found.members(found.cluster_of("lime2"))) == sorted(limes)
    assert "that all match each other" in found.describe(found.cluster_of("lemon1"))


def test_a_chain_is_cut_and_says_so() -> None:
    ids = [f"p{i}" for i in range(12)]
    chain = [(ids[i], ids[i + 1], 0.9) for i in range(11)]

    found = cluster_matches(ids, pairs_of(chain))

    assert found.summary["size"].max() < 12
    described = found.describe(found.cluster_of("p5"))
    assert "cut from a chain of 12 postings" in described


@pytest.mark.parametrize("cap", [2, 5, 10])
def test_no_cluster_is_larger_than_its_cap(cap: int) -> None:
    ids = [f"p{i}" for i in range(40)]
    edges = clique(ids, 0.95)  # everything matches everything, strongly

    found = cluster_matches(ids, pairs_of(edges), max_size=cap)

    sizes = found.summary["size"]
    assert sizes.max() <= cap and sizes.max() > cap // 2
    assert sizes.sum() == 40
    assert sorted(np.unique(found.labels)) == found.summary["cluster"].tolist()


def test_random_graphs_respect_the_cap_and_cover_every_posting() -> None:
    rng = np.random.default_rng(3)
    ids = [f"p{i}" for i in range(300)]
    a = rng.integers(0, 300, 2_000)
    b = rng.integers(0, 300, 2_000)
    keep = a < b
    edges = [
        (ids[i], ids[j], float(w))
        for i, j, w in zip(a[keep], b[keep], rng.uniform(0.5, 1, keep.sum()), strict=True)
    ]
    edges = list({(x, y): w for x, y, w in edges}.items())
    frame = pairs_of([(x, y, w) for (x, y), w in edges])

    found = cluster_matches(ids, frame, max_size=7, min_link=0.1)

    assert found.summary["size"].max() <= 7
    assert (found.labels >= 0).all()
    members = found.match_sets()
    assert all(pid in members[pid] for pid in ids)


def test_one_sided_matches_do_not_join_clusters() -> None:
    """A posting at its match cap that does not list the other: no mutual match, no cluster."""
    frame = pairs_of([("a", "b", 0.99)], listed=LISTED_LEFT)
    found = cluster_matches(["a", "b"], frame)
    assert found.cluster_of("a") != found.cluster_of("b")
    assert "No other posting" in found.describe(found.cluster_of("a"))


def test_no_pairs_means_a_cluster_per_posting() -> None:
    found = cluster_matches(["a", "b", "c"], pd.DataFrame(columns=["left", "right", "similarity"]))
    assert sorted(found.summary["size"]) == [1, 1, 1]
    assert found.match_sets() == {"a": {"a"}, "b": {"b"}, "c": {"c"}}


@pytest.mark.parametrize("order", list(itertools.permutations(["a", "b", "c", "d"])))
def test_a_triangle_becomes_one_cluster_whatever_the_order_of_its_postings(order) -> None:
    """After a merge every link of the merged cluster is re-weighed: a triangle whose strongest
    match joins first still ends as one cluster, whichever posting comes first in the catalog;
    a fourth posting hanging on by one weak match stays out."""
    edges = [("a", "b", 1.0), ("a", "c", 0.67), ("b", "c", 0.70), ("c", "d", 0.2)]

    found = cluster_matches(list(order), pairs_of(edges), min_link=0.3)

    assert sorted(found.members(found.cluster_of("a"))) == ["a", "b", "c"]
    assert found.members(found.cluster_of("d")) == ["d"]
