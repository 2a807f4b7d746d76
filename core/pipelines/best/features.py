"""Candidates and stage 1 features of the ``best`` pipeline.

Candidates are each posting's top-k neighbours by word TF-IDF, character TF-IDF, perceptual
hash and, when present, image vectors and a learned title encoder, all through the neighbour
indexes of `core.candidates` (so bounded by k, whatever the catalog looks like). Each candidate
(i < j) then gets a row of features: similarity per modality, each side's rank in the other's
list, how the pair compares with each side's neighbourhood, and the title features of
`core.pipelines.best.text_features`. Nothing here looks at labels.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

import numpy as np
from scipy.sparse import csr_matrix

from core.candidates import (
    DenseIndex,
    HashIndex,
    NeighbourIndex,
    Neighbours,
    SparseIndex,
    TfidfModel,
    TfidfSpec,
    all_rows,
    fit_tfidf,
    row_cosine,
    union_directed,
)
from core.pipelines.best.config import BestConfig
from core.pipelines.best.text_features import TitleContext, text_pair_features, title_context
from core.pipelines.inputs import MatchInputs, hash_distances, vector_cosines

Progress = Callable[[int, int], None]
#: A progress bar per named stage (`core.matching.Hooks.progress`); None draws nothing.
Stages = Callable[[str], Progress | None]
#: Builds one modality's index (picklable: a Spark job ships it to its workers).
IndexBuilder = Callable[[], NeighbourIndex]
#: Every posting's top-k list of one index: (builder, n, k, progress) → lists.
Search = Callable[[IndexBuilder, int, int, Progress], Neighbours]


def search_here(build: IndexBuilder, n: int, k: int, progress: Progress) -> Neighbours:
    """Every posting's top-k list, searched on this machine."""
    return all_rows(build(), n, k, progress=progress)


def stage_bar(stages: Stages | None, name: str) -> Progress:
    """The stage's (done, total) callback, or one that draws nothing."""
    bar = stages(name) if stages is not None else None
    return bar if bar is not None else (lambda done, total: None)


@dataclass
class PairTable:
    """Candidate pairs of one catalog with their stage 1 features and what stage 2 reuses."""

    left: np.ndarray
    right: np.ndarray
    features: np.ndarray
    names: list[str]
    word: csr_matrix
    char: csr_matrix
    timings: dict[str, float] = field(default_factory=dict)

    def column(self, name: str, keep: np.ndarray) -> np.ndarray:
        """One feature of the pairs ``keep`` selects (NaN when this table lacks it)."""
        if name not in self.names:
            return np.full(int(np.count_nonzero(keep)), np.nan, np.float32)
        return self.features[keep, self.names.index(name)]


def title_models(titles: Sequence[str], config: BestConfig) -> tuple[TfidfModel, TfidfModel]:
    """Word and character TF-IDF of a catalog's titles (rows sorted, see `title_matrices`)."""
    word = fit_tfidf(titles, TfidfSpec("word", sublinear=True))
    char = fit_tfidf(
        titles,
        TfidfSpec("char_wb", config.char_ngram_min, config.char_ngram_max, sublinear=True),
    )
    # Sorted here, not by whichever index gets the matrix first: sums over a row's entries
    # in another order differ in the last bit, which a split at cosine 1.0 can tell apart.
    word.matrix.sort_indices()
    char.matrix.sort_indices()
    return word, char


def title_matrices(titles: Sequence[str], config: BestConfig) -> tuple[csr_matrix, csr_matrix]:
    word, char = title_models(titles, config)
    return word.matrix, char.matrix


@dataclass(frozen=True)
class Neighbourhood:
    """Where a modality puts each side of a set of pairs: each side's rank in the other's list,
    and each side's nearest, 5th and last neighbour similarity; ``typical`` is the catalog's
    median nearest-neighbour similarity. The batch reads it off the neighbour lists
    (`neighbourhood`); a single-item query works it out with the item inserted
    (`core.pipelines.best.query_state`)."""

    rank_a: np.ndarray
    rank_b: np.ndarray
    top1_a: np.ndarray
    top1_b: np.ndarray
    kth_a: np.ndarray
    kth_b: np.ndarray
    last_a: np.ndarray
    last_b: np.ndarray
    typical: float


#: The neighbour whose similarity the margin features compare with.
MARGIN_RANK = 5


def median_nearest(top1: np.ndarray) -> float:
    """The catalog's typical nearest-neighbour similarity (NaN when no posting has one)."""
    return float(np.nanmedian(top1)) if np.isfinite(top1).any() else np.nan


def neighbourhood(nb: Neighbours, left: np.ndarray, right: np.ndarray) -> Neighbourhood:
    """The pairs' `Neighbourhood` in a catalog's neighbour lists."""
    rank_a, rank_b = nb.ranks(left, right)
    top1 = nb.score[:, 0] if nb.k else np.full(len(nb.index), np.nan, np.float32)
    kth = nb.kth_score(MARGIN_RANK)
    last = nb.kth_score(nb.k) if nb.k else kth
    return Neighbourhood(
        rank_a,
        rank_b,
        top1[left],
        top1[right],
        kth[left],
        kth[right],
        last[left],
        last[right],
        median_nearest(top1),
    )


def modality_features(
    name: str, sim: np.ndarray, hood: Neighbourhood, higher: bool
) -> dict[str, np.ndarray]:
    """Similarity, mutual ranks and how the pair compares with each side's neighbourhood."""
    score = sim if higher else 64.0 - sim
    with np.errstate(invalid="ignore"):
        gap_a, gap_b = hood.top1_a - score, hood.top1_b - score
        margin_a, margin_b = score - hood.kth_a, score - hood.kth_b
        # The catalog's typical nearest-neighbour similarity: long noisy titles score lower
        # cosines everywhere, so "how far above the usual nearest" carries across catalogs.
        return {
            f"{name}_sim": sim.astype(np.float32),
            f"{name}_sim_rel": (score - hood.typical).astype(np.float32),
            f"{name}_rank_min": np.minimum(hood.rank_a, hood.rank_b),
            f"{name}_rank_max": np.maximum(hood.rank_a, hood.rank_b),
            f"{name}_gap_min": np.fmin(gap_a, gap_b),
            f"{name}_gap_max": np.fmax(gap_a, gap_b),
            f"{name}_margin5_min": np.fmin(margin_a, margin_b),
            f"{name}_margin5_max": np.fmax(margin_a, margin_b),
            f"{name}_density_min": np.fmin(hood.last_a, hood.last_b),
            f"{name}_density_max": np.fmax(hood.last_a, hood.last_b),
        }


@dataclass
class Candidates:
    """A catalog's neighbour lists per modality and its distinct candidate pairs (i < j):
    everything pair features are computed from, a chunk of pairs at a time if need be."""

    inputs: MatchInputs
    lists: list[Neighbours]
    dense: dict[str, tuple[np.ndarray, np.ndarray]]
    word: csr_matrix
    char: csr_matrix
    left: np.ndarray
    right: np.ndarray
    context: TitleContext
    timings: dict[str, float] = field(default_factory=dict)
    #: The word and character TF-IDF models ``word`` and ``char`` are the rows of.
    tfidf: tuple[TfidfModel, TfidfModel] | None = None


def find_candidates(
    inputs: MatchInputs,
    config: BestConfig,
    title_vectors: np.ndarray | None = None,
    stages: Stages | None = None,
    search: Search = search_here,
    head_vectors: np.ndarray | None = None,
) -> Candidates:
    """Each posting's top-k neighbours in every modality (a progress bar across them),
    each index searched by ``search`` (on this machine, or in blocks on Spark)."""
    started = time.perf_counter()
    n = inputs.size
    titles = list(inputs.titles)
    tfidf = title_models(titles, config)
    word, char = tfidf[0].matrix, tfidf[1].matrix
    builders: list[tuple[IndexBuilder, int]] = [
        (partial(SparseIndex, "word", word), config.k_word),
        (partial(SparseIndex, "char", char), config.k_char),
        (
            partial(HashIndex, "hash", inputs.hashes, inputs.has_hash, config.hash_max_distance),
            config.k_hash,
        ),
    ]
    dense: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if inputs.image_vectors is not None and inputs.vector_count >= 2:
        dense["image"] = (inputs.image_vectors, inputs.has_vector)
        if head_vectors is not None:
            dense["image_head"] = (head_vectors, inputs.has_vector)
    if title_vectors is not None:
        dense["title_model"] = (title_vectors, np.array([bool(t) for t in titles]))
    for name, (vectors, present) in dense.items():
        k = config.k_title_model if name == "title_model" else config.k_image
        builders.append((partial(DenseIndex, name, vectors, present, "sklearn"), k))
    searching = stage_bar(stages, "best: finding candidates (postings × modalities)")
    lists = []
    for number, (build, k) in enumerate(builders):
        offset = number * n
        lists.append(
            search(
                build,
                n,
                k,
                lambda done, _, offset=offset: searching(offset + done, len(builders) * n),
            )
        )
    left, right = union_directed(lists)
    context = title_context(titles)
    timings = {"neighbours": time.perf_counter() - started}
    return Candidates(inputs, lists, dense, word, char, left, right, context, timings, tfidf)


def pair_features(
    found: Candidates,
    config: BestConfig,
    start: int = 0,
    end: int | None = None,
    progress: Progress | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Stage 1 features (matrix, sorted names) of candidate pairs ``start:end``; ``progress``
    hears (pairs done within them, their count)."""
    inputs = found.inputs
    left, right = found.left[start:end], found.right[start:end]
    started = time.perf_counter()
    columns: dict[str, np.ndarray] = {}
    for nb in found.lists:
        sim = pair_similarities(found, nb.name, left, right)
        hood = neighbourhood(nb, left, right)
        columns.update(modality_features(nb.name, sim, hood, nb.name != "hash"))
    _time(found.timings, "modality_features", started)
    started = time.perf_counter()
    matrix, names = feature_matrix(
        columns, set(found.dense), inputs.titles, left, right, found.context, config, progress
    )
    _time(found.timings, "text_features", started)
    return matrix, names


def _time(timings: dict[str, float], name: str, started: float) -> None:
    timings[name] = timings.get(name, 0.0) + time.perf_counter() - started


def pair_similarities(found: Candidates, name: str, left: np.ndarray, right: np.ndarray):
    """One modality's similarity of each pair ("hash": the Hamming distance in bits, lower is
    closer; NaN where a side has no hash or vector)."""
    inputs = found.inputs
    if name in ("word", "char"):
        return row_cosine(found.word if name == "word" else found.char, left, right)
    if name == "hash":
        sim = np.full(len(left), np.nan, np.float32)
        both = inputs.has_hash[left] & inputs.has_hash[right]
        sim[both] = hash_distances(inputs.hashes[left[both]], inputs.hashes[right[both]])
        return sim
    vectors, present = found.dense[name]
    sim = np.full(len(left), np.nan, np.float32)
    both = present[left] & present[right]
    sim[both] = vector_cosines(vectors[left[both]], vectors[right[both]])
    return sim


def feature_matrix(
    columns: dict[str, np.ndarray],
    dense: set[str],
    titles: Sequence[str],
    left: np.ndarray,
    right: np.ndarray,
    context: TitleContext,
    config: BestConfig,
    progress: Progress | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Stage 1's matrix (sorted names) from the modality ``columns`` of pairs (left, right) of
    ``titles``: NaN columns for the image modalities not in ``dense``, the title features and
    the catalog's size (``context`` describes every title: its rows are the catalog's)."""
    expected = {"image", "image_head"} if config.image_head else {"image"}
    for absent in sorted(expected - dense):
        # The classifier always sees the same columns; NaN says "no image vectors here".
        for key in list(columns):
            if key.startswith("word_"):
                columns[absent + key[4:]] = np.full(len(left), np.nan, np.float32)
    columns.update(
        text_pair_features(
            titles,
            left,
            right,
            difflib_ratio=config.difflib_ratio,
            progress=progress,
            context=context,
        )
    )
    # Ranks and densities mean different things in a catalog of 500 and of 50,000 postings.
    size = max(1, len(titles))
    columns["catalog_log_size"] = np.full(len(left), np.log(size), np.float32)
    names = sorted(name for name in columns if config.keeps(name))
    # Column by column, each freed once copied: the dict and the matrix never both whole.
    matrix = np.empty((len(left), len(names)), np.float32)
    for number, name in enumerate(names):
        matrix[:, number] = columns.pop(name)
    return matrix, names


def build_pair_table(
    inputs: MatchInputs,
    config: BestConfig,
    title_vectors: np.ndarray | None = None,
    stages: Stages | None = None,
    head_vectors: np.ndarray | None = None,
) -> PairTable:
    """Candidates and stage 1 features of one catalog, every pair at once (training, and
    catalogs small enough to hold them)."""
    found = find_candidates(inputs, config, title_vectors, stages, head_vectors=head_vectors)
    features, names = pair_features(
        found, config, progress=stage_bar(stages, "best: pair features (candidate pairs)")
    )
    return PairTable(
        found.left, found.right, features, names, found.word, found.char, found.timings
    )
