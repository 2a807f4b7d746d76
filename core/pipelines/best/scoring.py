"""How ``best`` scores a catalog's candidate pairs: a chunk of pairs at a time, here or spread.

Pair features are computed and scored a chunk of pairs at a time, so memory holds one chunk's
features (and every pair's few scores), never pairs × features. A `Runner` says where the
searches and the chunks run: `LocalRunner` runs them here in turn, spilling each chunk's stage
1 features to a temporary file for stage 2; `core.spark.best.SparkRunner` runs them as Spark
tasks. Both call `search_here`, `stage1_chunk` and `stage2_chunk`: the features and scores
are computed by the same code wherever they run.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from core.errors import SameSameError
from core.pipelines.best.config import ALWAYS_KEPT
from core.pipelines.best.features import (
    Candidates,
    IndexBuilder,
    PairTable,
    Progress,
    Stages,
    find_candidates,
    pair_features,
    search_here,
    stage_bar,
)
from core.pipelines.best.graph import graph_features

if TYPE_CHECKING:
    from core.candidates import Neighbours
    from core.pipelines.best.model import BestMatcher
    from core.pipelines.inputs import MatchInputs

#: Rows LightGBM scores at a time: bounds the stage 2 matrix (features + graph) to a chunk.
PREDICT_CHUNK = 250_000
#: Candidate pairs whose features are held at once (about 220 MB at ~110 features).
FEATURE_CHUNK = 500_000
#: Stage 1 features every pair keeps past scoring (what matches and queries report), sorted.
REPORTED_FEATURES = ALWAYS_KEPT

Chunks = Sequence[tuple[int, int]]
#: Called with the number of pairs a pass has scored so far.
Scored = Callable[[int], None]


def chunk_bounds(m: int, size: int) -> list[tuple[int, int]]:
    """(start, end) of each chunk of at most ``size`` of ``m`` pairs."""
    return [(start, min(m, start + size)) for start in range(0, m, max(1, size))]


def predict(
    booster: Any,
    features: np.ndarray,
    extra: np.ndarray | None = None,
    scored: Scored | None = None,
) -> np.ndarray:
    """``booster``'s probabilities of every row of ``features`` (+ ``extra`` columns)."""
    out = np.empty(len(features), np.float32)
    for start in range(0, len(features), PREDICT_CHUNK):
        end = min(len(features), start + PREDICT_CHUNK)
        rows = features[start:end]
        if extra is not None:
            rows = np.hstack([rows, extra[start:end]])
        out[start:end] = booster.predict(rows)
        if scored is not None:
            scored(end)
    return out


def stage1_chunk(
    matcher: BestMatcher,
    found: Candidates,
    start: int,
    end: int,
    progress: Progress | None = None,
    scored: Scored | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stage 1 features of pairs ``start:end``, their probabilities and `REPORTED_FEATURES`."""
    features, names = pair_features(found, matcher.config, start, end, progress)
    if names != matcher.names1:
        raise SameSameError(
            "This catalog's features differ from the trained model's; retrain the best model"
        )
    prob = predict(matcher.stage1, features, None, scored)
    reported = features[:, [names.index(name) for name in REPORTED_FEATURES]].copy()
    return prob, reported, features


def stage2_chunk(
    matcher: BestMatcher, features: np.ndarray, graph: np.ndarray, scored: Scored | None = None
) -> np.ndarray:
    """Stage 2 probabilities of one chunk from its stage 1 features and graph features."""
    return predict(matcher.stage2, features, graph, scored)


class Runner(Protocol):
    """Where the neighbour searches and the chunks of pairs run."""

    def search(self, build: IndexBuilder, n: int, k: int, progress: Progress) -> Neighbours: ...

    def chunks(self, m: int) -> list[tuple[int, int]]: ...

    def stage1(
        self,
        matcher: BestMatcher,
        found: Candidates,
        chunks: Chunks,
        progress: Progress,
        scored: Scored,
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """(probabilities, reported features) of each chunk, in order."""
        ...

    def stage2(
        self, matcher: BestMatcher, chunks: Chunks, graph: np.ndarray, scored: Scored
    ) -> list[np.ndarray]:
        """Stage 2 probabilities of each chunk, in order (``graph``: every pair's), from
        what `stage1` kept of the chunks: the candidates are let go before the graph stage."""
        ...

    def close(self) -> None:
        """Let go of what the chunks left (spilled features, broadcasts); safe to repeat."""
        ...


class LocalRunner:
    """Everything on this machine, a chunk at a time; with more than one chunk, stage 1
    features wait in a temporary folder for stage 2 instead of being computed twice."""

    def __init__(self, chunk: int | None = None) -> None:
        self.chunk = chunk
        self._spill: tempfile.TemporaryDirectory[str] | None = None
        self._held: list[np.ndarray] = []

    def search(self, build: IndexBuilder, n: int, k: int, progress: Progress) -> Neighbours:
        return search_here(build, n, k, progress)

    def chunks(self, m: int) -> list[tuple[int, int]]:
        return chunk_bounds(m, self.chunk or FEATURE_CHUNK)

    def stage1(
        self,
        matcher: BestMatcher,
        found: Candidates,
        chunks: Chunks,
        progress: Progress,
        scored: Scored,
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        out = []
        keep = matcher.stage2 is not None
        if keep and len(chunks) > 1:
            self._spill = tempfile.TemporaryDirectory(prefix="samesame-best-")
        for number, (start, end) in enumerate(chunks):
            prob, reported, features = stage1_chunk(
                matcher,
                found,
                start,
                end,
                lambda done, _, start=start: progress(start + done, len(found.left)),
                lambda done, start=start: scored(start + done),
            )
            out.append((prob, reported))
            if keep and self._spill is not None:
                np.save(Path(self._spill.name) / f"{number}.npy", features)
            elif keep:
                self._held.append(features)
            del features
        return out

    def stage2(
        self, matcher: BestMatcher, chunks: Chunks, graph: np.ndarray, scored: Scored
    ) -> list[np.ndarray]:
        out = []
        for number, (start, end) in enumerate(chunks):
            features = (
                self._held[number]
                if self._spill is None
                else np.load(Path(self._spill.name) / f"{number}.npy")
            )
            out.append(
                stage2_chunk(matcher, features, graph[start:end], lambda d, s=start: scored(s + d))
            )
        return out

    def close(self) -> None:
        self._held = []
        if self._spill is not None:
            self._spill.cleanup()
            self._spill = None


def score_candidates(
    matcher: BestMatcher,
    inputs: MatchInputs,
    stages: Stages | None = None,
    runner: Runner | None = None,
    only: int | None = None,
    seen: Callable[[Candidates], None] | None = None,
) -> tuple[PairTable, np.ndarray, np.ndarray]:
    """Candidate pairs of ``inputs`` with stage 1 and final probabilities (no labels needed),
    a progress bar per stage through ``stages``; with a cross-encoder stage, ``only`` limits
    its re-scoring to the pairs of that posting (a single-item query). ``seen`` is shown the
    candidates before they are let go (what a query keeps of the catalog)."""
    table, prob1, prob = _two_stages(matcher, inputs, stages, runner, seen)
    if matcher.rescorer is None or len(prob) == 0:
        return table, prob1, prob
    rescoring = stage_bar(stages, "best: title transformer (unsure pairs)")
    rescored = matcher.rescorer.rescore(
        inputs.titles, table.left, table.right, prob, matcher.config, only, rescoring
    )
    return table, prob1, rescored


def _two_stages(
    matcher: BestMatcher,
    inputs: MatchInputs,
    stages: Stages | None,
    runner: Runner | None,
    seen: Callable[[Candidates], None] | None = None,
) -> tuple[PairTable, np.ndarray, np.ndarray]:
    """The classifiers' candidate pairs and probabilities (see `score_candidates`)."""
    runner = runner or LocalRunner()
    encoder = matcher.title_encoder
    title_vectors = encoder.encode(inputs.titles) if encoder is not None else None
    head = matcher.image_head
    head_vectors = None
    if head is not None and inputs.image_vectors is not None:
        head_vectors = head.embed(inputs.image_vectors, inputs.has_vector)
    found = find_candidates(
        inputs, matcher.config, title_vectors, stages, runner.search, head_vectors
    )
    if seen is not None:
        seen(found)
    m = len(found.left)
    featuring = stage_bar(stages, "best: pair features (candidate pairs)")
    scoring = stage_bar(stages, "best: scoring (candidate pairs × stages)")
    passes = 1 if matcher.stage2 is None else 2
    chunks = runner.chunks(m)
    try:
        firsts = runner.stage1(
            matcher, found, chunks, featuring, lambda done: scoring(done, passes * m)
        )
        prob1 = np.concatenate([p for p, _ in firsts]) if m else np.zeros(0, np.float32)
        table = PairTable(
            found.left,
            found.right,
            np.vstack([r for _, r in firsts])
            if m
            else np.zeros((0, len(REPORTED_FEATURES)), np.float32),
            list(REPORTED_FEATURES),
            found.word,
            found.char,
            found.timings,
        )
        # The neighbour lists, rank caches and title facts are done with (stage 2 reads
        # each chunk's stage 1 features back): let them go before the graph stage's sums.
        del firsts, found
        if m == 0 or matcher.stage2 is None:
            return table, prob1, prob1
        graph = graph_features(table, prob1, inputs.size, matcher.config)[0]
        seconds = runner.stage2(matcher, chunks, graph, lambda done: scoring(m + done, passes * m))
        return table, prob1, np.concatenate(seconds)
    finally:
        runner.close()
