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


def title_matrices(titles: Sequence[str], config: BestConfig) -> tuple[csr_matrix, csr_matrix]:
    word = fit_tfidf(titles, TfidfSpec("word", sublinear=True)).matrix
    char = fit_tfidf(
        titles,
        TfidfSpec("char_wb", config.char_ngram_min, config.char_ngram_max, sublinear=True),
    ).matrix
    # Sorted here, not by whichever index gets the matrix first: sums over a row's entries
    # in another order differ in the last bit, which a split at cosine 1.0 can tell apart.
    word.sort_indices()
    char.sort_indices()
    return word, char


def _modality_features(
    name: str, nb: Neighbours, sim: np.ndarray, left: np.ndarray, right: np.ndarray, higher: bool
) -> dict[str, np.ndarray]:
    """Similarity, mutual ranks and how the pair compares with each side's neighbourhood."""
    rank_a, rank_b = nb.ranks(left, right)
    score = sim if higher else 64.0 - sim
    top1 = nb.score[:, 0] if nb.k else np.full(len(nb.index), np.nan, np.float32)
    kth = nb.kth_score(5)
    last = nb.kth_score(nb.k) if nb.k else kth
    with np.errstate(invalid="ignore"):
        gap_a, gap_b = top1[left] - score, top1[right] - score
        margin_a, margin_b = score - kth[left], score - kth[right]
        density_a, density_b = last[left], last[right]
        # The catalog's typical nearest-neighbour similarity: long noisy titles score lower
        # cosines everywhere, so "how far above the usual nearest" carries across catalogs.
        typical = float(np.nanmedian(top1)) if np.isfinite(top1).any() else np.nan
        return {
            f"{name}_sim": sim.astype(np.float32),
            f"{name}_sim_rel": (score - typical).astype(np.float32),
            f"{name}_rank_min": np.minimum(rank_a, rank_b),
            f"{name}_rank_max": np.maximum(rank_a, rank_b),
            f"{name}_gap_min": np.fmin(gap_a, gap_b),
            f"{name}_gap_max": np.fmax(gap_a, gap_b),
            f"{name}_margin5_min": np.fmin(margin_a, margin_b),
            f"{name}_margin5_max": np.fmax(margin_a, margin_b),
            f"{name}_density_min": np.fmin(density_a, density_b),
            f"{name}_density_max": np.fmax(density_a, density_b),
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
    word, char = title_matrices(titles, config)
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
    return Candidates(inputs, lists, dense, word, char, left, right, context, timings)


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
    timings = found.timings
    started = time.perf_counter()
    columns: dict[str, np.ndarray] = {}
    for nb in found.lists:
        if nb.name == "word":
            sim = row_cosine(found.word, left, right)
        elif nb.name == "char":
            sim = row_cosine(found.char, left, right)
        elif nb.name == "hash":
            # "hash_sim" holds the Hamming distance in bits (lower is closer; NaN = no hash).
            sim = np.full(len(left), np.nan, np.float32)
            both = inputs.has_hash[left] & inputs.has_hash[right]
            sim[both] = hash_distances(inputs.hashes[left[both]], inputs.hashes[right[both]])
        else:
            vectors, present = found.dense[nb.name]
            sim = np.full(len(left), np.nan, np.float32)
            both = present[left] & present[right]
            sim[both] = vector_cosines(vectors[left[both]], vectors[right[both]])
        columns.update(_modality_features(nb.name, nb, sim, left, right, nb.name != "hash"))
    expected = {"image", "image_head"} if config.image_head else {"image"}
    for absent in sorted(expected - set(found.dense)):
        # The classifier always sees the same columns; NaN says "no image vectors here".
        for key in list(columns):
            if key.startswith("word_"):
                columns[absent + key[4:]] = np.full(len(left), np.nan, np.float32)
    timings["modality_features"] = timings.get("modality_features", 0.0) + (
        time.perf_counter() - started
    )
    started = time.perf_counter()
    columns.update(
        text_pair_features(
            inputs.titles,
            left,
            right,
            difflib_ratio=config.difflib_ratio,
            progress=progress,
            context=found.context,
        )
    )
    # Ranks and densities mean different things in a catalog of 500 and of 50,000 postings.
    columns["catalog_log_size"] = np.full(len(left), np.log(max(1, inputs.size)), np.float32)
    timings["text_features"] = timings.get("text_features", 0.0) + (time.perf_counter() - started)
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
