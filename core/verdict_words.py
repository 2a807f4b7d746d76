"""A pair's answer in words: one of **Same / Probably same / Unsure / Different**, from its
match probability, and what it rests on in words on one scale ("photos very similar · titles
nearly the same").

Where the probability comes from:

- ``best`` stores its classifier's ``probability``: that is used as it is.
- The rule pipelines (baseline, ensemble) store similarities, not probabilities.
  `default_probability` maps their own scores to one number, monotone in each score, 0.5
  exactly at the rule's threshold, 0.9 half-way from there to identical, 0.99 at identical,
  and 0.05 a fixed distance on the wrong side of the threshold (`Ladder`); the pair's number
  is its strongest evidence's (photo, title, and for the ensemble photo and title together).
  A calibration fitted on labelled pairs (`core.rule_calibration`, shipped for both
  pipelines) turns that number into P(same product); without one, the number itself is
  shown as **an uncalibrated default**.
- A pair a person reviewed is "Same" or "Different" whatever the scores, marked "checked by
  a person".

Not to be confused with `core.verdicts`, the reviewer's same/different verdicts themselves.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.settings import MatchSettings

SAME, PROBABLY_SAME, UNSURE, DIFFERENT = "Same", "Probably same", "Unsure", "Different"
#: Every word, most sure of a match first.
VERDICT_WORDS = (SAME, PROBABLY_SAME, UNSURE, DIFFERENT)
#: The lowest probability of each word but the last (Different is anything below 0.4).
CUT_POINTS = (0.9, 0.6, 0.4)
CHECKED = "checked by a person"
#: Probabilities are stored as float32 (0.9 reads back as 0.8999999762): a cut is reached
#: within this.
_TOLERANCE = 1e-6
#: Where a pair's probability came from (`pair_probability`).
FROM_MODEL = "model"
FROM_CALIBRATED = "calibrated rule scores"
FROM_DEFAULT = "uncalibrated default"

#: Probabilities at the anchors of every `Ladder`: faded out, at the threshold, half-way to
#: identical, identical.
_LADDER_PROBABILITIES = (0.05, 0.5, 0.9, 0.99)


def verdict_word(probability: float | None, review: str | None = None) -> str:
    """The word for one pair: a reviewer's ``review`` ("same"/"different") wins; else the
    probability's band (`CUT_POINTS`); a pair with no probability at all is Unsure."""
    if review == "same":
        return SAME
    if review == "different":
        return DIFFERENT
    if probability is None or math.isnan(float(probability)):
        return UNSURE
    for cut, word in zip(CUT_POINTS, VERDICT_WORDS, strict=False):
        if probability >= cut - _TOLERANCE:
            return word
    return DIFFERENT


def verdict_label(word: str, reviewed: bool) -> str:
    """The word as shown: "Different (checked by a person)" for a reviewed pair."""
    return f"{word} ({CHECKED})" if reviewed else word


def _bands(p: np.ndarray, words: tuple[str, ...], missing: str) -> np.ndarray:
    p = np.asarray(p, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        reached = [p >= cut - _TOLERANCE for cut in CUT_POINTS]
        bands = [*reached, p < CUT_POINTS[-1] - _TOLERANCE]
    return np.select(bands, words, default=missing).astype(object)


def verdict_words(probabilities: np.ndarray) -> np.ndarray:
    """`verdict_word` of many probabilities at once (NaN: Unsure)."""
    return _bands(probabilities, VERDICT_WORDS, UNSURE)


@dataclass(frozen=True)
class Ladder:
    """One score as a probability: 0.5 at the rule's threshold in the run's settings, 0.9
    half-way from there to ``identical``, 0.99 at ``identical``, 0.05 ``fade`` past the
    threshold on the other side (linear between, flat beyond). ``lower_is_alike`` for
    distances."""

    column: str
    #: The `MatchSettings` field holding the rule's threshold.
    setting: str
    identical: float
    fade: float
    lower_is_alike: bool = False

    def probability(self, values: np.ndarray, settings: MatchSettings) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64)
        t = float(getattr(settings, self.setting))
        sign = -1.0 if self.lower_is_alike else 1.0
        anchors = np.array([t - sign * self.fade, t, (t + self.identical) / 2, self.identical])
        p = np.interp(values * sign, anchors * sign, _LADDER_PROBABILITIES)
        return np.where(np.isnan(values), np.nan, p)


PHOTO_COSINE = Ladder("image_cosine", "baseline_image_cosine", 1.0, 0.25)
PHOTO_SIAMESE = Ladder("siamese_distance", "ensemble_image_distance", 0.0, 0.3, True)
PHOTO_HASH = Ladder("hash_distance", "hash_max_distance", 0.0, 6.0, True)
TITLE_TFIDF = Ladder("tfidf_cosine", "baseline_text_cosine", 1.0, 0.25)
TITLE_LETTERS = Ladder("char_cosine", "baseline_text_cosine", 1.0, 0.25)
TITLE_RATIO = Ladder("text_ratio", "ensemble_text_ratio", 1.0, 0.25)
#: The ensemble's "a little alike in both" rule: distance + (1 - ratio).
BOTH = Ladder("combined", "ensemble_combined", 0.0, 0.3, True)

#: Photo evidence, by preference: vectors where the pair has them, else the hash.
PHOTO_LADDERS = (PHOTO_COSINE, PHOTO_SIAMESE, PHOTO_HASH)
TITLE_LADDERS = (TITLE_TFIDF, TITLE_LETTERS, TITLE_RATIO)


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[name], errors="coerce").to_numpy(np.float64, na_value=np.nan)


def photo_probability(frame: pd.DataFrame, settings: MatchSettings) -> np.ndarray:
    """How alike the photos are, as a default probability: the first of `PHOTO_LADDERS` the
    pair has a score for (NaN: no photo evidence)."""
    out = np.full(len(frame), np.nan)
    for ladder in PHOTO_LADDERS:
        p = ladder.probability(_column(frame, ladder.column), settings)
        out = np.where(np.isnan(out), p, out)
    return out


def title_probability(
    frame: pd.DataFrame, settings: MatchSettings, has_titles: np.ndarray | None = None
) -> np.ndarray:
    """How alike the titles are, as a default probability: the strongest title score (NaN:
    none, or ``has_titles`` says a title is missing, where a 0 would be no evidence)."""
    out = np.full(len(frame), np.nan)
    for ladder in TITLE_LADDERS:
        out = np.fmax(out, ladder.probability(_column(frame, ladder.column), settings))
    if has_titles is not None:
        out = np.where(np.asarray(has_titles, bool), out, np.nan)
    return out


def default_probability(
    frame: pd.DataFrame, settings: MatchSettings, has_titles: np.ndarray | None = None
) -> np.ndarray:
    """The uncalibrated default of rule pipelines (module docstring): the strongest of photo,
    title and (ensemble) photo-and-title evidence; NaN where a pair has no score."""
    both = _column(frame, "siamese_distance") + 1.0 - _column(frame, "text_ratio")
    if has_titles is not None:
        both = np.where(np.asarray(has_titles, bool), both, np.nan)
    together = BOTH.probability(both, settings)
    out = np.fmax(
        photo_probability(frame, settings), title_probability(frame, settings, has_titles)
    )
    return np.fmax(out, together)


def pair_probability(
    frame: pd.DataFrame,
    settings: MatchSettings,
    has_titles: np.ndarray | None = None,
    calibration: Any = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Each pair's probability and where it came from: `FROM_MODEL` where the pipeline
    stored one; else ``calibration``'s (a `core.rule_calibration.Calibration`) of the rule
    scores, `FROM_CALIBRATED`; else the uncalibrated default, `FROM_DEFAULT`."""
    model = _column(frame, "probability")
    if calibration is not None:
        default, rules = calibration.apply(frame, settings, has_titles), FROM_CALIBRATED
    else:
        default, rules = default_probability(frame, settings, has_titles), FROM_DEFAULT
    has_model = ~np.isnan(model)
    source = np.where(has_model, FROM_MODEL, rules).astype(object)
    return np.where(has_model, model, default), source


_PHOTO_WORDS = ("photos very similar", "photos similar", "photos somewhat alike", "photos differ")
_TITLE_WORDS = (
    "titles nearly the same",
    "titles similar",
    "titles share some words",
    "titles differ",
)


def evidence_lines(
    frame: pd.DataFrame, settings: MatchSettings, has_titles: np.ndarray | None = None
) -> np.ndarray:
    """What each pair rests on, in words on the verdicts' scale: "photos very similar · titles
    differ"; "no scores" where a pair has none (a pair a person added)."""
    photos = _bands(photo_probability(frame, settings), _PHOTO_WORDS, "")
    titles = _bands(title_probability(frame, settings, has_titles), _TITLE_WORDS, "")
    joined = np.where((photos != "") & (titles != ""), photos + " · " + titles, photos + titles)
    return np.where(joined == "", "no scores", joined).astype(object)


def evidence_line(
    row: Mapping[str, Any], settings: MatchSettings | None = None, has_titles: bool = True
) -> str:
    """`evidence_lines` of one pair (a match row as pages hold it)."""
    frame = pd.DataFrame([dict(row)])
    return str(evidence_lines(frame, settings or MatchSettings(), np.array([has_titles]))[0])


def pair_verdict(
    row: Mapping[str, Any],
    settings: MatchSettings | None = None,
    review: str | None = None,
    has_titles: bool = True,
    calibration: Any = None,
) -> tuple[str, float | None]:
    """One pair's word (as shown, reviewed or not) and probability (None: no score)."""
    frame = pd.DataFrame([dict(row)])
    settings = settings or MatchSettings()
    p, _ = pair_probability(frame, settings, np.array([has_titles]), calibration)
    probability = None if math.isnan(p[0]) else float(p[0])
    return verdict_label(verdict_word(probability, review), review is not None), probability
