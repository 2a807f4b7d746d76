"""What one title says on its own, for the ``best`` pipeline's title features
(`core.pipelines.best.text_features`): its words, numbers, amounts with units (in a base unit,
so "0.5L" and "500 ML" agree) and model-number-like tokens.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

# Units to a base unit and factor. Titles are already normalised (lower case, punctuation
# gone), so "0.5L" arrives as "0 5l" and "500 ML" as "500 ml".
UNITS: dict[str, tuple[str, float]] = {
    "ml": ("ml", 1.0),
    "l": ("ml", 1000.0),
    "lt": ("ml", 1000.0),
    "ltr": ("ml", 1000.0),
    "liter": ("ml", 1000.0),
    "litre": ("ml", 1000.0),
    "cc": ("ml", 1.0),
    "mg": ("g", 0.001),
    "g": ("g", 1.0),
    "gr": ("g", 1.0),
    "gram": ("g", 1.0),
    "grams": ("g", 1.0),
    "gramm": ("g", 1.0),
    "kg": ("g", 1000.0),
    "kilo": ("g", 1000.0),
    "mm": ("m", 0.001),
    "cm": ("m", 0.01),
    "m": ("m", 1.0),
    "meter": ("m", 1.0),
    "inch": ("inch", 1.0),
    "in": ("inch", 1.0),
    "pcs": ("pcs", 1.0),
    "pc": ("pcs", 1.0),
    "pce": ("pcs", 1.0),
    "biji": ("pcs", 1.0),
    "buah": ("pcs", 1.0),
    "lembar": ("pcs", 1.0),
    "lbr": ("pcs", 1.0),
    "sachet": ("pcs", 1.0),
    "pack": ("pack", 1.0),
    "pak": ("pack", 1.0),
    "box": ("pack", 1.0),
    "roll": ("pack", 1.0),
    "set": ("pack", 1.0),
    "tab": ("tab", 1.0),
    "tablet": ("tab", 1.0),
    "kaplet": ("tab", 1.0),
    "kapsul": ("tab", 1.0),
    "caps": ("tab", 1.0),
    "w": ("w", 1.0),
    "watt": ("w", 1.0),
    "v": ("v", 1.0),
    "volt": ("v", 1.0),
    "mah": ("mah", 1.0),
    "gb": ("gb", 1.0),
    "tb": ("gb", 1000.0),
    "mb": ("gb", 0.001),
    "oz": ("oz", 1.0),
    "x": ("x", 1.0),
}
_UNIT_ALT = "|".join(sorted(UNITS, key=len, reverse=True))
# "0 5 l" is a decimal that lost its point; otherwise a number glued to or followed by a unit.
_QUANTITY = re.compile(rf"\b(?:(0) (\d+)|(\d+)) ?({_UNIT_ALT})\b")
_NUMBER = re.compile(r"\d+")
_HAS_DIGIT = re.compile(r"\d")
_HAS_LETTER = re.compile(r"[^\W\d_]")
_QUANTITY_TOKEN = re.compile(rf"^\d+(?:{_UNIT_ALT})$")


def _is_code(token: str) -> bool:
    """A model-number-like token: letters and digits together, not an amount ("150ml")."""
    return (
        len(token) >= 3
        and bool(_HAS_DIGIT.search(token))
        and bool(_HAS_LETTER.search(token))
        and not _QUANTITY_TOKEN.match(token)
    )


def model_codes(tokens: Sequence[str]) -> frozenset[str]:
    """Model-number-like tokens of a title, and each one glued to its neighbours: titles
    write one model as "sm g950f", "smg950f" or "sm-g950f" (normalised to "sm g950f")."""
    codes = {t for t in tokens if _is_code(t)}
    for a, b in zip(tokens, tokens[1:], strict=False):
        # Only a short letter prefix or suffix ("sm" g950f, rx "580", g950 "f") or digits
        # glue on: "64gb black" is two words, not one model.
        short_a, short_b = _short_letters(a), _short_letters(b)
        if (
            (short_a and _HAS_DIGIT.search(b))
            or (_HAS_DIGIT.search(a) and (short_b or b.isdigit()))
        ) and _is_code(a + b):
            codes.add(a + b)
    return frozenset(codes)


def _short_letters(token: str) -> bool:
    return len(token) <= 3 and token.isalpha()


@dataclass(frozen=True)
class TitleFacts:
    """Per-title facts reused by every pair the title takes part in."""

    tokens: frozenset[str]
    numbers: frozenset[str]
    quantities: frozenset[tuple[str, float]]
    units: frozenset[str]
    chars: int
    codes: frozenset[str]
    first: str


def title_facts(title: str) -> TitleFacts:
    quantities = set()
    for zero, frac, whole, unit in _QUANTITY.findall(title):
        value = float(f"0.{frac}") if zero else float(whole)
        base, factor = UNITS[unit]
        quantities.add((base, round(value * factor, 6)))
    words = title.split()
    return TitleFacts(
        tokens=frozenset(words),
        numbers=frozenset(n.lstrip("0") or "0" for n in _NUMBER.findall(title)),
        quantities=frozenset(quantities),
        units=frozenset(u for u, _ in quantities),
        chars=len(title),
        codes=model_codes(words),
        first=words[0] if words else "",
    )
