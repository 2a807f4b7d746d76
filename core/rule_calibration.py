"""The rule pipelines' scores as calibrated probabilities, and how calibration is measured.

Baseline and ensemble decide by thresholds on similarities; they have no probability of their
own. `core.verdict_words.default_probability` maps a pair's scores to one monotone number
(0.5 at a rule's threshold, the strongest evidence winning). A `Calibration` maps that number
to P(same product), fitted on labelled candidate pairs: an isotonic regression (a monotone
step curve, stored as its corner points) or Platt scaling (a logistic curve of the number's
log-odds), whichever measured better on held-out folds.

The fitted curves ship as ``rule_calibration.json`` beside this module (plain JSON: numbers,
no code), fitted on the Shopee selection part by ``benchmarks/bench_calibration.py --write``
(the held-back fifth is only measured). A catalog with labels can have its own fitted
(`refit_on_catalog`) and kept in its database; `calibration_for` prefers that one.

What the curves were fitted on fixes some thresholds: the input number is always computed
with the title and hash thresholds the file names (``reference``), so a threshold moved in
Settings changes which pairs match, not how sure a pair is. Photo-vector thresholds are the
run's own (cosines differ by backbone).

The Shopee data has no pixels, so a pair whose only evidence is photo vectors (an image cosine
or a Siamese distance, and a posting without a title: `photo_vector_only`) has a curve of its
own per backbone, ``photos``, fitted on real photos: the grocery catalog's training products
(``benchmarks/bench_calibration.py --grocery --write-photos --backbone B``; its held-back
products are only measured), isotonic with each step shrunk toward Platt (`fit`'s ``prior``:
from a few hundred photos a top step with no different pair would read 1.0). The backbone is
the run's (`photo_backbone`: the baseline's ImageNet backbone, the ensemble's Siamese
backbone). Every other pair (photo vectors and titles together, or a backbone with no photo
curve) goes through the Shopee curve."""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from core.embedders.backbones import resolve_siamese_backbone
from core.engine import scored_candidates
from core.errors import SameSameError
from core.pipelines import get_pipeline
from core.pipelines.inputs import load_inputs
from core.settings import MatchSettings
from core.verdict_words import default_probability, title_probability

if TYPE_CHECKING:
    from core.store import Store

DEFAULT_FILE = Path(__file__).with_name("rule_calibration.json")
#: The pipelines calibrated here (``best`` outputs its own probability).
RULE_PIPELINES = ("baseline", "ensemble")
METHODS = ("isotonic", "platt")
#: Where a catalog keeps its own fitted calibration (`Store.set_setting`).
STORE_KEY = "probability_calibration"
#: Bins of the expected calibration error and the reliability table.
ECE_BINS = 10
#: The input number is clipped to this before Platt's log-odds.
_EPS = 1e-4


@dataclass(frozen=True)
class Calibration:
    """One pipeline's curve from its default number to a probability.

    ``x``/``y``: the isotonic curve's corner points (linear between, flat outside);
    ``a``/``b``: Platt's p = 1 / (1 + exp(-(a·logit(z) + b))). ``reference``: the thresholds
    the input number is computed at. ``fitted_on``: in words, with ``pairs``/``same`` counts.
    ``photos``: by backbone, the curve of pairs whose only evidence is photo vectors
    (`photo_vector_only`), where the main curve was fitted on data without pixels.
    """

    pipeline: str
    method: str
    x: tuple[float, ...] = ()
    y: tuple[float, ...] = ()
    a: float = 1.0
    b: float = 0.0
    reference: dict[str, float] = field(default_factory=dict)
    fitted_on: str = ""
    pairs: int = 0
    same: int = 0
    photos: dict[str, Calibration] = field(default_factory=dict)

    def probability(self, z: np.ndarray) -> np.ndarray:
        """P(same) of default numbers ``z`` (NaN stays NaN)."""
        z = np.asarray(z, dtype=np.float64)
        if self.method == "platt":
            logit = _logit(z)
            with np.errstate(over="ignore"):
                p = 1.0 / (1.0 + np.exp(-(self.a * logit + self.b)))
        else:
            p = np.interp(z, np.asarray(self.x), np.asarray(self.y))
        return np.where(np.isnan(z), np.nan, p)

    def settings(self, settings: MatchSettings) -> MatchSettings:
        """``settings`` with the thresholds this curve was fitted at."""
        return settings.replace(**self.reference) if self.reference else settings

    def apply(
        self, frame: pd.DataFrame, settings: MatchSettings, has_titles: np.ndarray | None = None
    ) -> np.ndarray:
        """P(same) of stored or scored pairs (their score columns): the run's backbone's
        ``photos`` curve for pairs whose only evidence is photo vectors, the main curve for the
        rest."""
        settings = self.settings(settings)
        z = default_probability(frame, settings, has_titles)
        p = self.probability(z)
        photos = self.photos.get(photo_backbone(self.pipeline, settings)) if self.photos else None
        if photos is None:
            return p
        only = photo_vector_only(frame, settings, has_titles)
        return np.where(only, photos.probability(z), p)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["x"], out["y"] = list(self.x), list(self.y)
        out["photos"] = {name: curve.to_dict() for name, curve in self.photos.items()}
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Calibration:
        known = {k: values[k] for k in cls.__dataclass_fields__ if k in values}
        known["x"] = tuple(float(v) for v in known.get("x", ()))
        known["y"] = tuple(float(v) for v in known.get("y", ()))
        photos = known.get("photos") or {}
        if not isinstance(photos, dict):
            raise ValueError("photos must map backbones to curves")
        known["photos"] = {str(name): cls.from_dict(curve) for name, curve in photos.items()}
        calibration = cls(**known)
        calibration.check()
        return calibration

    def check(self) -> None:
        """Refuse a curve that is not a monotone map into [0, 1]."""
        if self.method not in METHODS:
            raise ValueError(f"unknown calibration method {self.method!r}")
        for curve in self.photos.values():
            curve.check()
        if self.method == "platt":
            if not (math.isfinite(self.a) and math.isfinite(self.b) and self.a >= 0):
                raise ValueError("Platt calibration needs a finite slope >= 0")
            return
        x, y = np.asarray(self.x), np.asarray(self.y)
        if len(x) < 1 or len(x) != len(y):
            raise ValueError("isotonic calibration needs as many x as y, at least one")
        if (np.diff(x) < 0).any() or (np.diff(y) < 0).any():
            raise ValueError("isotonic calibration points must rise")
        if y.min() < 0 or y.max() > 1:
            raise ValueError("isotonic calibration values must lie in [0, 1]")


#: Score columns of photo vectors (`core.verdict_words.PHOTO_LADDERS` less the hash).
PHOTO_VECTOR_COLUMNS = ("image_cosine", "siamese_distance")


def photo_backbone(pipeline: str, settings: MatchSettings) -> str:
    """The backbone behind ``pipeline``'s photo vectors under ``settings``: the baseline's
    ImageNet backbone, the ensemble's Siamese backbone (``auto`` resolved as training does)."""
    if get_pipeline(pipeline).image_kind == "siamese":
        return _siamese_backbone(settings.siamese_backbone, settings.resolved_weights_dir())
    return settings.image_backbone


@cache
def _siamese_backbone(choice: str, weights_dir: Path | None) -> str:
    return resolve_siamese_backbone(choice, weights_dir)


def photo_vector_only(
    frame: pd.DataFrame, settings: MatchSettings, has_titles: np.ndarray | None = None
) -> np.ndarray:
    """Pairs whose only evidence is photo vectors: an image cosine or a Siamese distance, and
    no title score (none stored, or ``has_titles`` says one posting has no title)."""
    vector = np.zeros(len(frame), dtype=bool)
    for column in PHOTO_VECTOR_COLUMNS:
        if column in frame:
            vector |= pd.to_numeric(frame[column], errors="coerce").notna().to_numpy()
    return vector & np.isnan(title_probability(frame, settings, has_titles))


def _logit(z: np.ndarray) -> np.ndarray:
    z = np.clip(np.asarray(z, dtype=np.float64), _EPS, 1 - _EPS)
    return np.log(z / (1 - z))


#: The thresholds the shipped curves were fitted at (the defaults of the original write-ups).
REFERENCE_FIELDS = ("hash_max_distance", "baseline_text_cosine", "ensemble_text_ratio")


def reference_thresholds() -> dict[str, float]:
    defaults = MatchSettings()
    return {name: getattr(defaults, name) for name in REFERENCE_FIELDS}


# -- fitting ---------------------------------------------------------------------------------


def fit(
    pipeline: str,
    z: np.ndarray,
    same: np.ndarray,
    method: str,
    fitted_on: str = "",
    reference: dict[str, float] | None = None,
    prior: float = 0.0,
) -> Calibration:
    """A curve from default numbers ``z`` of candidate pairs and whether each is ``same``.

    ``prior`` (isotonic only): each step's share of same-product pairs is shrunk toward the
    Platt curve's mean over the step, as if ``prior`` more pairs drawn from it had been seen
    (a Beta prior centred on Platt), then made to rise again. With few pairs a step (the
    photo curves: about 400 photos) this keeps a top step seen without one different pair
    from reading 1.0."""
    z = np.asarray(z, dtype=np.float64)
    y = np.asarray(same, dtype=np.float64)
    keep = ~np.isnan(z)
    z, y = z[keep], y[keep]
    common = {
        "pipeline": pipeline,
        "method": method,
        "reference": reference_thresholds() if reference is None else reference,
        "fitted_on": fitted_on,
        "pairs": len(z),
        "same": int(y.sum()),
    }
    if method == "platt":
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=1e6).fit(_logit(z)[:, None], y)
        a = max(0.0, float(model.coef_[0, 0]))
        return Calibration(a=a, b=float(model.intercept_[0]), **common)
    x, v = _isotonic_corners(z, y, prior)
    x, v = np.round(x, 6), np.round(v, 6)
    x, first = np.unique(x, return_index=True)  # rounding may merge corners: keep the first
    return Calibration(
        x=tuple(x.tolist()), y=tuple(np.maximum.accumulate(v[first]).tolist()), **common
    )


def _isotonic_corners(z: np.ndarray, y: np.ndarray, prior: float) -> tuple[np.ndarray, np.ndarray]:
    """The isotonic curve's corner points, each step shrunk toward Platt by ``prior`` pairs."""
    from sklearn.isotonic import IsotonicRegression

    model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(z, y)
    x, v = model.X_thresholds_, model.y_thresholds_
    if prior <= 0:
        return x, v
    steps, step = np.unique(model.predict(z), return_inverse=True)
    pairs = np.bincount(step).astype(np.float64)
    platt = fit("", z, y, "platt").probability(z)
    centre = np.bincount(step, weights=platt) / pairs
    shrunk = (np.bincount(step, weights=y) + prior * centre) / (pairs + prior)
    order = np.arange(len(steps))
    shrunk = IsotonicRegression().fit(order, shrunk, sample_weight=pairs + prior).predict(order)
    # The corners are training numbers, so their steps' values are among ``steps`` exactly.
    return x, shrunk[np.searchsorted(steps, model.predict(x))]


def cross_validated_ece(
    pipeline: str, folds: list[tuple[np.ndarray, np.ndarray]], method: str
) -> list[float]:
    """ECE of ``method`` on each fold's (z, same) when fitted on the other folds."""
    out = []
    for i, (z, same) in enumerate(folds):
        rest = [f for j, f in enumerate(folds) if j != i]
        curve = fit(
            pipeline,
            np.concatenate([r[0] for r in rest]),
            np.concatenate([r[1] for r in rest]),
            method,
        )
        out.append(expected_calibration_error(curve.probability(z), same))
    return out


#: The least same-product and different candidate pairs a catalog needs for its own curve.
MIN_PAIRS_EACH = 50


def catalog_pairs(store: Store, pipeline: str, settings: MatchSettings) -> pd.DataFrame:
    """Every relaxed candidate pair of the catalog scored by a rule pipeline (both postings
    labelled), with ``same`` and ``z`` (the input number at the shipped reference)."""
    pipe = get_pipeline(pipeline)
    settings, _ = pipe.settings_for(store, settings)
    inputs = load_inputs(store, pipe.image_model(store, settings))
    pairs = scored_candidates(pipe, inputs, settings, relaxed=True)
    labels = store.postings(["posting_id", "label_group"])["label_group"].to_numpy(object)
    left, right = labels[pairs["left"]], labels[pairs["right"]]
    pairs = pairs[pd.notna(left) & pd.notna(right)].reset_index(drop=True)
    pairs["same"] = labels[pairs["left"]] == labels[pairs["right"]]
    titles = np.asarray(inputs.titles, dtype=object)
    has_titles = (titles[pairs["left"]] != "") & (titles[pairs["right"]] != "")
    reference = settings.replace(**reference_thresholds())
    pairs["z"] = default_probability(pairs, reference, has_titles)
    return pairs


def refit_on_catalog(
    store: Store, pipeline: str, settings: MatchSettings | None = None, method: str = "isotonic"
) -> Calibration:
    """Fit ``pipeline``'s curve on this labelled catalog's own candidate pairs and keep it in
    its database (used until its postings change; `calibration_for`).

    Raises:
        SameSameError: not a rule pipeline, or too few labelled pairs of either kind.
    """
    if pipeline not in RULE_PIPELINES:
        raise SameSameError(
            f"only {' and '.join(RULE_PIPELINES)} are calibrated here; {pipeline} outputs "
            "its own probability"
        )
    pairs = catalog_pairs(store, pipeline, settings or store.load_settings())
    same = int(pairs["same"].sum())
    if min(same, len(pairs) - same) < MIN_PAIRS_EACH:
        raise SameSameError(
            f"too few labelled candidate pairs to calibrate {pipeline}: {same} of the same "
            f"product and {len(pairs) - same} different, {MIN_PAIRS_EACH} of each needed"
        )
    curve = fit(
        pipeline,
        pairs["z"].to_numpy(),
        pairs["same"].to_numpy(),
        method,
        fitted_on=f"this catalog's labels (revision {store.catalog_revision})",
    )
    own = dict(store.get_setting(STORE_KEY, {}) or {})
    own[pipeline] = {**curve.to_dict(), "catalog_revision": store.catalog_revision}
    store.set_setting(STORE_KEY, own)
    return curve


# -- measuring -------------------------------------------------------------------------------


def reliability_table(p: np.ndarray, same: np.ndarray, bins: int = ECE_BINS) -> pd.DataFrame:
    """Per equal-width probability bin (the last one closed): pairs, mean predicted
    probability, observed share of same-product pairs. Pairs without a probability are left
    out."""
    p = np.asarray(p, dtype=np.float64)
    same = np.asarray(same, dtype=np.float64)
    keep = ~np.isnan(p)
    p, same = p[keep], same[keep]
    which = np.minimum((p * bins).astype(np.int64), bins - 1)
    counts = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        predicted = np.bincount(which, weights=p, minlength=bins) / counts
        observed = np.bincount(which, weights=same, minlength=bins) / counts
    edges = np.linspace(0.0, 1.0, bins + 1)
    return pd.DataFrame(
        {
            "bin": [f"{edges[i]:.1f}–{edges[i + 1]:.1f}" for i in range(bins)],
            "pairs": counts,
            "mean_predicted": predicted,
            "observed_same": observed,
        }
    )


def expected_calibration_error(p: np.ndarray, same: np.ndarray, bins: int = ECE_BINS) -> float:
    """Σ over equal-width bins of (pairs in bin / all pairs) × |mean predicted − share same|."""
    table = reliability_table(p, same, bins)
    full = table[table["pairs"] > 0]
    if full.empty:
        return float("nan")
    gap = (full["mean_predicted"] - full["observed_same"]).abs()
    return float((full["pairs"] * gap).sum() / full["pairs"].sum())


# -- which curve applies -----------------------------------------------------------------------


@cache
def default_calibrations(path: Path = DEFAULT_FILE) -> dict[str, Calibration]:
    """The shipped curves by pipeline ({} when the file is missing)."""
    if not path.is_file():
        return {}
    payload = json.loads(path.read_text(encoding="utf-8"))
    return {name: Calibration.from_dict(values) for name, values in payload["pipelines"].items()}


def calibration_for(store: Store | None, pipeline: str) -> Calibration | None:
    """The catalog's own fitted curve for ``pipeline`` when it has one for its current
    postings, else the shipped one (None: neither; `core.verdict_words`' default applies)."""
    if store is not None:
        own = (store.get_setting(STORE_KEY, {}) or {}).get(pipeline)
        if own and own.get("catalog_revision") == store.catalog_revision:
            try:
                return Calibration.from_dict(own)
            except (ValueError, TypeError):
                pass  # a damaged entry: the shipped curve answers
    return default_calibrations().get(pipeline)


def write_default(curves: dict[str, Calibration], path: Path = DEFAULT_FILE, **about: Any) -> None:
    """Write the shipped file (``benchmarks/bench_calibration.py --write``)."""
    payload = {
        "format_version": 1,
        **about,
        "pipelines": {name: curve.to_dict() for name, curve in curves.items()},
    }
    text = json.dumps(payload, indent=1)
    text = re.sub(r"\n\s+(-?[0-9][0-9.e+-]*,?)(?=\n)", r" \1", text)  # numbers on one line
    path.write_text(text + "\n", encoding="utf-8")
    default_calibrations.cache_clear()
