"""``best``'s optional third stage: a fine-tuned title cross-encoder re-scores the uncertain top
candidates, and a three-weight logistic blend joins its probability with the classifier's.

The cross-encoder (all-MiniLM-L6-v2 reading both titles at once, `core.embedders.cross_encoder`)
is the strongest title evidence SameSame has (WDC shoes test F1 77.2 from titles alone, against
`best`'s 58.6) but scores about 100 pairs a second on 2 CPU cores, so it only sees the pairs the
classifier is unsure of (probability inside ``cross_encoder_band``) that are among either
posting's ``cross_encoder_top`` most probable candidates. Every other pair keeps its
probability. Top 5 and a band from 0.001 were chosen on training products only (a third of
each English set's training groups held out from a two-stage model): they reach 489 of the
WDC third's 557 true candidate pairs (top 3 from 0.02: 428) and 132 of Walmart-Amazon's 302
(109), for 1.9 and 1.6 times the pairs to score.

Training is a held-out blend: the cross-encoder learns from the top candidates of all folds but
one, sure or not (at most ``cross_encoder_max_pairs`` of them); the held-out fold's selected
pairs, which it never saw, fit the blend and the match thresholds. One fine-tuning instead of
one per fold keeps training within minutes on two cores.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.embedders.cross_encoder import CrossEncoder, CrossEncoderSettings
from core.errors import ModelNotTrainedError, SameSameError
from core.pipelines.best.config import BestConfig

Progress = Callable[[int, int], None]

#: Pairs the cross-encoder scores between two progress ticks.
SCORE_CHUNK = 256
#: Probabilities are clipped this far from 0 and 1 before taking logits.
_EPS = 1e-4


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, np.float64), _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


def blend(weights: Sequence[float], prob: np.ndarray, cross: np.ndarray) -> np.ndarray:
    """The re-scored probability: sigmoid(w0 + w1·logit(prob) + w2·logit(cross))."""
    w0, w1, w2 = (float(w) for w in weights)
    z = w0 + w1 * _logit(prob) + w2 * _logit(cross)
    return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)


def top_per_posting(n: int, left: np.ndarray, right: np.ndarray, prob: np.ndarray, top: int):
    """Whether each pair is among the ``top`` most probable pairs of either of its postings."""
    m = len(left)
    ends = np.concatenate([left, right])
    pair = np.concatenate([np.arange(m), np.arange(m)])
    order = np.lexsort((-np.concatenate([prob, prob]), ends))
    ends, pair = ends[order], pair[order]
    starts = np.r_[0, np.flatnonzero(ends[1:] != ends[:-1]) + 1]
    rank = np.arange(len(ends)) - np.repeat(starts, np.diff(np.r_[starts, len(ends)]))
    chosen = np.zeros(m, bool)
    chosen[pair[rank < top]] = True
    return chosen


def rescored_pairs(
    n: int, left: np.ndarray, right: np.ndarray, prob: np.ndarray, config: BestConfig
) -> np.ndarray:
    """The pairs the cross-encoder re-scores: unsure and among either side's top candidates."""
    low, high = config.cross_encoder_band
    unsure = (prob >= low) & (prob <= high)
    return unsure & top_per_posting(n, left, right, prob, config.cross_encoder_top)


def cross_probabilities(
    encoder: CrossEncoder,
    titles: Sequence[str],
    left: np.ndarray,
    right: np.ndarray,
    progress: Progress | None = None,
) -> np.ndarray:
    """The cross-encoder's probability for each pair of title positions, a chunk at a time."""
    out = np.empty(len(left), np.float32)
    for start in range(0, len(left), SCORE_CHUNK):
        end = min(len(left), start + SCORE_CHUNK)
        out[start:end] = encoder.predict(
            [titles[i] for i in left[start:end].tolist()],
            [titles[i] for i in right[start:end].tolist()],
        )
        if progress is not None:
            progress(end, len(left))
    return out


@dataclass(frozen=True)
class Rescorer:
    """A trained third stage: the cross-encoder and its blend weights."""

    encoder: CrossEncoder
    weights: tuple[float, float, float]

    def rescore(
        self,
        titles: Sequence[str],
        left: np.ndarray,
        right: np.ndarray,
        prob: np.ndarray,
        config: BestConfig,
        only: int | None = None,
        progress: Progress | None = None,
    ) -> np.ndarray:
        """``prob`` with the selected pairs re-scored (``only``: just the pairs of posting
        ``only``, for a single-item query, whose other pairs do not change its answer)."""
        chosen = rescored_pairs(len(titles), left, right, prob, config)
        if only is not None:
            chosen &= (left == only) | (right == only)
        rows = np.flatnonzero(chosen)
        out = prob.astype(np.float32, copy=True)
        if len(rows):
            cross = cross_probabilities(self.encoder, titles, left[rows], right[rows], progress)
            out[rows] = blend(self.weights, prob[rows], cross)
        return out

    def save(self, folder: Path) -> None:
        self.encoder.save(folder)

    @classmethod
    def load(cls, folder: Path, config: BestConfig) -> Rescorer:
        if len(config.cross_encoder_blend) != 3:
            raise SameSameError("The model's cross-encoder has no blend weights; retrain it")
        try:
            encoder = CrossEncoder.load(folder)
        except ModelNotTrainedError as exc:
            raise ModelNotTrainedError(
                f"This best model was trained with the title cross-encoder, but {folder} does "
                "not hold it (copied without that folder?); copy the whole model or retrain it"
            ) from exc
        return cls(encoder, tuple(config.cross_encoder_blend))


def _unique_pairs(real: np.ndarray, left: np.ndarray, right: np.ndarray):
    """(first row of each distinct real-posting pair, each row's index into those)."""
    a, b = real[left], real[right]
    key = np.minimum(a, b).astype(np.int64) * (int(real.max()) + 1) + np.maximum(a, b)
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    return first, inverse


def _training_pairs(
    rows: np.ndarray,
    real: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    y: np.ndarray,
    config: BestConfig,
) -> np.ndarray:
    """Distinct pairs (by real posting) among ``rows``, at most ``cross_encoder_max_pairs``,
    with the same-product pairs kept first (up to half of them): top candidates are mostly
    different products, and a sample in that proportion taught the cross-encoder nothing on
    Walmart-Amazon (AUC 0.57 on a training third it never saw)."""
    first, _ = _unique_pairs(real, left[rows], right[rows])
    rows = rows[first]
    rng = np.random.default_rng(config.seed)
    same, different = rows[y[rows] == 1], rows[y[rows] != 1]
    cap = config.cross_encoder_max_pairs
    same = rng.permutation(same)[: cap // 2]
    different = rng.permutation(different)[: cap - len(same)]
    return np.sort(np.concatenate([same, different]))


def _fit_blend(prob: np.ndarray, cross: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    from sklearn.linear_model import LogisticRegression

    x = np.column_stack([_logit(prob), _logit(cross)])
    model = LogisticRegression(C=1.0, max_iter=1000).fit(x, y)
    return float(model.intercept_[0]), float(model.coef_[0, 0]), float(model.coef_[0, 1])


def fit_rescorer(
    titles: Sequence[str],
    real: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    prob: np.ndarray,
    y: np.ndarray,
    fold: np.ndarray,
    config: BestConfig,
    progress: Progress | None = None,
) -> tuple[Rescorer, np.ndarray, int]:
    """Fine-tune the cross-encoder and fit the blend on out-of-fold probabilities ``prob`` of
    the training candidates (virtual postings ``left``/``right``, ``real`` their catalog rows).

    Returns:
        (the rescorer, ``prob`` with the held-out fold's selected pairs re-scored, that fold).

    Raises:
        SameSameError: too few unsure pairs, or one class only, to learn from.
    """
    held = int(np.max(fold))
    # It learns from every top candidate, sure or not: the unsure ones alone were a few hundred
    # pairs on Walmart-Amazon, too few to fine-tune on.
    top = top_per_posting(len(real), left, right, prob, config.cross_encoder_top)
    train = _training_pairs(np.flatnonzero(top & (fold != held)), real, left, right, y, config)
    chosen = rescored_pairs(len(real), left, right, prob, config)
    scored = np.flatnonzero(chosen & (fold == held))
    for rows, what in ((train, "fine-tune the title cross-encoder"), (scored, "fit its blend")):
        if len(rows) == 0 or y[rows].min() == y[rows].max():
            raise SameSameError(
                f"Too few unsure candidate pairs of both kinds to {what}: add labelled "
                "products, or turn the title cross-encoder off (best_cross_encoder)"
            )
    real_titles = [titles[i] for i in real.tolist()]
    encoder = CrossEncoder(
        CrossEncoderSettings(max_length=config.cross_encoder_max_length, seed=config.seed)
    )
    encoder.fit(
        [real_titles[i] for i in left[train].tolist()],
        [real_titles[i] for i in right[train].tolist()],
        y[train].astype(int),
        epochs=config.cross_encoder_epochs,
        progress=progress,
    )
    first, inverse = _unique_pairs(real, left[scored], right[scored])
    cross = cross_probabilities(encoder, real_titles, left[scored][first], right[scored][first])[
        inverse
    ]
    weights = _fit_blend(prob[scored], cross, y[scored])
    out = prob.astype(np.float32, copy=True)
    out[scored] = blend(weights, prob[scored], cross)
    return Rescorer(encoder, weights), out, held
