"""A pair's answer as every place shows it (cards, Review, the CLI, the HTTP API): the verdict
word, the probability behind it and where that came from, and the evidence in words.

`core.verdict_words` holds the words and the uncalibrated default; `core.rule_calibration`
the rule pipelines' calibrated curves. This module puts them together for a frame of pairs
of one pipeline, so every place words a pair the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from core.rule_calibration import RULE_PIPELINES, calibration_for
from core.settings import MatchSettings
from core.verdict_words import (
    CHECKED,
    DIFFERENT,
    FROM_CALIBRATED,
    FROM_DEFAULT,
    FROM_MODEL,
    SAME,
    UNSURE,
    evidence_lines,
    pair_probability,
    verdict_words,
)

if TYPE_CHECKING:
    from core.store import Store

#: Columns `pair_answers` returns.
ANSWER_COLUMNS = ("answer", "probability", "probability_from", "evidence")
#: How each source of a probability is named to a person.
SOURCE_WORDS = {
    FROM_MODEL: "the learned model's probability",
    FROM_CALIBRATED: "calibrated on labelled pairs",
    FROM_DEFAULT: "uncalibrated estimate",
    CHECKED: CHECKED,
}


def pair_answers(
    frame: pd.DataFrame,
    pipeline: str,
    settings: MatchSettings,
    store: Store | None = None,
    has_titles: np.ndarray | None = None,
    reviews: np.ndarray | None = None,
) -> pd.DataFrame:
    """Aligned with ``frame`` (pairs of ``pipeline`` with its score columns): ``answer`` (the
    verdict word; "Same (checked by a person)" where ``reviews`` says "same", likewise
    different), ``probability`` (NaN: no score), ``probability_from`` and ``evidence``.

    ``has_titles``: whether both postings of each pair have a title (where one lacks it, a
    title score of 0 is no evidence). ``store``: the catalog, whose own calibration wins.
    """
    calibration = calibration_for(store, pipeline) if pipeline in RULE_PIPELINES else None
    probability, source = pair_probability(frame, settings, has_titles, calibration)
    words = verdict_words(probability)
    evidence = evidence_lines(frame, settings, has_titles)
    if reviews is not None:
        reviews = np.asarray(reviews, dtype=object)
        checked = (reviews == "same") | (reviews == "different")
        said = np.where(reviews == "same", SAME, DIFFERENT)
        words = np.where(checked, [f"{w} ({CHECKED})" for w in said], words)
        source = np.where(checked, CHECKED, source)
    return pd.DataFrame(
        {
            "answer": words,
            "probability": probability,
            "probability_from": source,
            "evidence": evidence,
        },
        index=frame.index,
    )


def probability_words(probability: float | None, source: str) -> str:
    """The details line: "71 % likely the same product (calibrated on labelled pairs)"."""
    if probability is None or probability != probability:
        return "no score to estimate from"
    how = SOURCE_WORDS.get(source, source)
    return f"{probability:.0%} likely the same product ({how})"


def unsure(words: np.ndarray) -> np.ndarray:
    """Which answers are Unsure (a person's answer never is)."""
    return np.asarray(words, dtype=object) == UNSURE
