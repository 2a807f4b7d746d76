"""The learned ``best`` pipeline: candidates by nearest neighbours, a pair classifier trained on
the catalog's own labels, and a second, graph-aware classifier on top.

1. Candidates: each posting's top-k neighbours by word TF-IDF, character TF-IDF, perceptual hash
   and, when present, image vectors and a learned title encoder (all computed inside the catalog
   being matched; TF-IDF is refitted per catalog, so no vocabulary has to be stored).
2. Stage 1: LightGBM on pair features (`core.pairs`): cosines, ranks of each side in the other's
   list, neighbourhood density, fuzzy string scores, token and number/unit agreement, hash
   distance, image cosine.
3. Stage 2: LightGBM on stage 1's features plus graph features of stage 1's probabilities
   (shared confident neighbours, each side's best probability, TF-IDF cosine after blending each
   posting with its confident neighbours — query expansion).
4. Post-processing: a pair matches at probability >= ``threshold``; a posting left alone still
   gets its most probable partner at >= ``threshold_low``. Both are tuned on out-of-fold
   probabilities of the training catalog (group-aware inner folds), never on the data matched.

Training learns from candidates found inside the labelled catalog and inside sub-catalogs split
from it by group (halves and quarters by default), with the catalog's size as a feature:
ranks and densities depend on how many postings compete. A model trained on one size was
measurably worse on catalogs of another (F1 0.857 vs 0.883 on a 5.5k held-out catalog when
trained on the whole 22k instead of quarters; 0.825 vs 0.840 on a 13.7k one without the whole).

Saved models hold JSON, LightGBM text files and (optionally) a Keras ``.keras`` title encoder
loaded in safe mode: nothing in the folder can execute code when loaded.
"""

from __future__ import annotations

import json
import logging
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix

from core.errors import ModelNotTrainedError, SameSameError
from core.matches import MatchResult
from core.pairs import (
    Neighbours,
    candidate_pairs,
    dense_neighbours,
    hash_neighbours,
    row_cosine,
    sparse_neighbours,
    text_pair_features,
)
from core.pipelines.base import MatchInputs, pairs_frame
from core.settings import MatchSettings
from core.similarity import sequence_ratio

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]

CONFIG_FILE = "best.json"
STAGE1_FILE = "stage1.lgb.txt"
STAGE2_FILE = "stage2.lgb.txt"
TITLE_MODEL_DIR = "title_encoder"
FORMAT_VERSION = 1


@dataclass
class BestConfig:
    """How the ``best`` pipeline finds candidates, learns and decides (stored with the model)."""

    k_word: int = 20
    k_char: int = 20
    k_hash: int = 5
    hash_max_distance: int = 24
    k_image: int = 20
    k_title_model: int = 20
    char_ngram_min: int = 3
    char_ngram_max: int = 5
    difflib_ratio: bool = False
    title_model: bool = False
    title_model_epochs: int = 12
    graph_stage: bool = True
    min_one: bool = True
    inner_folds: int = 4
    n_estimators: int = 200
    learning_rate: float = 0.1
    num_leaves: int = 63
    min_child_samples: int = 40
    # One thread by default: LightGBM's OpenMP threads spin-wait, and on a shared 2-core
    # machine two of them ran 20x slower than one (measured).
    threads: int = 1
    seed: int = 0
    # Training sub-catalog levels: each level splits the labelled catalog by group into that
    # many parts (levels must divide the largest one, so the parts nest).
    # [2, 4] (halves and quarters) is what BENCHMARKS.md measures. Adding 1 (the whole catalog)
    # helped on a 13.7k held-out catalog (F1 0.840 vs 0.825) at 1.5x the training time.
    train_splits: list[int] = field(default_factory=lambda: [2, 4])
    threshold: float = 0.5
    threshold_low: float = 0.5
    stage1_threshold: float = 0.5
    stage1_threshold_low: float = 0.5

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> BestConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


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


def training_levels(config: BestConfig) -> list[int]:
    levels = sorted({int(v) for v in config.train_splits})
    top = max(levels) if levels else 0
    if not levels or levels[0] < 1 or any(top % v for v in levels):
        raise SameSameError(f"train_splits must be positive and divide {top}: {levels}")
    if config.title_model and levels[0] == 1:
        # Cross-fitted encoders embed each half with the other half's encoder; vectors of the
        # two halves are not comparable, so the whole catalog cannot be a training catalog.
        levels = levels[1:] or [2]
    return levels


# --- Vectorising titles ----------------------------------------------------------------------


def _tfidf(titles: Sequence[str], **options: Any) -> csr_matrix:
    """L2-normalised TF-IDF rows; a catalog with no usable text gives all-zero rows."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(sublinear_tf=True, dtype=np.float32, **options)
    try:
        return vectorizer.fit_transform(titles).tocsr()
    except ValueError:  # empty vocabulary: every title empty (or only stop characters)
        return csr_matrix((len(titles), 1), dtype=np.float32)


def title_matrices(titles: Sequence[str], config: BestConfig) -> tuple[csr_matrix, csr_matrix]:
    word = _tfidf(titles, token_pattern=r"(?u)\b\w+\b")
    char = _tfidf(
        titles, analyzer="char_wb", ngram_range=(config.char_ngram_min, config.char_ngram_max)
    )
    return word, char


def subset_inputs(inputs: MatchInputs, idx: np.ndarray) -> MatchInputs:
    """The postings at positions ``idx`` as a catalog of their own."""
    return MatchInputs(
        [inputs.posting_ids[i] for i in idx],
        [inputs.titles[i] for i in idx],
        inputs.hashes[idx],
        inputs.has_hash[idx],
        None if inputs.image_vectors is None else inputs.image_vectors[idx],
        None if inputs.has_vector is None else inputs.has_vector[idx],
        inputs.image_model,
    )


# --- Stage 1 features ------------------------------------------------------------------------


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
        return {
            f"{name}_sim": sim.astype(np.float32),
            f"{name}_rank_min": np.minimum(rank_a, rank_b),
            f"{name}_rank_max": np.maximum(rank_a, rank_b),
            f"{name}_gap_min": np.fmin(gap_a, gap_b),
            f"{name}_gap_max": np.fmax(gap_a, gap_b),
            f"{name}_margin5_min": np.fmin(margin_a, margin_b),
            f"{name}_margin5_max": np.fmax(margin_a, margin_b),
            f"{name}_density_min": np.fmin(density_a, density_b),
            f"{name}_density_max": np.fmax(density_a, density_b),
        }


def build_pair_table(
    inputs: MatchInputs,
    config: BestConfig,
    title_vectors: np.ndarray | None = None,
) -> PairTable:
    """Candidates and stage 1 features of one catalog (nothing here looks at labels)."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    titles = list(inputs.titles)
    word, char = title_matrices(titles, config)
    lists = [
        sparse_neighbours("word", word, config.k_word),
        sparse_neighbours("char", char, config.k_char),
        hash_neighbours(inputs.hashes, inputs.has_hash, config.k_hash, config.hash_max_distance),
    ]
    dense: list[tuple[str, np.ndarray, np.ndarray | None]] = []
    if inputs.image_vectors is not None and inputs.vector_count >= 2:
        dense.append(("image", inputs.image_vectors, inputs.has_vector))
    if title_vectors is not None:
        present = np.array([bool(t) for t in titles])
        dense.append(("title_model", title_vectors, present))
    for name, vectors, present in dense:
        k = config.k_image if name == "image" else config.k_title_model
        lists.append(dense_neighbours(name, vectors, present, k))
    timings["neighbours"] = time.perf_counter() - started

    left, right = candidate_pairs(lists)
    started = time.perf_counter()
    columns: dict[str, np.ndarray] = {}
    for nb in lists:
        if nb.name == "word":
            sim = row_cosine(word, left, right)
        elif nb.name == "char":
            sim = row_cosine(char, left, right)
        elif nb.name == "hash":
            # "hash_sim" holds the Hamming distance in bits (lower is closer; NaN = no hash).
            sim = np.full(len(left), np.nan, np.float32)
            both = inputs.has_hash[left] & inputs.has_hash[right]
            from core.images import hamming

            sim[both] = hamming(inputs.hashes[left[both]], inputs.hashes[right[both]])
        else:
            vectors, present = next((v, p) for n, v, p in dense if n == nb.name)
            sim = np.full(len(left), np.nan, np.float32)
            both = (
                present[left] & present[right] if present is not None else np.ones(len(left), bool)
            )
            sim[both] = np.einsum("ij,ij->i", vectors[left[both]], vectors[right[both]])
        columns.update(_modality_features(nb.name, nb, sim, left, right, nb.name != "hash"))
    if "image" not in {nb.name for nb in lists}:
        # The classifier always sees the same columns; NaN says "no image vectors here".
        for key in list(columns):
            if key.startswith("word_"):
                columns["image" + key[4:]] = np.full(len(left), np.nan, np.float32)
    timings["modality_features"] = time.perf_counter() - started
    started = time.perf_counter()
    columns.update(text_pair_features(titles, left, right, difflib_ratio=config.difflib_ratio))
    # Ranks and densities mean different things in a catalog of 500 and of 50,000 postings.
    columns["catalog_log_size"] = np.full(len(left), np.log(max(1, len(titles))), np.float32)
    timings["text_features"] = time.perf_counter() - started
    names = sorted(columns)
    matrix = (
        np.column_stack([columns[n] for n in names]).astype(np.float32)
        if len(left)
        else np.zeros((0, len(names)), np.float32)
    )
    return PairTable(left, right, matrix, names, word, char, timings)


# --- Stage 2: graph features of stage 1's probabilities -----------------------------------


def _prob_matrix(n: int, left: np.ndarray, right: np.ndarray, prob: np.ndarray) -> csr_matrix:
    rows = np.concatenate([left, right])
    cols = np.concatenate([right, left])
    vals = np.concatenate([prob, prob]).astype(np.float32)
    return csr_matrix((vals, (rows, cols)), shape=(n, n))


def _row_dot(a: csr_matrix, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    return np.asarray(a[left].multiply(a[right]).sum(axis=1)).ravel().astype(np.float32)


def _blend(matrix: csr_matrix, weights: csr_matrix) -> csr_matrix:
    """Each row averaged with its confident neighbours' rows, weighted by probability."""
    from sklearn.preprocessing import normalize

    blended = matrix + weights @ matrix
    return normalize(blended).astype(np.float32).tocsr()


def graph_features(table: PairTable, prob: np.ndarray, n: int) -> tuple[np.ndarray, list[str]]:
    """Features of each pair's place in the graph of stage 1 probabilities."""
    left, right = table.left, table.right
    if len(left) == 0:
        return np.zeros((0, 0), np.float32), []
    p = _prob_matrix(n, left, right, prob)
    confident = p.multiply(p >= 0.5).tocsr()
    confident.eliminate_zeros()
    degree = np.asarray(confident.sum(axis=1)).ravel().astype(np.float32)
    best = np.asarray(p.max(axis=1).todense()).ravel().astype(np.float32)
    # Rank of the pair among each side's candidates by probability (0 = that side's best).
    order = np.lexsort((-np.concatenate([prob, prob]), np.concatenate([left, right])))
    ends = np.concatenate([left, right])[order]
    starts = np.searchsorted(ends, ends, side="left")
    rank = np.empty(2 * len(left), np.float32)
    rank[order] = np.arange(2 * len(left)) - starts
    rank_a, rank_b = rank[: len(left)], rank[len(left) :]
    # Shared neighbours: sum over k of p(i,k)·p(k,j), and the count of confident ones.
    shared = _row_dot(p, left, right)
    shared_conf = _row_dot((confident > 0).astype(np.float32), left, right)
    word_q = _blend(table.word, confident)
    char_q = _blend(table.char, confident)
    with np.errstate(divide="ignore", invalid="ignore"):
        cols = {
            "g_prob": prob.astype(np.float32),
            "g_rank_min": np.minimum(rank_a, rank_b),
            "g_rank_max": np.maximum(rank_a, rank_b),
            "g_best_min": np.minimum(best[left], best[right]),
            "g_best_max": np.maximum(best[left], best[right]),
            "g_degree_min": np.minimum(degree[left], degree[right]),
            "g_degree_max": np.maximum(degree[left], degree[right]),
            "g_shared": shared,
            "g_shared_confident": shared_conf,
            "g_shared_rel": shared_conf / np.maximum(1.0, np.minimum(degree[left], degree[right])),
            "g_word_blend": row_cosine(word_q, left, right),
            "g_char_blend": row_cosine(char_q, left, right),
        }
    names = list(cols)
    return np.column_stack([cols[k] for k in names]).astype(np.float32), names


# --- Classifier, folds and thresholds --------------------------------------------------------


def _lgb_params(config: BestConfig) -> dict[str, Any]:
    return {
        "objective": "binary",
        "learning_rate": config.learning_rate,
        "num_leaves": config.num_leaves,
        "min_child_samples": config.min_child_samples,
        "feature_fraction": 0.8,
        "bagging_fraction": 0.7,
        "bagging_freq": 1,
        "max_bin": 63,
        "num_threads": config.threads,
        "seed": config.seed,
        "deterministic": True,
        "force_row_wise": True,
        "verbose": -1,
    }


def _train_booster(x: np.ndarray, y: np.ndarray, names: list[str], config: BestConfig):
    import lightgbm as lgb

    data = lgb.Dataset(x, label=y.astype(np.float32), feature_name=names, free_raw_data=True)
    return lgb.train(_lgb_params(config), data, num_boost_round=config.n_estimators)


def _out_of_fold(
    x: np.ndarray,
    y: np.ndarray,
    names: list[str],
    fold: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    config: BestConfig,
) -> np.ndarray:
    """Probabilities of every pair from a model that saw neither side's group.

    A pair touching inner fold f is predicted by the model trained on pairs touching no posting
    of fold f; a pair across two folds gets the mean of its two predictions.
    """
    total = np.zeros(len(y), np.float64)
    count = np.zeros(len(y), np.float64)
    for f in range(config.inner_folds):
        touch = (fold[left] == f) | (fold[right] == f)
        if not touch.any() or touch.all():
            continue
        train = ~touch
        if y[train].min() == y[train].max():
            continue
        booster = _train_booster(x[train], y[train], names, config)
        total[touch] += booster.predict(x[touch])
        count[touch] += 1
    missing = count == 0
    if missing.any():  # degenerate tiny catalogs: fall back to the in-sample prediction
        booster = _train_booster(x, y, names, config)
        total[missing] = booster.predict(x[missing])
        count[missing] = 1
    return (total / count).astype(np.float32)


def group_folds(labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Fold number per posting such that each label group sits in one fold."""
    rng = np.random.default_rng(seed)
    groups, inverse = np.unique(labels, return_inverse=True)
    fold_of_group = rng.permutation(len(groups)) % k
    return fold_of_group[inverse]


def best_partner(n: int, left: np.ndarray, right: np.ndarray, prob: np.ndarray) -> np.ndarray:
    """Index of each posting's most probable candidate pair (-1 when it has none)."""
    ends = np.concatenate([left, right])
    pair = np.concatenate([np.arange(len(left)), np.arange(len(left))])
    probs = np.concatenate([prob, prob])
    order = np.lexsort((-probs, ends))
    ends, pair = ends[order], pair[order]
    first = np.ones(len(ends), bool)
    first[1:] = ends[1:] != ends[:-1]
    best = np.full(n, -1, np.int64)
    best[ends[first]] = pair[first]
    return best


def select_pairs(
    n: int,
    left: np.ndarray,
    right: np.ndarray,
    prob: np.ndarray,
    threshold: float,
    threshold_low: float,
    min_one: bool,
    partner: np.ndarray | None = None,
) -> np.ndarray:
    """Which pairs match: probability >= threshold, plus each lonely posting's best partner."""
    keep = prob >= threshold
    if not min_one or len(prob) == 0:
        return keep
    if partner is None:
        partner = best_partner(n, left, right, prob)
    matched = np.zeros(n, bool)
    matched[left[keep]] = True
    matched[right[keep]] = True
    has = partner >= 0
    lonely = has & ~matched
    lonely[has] &= prob[partner[has]] >= threshold_low
    keep = keep.copy()
    keep[partner[lonely]] = True
    return keep


def pair_f1(n: int, labels: np.ndarray, left: np.ndarray, right: np.ndarray) -> float:
    """Mean per-posting F1 of matched pairs (self included), as `core.metrics.evaluate`."""
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    return _pair_f1(n, counts[inverse], labels[left] == labels[right], left, right)


def _pair_f1(
    n: int, true_size: np.ndarray, same: np.ndarray, left: np.ndarray, right: np.ndarray
) -> float:
    predicted = 1.0 + np.bincount(left, minlength=n) + np.bincount(right, minlength=n)
    hits = 1.0 + np.bincount(left[same], minlength=n) + np.bincount(right[same], minlength=n)
    return float(np.mean(2 * hits / (predicted + true_size)))


def tune_thresholds(
    n: int, labels: np.ndarray, left: np.ndarray, right: np.ndarray, prob: np.ndarray, min_one: bool
) -> tuple[float, float, float]:
    """(threshold, threshold_low, F1) maximising mean per-posting F1 on out-of-fold scores."""
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    true_size = counts[inverse]
    same = labels[left] == labels[right]
    partner = best_partner(n, left, right, prob)
    best = (0.5, 0.5, -1.0)
    for t in np.arange(0.2, 0.9001, 0.025):
        lows = np.arange(0.05, t + 1e-9, 0.05) if min_one else [t]
        for low in lows:
            keep = select_pairs(n, left, right, prob, t, low, min_one, partner)
            f1 = _pair_f1(n, true_size, same[keep], left[keep], right[keep])
            if f1 > best[2]:
                best = (float(round(t, 4)), float(round(low, 4)), f1)
    return best


# --- The matcher -----------------------------------------------------------------------------


class BestMatcher:
    """A trained ``best`` pipeline. Build with `BestMatcher.fit` or `BestMatcher.load`."""

    def __init__(
        self,
        config: BestConfig,
        stage1: Any,
        stage2: Any | None,
        names1: list[str],
        names2: list[str],
        title_encoder: Any | None = None,
        info: dict[str, Any] | None = None,
    ) -> None:
        self.config = config
        self.stage1 = stage1
        self.stage2 = stage2
        self.names1 = names1
        self.names2 = names2
        self.title_encoder = title_encoder
        self.info = info or {}

    # Training ---------------------------------------------------------------------------------

    @classmethod
    def fit(
        cls,
        inputs: MatchInputs,
        labels: Sequence[str],
        settings: MatchSettings | None = None,
        progress: Progress | None = None,
        config: BestConfig | None = None,
    ) -> BestMatcher:
        """Learn from a labelled catalog (``labels[i]`` is posting i's product group).

        Raises:
            SameSameError: labels do not line up with the postings, or no two postings share a
                label (nothing to learn from).
        """
        config = BestConfig(**asdict(config)) if config else BestConfig()
        labels = np.asarray([str(v) for v in labels], dtype=object)
        n = len(inputs.posting_ids)
        if len(labels) != n:
            raise SameSameError(f"{len(labels)} labels for {n} postings; give one per posting")
        if n < 4 or len(set(labels.tolist())) == n:
            raise SameSameError("Training needs labelled groups: no two postings share a label")
        steps = 6 if config.graph_stage else 4
        step = 0

        def tick() -> None:
            nonlocal step
            step += 1
            if progress is not None:
                progress(step, steps)

        started = time.perf_counter()
        timings: dict[str, float] = {}
        levels = training_levels(config)
        top = max(levels)
        # Sub-catalogs split by group at several sizes (e.g. halves and quarters): candidates
        # are searched within each, and the classifier sees the catalog's size as a feature, so
        # rank and density features are learnt at more than one catalog size. With a title
        # encoder, each coarsest sub-catalog is embedded by an encoder that never saw its groups
        # (cross-fitting), so the classifier learns how far to trust it on unseen products.
        part_of = group_folds(labels, top, config.seed + 1)
        encoder = None
        vectors = None
        if config.title_model:
            from core.embedders.text_model import TitleEncoder, TitleEncoderConfig

            t0 = time.perf_counter()
            encoder, vectors = TitleEncoder.fit_cross(
                inputs.titles,
                labels,
                part_of // (top // min(levels)),
                TitleEncoderConfig(epochs=config.title_model_epochs, seed=config.seed),
            )
            timings["title_model"] = time.perf_counter() - t0
        parts: list[np.ndarray] = []
        tables: list[PairTable] = []
        tags: list[str] = []
        for level in levels:
            for s in range(level):
                idx = np.flatnonzero(part_of // (top // level) == s)
                sub_vectors = vectors[idx] if vectors is not None else None
                table = build_pair_table(subset_inputs(inputs, idx), config, sub_vectors)
                for key, value in table.timings.items():
                    timings[key] = timings.get(key, 0.0) + value
                parts.append(idx)
                tables.append(table)
                tags.append(f"{level}/{s}|")
        # "Virtual" postings: a posting appears once per level; ids are offsets into `real`.
        real = np.concatenate(parts)
        offsets = np.cumsum([0] + [len(idx) for idx in parts])
        virtual_labels = np.concatenate(
            [
                np.char.add(tag, labels[idx].astype(str))
                for tag, idx in zip(tags, parts, strict=True)
            ]
        ).astype(object)
        names = tables[0].names
        x1 = np.vstack([t.features for t in tables])
        left = np.concatenate([o + t.left for o, t in zip(offsets, tables, strict=False)])
        right = np.concatenate([o + t.right for o, t in zip(offsets, tables, strict=False)])
        nv = len(real)
        tick()
        y = (labels[real[left]] == labels[real[right]]).astype(np.float32)
        if y.sum() == 0 or y.min() == y.max():
            raise SameSameError("No candidate pair shares a label: nothing to learn from")
        fold = group_folds(labels, config.inner_folds, config.seed)[real]
        t0 = time.perf_counter()
        oof = _out_of_fold(x1, y, names, fold, left, right, config)
        tick()
        stage1 = _train_booster(x1, y, names, config)
        timings["stage1"] = time.perf_counter() - t0
        tick()
        t1, low1, oof1_f1 = tune_thresholds(nv, virtual_labels, left, right, oof, config.min_one)
        stage2, names2 = None, []
        if config.graph_stage:
            t0 = time.perf_counter()
            graphs = []
            starts = np.cumsum([0] + [len(t.left) for t in tables])
            for table, idx, start in zip(tables, parts, starts, strict=False):
                stage1_prob = oof[start : start + len(table.left)]
                graph, gnames = graph_features(table, stage1_prob, len(idx))
                graphs.append(graph)
            x2 = np.hstack([x1, np.vstack(graphs)])
            names2 = names + gnames
            del graphs
            oof = _out_of_fold(x2, y, names2, fold, left, right, config)
            tick()
            stage2 = _train_booster(x2, y, names2, config)
            timings["stage2"] = time.perf_counter() - t0
            tick()
        threshold, low, f1 = tune_thresholds(nv, virtual_labels, left, right, oof, config.min_one)
        config.threshold, config.threshold_low = threshold, low
        config.stage1_threshold, config.stage1_threshold_low = t1, low1
        tick()
        positives = int(y.sum())
        sizes = np.unique(virtual_labels, return_counts=True)[1]
        true_pairs = int(sum(c * (c - 1) // 2 for c in sizes))
        info = {
            "trained_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "training_seconds": round(time.perf_counter() - started, 2),
            "timings": {k: round(v, 2) for k, v in timings.items()},
            "postings": n,
            "label_groups": len(set(labels.tolist())),
            "training_catalogs": [len(idx) for idx in parts],
            "candidate_pairs": len(y),
            "candidate_recall": round(positives / max(1, true_pairs), 4),
            "oof_f1_stage1": round(oof1_f1, 4),
            "oof_f1": round(f1, 4),
            "settings": (settings or MatchSettings()).to_dict(),
            "python": platform.python_version(),
        }
        return cls(config, stage1, stage2, names, names2, encoder, info)

    # Matching ---------------------------------------------------------------------------------

    def probabilities(self, inputs: MatchInputs) -> tuple[PairTable, np.ndarray, np.ndarray]:
        """Candidate pairs with stage 1 and final probabilities (no labels needed)."""
        title_vectors = (
            self.title_encoder.encode(inputs.titles) if self.title_encoder is not None else None
        )
        table = build_pair_table(inputs, self.config, title_vectors)
        if table.names != self.names1:
            raise SameSameError(
                "This catalog's features differ from the trained model's; retrain the best model"
            )
        empty = np.zeros(0, np.float32)
        if len(table.left) == 0:
            return table, empty, empty
        prob1 = self.stage1.predict(table.features).astype(np.float32)
        if self.stage2 is None:
            return table, prob1, prob1
        graph, _ = graph_features(table, prob1, len(inputs.posting_ids))
        prob2 = self.stage2.predict(np.hstack([table.features, graph])).astype(np.float32)
        return table, prob1, prob2

    def match(
        self,
        inputs: MatchInputs,
        settings: MatchSettings | None = None,
        threshold: float | None = None,
    ) -> MatchResult:
        """Match a catalog (labels are not needed; the catalog may hold unseen products)."""
        settings = settings or MatchSettings()
        started = time.perf_counter()
        n = len(inputs.posting_ids)
        table, prob1, prob = self.probabilities(inputs)
        t = self.config.threshold if threshold is None else threshold
        low = min(t, self.config.threshold_low)
        keep = select_pairs(n, table.left, table.right, prob, t, low, self.config.min_one)
        column = {name: i for i, name in enumerate(table.names)}

        def feature(name: str) -> np.ndarray:
            return (
                table.features[keep, column[name]]
                if name in column
                else np.full(int(keep.sum()), np.nan, np.float32)
            )

        rule = np.where(prob[keep] >= t, "model", "nearest").astype(object)
        frame = pairs_frame(
            inputs,
            table.left[keep],
            table.right[keep],
            rule,
            {
                "probability": prob[keep],
                "stage1_probability": prob1[keep],
                "tfidf_cosine": feature("word_sim"),
                "char_cosine": feature("char_sim"),
                # difflib's ratio, as the ensemble reports it (only for the kept pairs: cheap).
                "text_ratio": np.array(
                    [
                        sequence_ratio(inputs.titles[a], inputs.titles[b])
                        for a, b in zip(table.left[keep], table.right[keep], strict=True)
                    ],
                    dtype=np.float32,
                ),
                "hash_distance": feature("hash_sim"),
                "image_cosine": feature("image_sim"),
            },
        )
        notices = []
        if inputs.vector_count == 0:
            notices.append("No image embeddings: image evidence came from perceptual hashes only.")
        return MatchResult(
            "best", inputs.posting_ids, frame, settings, time.perf_counter() - started, notices
        )

    # Persistence ------------------------------------------------------------------------------

    def save(self, folder: Path) -> None:
        """Write JSON + LightGBM text models (+ a safe-mode Keras encoder); no pickles."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.stage1.save_model(str(folder / STAGE1_FILE))
        if self.stage2 is not None:
            self.stage2.save_model(str(folder / STAGE2_FILE))
        if self.title_encoder is not None:
            self.title_encoder.save(folder / TITLE_MODEL_DIR)
        payload = {
            "format_version": FORMAT_VERSION,
            "pipeline": "best",
            "config": asdict(self.config),
            "features_stage1": self.names1,
            "features_stage2": self.names2,
            "info": self.info,
        }
        tmp = folder / (CONFIG_FILE + ".tmp")
        tmp.write_text(json.dumps(payload, indent=2, default=_json_default))
        tmp.replace(folder / CONFIG_FILE)

    @classmethod
    def load(cls, folder: Path) -> BestMatcher:
        import lightgbm as lgb

        folder = Path(folder)
        path = folder / CONFIG_FILE
        if not path.is_file() or not (folder / STAGE1_FILE).is_file():
            raise ModelNotTrainedError(
                f"No trained best model in {folder}. Train one first on a labelled catalog."
            )
        try:
            payload = json.loads(path.read_text())
            if payload.get("format_version") != FORMAT_VERSION:
                raise ModelNotTrainedError(
                    f"The best model in {folder} has format {payload.get('format_version')}, "
                    f"this version reads {FORMAT_VERSION}; retrain it"
                )
            config = BestConfig.from_dict(payload["config"])
            stage1 = lgb.Booster(model_file=str(folder / STAGE1_FILE))
            stage2 = None
            if config.graph_stage:
                stage2 = lgb.Booster(model_file=str(folder / STAGE2_FILE))
            encoder = None
            if config.title_model:
                from core.embedders.text_model import TitleEncoder

                encoder = TitleEncoder.load(folder / TITLE_MODEL_DIR)
            names1 = [str(n) for n in payload["features_stage1"]]
            names2 = [str(n) for n in payload["features_stage2"]]
        except SameSameError:
            raise
        except Exception as exc:  # damaged JSON or model files: say so, never a traceback
            raise ModelNotTrainedError(
                f"The best model in {folder} is damaged ({type(exc).__name__}: "
                f"{str(exc)[:300]}); retrain it"
            ) from exc
        return cls(config, stage1, stage2, names1, names2, encoder, payload.get("info", {}))


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def match_best(
    inputs: MatchInputs, matcher: BestMatcher, settings: MatchSettings | None = None
) -> MatchResult:
    """Run a trained ``best`` pipeline over a catalog (see `BestMatcher.fit` / `.load`)."""
    return matcher.match(inputs, settings)
