"""Training the ``best`` pipeline from labelled pairs instead of label groups: a reviewer's
verdicts, or a ``left_id,right_id,same`` file, on a catalog that may have no labels at all.

The candidates and their features are those of the whole catalog the pairs come from (so the
model learns at the size it will match at); a labelled pair that is a candidate becomes one
training example, a labelled pair the candidate search never offers cannot be scored and is
counted apart. Labelled pairs are rarely a fair sample of the candidates (a reviewer sees
the hard ones), so a sample of the unlabelled candidates, nearly all different products,
joins the training as "different". The decision threshold maximises per-posting F1 on
out-of-fold probabilities (the folds keep every posting's pairs together), each sampled pair
of a posting counting as the many unlabelled ones of the catalog.
Without label groups there is no graph stage, no title encoder and no "nearest partner"
rule: each of them needs to know every posting's product.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.errors import SameSameError
from core.pipelines.best.config import BestConfig
from core.pipelines.best.features import PairTable, build_pair_table
from core.pipelines.best.training import _lgb_params
from core.pipelines.inputs import MatchInputs

#: Fewest same and different candidate pairs training from pairs accepts.
MIN_EACH = 5
FOLDS = 5
#: Unlabelled candidates sampled as "different" per labelled pair (at least UNLABELLED_MIN).
UNLABELLED_PER_PAIR = 10
UNLABELLED_MIN = 2_000
#: How much more a labelled pair counts in training than a weakly labelled one.
VERDICT_WEIGHT = 1.0


def _posting_folds(
    n: int, left: np.ndarray, right: np.ndarray, y: np.ndarray, k: int, seed: int
) -> tuple[np.ndarray, str]:
    """Fold per pair such that pairs sharing a posting share a fold (connected components,
    spread so every fold gets its share of same pairs), and how the folds were made. When
    one component holds too many of the same pairs for that (every fold must leave both
    kinds to learn from), pairs are spread at random instead, same and different apart."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(left)), (left, right)), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    components, inverse = np.unique(component[left], return_inverse=True)
    positives = np.bincount(inverse, weights=y, minlength=len(components))
    sizes = np.bincount(inverse, minlength=len(components))
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(len(components)), -sizes, -positives))
    fold_of = np.zeros(len(components), np.int64)
    load = np.zeros((k, 2))
    for c in order:
        f = (
            int(np.lexsort((load[:, 1], load[:, 0]))[0])
            if positives[c]
            else int(np.argmin(load[:, 1]))
        )
        fold_of[c] = f
        load[f] += (positives[c], sizes[c])
    fold = fold_of[inverse]
    if all(len(np.unique(y[fold != f])) == 2 for f in range(k)):
        return fold, "postings"
    fold = np.zeros(len(y), np.int64)
    for label in (0, 1):
        members = np.flatnonzero(y == label)
        fold[members] = rng.permutation(len(members)) % k
    return fold, "pairs"


def _booster(x: np.ndarray, y: np.ndarray, weight: np.ndarray, names: list[str], config):
    import lightgbm as lgb

    data = lgb.Dataset(x, label=y, weight=weight, feature_name=names, free_raw_data=True)
    return lgb.train(_lgb_params(config), data, num_boost_round=config.n_estimators)


def _best_threshold(
    n: int,
    left: np.ndarray,
    right: np.ndarray,
    y: np.ndarray,
    prob: np.ndarray,
    weight: np.ndarray,
    judged: np.ndarray,
) -> tuple[float, float]:
    """(threshold, F1) maximising the mean per-posting F1 (itself included, as the
    competition scores it) over the postings of labelled pairs (``judged``): a posting's
    predicted and true matches are counted over its labelled pairs and the sampled unlabelled
    ones, each of those standing for ``weight`` candidates."""
    true = 1.0 + np.bincount(left, y, n) + np.bincount(right, y, n)
    best = (0.5, -1.0)
    for t in np.arange(0.05, 0.951, 0.025):
        said = (prob >= t).astype(np.float64) * weight
        predicted = 1.0 + np.bincount(left, said, n) + np.bincount(right, said, n)
        hit = said * y
        hits = 1.0 + np.bincount(left, hit, n) + np.bincount(right, hit, n)
        f1 = float(np.mean((2 * hits / (predicted + true))[judged]))
        if f1 > best[1]:
            best = (float(round(t, 4)), f1)
    return best


def _candidate_rows(
    left: np.ndarray, right: np.ndarray, given: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where the labelled pairs ``given`` (i, j, same) sit among the candidates.

    Returns:
        (row of each labelled pair that is a candidate, which of ``given`` are candidates,
        every candidate's key: smaller position × n + larger).
    """
    low, high = np.minimum(given[:, 0], given[:, 1]), np.maximum(given[:, 0], given[:, 1])
    candidate_keys = np.minimum(left, right) * n + np.maximum(left, right)
    order = np.argsort(candidate_keys)
    wanted = low * n + high
    at = np.searchsorted(candidate_keys[order], wanted)
    at = np.minimum(at, len(order) - 1) if len(order) else at
    found = (candidate_keys[order][at] == wanted) if len(order) else np.zeros(len(wanted), bool)
    return order[at[found]], found, candidate_keys


def _unlabelled_sample(
    candidates: int,
    rows: np.ndarray,
    candidate_keys: np.ndarray,
    rule_matches: tuple[np.ndarray, np.ndarray] | None,
    n: int,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Unlabelled candidates, nearly all of them different products, are what the model will
    mostly decide on; labelled pairs rarely show them (a reviewer sees the hard ones). A
    sample of them joins as "different" (or as the rule said, with ``rule_matches``).

    Returns:
        (the sampled candidate rows, their weak labels, how many candidates each stands for).
    """
    rng = np.random.default_rng(seed)
    unlabelled = np.setdiff1d(np.arange(candidates), rows)
    sample_size = min(len(unlabelled), max(UNLABELLED_MIN, UNLABELLED_PER_PAIR * len(rows)))
    sampled = rng.choice(unlabelled, sample_size, replace=False) if sample_size else unlabelled
    weak = np.zeros(len(sampled), np.float32)
    if rule_matches is not None and len(rule_matches[0]):
        a, b = np.asarray(rule_matches[0], np.int64), np.asarray(rule_matches[1], np.int64)
        matched = np.minimum(a, b) * n + np.maximum(a, b)
        weak = np.isin(candidate_keys[sampled], matched).astype(np.float32)
    return sampled, weak, len(unlabelled) / max(1, len(sampled))


def _out_of_fold(
    x: np.ndarray,
    y: np.ndarray,
    importance: np.ndarray,
    fold: np.ndarray,
    names: list[str],
    config: BestConfig,
) -> np.ndarray:
    """Each pair's probability from a booster that never saw its fold.

    Raises:
        SameSameError: a fold leaves one kind of pair only to learn from.
    """
    oof = np.zeros(len(y), np.float32)
    for f in np.unique(fold):
        held = fold == f
        if len(np.unique(y[~held])) < 2:
            raise SameSameError("Too few same or different pairs to hold a fold out: review more")
        booster = _booster(x[~held], y[~held], importance[~held], names, config)
        oof[held] = booster.predict(x[held])
    return oof


@dataclass(frozen=True)
class _Examples:
    """The training examples: the labelled pairs the candidate search offers, then the sampled
    unlabelled candidates.

    Attributes:
        rows: the labelled pairs' candidate rows.
        found: which of the given pairs are candidates.
        sampled: the sampled unlabelled candidate rows.
        left, right, x, y: every example's postings, features and label (weak for the sample).
        weight: how many candidates each example stands for in the threshold's F1.
        importance: each example's weight in training.
    """

    rows: np.ndarray
    found: np.ndarray
    sampled: np.ndarray
    left: np.ndarray
    right: np.ndarray
    x: np.ndarray
    y: np.ndarray
    weight: np.ndarray
    importance: np.ndarray


def _examples(
    table: PairTable,
    given: np.ndarray,
    n: int,
    rule_matches: tuple[np.ndarray, np.ndarray] | None,
    seed: int,
) -> _Examples:
    """The labelled pairs that are candidates, and a sample of the unlabelled ones.

    Raises:
        SameSameError: fewer than `MIN_EACH` same or different pairs are candidates.
    """
    rows, found, candidate_keys = _candidate_rows(table.left, table.right, given, n)
    y = given[found, 2].astype(np.float32)
    same, different = int(y.sum()), int(len(y) - y.sum())
    if same < MIN_EACH or different < MIN_EACH:
        raise SameSameError(
            f"Training from pairs needs at least {MIN_EACH} 'same' and {MIN_EACH} 'different' "
            f"pairs that the candidate search offers; {same} and {different} of the "
            f"{len(given)} given are (review more pairs, or give more)"
        )
    sampled, weak, stands_for = _unlabelled_sample(
        len(table.left), rows, candidate_keys, rule_matches, n, seed
    )
    every = np.concatenate([rows, sampled])
    # A reviewer's verdict outweighs the rule's word on one unlabelled pair.
    importance = np.concatenate([np.full(len(rows), VERDICT_WEIGHT), np.ones(len(sampled))])
    return _Examples(
        rows=rows,
        found=found,
        sampled=sampled,
        left=table.left[every],
        right=table.right[every],
        x=table.features[every],
        y=np.concatenate([y, weak]),
        # Each sampled pair weighs in the F1 as the many unlabelled ones it stands for.
        weight=np.concatenate([np.ones(len(rows)), np.full(len(sampled), stands_for)]),
        importance=importance.astype(np.float32),
    )


def fit_from_pairs(
    inputs: MatchInputs,
    pairs: Sequence[tuple[int, int, int]],
    config: BestConfig,
    settings_record: dict[str, Any],
    rule_matches: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[Any, list[str], dict[str, Any], BestConfig]:
    """Learn from labelled pairs (catalog positions ``i, j`` and 1 same / 0 different).

    Args:
        rule_matches: (left, right) positions of the pairs a rule pipeline matched in this
            catalog: the sampled unlabelled candidates take its word for them (weak labels)
            instead of all counting as different.

    Returns:
        (stage 1 booster, its feature names, training record, ``config`` with the tuned
        threshold and what needs label groups turned off).

    Raises:
        SameSameError: fewer than `MIN_EACH` same or different pairs are candidates.
    """
    started = time.perf_counter()
    config = config.learnt(graph_stage=False, title_model=False, image_head=False, min_one=False)
    n = inputs.size
    table = build_pair_table(inputs, config)
    given = np.asarray(pairs, dtype=np.int64).reshape(-1, 3)
    ex = _examples(table, given, n, rule_matches, config.seed)
    fold, folds_by = _posting_folds(n, ex.left, ex.right, ex.y, FOLDS, config.seed)
    oof = _out_of_fold(ex.x, ex.y, ex.importance, fold, table.names, config)
    booster = _booster(ex.x, ex.y, ex.importance, table.names, config)
    judged = np.zeros(n, bool)
    judged[table.left[ex.rows]] = judged[table.right[ex.rows]] = True
    threshold, oof_f1 = _best_threshold(n, ex.left, ex.right, ex.y, oof, ex.weight, judged)
    config = config.learnt(
        threshold=threshold,
        threshold_low=threshold,
        stage1_threshold=threshold,
        stage1_threshold_low=threshold,
    )
    labelled = ex.y[: len(ex.rows)]
    info = {
        "trained_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "training_seconds": round(time.perf_counter() - started, 2),
        "trained_from": "pairs",
        "postings": n,
        "pairs_given": len(given),
        "pairs_used": len(ex.rows),
        "pairs_not_candidates": int((~ex.found).sum()),
        "same_pairs": int(labelled.sum()),
        "different_pairs": int(len(labelled) - labelled.sum()),
        "candidate_pairs": len(table.left),
        "unlabelled_candidates_sampled": int(len(ex.sampled)),
        "weak_labels": rule_matches is not None,
        "folds_by": folds_by,
        "oof_f1": round(oof_f1, 4),
        "label_groups": 0,
        "settings": settings_record,
    }
    return booster, table.names, info, config
