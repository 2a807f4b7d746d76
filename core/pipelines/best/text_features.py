"""String, token and number/unit features of title pairs for the ``best`` classifier.

Every feature is symmetric in (i, j), so the pair's order never matters. Token rarity is
counted within the catalog being matched (not the training catalog), so "a rare word both
titles share" means the same in a catalog of shoes and one of shampoo; model-number-like
tokens (letters and digits) decide between products of one brand in any domain.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
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
        base, factor = _UNITS[unit]
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


def token_rarity(facts: Sequence[TitleFacts]) -> dict[str, float]:
    """Inverse document frequency of each token within these titles (smoothed, >= 1)."""
    from collections import Counter

    counts = Counter(token for fact in facts for token in fact.tokens)
    n = len(facts)
    return {token: float(np.log((1 + n) / (1 + c)) + 1.0) for token, c in counts.items()}


#: Pairs between two progress reports of `text_pair_features`.
REPORT_EVERY = 50_000


@dataclass(frozen=True)
class TitleContext:
    """What pair features need of the whole catalog: each title's facts, each token's
    rarity within the catalog, each title's summed rarity."""

    facts: list[TitleFacts]
    rarity: dict[str, float]
    weight: list[float]


def title_context(titles: Sequence[str]) -> TitleContext:
    facts = [title_facts(t) for t in titles]
    rarity = token_rarity(facts)
    return TitleContext(facts, rarity, [sum(rarity[t] for t in f.tokens) for f in facts])


def text_pair_features(
    titles: Sequence[str],
    left: np.ndarray,
    right: np.ndarray,
    difflib_ratio: bool = False,
    progress: Callable[[int, int], None] | None = None,
    context: TitleContext | None = None,
) -> dict[str, np.ndarray]:
    """String-similarity, token and number features of each pair (symmetric in the pair);
    ``progress`` hears (pairs done, pairs) as it goes. ``context`` (`title_context` of
    ``titles``) is worked out here when not given."""
    from rapidfuzz import fuzz

    context = context or title_context(titles)
    facts, rarity, weight = context.facts, context.rarity, context.weight
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
        "rarity_jaccard",
        "rarity_containment",
        "rarity_only_one_max",
        "rarity_only_one_min",
        "codes_shared",
        "codes_conflict",
        "first_token_same",
        "first_token_rarity",
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
        if progress is not None and p % REPORT_EVERY == 0:
            progress(p, m)
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
        shared_weight = sum(rarity[t] for t in fa.tokens & fb.tokens)
        union_weight = weight[a] + weight[b] - shared_weight
        out["rarity_jaccard"][p] = shared_weight / union_weight if union_weight else 0.0
        smaller = min(weight[a], weight[b])
        out["rarity_containment"][p] = shared_weight / smaller if smaller else 0.0
        # The rarest word only one title has: a rare word the other lacks (a model, a
        # flavour, a colour) is what tells two near-identical titles apart.
        only_a = max((rarity[t] for t in fa.tokens - fb.tokens), default=0.0)
        only_b = max((rarity[t] for t in fb.tokens - fa.tokens), default=0.0)
        out["rarity_only_one_max"][p] = max(only_a, only_b)
        out["rarity_only_one_min"][p] = min(only_a, only_b)
        codes_shared = len(fa.codes & fb.codes)
        out["codes_shared"][p] = codes_shared
        # NaN when a side has no model number: absence says nothing.
        out["codes_conflict"][p] = float(codes_shared == 0) if fa.codes and fb.codes else np.nan
        same_first = bool(fa.first) and fa.first == fb.first
        out["first_token_same"][p] = same_first
        out["first_token_rarity"][p] = rarity[fa.first] if same_first else 0.0
        if difflib_ratio:
            from core.candidates.ratio import sequence_ratio

            out["difflib_ratio"][p] = sequence_ratio(ta, tb)
    if progress is not None:
        progress(m, m)
    return out
