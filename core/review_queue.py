"""Which pairs a reviewer should look at first: the ones whose verdict would teach the most.

Every stored run contributes its matched pairs. A pair ranks higher when

0. its answer is **Unsure** (`core.pair_answers`: 40–60 % likely the same product, by the
   most accurate pipeline that matched it): a person's verdict settles what no pipeline can,
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

from core.pair_answers import pair_answers, unsure
from core.pipelines import get_pipeline, most_accurate_first
from core.settings import MatchSettings
from core.store import Store
from core.verdicts import REVIEWED, reviewed_pairs, without_pairs

#: Why a pair is in the queue, most telling first (the ``priority`` column counts down).
REASONS = {
    4: "the answer is Unsure",
    3: "the pipelines disagree",
    2: "a close call",
    1: "it would join two clusters",
    0: "a confident match, to check",
}


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


def _pipeline_pairs(
    store: Store, pipeline: str, catalog: pd.Index, titled: np.ndarray
) -> dict[str, np.ndarray]:
    """One pipeline's stored pairs as arrays: the pair's key (catalog positions, smaller
    first), its similarity and probability, whether it is a close call, whether its answer is
    Unsure, whether it joins two clusters. ``titled``: which catalog postings have a title."""
    run = store.match_run(pipeline)
    settings = MatchSettings.from_dict(run["settings"])
    pipe = get_pipeline(pipeline)
    threshold = pipe.decision_threshold(store)
    names = {"left": np.int64, "right": np.int64, "similarity": np.float32, "close": bool}
    names |= {"probability": np.float32, "unsure": bool}
    parts: dict[str, list[np.ndarray]] = {name: [] for name in names}
    # In chunks: the strings of millions of stored pairs never exist all at once.
    for pairs in store.iter_match_pairs(pipeline):
        parts["close"].append(np.asarray(pipe.close_calls(pairs, settings, threshold), bool))
        left = catalog.get_indexer(pairs["left"]).astype(np.int64)
        right = catalog.get_indexer(pairs["right"]).astype(np.int64)
        has_titles = titled[np.maximum(left, 0)] & titled[np.maximum(right, 0)]
        answers = pair_answers(pairs, pipeline, settings, store, has_titles)
        probability = answers["probability"].to_numpy(np.float32)
        parts["unsure"].append(unsure(answers["answer"]) & ~np.isnan(probability))
        parts["probability"].append(probability)
        parts["left"].append(left)
        parts["right"].append(right)
        parts["similarity"].append(pairs["similarity"].to_numpy(np.float32))
    arrays = {
        name: np.concatenate(parts[name]) if parts[name] else np.zeros(0, dtype)
        for name, dtype in names.items()
    }
    known = (arrays["left"] >= 0) & (arrays["right"] >= 0)  # postings removed since the run
    arrays = {name: values[known] for name, values in arrays.items()}
    left, right = arrays["left"], arrays["right"]
    clusters = _cluster_numbers(store, pipeline, catalog)
    a, b = clusters[left], clusters[right]
    # A posting in no stored cluster is alone: any match of it joins two clusters.
    joins = np.isnan(a) | np.isnan(b) | (a != b)
    keys = np.minimum(left, right) * len(catalog) + np.maximum(left, right)
    keys, first = np.unique(keys, return_index=True)
    out = {name: arrays[name][first] for name in ("similarity", "close", "probability", "unsure")}
    return {"keys": keys, "joins": joins[first], **out}


#: Pairs `review_queue` returns at most (a reviewer never gets through more between runs).
QUEUE_LIMIT = 5_000


def review_queue(store: Store, limit: int = QUEUE_LIMIT) -> pd.DataFrame:
    """The ``limit`` most telling unreviewed pairs, best first.

    Pairs are handled as integer keys of catalog positions and only the ``limit`` kept are
    turned back into ids and words, so memory is a few arrays of the stored pairs' size.

    Returns:
        Columns left, right, priority (4 … 0, see `REASONS`), reason (in words), similarity
        (the weakest pipeline's), probability (the most accurate matching pipeline's) and
        ``<pipeline>_similarity`` per pipeline that has stored matches (NaN where it did not
        match the pair).
    """
    ran = [p.name for p in most_accurate_first()[::-1] if store.match_run(p.name) is not None]
    if not ran:
        return pd.DataFrame(columns=["left", "right", "priority", "reason", "similarity"])
    postings = store.postings(["posting_id", "title"])
    catalog = pd.Index(postings["posting_id"])
    titled = postings["title"].fillna("").astype(str).str.strip().to_numpy() != ""
    n = len(catalog)
    keys, found = _combined({name: _pipeline_pairs(store, name, catalog, titled) for name in ran})
    priority = found["priority"]
    reviewed = [(a, b) for a, b in reviewed_pairs(store.reviews()) if a in catalog and b in catalog]
    if reviewed:
        ends = catalog.get_indexer([e for pair in reviewed for e in pair]).reshape(-1, 2)
        done = np.minimum(ends[:, 0], ends[:, 1]) * n + np.maximum(ends[:, 0], ends[:, 1])
        priority[np.isin(keys, done)] = -1
    similarity, matched = found["similarity"], found["matched"]
    weakest = np.nanmin(similarity, axis=1)
    # Most telling first, weakest first inside a priority, then by the pair itself (stable).
    order = np.lexsort((keys, weakest, -priority.astype(np.int16)))
    order = order[priority[order] >= 0][:limit]
    left, right = catalog[keys[order] // n], catalog[keys[order] % n]
    probability = found["probability"][order]
    queue = pd.DataFrame(
        {
            "left": np.asarray(left, dtype=object),
            "right": np.asarray(right, dtype=object),
            "priority": priority[order].astype(np.int64),
            "reason": [
                _reason(p, row, ran, q)
                for p, row, q in zip(priority[order], matched[order], probability, strict=True)
            ],
            "similarity": weakest[order],
            "probability": probability,
        }
    )
    for column, name in enumerate(ran):
        queue[f"{name}_similarity"] = similarity[order, column]
    return queue


def _combined(runs: dict[str, dict[str, np.ndarray]]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Every pair any run matched (sorted keys) with each run's similarity (a column per
    run, NaN: not matched), whether it matched, its probability and priority. ``runs`` come
    least accurate first: a pair's probability and Unsure are the last (most accurate) run's
    that matched it."""
    keys = np.unique(np.concatenate([run["keys"] for run in runs.values()]))
    similarity = np.full((len(keys), len(runs)), np.nan, np.float32)
    probability = np.full(len(keys), np.nan, np.float32)
    close, joins, doubt = (np.zeros(len(keys), bool) for _ in range(3))
    for column, run in enumerate(runs.values()):
        at = np.searchsorted(keys, run["keys"])
        similarity[at, column] = run["similarity"]
        probability[at] = run["probability"]
        doubt[at] = run["unsure"]
        close[at] |= run["close"]
        joins[at] |= run["joins"]
    matched = ~np.isnan(similarity)
    disagree = matched.any(axis=1) & ~matched.all(axis=1)
    priority = np.select([doubt, disagree, close, joins], [4, 3, 2, 1], default=0)
    return keys, {
        "similarity": similarity,
        "matched": matched,
        "probability": probability,
        "priority": priority.astype(np.int8),
    }


def _reason(priority: int, matched: np.ndarray, ran: list[str], probability: float) -> str:
    if priority == 4:
        said = next(name for name, yes in zip(ran[::-1], matched[::-1], strict=True) if yes)
        return f"the answer is Unsure: {probability:.0%} likely the same product ({said})"
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
