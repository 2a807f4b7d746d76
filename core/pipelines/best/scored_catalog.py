"""``best``'s prepared catalog: every candidate pair scored once, read back by the engine.

``best``'s features are catalog-wide (neighbour ranks, densities, token rarities, the graph of
stage 1's probabilities), so its `Pipeline.prepare` scores every candidate pair at once
(`core.pipelines.best.scoring`). The engine then asks for a chunk of postings' pairs at a
time, as it does of the rule pipelines' indexes: `ScoredCatalog.candidates` lists them from
the pairs each posting is in, and `ScoredCatalog.frame` reads their scores back.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from core.candidates import distinct_pairs
from core.candidates.ratio import sequence_ratio
from core.pipelines.base import MatchRequest, Prepared
from core.pipelines.best.features import PairTable

#: What a pair frame reports of stage 1's features, by the name `Pipeline.score` gives it.
REPORTED = {
    "tfidf_cosine": "word_sim",
    "char_cosine": "char_sim",
    "hash_distance": "hash_sim",
    "image_cosine": "image_sim",
}


@dataclass
class ScoredCatalog(Prepared):
    """Candidate pairs (``left`` < ``right``, sorted), their stage 1 and final probabilities and
    the features reported with them; each posting's pairs, as compressed rows."""

    left: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    #: ``left`` × postings + ``right``: sorted, what a pair is looked up by.
    keys: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    right: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    prob1: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    prob: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    reported: dict[str, np.ndarray] = field(default_factory=dict)
    #: Pairs of each posting: ``partners[starts[i]:starts[i + 1]]`` are posting i's.
    starts: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))
    partners: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    titles: np.ndarray = field(default_factory=lambda: np.zeros(0, object))
    #: Pairs at this probability or more get difflib's ratio (the model's threshold).
    ratio_from: float = 0.0
    #: difflib's ratio of each pair, once worked out (NaN until then): a chunk of the engine
    #: reads a pair from each of its postings, the ratio is worked out once.
    ratios: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))

    @classmethod
    def of(
        cls, request: MatchRequest, table: PairTable, prob1: np.ndarray, prob: np.ndarray
    ) -> ScoredCatalog:
        n = request.inputs.size
        left, right = table.left.astype(np.int64), table.right.astype(np.int64)
        keys = left * n + right
        order = np.argsort(keys, kind="stable")
        every = np.ones(len(left), bool)
        reported = {
            shown: table.column(name, every)[order].astype(np.float32)
            for shown, name in REPORTED.items()
        }
        left, right = left[order], right[order]
        ends = np.concatenate([left, right])
        by_end = np.argsort(ends, kind="stable")
        return cls(
            request.inputs,
            request.settings,
            [],
            timings=dict(table.timings),
            left=left,
            keys=keys[order],
            right=right,
            prob1=np.asarray(prob1, np.float32)[order],
            prob=np.asarray(prob, np.float32)[order],
            reported=reported,
            starts=np.concatenate([[0], np.cumsum(np.bincount(ends, minlength=n))]),
            partners=np.concatenate([right, left])[by_end],
            titles=np.asarray(request.inputs.titles, dtype=object),
            ratio_from=float(request.model.config.threshold),
            ratios=np.full(len(left), np.nan, np.float32),
        )

    def row_chunks(self, pairs_per_chunk: int) -> Iterator[np.ndarray]:
        """Consecutive postings holding at most ``pairs_per_chunk`` pairs between them (a
        posting with more is a chunk of its own): a crowded posting does not shrink every
        chunk."""
        n, start = self.inputs.size, 0
        while start < n:
            stop = int(np.searchsorted(self.starts, self.starts[start] + pairs_per_chunk, "right"))
            stop = min(n, max(stop - 1, start + 1))
            yield np.arange(start, stop, dtype=np.int64)
            start = stop

    def candidates(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows = np.asarray(rows, np.int64)
        counts = self.starts[rows + 1] - self.starts[rows]
        query = np.repeat(rows, counts)
        first = np.repeat(self.starts[rows] - np.cumsum(counts) + counts, counts)
        other = self.partners[first + np.arange(len(query))]
        return distinct_pairs(query, other)

    def frame(self, left: np.ndarray, right: np.ndarray, chosen: bool = False) -> pd.DataFrame:
        """Scores of candidate pairs (``left`` < ``right``); difflib's ratio (as the ensemble
        reports it, for people to read) of those at the threshold, or of every one when they
        are ``chosen`` (the nearest rule's)."""
        n = self.inputs.size
        at = np.searchsorted(self.keys, left.astype(np.int64) * n + right)
        shown = np.full(len(at), chosen) | (self.prob[at] >= self.ratio_from)
        missing = at[shown & np.isnan(self.ratios[at])]
        self.ratios[missing] = [
            sequence_ratio(self.titles[a], self.titles[b])
            for a, b in zip(self.left[missing].tolist(), self.right[missing].tolist(), strict=True)
        ]
        return pd.DataFrame(
            {
                "probability": self.prob[at],
                "stage1_probability": self.prob1[at],
                **{name: values[at] for name, values in self.reported.items()},
                "text_ratio": np.where(shown, self.ratios[at], np.float32(np.nan)),
            }
        )
