"""Training the ``best`` pipeline: LightGBM pair classifiers, group-aware out-of-fold
probabilities, and the match thresholds tuned on them (never on the catalog matched later).

Training learns from candidates found inside the labelled catalog and inside sub-catalogs split
from it by group (halves and quarters by default), with the catalog's size as a feature:
ranks and densities depend on how many postings compete. A model trained on one size was
measurably worse on catalogs of another (F1 0.857 vs 0.883 on a 5.5k held-out catalog when
trained on the whole 22k instead of quarters; 0.825 vs 0.840 on a 13.7k one without the whole).
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.errors import SameSameError
from core.pipelines.best.config import BestConfig, training_levels
from core.pipelines.best.graph import graph_features
from core.pipelines.best.rescoring import Rescorer, fit_rescorer
from core.pipelines.best.thresholds import group_folds, subset_f1
from core.pipelines.best.training_set import (
    TrainingSet,
    build_training_set,
    fit_image_head,
    fit_title_encoder,
)
from core.pipelines.inputs import MatchInputs

Progress = Callable[[int, int], None]


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


def _fit_held_out(
    x: np.ndarray, y: np.ndarray, names: list[str], train: np.ndarray, config: BestConfig, what: str
):
    """A booster on the pairs ``train`` selects.

    Raises:
        SameSameError: those pairs hold one class only (too few groups to hold folds out):
            never silently fall back to an in-sample prediction.
    """
    if not train.any() or y[train].min() == y[train].max():
        raise SameSameError(
            f"Too few labelled groups to train {what} with folds held out: add labelled "
            "products, or use fewer training sub-catalogs (best_train_splits)"
        )
    return _train_booster(x[train], y[train], names, config)


def _out_of_fold(
    x: np.ndarray, y: np.ndarray, names: list[str], fold: np.ndarray, config: BestConfig
) -> np.ndarray:
    """Each pair's probability from a model that never saw its fold.

    Every candidate pair lies inside one fold (training sub-catalogs nest in the folds), so
    "the pair's fold" is one fold and the model saw neither of its postings' groups.
    """
    out = np.zeros(len(y), np.float32)
    for f in np.unique(fold):
        held = fold == f
        booster = _fit_held_out(x, y, names, ~held, config, f"fold {f}")
        out[held] = booster.predict(x[held])
    return out


def _nested_stage1(
    x: np.ndarray, y: np.ndarray, names: list[str], fold: np.ndarray, config: BestConfig
) -> dict[tuple[int, int], np.ndarray]:
    """Stage 1 probabilities for the stage 2 models: for a stage 2 model that holds fold f
    out, a training pair of fold g is scored by a stage 1 model that saw neither f nor g, so
    no label of fold f reaches stage 2 through its graph features.

    Returns:
        (f, g) → probabilities of the pairs of fold g, from a model without folds f and g.
    """
    folds = np.unique(fold)
    models = {}
    for i, f in enumerate(folds):
        for g in folds[i + 1 :]:
            train = (fold != f) & (fold != g)
            models[(f, g)] = _fit_held_out(x, y, names, train, config, f"folds {f} and {g}")
    nested = {}
    for (f, g), booster in models.items():
        for held_out, scored in ((f, g), (g, f)):
            rows = fold == scored
            nested[(held_out, scored)] = booster.predict(x[rows]).astype(np.float32)
    return nested


@dataclass(frozen=True)
class TrainedStages:
    """What `fit_stages` learnt: the configuration with its tuned thresholds, the classifiers,
    their feature names, the learned encoders (None when off) and the training record."""

    config: BestConfig
    stage1: Any
    stage2: Any | None
    names1: list[str]
    names2: list[str]
    title_encoder: Any | None
    image_head: Any | None
    rescorer: Rescorer | None
    info: dict[str, Any]


class _Steps:
    """The training's progress in steps, reported to ``progress`` as (done, total)."""

    def __init__(self, total: int, progress: Progress | None) -> None:
        self.done = 0
        self.total = total
        self.progress = progress

    def add(self) -> None:
        """One more step: the image head's, counted once the head is fitted."""
        self.total += 1

    def tick(self) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total)

    def within_next(self) -> Progress:
        """A (done, total) callback drawn inside the next step (the fine-tuning's batches)."""

        def report(done: int, total: int) -> None:
            if self.progress is not None:
                self.progress(self.done * total + done, self.total * total)

        return report


def _checked_labels(inputs: MatchInputs, labels: Sequence[str]) -> np.ndarray:
    """The labels as strings, one per posting.

    Raises:
        SameSameError: labels do not line up with the postings, or no two postings share a
            label (nothing to learn from).
    """
    checked = np.asarray([str(v) for v in labels], dtype=object)
    n = inputs.size
    if len(checked) != n:
        raise SameSameError(f"{len(checked)} labels for {n} postings; give one per posting")
    if n < 4 or len(set(checked.tolist())) == n:
        raise SameSameError("Training needs labelled groups: no two postings share a label")
    return checked


def _fit_first_stage(
    training: TrainingSet, config: BestConfig, timings: dict[str, float], steps: _Steps
) -> tuple[Any, np.ndarray]:
    """Stage 1's booster on every training pair and its out-of-fold probabilities."""
    t0 = time.perf_counter()
    oof = _out_of_fold(training.x1, training.y, training.names, training.fold, config)
    steps.tick()
    stage1 = _train_booster(training.x1, training.y, training.names, config)
    timings["stage1"] = time.perf_counter() - t0
    steps.tick()
    return stage1, oof


def _graph_block(
    training: TrainingSet, probabilities: np.ndarray, keep: list[int], config: BestConfig
) -> np.ndarray:
    """Graph features of the tables ``keep``, from these stage 1 probabilities."""
    blocks = []
    for t in keep:
        prob = probabilities[training.table_rows(t)]
        blocks.append(graph_features(training.tables[t], prob, len(training.parts[t]), config)[0])
    return np.vstack(blocks)


def _graph_out_of_fold(
    training: TrainingSet, oof: np.ndarray, x2: np.ndarray, names2: list[str], config: BestConfig
) -> np.ndarray:
    """Stage 2's out-of-fold probabilities: the model holding fold f out trains on the other
    folds with graph features from stage 1 models that saw neither fold f nor the pair's own
    fold, so no label of fold f reaches it through its graph features."""
    x1, y, fold = training.x1, training.y, training.fold
    nested = _nested_stage1(x1, y, training.names, fold, config)
    everything = range(len(training.tables))
    oof2 = np.zeros(len(y), np.float32)
    for f in np.unique(fold):
        train_tables = [t for t in everything if training.table_fold(t) != f]
        nested_prob = oof.copy()
        for g in np.unique(fold):
            if g != f:
                nested_prob[fold == g] = nested[(f, g)]
        train = np.concatenate([np.arange(len(y))[training.table_rows(t)] for t in train_tables])
        x_train = np.hstack([x1[train], _graph_block(training, nested_prob, train_tables, config)])
        booster = _fit_held_out(
            x_train, y[train], names2, np.ones(len(train), bool), config, f"fold {f}"
        )
        held = fold == f
        oof2[held] = booster.predict(x2[held])
    return oof2


def _fit_graph_stage(
    training: TrainingSet,
    oof: np.ndarray,
    config: BestConfig,
    timings: dict[str, float],
    steps: _Steps,
) -> tuple[Any, list[str], np.ndarray]:
    """Stage 2's booster on stage 1's features plus graph features of its out-of-fold
    probabilities ``oof``; returns it, its feature names and its own out-of-fold
    probabilities."""
    t0 = time.perf_counter()
    first = training.tables[0]
    gnames = graph_features(first, oof[: len(first.left)], len(training.parts[0]), config)[1]
    names2 = training.names + gnames
    everything = list(range(len(training.tables)))
    x2 = np.hstack([training.x1, _graph_block(training, oof, everything, config)])
    oof2 = _graph_out_of_fold(training, oof, x2, names2, config)
    steps.tick()
    stage2 = _train_booster(x2, training.y, names2, config)
    timings["stage2"] = time.perf_counter() - t0
    steps.tick()
    return stage2, names2, oof2


def _fit_third_stage(
    titles: Sequence[str],
    training: TrainingSet,
    prob: np.ndarray,
    config: BestConfig,
    progress: Progress | None,
) -> tuple[Rescorer, dict[str, Any], BestConfig]:
    """Fit the cross-encoder stage and tune the thresholds on the fold it held out.

    Returns the rescorer, what the held-out fold's F1 was before and after it (for the
    training record) and ``config`` with those thresholds and the blend's weights.
    """
    left, right, labels = training.left, training.right, training.virtual_labels
    started = time.perf_counter()
    rescorer, rescored, held = fit_rescorer(
        titles, training.real, left, right, prob, training.y, training.fold, config, progress
    )
    inside = training.posting_fold == held
    before = subset_f1(inside, labels, left, right, prob, config.min_one)[2]
    threshold, low, after = subset_f1(inside, labels, left, right, rescored, config.min_one)
    config = config.learnt(
        threshold=threshold, threshold_low=low, cross_encoder_blend=list(rescorer.weights)
    )
    record = {
        "held_out_fold": held,
        "held_out_f1_before": round(before, 4),
        "held_out_f1_after": round(after, 4),
        "rescored_pairs": int((rescored != prob).sum()),
        "seconds": round(time.perf_counter() - started, 2),
    }
    return rescorer, record, config


def _training_record(
    labels: np.ndarray,
    training: TrainingSet,
    started: float,
    timings: dict[str, float],
    f1: tuple[float, float],
    settings_record: dict[str, Any],
) -> dict[str, Any]:
    """What the training saw and reached (``f1``: stage 1's and the final out-of-fold F1),
    stored with the model."""
    y = training.y
    positives = int(y.sum())
    sizes = np.unique(training.virtual_labels, return_counts=True)[1]
    true_pairs = int(sum(c * (c - 1) // 2 for c in sizes))
    return {
        "trained_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "training_seconds": round(time.perf_counter() - started, 2),
        "timings": {k: round(v, 2) for k, v in timings.items()},
        "postings": len(labels),
        "label_groups": len(set(labels.tolist())),
        "training_catalogs": [len(idx) for idx in training.parts],
        "candidate_pairs": len(y),
        "candidate_recall": round(positives / max(1, true_pairs), 4),
        # The share of training candidates that are true pairs: the prior the probabilities
        # were learnt under (what a catalog-adaptive decision compares a new catalog with).
        "positive_share": round(positives / max(1, len(y)), 6),
        "oof_f1_stage1": round(f1[0], 4),
        "oof_f1": round(f1[1], 4),
        "settings": settings_record,
        "python": platform.python_version(),
    }


def _sub_catalogs(
    labels: np.ndarray, config: BestConfig
) -> tuple[list[int], np.ndarray, np.ndarray]:
    """The training levels, each posting's finest sub-catalog and its coarsest one (its fold).

    Sub-catalogs split by group at several sizes (e.g. halves and quarters): candidates are
    searched within each, and the classifier sees the catalog's size as a feature, so rank and
    density features are learnt at more than one catalog size. With a title encoder, each
    coarsest sub-catalog is embedded by an encoder that never saw its groups (cross-fitting),
    so the classifier learns how far to trust it on unseen products.
    """
    levels = training_levels(config)
    top = max(levels)
    part_of = group_folds(labels, top, config.seed + 1)
    # The coarsest sub-catalogs: the folds of the out-of-fold predictions, and the splits the
    # learned encoders are cross-fitted on (a posting's vector from a model without its fold).
    coarsest = part_of // (top // levels[0])
    return levels, part_of, coarsest


def fit_stages(
    inputs: MatchInputs,
    labels: Sequence[str],
    config: BestConfig,
    settings_record: dict[str, Any],
    progress: Progress | None = None,
) -> TrainedStages:
    """Learn from a labelled catalog (``labels[i]`` is posting i's product group).

    The returned stages hold ``config`` with the tuned thresholds (``config`` is unchanged).

    Raises:
        SameSameError: labels do not line up with the postings, or no two postings share a
            label (nothing to learn from).
    """
    labels = _checked_labels(inputs, labels)
    steps = _Steps((6 if config.graph_stage else 4) + int(config.cross_encoder), progress)
    started = time.perf_counter()
    timings: dict[str, float] = {}
    levels, part_of, coarsest = _sub_catalogs(labels, config)
    encoder, vectors = fit_title_encoder(inputs, labels, coarsest, config, timings)
    head, head_vectors = fit_image_head(inputs, labels, coarsest, config, timings)
    if head is not None:  # a step of its own, counted once the head is known to be fitted
        steps.add()
        steps.tick()
    # A catalog without image vectors has nothing to train the head on: no head columns.
    config = config.learnt(image_head=head is not None)
    training = build_training_set(
        inputs, labels, part_of, coarsest, levels, config, vectors, head_vectors, timings
    )
    steps.tick()
    training.check()
    stage1, oof = _fit_first_stage(training, config, timings, steps)
    t1, low1, oof1_f1 = training.tune_thresholds(oof, config.min_one)
    stage2, names2 = None, []
    if config.graph_stage:
        stage2, names2, oof = _fit_graph_stage(training, oof, config, timings, steps)
    threshold, low, f1 = training.tune_thresholds(oof, config.min_one)
    config = config.learnt(
        threshold=threshold, threshold_low=low, stage1_threshold=t1, stage1_threshold_low=low1
    )
    steps.tick()
    rescorer, rescoring = None, None
    if config.cross_encoder:
        rescorer, rescoring, config = _fit_third_stage(
            inputs.titles, training, oof, config, steps.within_next()
        )
        timings["cross_encoder"] = rescoring["seconds"]
        steps.tick()
    info = _training_record(labels, training, started, timings, (oof1_f1, f1), settings_record)
    if rescoring is not None:
        info["cross_encoder"] = rescoring
    names = training.names
    return TrainedStages(config, stage1, stage2, names, names2, encoder, head, rescorer, info)
