"""Why two postings were matched, in words a shop owner reads at a glance.

The same wording serves the app's match cards, the side-by-side view and anything else that
explains a pair (a score column name such as ``tfidf_cosine`` means nothing to a person).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

#: What each rule a pipeline can fire looks at, for "matched on …".
RULE_WORDS = {
    "image": "photo",
    "hash": "photo hash",
    "text": "title",
    "combined": "photo and title together",
    "model": "learned model",
    "reviewed": "your review (you said same)",
}

_WORD = re.compile(r"\w+", re.UNICODE)


def _number(row: Mapping[str, Any], name: str) -> float | None:
    value = row.get(name)
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def evidence_text(row: Mapping[str, Any]) -> str:
    """The pair's scores as a short phrase: "photo 0.91 similar · title 0.62 · same hash"."""
    parts: list[str] = []
    probability = _number(row, "probability")
    if probability is not None:
        parts.append(f"model {probability:.0%} sure")
    cosine = _number(row, "image_cosine")
    if cosine is not None:
        parts.append(f"photo {cosine:.2f} similar")
    distance = _number(row, "siamese_distance")
    if distance is not None:
        parts.append(f"photo distance {distance:.2f}")
    bits = _number(row, "hash_distance")
    if bits is not None:
        parts.append("same hash" if bits == 0 else f"hash {int(bits)} bits apart")
    for name, label in (
        ("tfidf_cosine", "title"),
        ("text_ratio", "title"),
        ("char_cosine", "title letters"),
    ):
        value = _number(row, name)
        if value is not None:
            parts.append(f"{label} {value:.2f}")
    return " · ".join(parts) or "no scores"


def rule_text(rule: object) -> str:
    """Which rules fired ("image+text") as words: "matched on photo and title"."""
    names = [RULE_WORDS.get(name, name) for name in str(rule or "").split("+") if name]
    if not names:
        return "no rule passed"
    return "matched on " + " and ".join(names)


def title_words(title: str) -> set[str]:
    return {word.casefold() for word in _WORD.findall(title or "")}


def shared_words(left: str, right: str) -> set[str]:
    """The words two titles share (case-folded): what the side-by-side view highlights."""
    return title_words(left) & title_words(right)
