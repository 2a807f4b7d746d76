"""The `Pipeline` interface and the one registry of pipelines.

A pipeline says what it is (name, title, a plain-language summary), what it needs (which image
vectors, whether a trained model), whether it can run now and why not, and four steps:
`Pipeline.prepare` (a `MatchRequest` in: indexes, trained parts, catalog-wide scores out, as
`Prepared`, whose `Prepared.candidates` says which pairs to look at), `Pipeline.pair_frame`
(the columns its rules read, for pairs), `Pipeline.score` (per-modality scores and the
decision) and `Pipeline.refine` (matches only the whole catalog's scores can decide, such as
a lonely posting's nearest partner). The batch engine (`core.engine`), the single-item query
(`core.query`) and the Spark job (`core.spark`, in ``mapInPandas``) all run those same steps;
the CLI, the app's pages and Spark list pipelines from `PIPELINES`, never by hand.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from core.candidates import DenseIndex, HashIndex, distinct_pairs
from core.errors import SameSameError
from core.pipelines.inputs import MatchInputs
from core.settings import MatchSettings

if TYPE_CHECKING:
    from core.candidates import NeighbourIndex
    from core.store import Store

Progress = Callable[[int, int], None]
#: A progress bar per named stage (`core.matching.Hooks.progress`); None draws nothing.
Stages = Callable[[str], Progress | None]


@dataclass(frozen=True)
class MatchRequest:
    """What a pipeline is asked to prepare a catalog for.

    Args:
        inputs: the catalog's postings (titles, hashes, image vectors).
        settings: the thresholds and limits in force.
        progress: (done, total) of the work that takes longest.
        stages: a progress bar per named stage, for a pipeline with stages of its own.
        rows: only these postings will be asked about (a new item's query).
        relaxed: offer the nearest postings even where no rule can pass (near misses).
        model: the trained model, for a pipeline that has one (`Pipeline.needs_model`).
        runner: where catalog-wide scoring runs (None: here; `core.spark.best` spreads it).
    """

    inputs: MatchInputs
    settings: MatchSettings
    progress: Progress | None = None
    stages: Stages | None = None
    rows: np.ndarray | None = None
    relaxed: bool = False
    model: Any = None
    runner: Any = None


@dataclass(frozen=True)
class Readiness:
    """Whether a pipeline can run on a catalog now, in words a user can act on.

    Args:
        ready: it can run (perhaps with a fallback, which ``reason`` names).
        reason: what it will use, or why it cannot run.
        action: what would make it (fully) ready, e.g. "Embed the images".
    """

    ready: bool
    reason: str
    action: str | None = None


@dataclass
class Source:
    """One candidate source: a modality's index searched for each posting's top ``k``."""

    index: NeighbourIndex
    k: int
    min_score: float | None = None


@dataclass
class Prepared:
    """A catalog made ready for one pipeline: its candidate sources and what scoring reads."""

    inputs: MatchInputs
    settings: MatchSettings
    sources: list[Source]
    extra: dict[str, Any] = field(default_factory=dict)
    #: Seconds the catalog-wide steps took, by name (reported with the run).
    timings: dict[str, float] = field(default_factory=dict)

    def row_chunks(self, pairs_per_chunk: int) -> Iterator[np.ndarray]:
        """Consecutive postings, as many at a time as bring at most about ``pairs_per_chunk``
        candidates (each source offers a posting at most its ``k``)."""
        n = self.inputs.size
        rows = max(1, pairs_per_chunk // max(1, sum(source.k for source in self.sources)))
        for start in range(0, n, rows):
            yield np.arange(start, min(n, start + rows), dtype=np.int64)

    def candidates(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Distinct (query, other) position pairs: each of ``rows`` with its candidates."""
        queries, others = [], []
        for source in self.sources:
            query, other, _ = source.index.search_rows(rows, source.k, source.min_score).directed()
            queries.append(query)
            others.append(other)
        if not queries:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return distinct_pairs(np.concatenate(queries), np.concatenate(others))


class Pipeline(ABC):
    """A way of deciding which postings are the same product."""

    name: ClassVar[str]
    title: ClassVar[str]
    summary: ClassVar[str]
    #: Which stored image vectors it reads: "imagenet" (pretrained backbone), "siamese", None.
    image_kind: ClassVar[str | None] = None
    needs_model: ClassVar[bool] = False
    #: Whether the "translate titles" setting applies to it.
    translates: ClassVar[bool] = False
    #: Whether it has a model to train on labelled data (`train`), and whether that needs photos.
    trainable: ClassVar[bool] = False
    trains_on_images: ClassVar[bool] = False
    #: The `MatchSettings` thresholds its rules read (the Evaluate page tunes these).
    threshold_fields: ClassVar[tuple[str, ...]] = ()
    #: Those of them that read image vectors (without vectors, hashes decide instead).
    image_threshold_fields: ClassVar[tuple[str, ...]] = ()
    #: Lower is more accurate on data nobody tuned on: pages lead with the most accurate
    #: pipeline that has matches.
    accuracy_rank: ClassVar[int] = 9
    #: The per-modality scores `score` reports, in display order.
    score_columns: ClassVar[tuple[str, ...]] = ()
    #: What compares titles: "tfidf" (word TF-IDF cosine) or "ratio" (SequenceMatcher ratio);
    #: the Spark job picks its title candidates (word or character shingles) by it.
    text_evidence: ClassVar[str] = "tfidf"
    #: Whether the Spark job can run it (``spark_reason`` says why not).
    spark: ClassVar[bool] = True
    spark_reason: ClassVar[str] = ""

    # -- what it reads ---------------------------------------------------------------------------
    def image_model(
        self, store: Store, settings: MatchSettings, model_dir: Path | None = None
    ) -> tuple[str, str | None] | None:
        """(model name, version) of the stored vectors it compares, or None (hashes only)."""
        return None

    def vector_count(
        self, store: Store, settings: MatchSettings, model_dir: Path | None = None
    ) -> int:
        """How many postings have the image vectors it compares (0: perceptual hashes are its
        only image evidence)."""
        model = self.image_model(store, settings, model_dir)
        return store.count_embeddings(model[0], model[1]) if model else 0

    def model_folder(self, store: Store, model_dir: Path | None = None) -> Path | None:
        """Where its trained model lives: ``model_dir`` when given, else the database's own
        folder; None when it has no model."""
        return None

    def load_model(self, store: Store, model_dir: Path | None = None) -> Any:
        """The trained model its `score` reads (`needs_model`), or None."""
        return None

    def decision_threshold(self, store: Store) -> float | None:
        """A learned model's decision threshold (close calls are measured from it), or None
        for pipelines whose thresholds are settings."""
        return None

    def in_sample(self, store: Store, model_dir: Path | None = None) -> bool:
        """Whether its scores here come from a model trained on this catalog's own labels."""
        return False

    def settings_for(
        self,
        store: Store | None,
        settings: MatchSettings,
        model_dir: Path | None = None,
        pin: bool = False,
    ) -> tuple[MatchSettings, str | None]:
        """The settings it applies to this catalog, and a note when one of them could not be
        had: ``settings`` as given, unless one refers to a value stored with its model (the
        store's own model, or ``model_dir``; without a store, only ``model_dir``, as the Spark
        job has it). With ``pin`` that value is written in as a fixed one (for a page that
        varies it)."""
        return settings, None

    @abstractmethod
    def readiness(
        self, store: Store, settings: MatchSettings, model_dir: Path | None = None
    ) -> Readiness: ...

    def train(
        self,
        store: Store,
        settings: MatchSettings,
        model_dir: Path,
        progress: Progress | None = None,
    ) -> dict[str, Any]:
        """Train its model on the catalog's labels and save it in ``model_dir``.

        Returns:
            What training did, with a one-line ``summary`` for people.
        """
        raise SameSameError(f"The {self.name} pipeline has no model to train")

    # -- candidates and scores -------------------------------------------------------------------
    def candidate_floors(self, settings: MatchSettings) -> dict[str, float]:
        """The least similarity a candidate needs per modality ("text", "image" cosine, "hash"
        bits at most) to be able to pass a rule: every engine searches down to these."""
        return {"text": 0.0, "image": -1.0, "hash": float(settings.hash_max_distance)}

    @abstractmethod
    def prepare(self, request: MatchRequest) -> Prepared:
        """Candidate sources (neighbour indexes) and what scoring reads, for one catalog (see
        `MatchRequest` for what is asked)."""

    @abstractmethod
    def pair_frame(self, prepared: Prepared, left: np.ndarray, right: np.ndarray) -> pd.DataFrame:
        """The columns `score` reads, for pairs of catalog positions (left < right)."""

    @abstractmethod
    def score(
        self, frame: pd.DataFrame, settings: MatchSettings, model: Any = None
    ) -> pd.DataFrame:
        """Scores and decisions of candidate pairs (``model``: a trained model, if it has one).

        Returns:
            A frame aligned with ``frame``: the `score_columns`, ``rule`` (which rules fired,
            "+"-joined, "" when none), ``matched`` (bool) and ``similarity`` (0..1, how alike:
            the order in which a posting's matches are kept and shown).
        """

    def close_calls(
        self, scores: pd.DataFrame, settings: MatchSettings, threshold: float | None = None
    ) -> np.ndarray:
        """Which matched pairs passed their rules only narrowly: a person should look at them.

        Args:
            scores: `score`'s output (or stored pairs): the score columns and ``rule``.
            threshold: a learned model's decision threshold, where it has one.
        """
        return np.zeros(len(scores), bool)

    def refine(self, prepared: Prepared, model: Any = None) -> pd.DataFrame | None:
        """Matches only the whole catalog's scores can decide, added to `score`'s before each
        posting keeps its best: ``left`` < ``right`` (positions) and `score`'s columns; None
        when the pipeline has none (the rule pipelines decide pair by pair)."""
        return None


def image_source(inputs: MatchInputs, settings: MatchSettings, min_score: float | None):
    """Each posting's ``top_k`` nearest photo vectors, or None without (two) vectors."""
    if inputs.vector_count < 2:
        return None
    index = DenseIndex("image", inputs.image_vectors, inputs.has_vector, settings.neighbour_backend)
    return Source(index, settings.top_k, min_score)


def hash_source(inputs: MatchInputs, settings: MatchSettings, max_bits: int) -> Source:
    """Each posting's ``top_k`` nearest perceptual hashes, at most ``max_bits`` apart."""
    return Source(HashIndex("hash", inputs.hashes, inputs.has_hash, max_bits), settings.top_k)


# -- the registry ----------------------------------------------------------------------------
PIPELINES: dict[str, Pipeline] = {}


def register(pipeline: Pipeline) -> Pipeline:
    PIPELINES[pipeline.name] = pipeline
    return pipeline


def get_pipeline(name: str) -> Pipeline:
    """The registered pipeline called ``name``.

    Raises:
        SameSameError: no such pipeline (the message lists the ones there are).
    """
    try:
        return PIPELINES[name]
    except KeyError:
        raise SameSameError(
            f"Unknown pipeline {name!r}; choose one of {', '.join(PIPELINES)}"
        ) from None


def pipeline_names() -> list[str]:
    return list(PIPELINES)


def most_accurate_first() -> list[Pipeline]:
    return sorted(PIPELINES.values(), key=lambda pipe: pipe.accuracy_rank)


def rule_categories(names: list[str]) -> list[str]:
    """Every label a set of rules can produce, indexed by the bit mask of the rules fired."""
    return [
        "+".join(name for bit, name in enumerate(names) if mask >> bit & 1)
        for mask in range(1 << len(names))
    ]


def rules_text(fired: dict[str, np.ndarray]) -> pd.Categorical:
    """'image+text'-style labels of which rules fired per pair, as a categorical (a code per
    pair, not a string: a run can keep millions of them)."""
    names = list(fired)
    n = len(next(iter(fired.values()))) if fired else 0
    mask = np.zeros(n, dtype=np.int64)
    for bit, name in enumerate(names):
        mask |= np.asarray(fired[name], bool).astype(np.int64) << bit
    return pd.Categorical.from_codes(mask, categories=rule_categories(names))


def decision_frame(
    frame: pd.DataFrame,
    scores: dict[str, np.ndarray],
    fired: dict[str, np.ndarray],
    similarity: np.ndarray,
) -> pd.DataFrame:
    """What `Pipeline.score` returns, from its scores, fired rules and similarity."""
    matched = (
        np.logical_or.reduce([np.asarray(v, bool) for v in fired.values()])
        if fired and len(frame)
        else np.zeros(len(frame), bool)
    )
    out = pd.DataFrame({name: np.asarray(v) for name, v in scores.items()}, index=frame.index)
    out["rule"] = rules_text(fired) if fired else pd.Categorical([""] * len(frame))
    out["matched"] = matched
    out["similarity"] = np.nan_to_num(np.asarray(similarity, np.float32), nan=0.0)
    return out


#: A score within this much of its threshold is a close call (cosines, ratios, distances).
CLOSE_CALL_BAND = 0.05
#: The same for a learned model's probability.
CLOSE_CALL_PROBABILITY = 0.15


def hash_margin(scores: pd.DataFrame, settings: MatchSettings) -> np.ndarray:
    """Perceptual-hash rule margin in bands: a pair exactly at the bit limit is a close call."""
    distance = scores["hash_distance"].to_numpy(np.float32)
    return (settings.hash_max_distance - distance + 1.0) / 2.0


def close_call_mask(scores: pd.DataFrame, margins: dict[str, np.ndarray]) -> np.ndarray:
    """Matched pairs none of whose fired rules passed by a full band (``margins`` are in bands:
    1 = one band past the threshold) ."""
    rules = scores["rule"].astype(str).to_numpy()
    sure = np.zeros(len(scores), bool)
    for name, margin in margins.items():
        fired = np.char.find(("+" + rules + "+").astype(str), f"+{name}+") >= 0
        with np.errstate(invalid="ignore"):
            sure |= fired & (np.nan_to_num(margin, nan=0.0) >= 1.0)
    return (rules != "") & ~sure
