"""The batch engine: `Pipeline.prepare` → candidates → pair frame → `Pipeline.score` →
`Pipeline.refine` → at most ``max_matches`` per posting, streamed chunk by chunk. Every
pipeline runs through it: the rule pipelines' candidates come from top-k indexes, ``best``'s
from the pairs its trained model scored in `Pipeline.prepare`.

Each chunk of postings asks every candidate source for its top-k neighbours, so a chunk holds
at most rows × (sum of k) candidate pairs, and each posting keeps at most ``max_matches``
matches. What the engine holds therefore depends on the catalog's size (n × max_matches kept
matches, one chunk of candidates), never on how many pairs pass a rule: a catalog where 600
postings share a title costs what a catalog of distinct titles costs.

A posting's matches are its own best-scored ones plus the postings that chose it, best first,
cut at ``max_matches``; a posting that many others choose (a popular product's listing) keeps
its best ``max_matches`` and the others still list it. `MatchResult.pairs` therefore says, per
pair, which side lists the other (``listed``: 1 = left lists right, 2 = right lists left, 3 =
both).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from core.match_cap import best_per_posting
from core.matches import MatchResult
from core.pair_listing import LISTED_LEFT, LISTED_RIGHT
from core.pair_table import PairTable
from core.pipelines.base import MatchRequest, Pipeline, Prepared, Progress, Stages
from core.pipelines.inputs import MatchInputs
from core.settings import MatchSettings

logger = logging.getLogger(__name__)

#: Candidate pairs scored at once (a chunk's postings × the sum of the sources' k).
PAIRS_PER_CHUNK = 400_000


@dataclass
class EngineStats:
    """What a run held and found: for reports, tests and the benchmarks."""

    candidates: int = 0
    matched: int = 0
    chunks: int = 0
    #: Most pairs held at once: one chunk's candidates plus every match kept so far.
    peak_pairs: int = 0
    #: Postings at the cap: max_matches matches listed (more may have been dropped).
    capped: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


class _Kept:
    """Directed matches kept so far (query posting → matched posting) and their scores, as
    per-column arrays (int32 positions, float32 scores, the rule as a categorical code)."""

    def __init__(self) -> None:
        self.columns: dict[str, list[np.ndarray]] = {}
        self.rules: list[str] | None = None
        self.size = 0

    def _append(self, query: np.ndarray, other: np.ndarray, scored: pd.DataFrame) -> None:
        self.columns.setdefault("query", []).append(query.astype(np.int32))
        self.columns.setdefault("other", []).append(other.astype(np.int32))
        for name in scored.columns:
            if name == "matched":
                continue
            values = scored[name]
            if values.dtype == "category":
                self.rules = list(values.cat.categories)
                array = values.cat.codes.to_numpy(np.int16)
            else:
                array = values.to_numpy(np.float32)
            self.columns.setdefault(name, []).append(array)
        self.size += len(query)

    def add(self, query: np.ndarray, other: np.ndarray, scored: pd.DataFrame, cap: int) -> None:
        """Keep each query posting's ``cap`` best matches of this chunk (`best_per_posting`:
        a query posting's candidates all come in the chunk that holds it)."""
        similarity = scored["similarity"].to_numpy(np.float32)
        keep = np.flatnonzero(best_per_posting(query, other, similarity, cap))
        self._append(query[keep], other[keep], scored.iloc[keep])

    def add_pairs(self, decided: pd.DataFrame) -> None:
        """Matches decided for unordered pairs (positions ``left`` < ``right``), kept whole:
        `capped_pairs` offers each to both postings."""
        self._append(
            decided["left"].to_numpy(np.int64),
            decided["right"].to_numpy(np.int64),
            decided.drop(columns=["left", "right"]),
        )

    def take(self, name: str) -> np.ndarray:
        """One column of everything kept, concatenated; the chunks are let go."""
        parts = self.columns.pop(name)
        return np.concatenate(parts) if parts else np.zeros(0)


def match_catalog(
    pipeline: Pipeline,
    inputs: MatchInputs,
    settings: MatchSettings,
    progress: Progress | None = None,
    *,
    model: Any = None,
    stages: Stages | None = None,
    pairs_per_chunk: int = PAIRS_PER_CHUNK,
) -> MatchResult:
    """Match every posting of a catalog with one pipeline (see the module docstring);
    ``model``: its trained model, where it has one; ``stages``: a progress bar per stage of
    its own."""
    request = MatchRequest(inputs, settings, progress, stages, model=model)
    return run_request(pipeline, request, pairs_per_chunk)


def run_request(
    pipeline: Pipeline, request: MatchRequest, pairs_per_chunk: int = PAIRS_PER_CHUNK
) -> MatchResult:
    """`match_catalog` for a request made by the caller (a runner of its own, say)."""
    started = time.perf_counter()
    stats = EngineStats()
    prepared = pipeline.prepare(request)
    stats.seconds["candidates_index"] = time.perf_counter() - started
    stats.seconds.update(prepared.timings)
    scoring_started = time.perf_counter()
    kept = _kept_matches(pipeline, prepared, request, pairs_per_chunk, stats)
    refined = pipeline.refine(prepared, request.model)
    if refined is not None and len(refined):
        kept.add_pairs(refined)
        stats.matched += len(refined)
    del prepared  # the indexes go before the kept matches are capped
    stats.seconds["scoring"] = time.perf_counter() - scoring_started
    inputs, settings = request.inputs, request.settings
    return finish(pipeline.name, pipeline.image_kind, inputs, settings, kept, stats, started)


def _kept_matches(
    pipeline: Pipeline,
    prepared: Prepared,
    request: MatchRequest,
    pairs_per_chunk: int,
    stats: EngineStats,
) -> _Kept:
    """Each posting's ``max_matches`` best matches of its own, a chunk of postings at a time."""
    n = prepared.inputs.size
    settings = request.settings
    kept = _Kept()
    for rows in prepared.row_chunks(pairs_per_chunk):
        query, other = prepared.candidates(rows)
        left, right = np.minimum(query, other), np.maximum(query, other)
        # A pair offered from both ends within the chunk is scored once.
        pairs, inverse = np.unique(left * n + right, return_inverse=True)
        frame = pipeline.pair_frame(prepared, pairs // n, pairs % n)
        scored = pipeline.score(frame, settings, request.model)
        scored = scored.iloc[inverse].reset_index(drop=True)
        matched = scored["matched"].to_numpy(bool)
        kept.add(query[matched], other[matched], scored[matched], settings.max_matches)
        stats.candidates += len(query)
        stats.matched += int(matched.sum())
        stats.chunks += 1
        stats.peak_pairs = max(stats.peak_pairs, len(query) + kept.size)
        if request.progress is not None:
            request.progress(int(rows[-1]) + 1, n)
    return kept


def scored_candidates(
    pipeline: Pipeline,
    inputs: MatchInputs,
    settings: MatchSettings,
    relaxed: bool = False,
    pairs_per_chunk: int = PAIRS_PER_CHUNK,
    *,
    model: Any = None,
) -> pd.DataFrame:
    """Every candidate pair a pipeline scores, matched or not, once each: ``left`` <
    ``right`` (catalog positions), the `Pipeline.score` columns and ``matched``. ``relaxed``
    takes each posting's top-k of every source without the rules' floors (as a query's near
    misses do): a superset of the pairs `match_catalog` scores. For calibrating and measuring
    the pipeline's probabilities (`core.rule_calibration`), not for matching."""
    request = MatchRequest(inputs, settings, relaxed=relaxed, model=model)
    return scored_pairs(pipeline, pipeline.prepare(request), model, pairs_per_chunk)


def scored_pairs(
    pipeline: Pipeline,
    prepared: Prepared,
    model: Any = None,
    pairs_per_chunk: int = PAIRS_PER_CHUNK,
    rows: np.ndarray | None = None,
) -> pd.DataFrame:
    """`scored_candidates` of a prepared catalog: every pair once, or with ``rows`` only
    those postings' pairs."""
    n = prepared.inputs.size
    frames, seen = [], np.zeros(0, np.int64)
    chunks = prepared.row_chunks(pairs_per_chunk) if rows is None else [np.asarray(rows)]
    for chunk in chunks:
        query, other = prepared.candidates(chunk)
        keys = np.unique(np.minimum(query, other) * n + np.maximum(query, other))
        keys = keys[~np.isin(keys, seen, assume_unique=True)]
        seen = np.union1d(seen, keys)
        frame = pipeline.pair_frame(prepared, keys // n, keys % n)
        scored = pipeline.score(frame, prepared.settings, model).reset_index(drop=True)
        scored.insert(0, "right", keys % n)
        scored.insert(0, "left", keys // n)
        frames.append(scored)
    if not frames:
        return pd.DataFrame(columns=["left", "right", *pipeline.score_columns, "matched"])
    return pd.concat(frames, ignore_index=True)


def decided_pairs(pipeline: Pipeline, prepared: Prepared, model: Any = None) -> pd.DataFrame:
    """Every matched pair of a prepared catalog before any posting keeps its best,
    `Pipeline.refine`'s included: ``left`` < ``right`` and `Pipeline.score`'s columns. What a
    job that caps elsewhere (Spark) starts from."""
    scored = scored_pairs(pipeline, prepared, model)
    decided = scored[scored["matched"].to_numpy(bool)]
    return _with_refined(decided, pipeline.refine(prepared, model))


def posting_pairs(
    pipeline: Pipeline, prepared: Prepared, row: int, model: Any = None
) -> pd.DataFrame:
    """Every candidate pair of one posting, scored and decided as a batch run decides them
    (`Pipeline.refine`'s decisions included): a query's exact answer."""
    scored = scored_pairs(pipeline, prepared, model, rows=np.array([row], np.int64))
    refined = pipeline.refine(prepared, model)
    if refined is None or not len(refined):
        return scored
    mine = refined[(refined["left"] == row) | (refined["right"] == row)]
    keys = scored["left"].astype(np.int64) * prepared.inputs.size + scored["right"]
    decided = mine["left"].astype(np.int64) * prepared.inputs.size + mine["right"]
    return _with_refined(scored[~keys.isin(decided)], mine)


def _with_refined(decided: pd.DataFrame, refined: pd.DataFrame | None) -> pd.DataFrame:
    if refined is None or not len(refined):
        return decided.reset_index(drop=True)
    return pd.concat([decided, refined], ignore_index=True)


def finish(
    name: str,
    image_kind: str | None,
    inputs: MatchInputs,
    settings: MatchSettings,
    kept: _Kept,
    stats: EngineStats,
    started: float,
) -> MatchResult:
    """The capped matches as a `MatchResult`, saying when hashes stood in for photos."""
    table = capped_pairs(inputs.posting_ids, kept, settings.max_matches, stats)
    result = MatchResult(
        name,
        inputs.posting_ids,
        MatchResult.empty_pairs() if table is None else None,
        settings,
        time.perf_counter() - started,
        [],
        capped=stats.capped,
        stats=stats,
        table=table,
    )
    if inputs.vector_count == 0:
        what = "Siamese" if image_kind == "siamese" else "image"
        result.notices.append(
            f"No {what} embeddings: image evidence came from perceptual hashes only."
        )
    return result


#: Postings whose pairs are ranked at once when a crowded posting keeps its best.
POSTINGS_PER_BLOCK = 20_000


def capped_pairs(
    posting_ids: list[str], kept: _Kept, cap: int, stats: EngineStats
) -> PairTable | None:
    """Each posting's own best matches plus those that chose it, best first, at most ``cap``;
    as unordered pairs with which side lists the other (None when there are none).

    This is the largest thing a run holds (n × max_matches pairs): positions stay int32,
    scores float32, no Python object per pair, and every array is let go once used; crowded
    postings are ranked a block of postings at a time.
    """
    if kept.size == 0:
        return None
    n = len(posting_ids)
    low, high, rows = _unique_pairs(kept, n)
    similarity = np.concatenate(kept.columns["similarity"])[rows]
    listed = _listing(low, high, similarity, cap, stats)
    del similarity
    keep = listed > 0
    low, high, listed = low[keep], high[keep], listed[keep]
    picked = rows[keep]
    del rows, keep
    columns = {name: kept.take(name)[picked] for name in list(kept.columns)}
    ids = np.asarray(posting_ids, dtype=object)
    return PairTable(ids, low, high, columns, list(kept.rules or []), listed)


def _unique_pairs(kept: _Kept, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The kept matches as unordered pairs (low, high: int32 positions, sorted), each with
    the row of its first directed match in ``kept`` (a pair both ends kept appears twice)."""
    query, other = kept.take("query"), kept.take("other")
    low, high = np.minimum(query, other), np.maximum(query, other)
    del query, other
    order = np.argsort(low.astype(np.int64) * n + high, kind="stable")
    low, high = low[order], high[order]
    first = np.ones(len(low), bool)
    first[1:] = (low[1:] != low[:-1]) | (high[1:] != high[:-1])
    rows = order[first]
    del order
    dtype = np.int32 if kept.size < 2**31 else np.int64
    return low[first], high[first], rows.astype(dtype)


def _listing(
    low: np.ndarray, high: np.ndarray, similarity: np.ndarray, cap: int, stats: EngineStats
) -> np.ndarray:
    """Which end lists each pair (int8 `LISTED_LEFT` | `LISTED_RIGHT`, 0 for neither): a
    posting offered at most ``cap`` pairs (its own plus those that chose it) lists them all;
    one offered more lists its ``cap`` best (`best_per_posting`: by similarity to 1e-6, then
    the earlier posting)."""
    n = int(high.max()) + 1  # high > low: the last posting with a pair, plus one
    degree = np.bincount(low, minlength=n) + np.bincount(high, minlength=n)
    full = degree > cap
    stats.capped = int(np.count_nonzero(degree >= cap))
    listed_by = [~full[low], ~full[high]]
    # The pairs are sorted by their low end; by_high orders them by their high end.
    by_high = np.argsort(high, kind="stable").astype(low.dtype)
    starts = [np.concatenate([[0], np.cumsum(np.bincount(e, minlength=n))]) for e in (low, high)]
    for a in range(0, n, POSTINGS_PER_BLOCK):
        b = min(n, a + POSTINGS_PER_BLOCK)
        if not full[a:b].any():
            continue
        # The block's crowded postings' pairs, whichever end of the pair each posting is.
        as_low = np.arange(starts[0][a], starts[0][b])
        as_low = as_low[full[low[as_low]]]
        as_high = by_high[starts[1][a] : starts[1][b]]
        as_high = as_high[full[high[as_high]]]
        pair = np.concatenate([as_low, as_high])
        side = np.repeat(np.array([0, 1], np.int8), [len(as_low), len(as_high)])
        end = np.concatenate([low[as_low], high[as_high]])
        far = np.concatenate([high[as_low], low[as_high]])
        chosen = best_per_posting(end, far, similarity[pair], cap)
        for s in (0, 1):
            listed_by[s][pair[chosen & (side == s)]] = True
    return listed_by[0] * np.int8(LISTED_LEFT) | listed_by[1] * np.int8(LISTED_RIGHT)
