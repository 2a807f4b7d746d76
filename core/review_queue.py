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


def _cluster_numbers(store: Store, pipeline: str) -> pd.Series:
    rows = store.conn.execute(
        "SELECT posting_id, cluster FROM clusters WHERE pipeline=?", (pipeline,)
    ).fetchall()
    return pd.Series(dict(rows), dtype="float64")


def _pipeline_pairs(store: Store, pipeline: str) -> pd.DataFrame:
    """One pipeline's stored pairs with its similarity, close calls and cluster joins."""
    run = store.match_run(pipeline)
    pairs = store.load_match_pairs(pipeline)
    settings = MatchSettings.from_dict(run["settings"])
    pipe = get_pipeline(pipeline)
    close = pipe.close_calls(pairs, settings, _learned_threshold(store, pipeline))
    clusters = _cluster_numbers(store, pipeline)
    left = clusters.reindex(pairs["left"]).to_numpy()
    right = clusters.reindex(pairs["right"]).to_numpy()
    # A posting in no stored cluster is alone: any match of it joins two clusters.
    joins = np.isnan(left) | np.isnan(right) | (left != right)
    return pd.DataFrame(
        {
            "left": pairs["left"].astype(object),
            "right": pairs["right"].astype(object),
            f"{pipeline}_similarity": pairs["similarity"].to_numpy(np.float32),
            f"{pipeline}_close": np.asarray(close, bool),
            f"{pipeline}_joins": joins,
        }
    )


#: Pairs `review_queue` returns at most (a reviewer never gets through more between runs).
QUEUE_LIMIT = 5_000


def review_queue(store: Store, limit: int = QUEUE_LIMIT) -> pd.DataFrame:
    """The ``limit`` most telling unreviewed pairs, best first.

    Returns:
        Columns left, right, priority (3 … 0, see `REASONS`), reason (in words), similarity
        (the weakest pipeline's) and ``<pipeline>_similarity`` per pipeline that has stored
        matches (NaN where it did not match the pair).
    """
    ran = [name for name in pipeline_names() if store.match_run(name) is not None]
    if not ran:
        return pd.DataFrame(columns=["left", "right", "priority", "reason", "similarity"])
    merged: pd.DataFrame | None = None
    for name in ran:
        frame = _pipeline_pairs(store, name)
        merged = frame if merged is None else merged.merge(frame, on=["left", "right"], how="outer")
    similarity = merged[[f"{name}_similarity" for name in ran]]
    matched = similarity.notna()
    disagree = matched.any(axis=1) & ~matched.all(axis=1)
    close = np.zeros(len(merged), bool)
    joins = np.zeros(len(merged), bool)
    for name in ran:
        close |= merged[f"{name}_close"].fillna(False).to_numpy(bool)
        joins |= merged[f"{name}_joins"].fillna(False).to_numpy(bool)
    priority = np.select([disagree.to_numpy(), close, joins], [3, 2, 1], default=0)
    queue = pd.DataFrame(
        {
            "left": merged["left"],
            "right": merged["right"],
            "priority": priority,
            "reason": [
                _reason(p, row, ran) for p, row in zip(priority, matched.to_numpy(), strict=True)
            ],
            "similarity": similarity.min(axis=1).to_numpy(np.float32),
        }
    )
    for name in ran:
        queue[f"{name}_similarity"] = similarity[f"{name}_similarity"].to_numpy()
    queue = without_pairs(queue, reviewed_pairs(store.reviews()))
    queue = queue.sort_values(
        ["priority", "similarity", "left", "right"],
        ascending=[False, True, True, True],
        kind="stable",
    )
    return queue.head(limit).reset_index(drop=True)


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
