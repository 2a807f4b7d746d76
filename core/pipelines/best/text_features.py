"""String, token and number/unit features of title pairs for the ``best`` classifier.

Every feature is symmetric in (i, j), so the pair's order never matters.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# --- Numbers and units ---------------------------------------------------------------------

# Units to a base unit and factor. Titles are already normalised (lower case, punctuation
# gone), so "0.5L" arrives as "0 5l" and "500 ML" as "500 ml".
_UNITS: dict[str, tuple[str, float]] = {
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
_UNIT_ALT = "|".join(sorted(_UNITS, key=len, reverse=True))
# "0 5 l" is a decimal that lost its point; otherwise a number glued to or followed by a unit.
_QUANTITY = re.compile(rf"\b(?:(0) (\d+)|(\d+)) ?({_UNIT_ALT})\b")
_NUMBER = re.compile(r"\d+")


@dataclass(frozen=True)
class TitleFacts:
    """Per-title facts reused by every pair the title takes part in."""

    tokens: frozenset[str]
    numbers: frozenset[str]
    quantities: frozenset[tuple[str, float]]
    units: frozenset[str]
    chars: int


def title_facts(title: str) -> TitleFacts:
    quantities = set()
    for zero, frac, whole, unit in _QUANTITY.findall(title):
        value = float(f"0.{frac}") if zero else float(whole)
        base, factor = _UNITS[unit]
        quantities.add((base, round(value * factor, 6)))
    return TitleFacts(
        tokens=frozenset(title.split()),
        numbers=frozenset(n.lstrip("0") or "0" for n in _NUMBER.findall(title)),
        quantities=frozenset(quantities),
        units=frozenset(u for u, _ in quantities),
        chars=len(title),
    )


def text_pair_features(
    titles: Sequence[str], left: np.ndarray, right: np.ndarray, difflib_ratio: bool = False
) -> dict[str, np.ndarray]:
    """String-similarity, token and number features of each pair (symmetric in the pair)."""
    from rapidfuzz import fuzz

    facts = [title_facts(t) for t in titles]
    m = len(left)
    names = (
        "fuzz_ratio",
        "fuzz_token_set",
        "fuzz_token_sort",
        "fuzz_partial",
        "token_jaccard",
        "tokens_shared",
        "chars_min",
        "chars_max",
        "tokens_min",
        "tokens_max",
        "numbers_shared",
        "numbers_only_one",
        "numbers_jaccard",
        "quantity_shared",
        "quantity_conflict",
    )
    out = {name: np.zeros(m, np.float32) for name in names}
    if difflib_ratio:
        out["difflib_ratio"] = np.zeros(m, np.float32)
    ratio, token_set, token_sort, partial = (
        fuzz.ratio,
        fuzz.token_set_ratio,
        fuzz.token_sort_ratio,
        fuzz.partial_ratio,
    )
    for p, (a, b) in enumerate(zip(left.tolist(), right.tolist(), strict=True)):
        ta, tb = titles[a], titles[b]
        fa, fb = facts[a], facts[b]
        out["fuzz_ratio"][p] = ratio(ta, tb)
        out["fuzz_token_set"][p] = token_set(ta, tb)
        out["fuzz_token_sort"][p] = token_sort(ta, tb)
        out["fuzz_partial"][p] = partial(ta, tb)
        shared = len(fa.tokens & fb.tokens)
        union = len(fa.tokens | fb.tokens)
        out["token_jaccard"][p] = shared / union if union else 0.0
        out["tokens_shared"][p] = shared
        out["chars_min"][p] = min(fa.chars, fb.chars)
        out["chars_max"][p] = max(fa.chars, fb.chars)
        out["tokens_min"][p] = min(len(fa.tokens), len(fb.tokens))
        out["tokens_max"][p] = max(len(fa.tokens), len(fb.tokens))
        nshared = len(fa.numbers & fb.numbers)
        nunion = len(fa.numbers | fb.numbers)
        out["numbers_shared"][p] = nshared
        out["numbers_only_one"][p] = nunion - nshared
        out["numbers_jaccard"][p] = nshared / nunion if nunion else np.nan
        out["quantity_shared"][p] = len(fa.quantities & fb.quantities)
        # Same kind of unit on both sides (e.g. both volumes) but no common amount: a 250 ml
        # and a 500 ml bottle are different products however alike the rest of the title is.
        common_units = fa.units & fb.units
        conflict = sum(
            1
            for unit in common_units
            if not {q for q in fa.quantities if q[0] == unit}
            & {q for q in fb.quantities if q[0] == unit}
        )
        out["quantity_conflict"][p] = conflict
        if difflib_ratio:
            from core.candidates.ratio import sequence_ratio

            out["difflib_ratio"][p] = sequence_ratio(ta, tb)
    return out
