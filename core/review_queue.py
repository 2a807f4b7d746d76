"""Which pairs a reviewer should look at first: the ones whose verdict would teach the most.

Every stored run contributes its matched pairs. A pair ranks higher when

1. the pipelines disagree on it (one calls it a match, another does not),
2. a pipeline matched it only narrowly (`Pipeline.close_calls`: a learned model's probability
   near its threshold, a rule just past its limit),
3. it is a match between two postings its pipeline put in different clusters (a verdict
   decides whether two clusters are one product),

and inside each of these by how weak the match is (lowest similarity first); confident
matches come last. Pairs already reviewed are left out. What is read is the stored pairs
(at most ``max_matches`` per posting and pipeline): bounded by the catalog's size.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.pipelines import get_pipeline, pipeline_names
from core.settings import MatchSettings
from core.store import Store
from core.verdicts import REVIEWED, reviewed_pairs, without_pairs

#: Why a pair is in the queue, most telling first (the ``priority`` column counts down).
REASONS = {
    3: "the pipelines disagree",
    2: "a close call",
    1: "it would join two clusters",
    0: "a confident match, to check",
}


def _learned_threshold(store: Store, pipeline: str) -> float | None:
    from core import models

    if not get_pipeline(pipeline).needs_model:
        return None
    return models.best_threshold(models.best_dir(store))


def _cluster_numbers(store: Store, pipeline: str, catalog: pd.Index) -> np.ndarray:
    """Each catalog posting's stored cluster number (NaN: in no cluster, alone)."""
    rows = store.conn.execute(
        "SELECT posting_id, cluster FROM clusters WHERE pipeline=?", (pipeline,)
    ).fetchall()
    numbers = np.full(len(catalog), np.nan)
    if rows:
        ids, clusters = zip(*rows, strict=True)
        at = catalog.get_indexer(list(ids))
        numbers[at[at >= 0]] = np.asarray(clusters, np.float64)[at >= 0]
    return numbers


def _pipeline_pairs(store: Store, pipeline: str, catalog: pd.Index) -> dict[str, np.ndarray]:
    """One pipeline's stored pairs as arrays: the pair's key (catalog positions, smaller
    first), its similarity, whether it is a close call, whether it joins two clusters."""
    run = store.match_run(pipeline)
    settings = MatchSettings.from_dict(run["settings"])
    pipe, threshold = get_pipeline(pipeline), _learned_threshold(store, pipeline)
    parts: dict[str, list[np.ndarray]] = {"left": [], "right": [], "similarity": [], "close": []}
    # In chunks: the strings of millions of stored pairs never exist all at once.
    for pairs in store.iter_match_pairs(pipeline):
        parts["close"].append(np.asarray(pipe.close_calls(pairs, settings, threshold), bool))
        parts["left"].append(catalog.get_indexer(pairs["left"]).astype(np.int64))
        parts["right"].append(catalog.get_indexer(pairs["right"]).astype(np.int64))
        parts["similarity"].append(pairs["similarity"].to_numpy(np.float32))
    left, right, similarity, close = (
        np.concatenate(parts[name]) if parts[name] else np.zeros(0, dtype)
        for name, dtype in (
            ("left", np.int64),
            ("right", np.int64),
            ("similarity", np.float32),
            ("close", bool),
        )
    )
    known = (left >= 0) & (right >= 0)  # postings removed since the run are left out
    left, right, similarity, close = left[known], right[known], similarity[known], close[known]
    clusters = _cluster_numbers(store, pipeline, catalog)
    a, b = clusters[left], clusters[right]
    # A posting in no stored cluster is alone: any match of it joins two clusters.
    joins = np.isnan(a) | np.isnan(b) | (a != b)
    keys = np.minimum(left, right) * len(catalog) + np.maximum(left, right)
    keys, first = np.unique(keys, return_index=True)
    return {
        "keys": keys,
        "similarity": similarity[first],
        "close": close[first],
        "joins": joins[first],
    }


#: Pairs `review_queue` returns at most (a reviewer never gets through more between runs).
QUEUE_LIMIT = 5_000


def review_queue(store: Store, limit: int = QUEUE_LIMIT) -> pd.DataFrame:
    """The ``limit`` most telling unreviewed pairs, best first.

    Pairs are handled as integer keys of catalog positions and only the ``limit`` kept are
    turned back into ids and words, so memory is a few arrays of the stored pairs' size.

    Returns:
        Columns left, right, priority (3 … 0, see `REASONS`), reason (in words), similarity
        (the weakest pipeline's) and ``<pipeline>_similarity`` per pipeline that has stored
        matches (NaN where it did not match the pair).
    """
    ran = [name for name in pipeline_names() if store.match_run(name) is not None]
    if not ran:
        return pd.DataFrame(columns=["left", "right", "priority", "reason", "similarity"])
    catalog = pd.Index(store.postings(["posting_id"])["posting_id"])
    n = len(catalog)
    runs = {name: _pipeline_pairs(store, name, catalog) for name in ran}
    keys = np.unique(np.concatenate([run["keys"] for run in runs.values()]))
    similarity = np.full((len(keys), len(ran)), np.nan, np.float32)
    close = np.zeros(len(keys), bool)
    joins = np.zeros(len(keys), bool)
    for column, run in enumerate(runs.values()):
        at = np.searchsorted(keys, run["keys"])
        similarity[at, column] = run["similarity"]
        close[at] |= run["close"]
        joins[at] |= run["joins"]
    del runs
    matched = ~np.isnan(similarity)
    disagree = matched.any(axis=1) & ~matched.all(axis=1)
    priority = np.select([disagree, close, joins], [3, 2, 1], default=0).astype(np.int8)
    reviewed = [(a, b) for a, b in reviewed_pairs(store.reviews()) if a in catalog and b in catalog]
    if reviewed:
        ends = catalog.get_indexer([e for pair in reviewed for e in pair]).reshape(-1, 2)
        done = np.minimum(ends[:, 0], ends[:, 1]) * n + np.maximum(ends[:, 0], ends[:, 1])
        priority[np.isin(keys, done)] = -1
    weakest = np.nanmin(similarity, axis=1)
    # Most telling first, weakest first inside a priority, then by the pair itself (stable).
    order = np.lexsort((keys, weakest, -priority.astype(np.int16)))
    order = order[priority[order] >= 0][:limit]
    left, right = catalog[keys[order] // n], catalog[keys[order] % n]
    queue = pd.DataFrame(
        {
            "left": np.asarray(left, dtype=object),
            "right": np.asarray(right, dtype=object),
            "priority": priority[order].astype(np.int64),
            "reason": [
                _reason(p, row, ran) for p, row in zip(priority[order], matched[order], strict=True)
            ],
            "similarity": weakest[order],
        }
    )
    for column, name in enumerate(ran):
        queue[f"{name}_similarity"] = similarity[order, column]
    return queue


def _reason(priority: int, matched: np.ndarray, ran: list[str]) -> str:
    if priority != 3:
        return REASONS[int(priority)]
    said = [name for name, yes in zip(ran, matched, strict=True) if yes]
    other = [name for name, yes in zip(ran, matched, strict=True) if not yes]
    calls = "calls" if len(said) == 1 else "call"
    does = "does" if len(other) == 1 else "do"
    return f"the {' and '.join(said)} {calls} it a match, the {' and '.join(other)} {does} not"


def match_sample(store: Store, pipeline: str, size: int = 2_000, seed: int = 0) -> pd.DataFrame:
    """``size`` of the pipeline's stored matches in a fixed pseudo-random order (the same
    for the same seed), unreviewed ones only: reviewing them estimates its precision without
    bias. Columns as `review_queue`'s."""
    rows = store.conn.execute(
        "SELECT posting_id, match_id, similarity FROM matches WHERE pipeline=? AND rule != ? "
        "ORDER BY (rowid * 1103515245 + ?) % 2147483648 LIMIT ?",
        (pipeline, REVIEWED, seed, size * 2),
    ).fetchall()
    found = pd.DataFrame(rows, columns=["left", "right", f"{pipeline}_similarity"])
    sample = without_pairs(found, reviewed_pairs(store.reviews())).head(size)
    sample = sample.reset_index(drop=True)
    sample.insert(2, "priority", 0)
    sample.insert(3, "reason", f"drawn at random from the {pipeline} pipeline's matches")
    sample.insert(4, "similarity", sample[f"{pipeline}_similarity"])
    return sample
