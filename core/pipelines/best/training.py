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

from core.embedders.text_model import TitleEncoder, TitleEncoderConfig
from core.embedders.vector_head import VectorHead, VectorHeadConfig, can_fit_cross
from core.errors import SameSameError
from core.pipelines.best.config import BestConfig, training_levels
from core.pipelines.best.features import PairTable, build_pair_table
from core.pipelines.best.graph import graph_features
from core.pipelines.best.rescoring import Rescorer, fit_rescorer
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


@dataclass(frozen=True)
class TrainedStages:
    """What `fit_stages` learnt: the classifiers, their feature names, the learned encoders
    (None when off) and the training record."""

    stage1: Any
    stage2: Any | None
    names1: list[str]
    names2: list[str]
    title_encoder: Any | None
    image_head: Any | None
    rescorer: Rescorer | None
    info: dict[str, Any]


def _subset_f1(
    keep_postings: np.ndarray,
    labels: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    prob: np.ndarray,
    min_one: bool,
) -> tuple[float, float, float]:
    """`tune_thresholds` over the postings ``keep_postings`` selects and the pairs inside them."""
    rows = keep_postings[left] & keep_postings[right]
    position = np.cumsum(keep_postings) - 1
    return tune_thresholds(
        int(keep_postings.sum()),
        labels[keep_postings],
        position[left[rows]],
        position[right[rows]],
        prob[rows],
        min_one,
    )


def _fit_third_stage(
    titles: Sequence[str],
    real: np.ndarray,
    posting_fold: np.ndarray,
    pairs: tuple[np.ndarray, np.ndarray, np.ndarray],
    prob: np.ndarray,
    virtual_labels: np.ndarray,
    config: BestConfig,
    progress: Progress | None,
) -> tuple[Rescorer, dict[str, Any]]:
    """Fit the cross-encoder stage and set the thresholds, tuned on the fold it held out.

    ``pairs``: the candidates' (left, right, label) over virtual postings, ``posting_fold``
    each virtual posting's fold. Returns the rescorer and what the held-out fold's F1 was
    before and after it, for the training record.
    """
    left, right, y = pairs
    fold = posting_fold[left]
    started = time.perf_counter()
    rescorer, rescored, held = fit_rescorer(
        titles, real, left, right, prob, y, fold, config, progress
    )
    inside = posting_fold == held
    before = _subset_f1(inside, virtual_labels, left, right, prob, config.min_one)[2]
    threshold, low, after = _subset_f1(
        inside, virtual_labels, left, right, rescored, config.min_one
    )
    config.threshold, config.threshold_low = threshold, low
    config.cross_encoder_blend = list(rescorer.weights)
    record = {
        "held_out_fold": held,
        "held_out_f1_before": round(before, 4),
        "held_out_f1_after": round(after, 4),
        "rescored_pairs": int((rescored != prob).sum()),
        "seconds": round(time.perf_counter() - started, 2),
    }
    return rescorer, record


def fit_stages(
    inputs: MatchInputs,
    labels: Sequence[str],
    config: BestConfig,
    settings_record: dict[str, Any],
    progress: Progress | None = None,
) -> TrainedStages:
    """Learn from a labelled catalog (``labels[i]`` is posting i's product group).

    Sets the tuned thresholds on ``config``.

    Raises:
        SameSameError: labels do not line up with the postings, or no two postings share a
            label (nothing to learn from).
    """
    labels = np.asarray([str(v) for v in labels], dtype=object)
    n = inputs.size
    if len(labels) != n:
        raise SameSameError(f"{len(labels)} labels for {n} postings; give one per posting")
    if n < 4 or len(set(labels.tolist())) == n:
        raise SameSameError("Training needs labelled groups: no two postings share a label")
    steps = (6 if config.graph_stage else 4) + int(config.cross_encoder)
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
    # The coarsest sub-catalogs: the folds of the out-of-fold predictions, and the splits the
    # learned encoders are cross-fitted on (a posting's vector from a model without its fold).
    coarsest = part_of // (top // levels[0])
    encoder = None
    vectors = None
    if config.title_model:
        t0 = time.perf_counter()
        encoder, vectors = TitleEncoder.fit_cross(
            inputs.titles,
            labels,
            coarsest,
            TitleEncoderConfig(epochs=config.title_model_epochs, seed=config.seed),
        )
        timings["title_model"] = time.perf_counter() - t0
    head, head_vectors = None, None
    # Too few photos outside some fold: a member with nothing to learn would serve noise.
    if (
        config.image_head
        and inputs.has_vector is not None
        and can_fit_cross(inputs.has_vector, labels, coarsest)
    ):
        steps += 1
        t0 = time.perf_counter()
        head, head_vectors = VectorHead.fit_cross(
            inputs.image_vectors,
            inputs.has_vector,
            labels,
            coarsest,
            VectorHeadConfig(epochs=config.image_head_epochs, seed=config.seed),
        )
        timings["image_head"] = time.perf_counter() - t0
        tick()
    # A catalog without image vectors has nothing to train the head on: no head columns.
    config.image_head = head is not None
    parts: list[np.ndarray] = []
    tables: list[PairTable] = []
    tags: list[str] = []
    for level in levels:
        for s in range(level):
            idx = np.flatnonzero(part_of // (top // level) == s)
            sub_vectors = vectors[idx] if vectors is not None else None
            sub_head = head_vectors[idx] if head_vectors is not None else None
            table = build_pair_table(inputs.subset(idx), config, sub_vectors, None, sub_head)
            for key, value in table.timings.items():
                timings[key] = timings.get(key, 0.0) + value
            parts.append(idx)
            tables.append(table)
            tags.append(f"{level}/{s}|")
    # "Virtual" postings: a posting appears once per level; ids are offsets into `real`.
    real = np.concatenate(parts)
    offsets = np.cumsum([0] + [len(idx) for idx in parts])
    virtual_labels = np.concatenate(
        [np.char.add(tag, labels[idx].astype(str)) for tag, idx in zip(tags, parts, strict=True)]
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
    # The folds are the coarsest sub-catalogs: every candidate pair lies inside one.
    posting_fold = coarsest[real]
    fold = posting_fold[left]
    if (posting_fold[right] != fold).any():
        raise SameSameError("training sub-catalogs do not nest in the folds; check train_splits")
    t0 = time.perf_counter()
    oof = _out_of_fold(x1, y, names, fold, config)
    tick()
    stage1 = _train_booster(x1, y, names, config)
    timings["stage1"] = time.perf_counter() - t0
    tick()
    t1, low1, oof1_f1 = tune_thresholds(nv, virtual_labels, left, right, oof, config.min_one)
    stage2, names2 = None, []
    if config.graph_stage:
        t0 = time.perf_counter()
        starts = np.cumsum([0] + [len(t.left) for t in tables])
        table_fold = [int(coarsest[idx[0]]) for idx in parts]

        def graphs_with(probabilities: np.ndarray, keep: list[int]) -> np.ndarray:
            """Graph features of the tables ``keep``, from these stage 1 probabilities."""
            blocks = []
            for t in keep:
                rows = slice(starts[t], starts[t] + len(tables[t].left))
                blocks.append(
                    graph_features(tables[t], probabilities[rows], len(parts[t]), config)[0]
                )
            return np.vstack(blocks)

        everything = list(range(len(tables)))
        gnames = graph_features(tables[0], oof[: len(tables[0].left)], len(parts[0]), config)[1]
        names2 = names + gnames
        x2 = np.hstack([x1, graphs_with(oof, everything)])
        # Out-of-fold stage 2: the model holding fold f out trains on the other folds with
        # graph features from stage 1 models that saw neither fold f nor the pair's own fold.
        nested = _nested_stage1(x1, y, names, fold, config)
        oof2 = np.zeros(len(y), np.float32)
        for f in np.unique(fold):
            train_tables = [t for t in everything if table_fold[t] != f]
            nested_prob = oof.copy()
            for g in np.unique(fold):
                if g != f:
                    nested_prob[fold == g] = nested[(f, g)]
            train = np.concatenate(
                [np.arange(starts[t], starts[t] + len(tables[t].left)) for t in train_tables]
            )
            x_train = np.hstack([x1[train], graphs_with(nested_prob, train_tables)])
            booster = _fit_held_out(
                x_train, y[train], names2, np.ones(len(train), bool), config, f"fold {f}"
            )
            held = fold == f
            oof2[held] = booster.predict(x2[held])
        oof = oof2
        tick()
        stage2 = _train_booster(x2, y, names2, config)
        timings["stage2"] = time.perf_counter() - t0
        tick()
    threshold, low, f1 = tune_thresholds(nv, virtual_labels, left, right, oof, config.min_one)
    config.threshold, config.threshold_low = threshold, low
    config.stage1_threshold, config.stage1_threshold_low = t1, low1
    tick()
    rescorer, rescoring = None, None
    if config.cross_encoder:

        def fine_tuning(done: int, total: int) -> None:
            if progress is not None:  # the fine-tuning's batches inside one more step
                progress(step * total + done, steps * total)

        rescorer, rescoring = _fit_third_stage(
            inputs.titles,
            real,
            posting_fold,
            (left, right, y),
            oof,
            virtual_labels,
            config,
            fine_tuning,
        )
        timings["cross_encoder"] = rescoring["seconds"]
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
        # The share of training candidates that are true pairs: the prior the probabilities
        # were learnt under (what a catalog-adaptive decision compares a new catalog with).
        "positive_share": round(positives / max(1, len(y)), 6),
        "oof_f1_stage1": round(oof1_f1, 4),
        "oof_f1": round(f1, 4),
        "settings": settings_record,
        "python": platform.python_version(),
    }
    if rescoring is not None:
        info["cross_encoder"] = rescoring
    return TrainedStages(stage1, stage2, names, names2, encoder, head, rescorer, info)
