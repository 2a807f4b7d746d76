"""Clusters of postings that are one product, from a pipeline's matches, without chaining.

Connected components of the match graph chain: A matches B, B matches C, and a lemon ends up
grouped with 141 other fruits. Here a cluster is built by average-linkage agglomeration inside
each component of *mutual* matches (both postings list each other):

- start from single postings; the link between two clusters is the sum of the similarities of
  the matches between them divided by |A|·|B| (a missing match counts as 0), so two products
  joined by one match link weakly (0.9 / (5·5) = 0.04) while a clique links at its mean
  similarity;
- repeatedly merge the two clusters with the strongest link while that link is at least
  ``min_link`` and the merged cluster has at most ``max_size`` postings.

Each cluster records how it was formed: its size, how many of its possible pairs matched
(density), its weakest merge (the link at which its last two parts joined: how sure it is) and
the size of the component it was cut from.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.pair_listing import LISTED_BOTH


@dataclass
class Clustering:
    """Cluster number per posting (catalog order) and one summary row per cluster."""

    posting_ids: list[str]
    labels: np.ndarray
    summary: pd.DataFrame  # cluster, size, pairs, density, weakest_link, component_size

    def members(self, cluster: int) -> list[str]:
        return [self.posting_ids[i] for i in np.flatnonzero(self.labels == cluster)]

    def cluster_of(self, posting_id: str) -> int:
        return int(self.labels[self.posting_ids.index(posting_id)])

    def match_sets(self) -> dict[str, set[str]]:
        """Each posting's cluster, itself included (the competition's layout)."""
        groups: dict[int, set[str]] = {}
        for pid, label in zip(self.posting_ids, self.labels.tolist(), strict=True):
            groups.setdefault(label, set()).add(pid)
        return {
            pid: groups[label]
            for pid, label in zip(self.posting_ids, self.labels.tolist(), strict=True)
        }

    def describe(self, cluster: int) -> str:
        """How a cluster was formed, in words."""
        row = self.summary.loc[self.summary["cluster"] == cluster].iloc[0]
        return describe_cluster(row.to_dict())


def describe_cluster(summary: dict) -> str:
    """How a cluster was formed, in words, from its `Clustering.summary` row."""
    size = int(summary["size"])
    if size == 1:
        return "No other posting is matched closely enough to share its cluster."
    possible = size * (size - 1) // 2
    pairs = int(summary["pairs"])
    text = f"{size} postings; {pairs} of their {possible} possible pairs are matches"
    if pairs == possible:
        text = f"{size} postings that all match each other"
    text += f"; weakest join {summary['weakest_link']:.2f}"
    if int(summary["component_size"]) > size:
        text += (
            f"; cut from a chain of {int(summary['component_size'])} postings linked by "
            "matches, where weaker links were not followed"
        )
    return text + "."


def _agglomerate(
    nodes: np.ndarray, edges: dict[int, dict[int, float]], max_size: int, min_link: float
) -> tuple[dict[int, list[int]], dict[int, float]]:
    """Average-linkage clusters of one component: members per root, weakest merge per root."""
    members = {int(v): [int(v)] for v in nodes}
    weights = {int(v): dict(edges.get(int(v), {})) for v in nodes}
    version = dict.fromkeys(members, 0)
    weakest: dict[int, float] = {}
    heap: list[tuple[float, int, int, int, int]] = []

    def push(a: int, b: int) -> None:
        link = weights[a][b] / (len(members[a]) * len(members[b]))
        if link >= min_link and len(members[a]) + len(members[b]) <= max_size:
            low, high = min(a, b), max(a, b)
            heapq.heappush(heap, (-link, low, high, version[low], version[high]))

    for a in members:
        for b in weights[a]:
            if a < b:
                push(a, b)
    while heap:
        negative, a, b, va, vb = heapq.heappop(heap)
        if a not in members or b not in members or version[a] != va or version[b] != vb:
            continue
        if len(members[a]) < len(members[b]):
            a, b = b, a
        # Merge b into a: a's links to b's neighbours add up; every link of a is re-weighed.
        for c, w in weights.pop(b).items():
            if c == a:
                continue
            weights[a][c] = weights[a].get(c, 0.0) + w
            weights[c][a] = weights[c].get(a, 0.0) + w
            del weights[c][b]
        del weights[a][b]
        members[a].extend(members.pop(b))
        weakest[a] = min(-negative, weakest.get(a, 1.0), weakest.pop(b, 1.0))
        del version[b]
        version[a] += 1
        for c in weights[a]:
            push(a, c)
    return members, weakest


def cluster_matches(
    posting_ids: list[str],
    pairs: pd.DataFrame,
    max_size: int = 50,
    min_link: float = 0.3,
    positions: tuple[np.ndarray, np.ndarray] | None = None,
) -> Clustering:
    """Clusters of a pipeline's matches (see the module docstring).

    Args:
        pairs: left, right (posting ids), similarity (0..1) and listed (who lists whom);
            pairs without ``listed`` count as mutual.
        max_size: no cluster has more postings.
        min_link: weakest average link two clusters may merge at.
        positions: the pairs' catalog positions, when known (else looked up by id).
    """
    if len(pairs) and positions is None:
        position = pd.Index(posting_ids)
        positions = (position.get_indexer(pairs["left"]), position.get_indexer(pairs["right"]))
    elif not len(pairs):
        positions = (np.zeros(0, np.int64), np.zeros(0, np.int64))
    listed = (
        pairs["listed"].to_numpy()
        if "listed" in pairs
        else np.full(len(pairs), LISTED_BOTH, np.int8)
    )
    similarity = pairs["similarity"].to_numpy() if len(pairs) else np.zeros(0)
    return cluster_edges(posting_ids, (*positions, similarity, listed), max_size, min_link)


def cluster_edges(
    posting_ids: list[str],
    pairs: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    max_size: int = 50,
    min_link: float = 0.3,
) -> Clustering:
    """`cluster_matches` of pairs given as arrays: (left, right) catalog positions, their
    similarity and listed (only pairs listed by both sides link postings)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(posting_ids)
    mutual = np.asarray(pairs[3]) == LISTED_BOTH
    left = np.asarray(pairs[0])[mutual].astype(np.int64)
    right = np.asarray(pairs[1])[mutual].astype(np.int64)
    weight = np.asarray(pairs[2])[mutual].astype(np.float64)
    del mutual
    graph = coo_matrix((np.ones(len(left)), (left, right)), shape=(n, n))
    count, component = connected_components(graph, directed=False)
    del graph
    component_size = np.bincount(component, minlength=count)
    # One component at a time: what is held is the largest component's links, not the run's.
    edge_order = np.argsort(component[left], kind="stable")
    left, right, weight = left[edge_order], right[edge_order], weight[edge_order]
    del edge_order
    labels, weakest_of = _label_components(
        component, component_size, (left, right, weight), max_size, min_link
    )
    next_label = int(labels.max()) + 1 if n else 0
    sizes = np.bincount(labels, minlength=next_label)
    same = labels[left] == labels[right] if len(left) else np.zeros(0, bool)
    internal = np.bincount(labels[left[same]], minlength=next_label) if len(left) else sizes * 0
    first = np.unique(labels, return_index=True)[1]
    summary = pd.DataFrame(
        {
            "cluster": np.arange(next_label),
            "size": sizes,
            "pairs": internal,
            "density": np.where(sizes > 1, internal / np.maximum(1, sizes * (sizes - 1) / 2), 1.0),
            "weakest_link": weakest_of[first],
            "component_size": component_size[component[first]],
        }
    )
    return Clustering(list(posting_ids), labels, summary)


def _label_components(
    component: np.ndarray,
    component_size: np.ndarray,
    edges: tuple[np.ndarray, np.ndarray, np.ndarray],
    max_size: int,
    min_link: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Cluster numbers (in order of each cluster's first posting within its component, the
    components in order) and each posting's weakest merge, from the mutual edges (left,
    right, weight) sorted by component."""
    left, right, weight = edges
    n, count = len(component), len(component_size)
    labels = np.full(n, -1, np.int64)
    weakest_of = np.full(n, np.nan)
    edge_bounds = np.searchsorted(component[left], np.arange(count + 1))
    order = np.argsort(component, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(component_size)])
    next_label = 0
    for c in range(count):
        nodes = order[bounds[c] : bounds[c + 1]]
        if len(nodes) == 1:
            labels[nodes[0]] = next_label
            next_label += 1
            continue
        a, b = edge_bounds[c], edge_bounds[c + 1]
        size = len(nodes)
        if b - a == size * (size - 1) // 2 and size <= max_size and weight[a:b].min() >= min_link:
            # Every posting matches every other: average linkage would merge them all.
            labels[nodes] = next_label
            weakest_of[nodes] = float(weight[a:b].min())
            next_label += 1
            continue
        links: dict[int, dict[int, float]] = {}
        for x, y, w in zip(
            left[a:b].tolist(), right[a:b].tolist(), weight[a:b].tolist(), strict=True
        ):
            for p, q in ((x, y), (y, x)):
                mine = links.setdefault(p, {})
                mine[q] = mine.get(q, 0.0) + w
        members, weakest = _agglomerate(nodes, links, max_size, min_link)
        for root, group in sorted(members.items(), key=lambda item: min(item[1])):
            labels[group] = next_label
            weakest_of[group] = weakest.get(root, np.nan)
            next_label += 1
    return labels, weakest_of
