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
from scipy.sparse import csr_matrix

from core.candidates.ratio import sequence_ratio
from core.threads import map_in_threads

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


#: What `text_pair_features` computes (and "difflib_ratio" when asked).
TEXT_FEATURES = (
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
#: Pairs between two progress reports of `text_pair_features` (and pairs compared at once).
REPORT_EVERY = 50_000


@dataclass(frozen=True)
class TitleContext:
    """What pair features need of the whole catalog, as one sparse row per title (so a
    chunk of pairs is compared by sparse products, not per pair in Python): which tokens,
    numbers, amounts and model numbers it has, the kind of unit of each amount, each token's
    rarity within the catalog, each title's summed rarity, length and first token."""

    tokens: csr_matrix
    numbers: csr_matrix
    quantities: csr_matrix
    quantity_unit: csr_matrix
    codes: csr_matrix
    rarity: np.ndarray
    weight: np.ndarray
    chars: np.ndarray
    first: np.ndarray


def _incidence(rows: list[list[int]], width: int) -> csr_matrix:
    """One row per title, 1.0 in each of its columns (sorted, no repeats)."""
    indptr = np.zeros(len(rows) + 1, np.int64)
    indptr[1:] = np.cumsum([len(r) for r in rows])
    indices = np.fromiter((c for r in rows for c in sorted(r)), np.int32, int(indptr[-1]))
    data = np.ones(len(indices), np.float64)
    return csr_matrix((data, indices, indptr), shape=(len(rows), width))


def title_context(titles: Sequence[str]) -> TitleContext:
    vocabularies: dict[str, dict] = {k: {} for k in ("tokens", "numbers", "quantities", "codes")}
    columns: dict[str, list[list[int]]] = {k: [] for k in vocabularies}
    chars, first = np.zeros(len(titles), np.int64), np.full(len(titles), -1, np.int64)
    for row, title in enumerate(titles):
        facts = title_facts(title)
        for kind, values in (
            ("tokens", facts.tokens),
            ("numbers", facts.numbers),
            ("quantities", facts.quantities),
            ("codes", facts.codes),
        ):
            vocabulary = vocabularies[kind]
            columns[kind].append([vocabulary.setdefault(v, len(vocabulary)) for v in values])
        chars[row] = facts.chars
        if facts.first:
            first[row] = vocabularies["tokens"][facts.first]
    matrices = {k: _incidence(columns.pop(k), len(v)) for k, v in vocabularies.items()}
    tokens = matrices["tokens"]
    # Inverse document frequency within these titles, smoothed, >= 1.
    counts = np.bincount(tokens.indices, minlength=tokens.shape[1])
    rarity = np.log((1 + len(titles)) / (1 + counts)) + 1.0
    unit_kinds = sorted({base for base, _ in _UNITS.values()})
    amounts = list(vocabularies["quantities"])
    quantity_unit = csr_matrix(
        (
            np.ones(len(amounts)),
            ([unit_kinds.index(base) for base, _ in amounts] or np.zeros(0, int)),
            np.arange(len(amounts) + 1),
        ),
        shape=(len(amounts), len(unit_kinds)),
    )
    return TitleContext(
        tokens,
        matrices["numbers"],
        matrices["quantities"],
        quantity_unit,
        matrices["codes"],
        rarity,
        tokens @ rarity,
        chars,
        first,
    )


def _row_sums(matrix: csr_matrix) -> np.ndarray:
    return np.asarray(matrix.sum(axis=1), dtype=np.float64).ravel()


def _shared(matrix: csr_matrix, left: np.ndarray, right: np.ndarray):
    """Each pair's two rows of ``matrix``, what they have in common, and the row sizes."""
    a, b = matrix[left], matrix[right]
    both = a.multiply(b).tocsr()
    return a, b, both, _row_sums(a), _row_sums(b), _row_sums(both)


def _ratio(top: np.ndarray, bottom: np.ndarray, empty: float) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(bottom > 0, top / np.where(bottom > 0, bottom, 1), empty)


def _row_max(matrix: csr_matrix) -> np.ndarray:
    """Each row's largest entry, 0 for an empty row (entries here are all positive)."""
    if matrix.shape[1] == 0:
        return np.zeros(matrix.shape[0])
    return np.asarray(matrix.max(axis=1).todense(), dtype=np.float64).ravel()


def _block_features(
    titles: Sequence[str], context: TitleContext, left: np.ndarray, right: np.ndarray
) -> dict[str, np.ndarray]:
    from rapidfuzz import fuzz, process

    out: dict[str, np.ndarray] = {}
    first_titles = [titles[a] for a in left.tolist()]
    second_titles = [titles[b] for b in right.tolist()]
    for name, scorer in (
        ("fuzz_ratio", fuzz.ratio),
        ("fuzz_token_set", fuzz.token_set_ratio),
        ("fuzz_token_sort", fuzz.token_sort_ratio),
        ("fuzz_partial", fuzz.partial_ratio),
    ):
        out[name] = process.cpdist(
            first_titles, second_titles, scorer=scorer, dtype=np.float32, workers=1
        )
    tokens_a, _, tokens_both, count_a, count_b, shared = _shared(context.tokens, left, right)
    out["token_jaccard"] = _ratio(shared, count_a + count_b - shared, 0.0)
    out["tokens_shared"] = shared
    chars_a, chars_b = context.chars[left], context.chars[right]
    out["chars_min"], out["chars_max"] = np.minimum(chars_a, chars_b), np.maximum(chars_a, chars_b)
    out["tokens_min"], out["tokens_max"] = (
        np.minimum(count_a, count_b),
        np.maximum(count_a, count_b),
    )
    *_, numbers_a, numbers_b, numbers_shared = _shared(context.numbers, left, right)
    out["numbers_shared"] = numbers_shared
    numbers_union = numbers_a + numbers_b - numbers_shared
    out["numbers_only_one"] = numbers_union - numbers_shared
    out["numbers_jaccard"] = _ratio(numbers_shared, numbers_union, np.nan)
    amounts_a, amounts_b, amounts_both, *_, amounts_shared = _shared(
        context.quantities, left, right
    )
    out["quantity_shared"] = amounts_shared
    # Same kind of unit on both sides (e.g. both volumes) but no common amount: a 250 ml
    # and a 500 ml bottle are different products however alike the rest of the title is.
    units_a = (amounts_a @ context.quantity_unit) > 0
    units_b = (amounts_b @ context.quantity_unit) > 0
    common_units = _row_sums(units_a.multiply(units_b))
    agreeing_units = _row_sums((amounts_both @ context.quantity_unit) > 0)
    out["quantity_conflict"] = common_units - agreeing_units
    rarity, weight = context.rarity, context.weight
    shared_weight = tokens_both @ rarity
    weight_a, weight_b = weight[left], weight[right]
    out["rarity_jaccard"] = _ratio(shared_weight, weight_a + weight_b - shared_weight, 0.0)
    out["rarity_containment"] = _ratio(shared_weight, np.minimum(weight_a, weight_b), 0.0)
    # The rarest word only one title has: a rare word the other lacks (a model, a flavour,
    # a colour) is what tells two near-identical titles apart.
    tokens_b = context.tokens[right]
    only_a = _row_max((tokens_a - tokens_both).multiply(rarity).tocsr())
    only_b = _row_max((tokens_b - tokens_both).multiply(rarity).tocsr())
    out["rarity_only_one_max"] = np.maximum(only_a, only_b)
    out["rarity_only_one_min"] = np.minimum(only_a, only_b)
    *_, codes_a, codes_b, codes_shared = _shared(context.codes, left, right)
    out["codes_shared"] = codes_shared
    # NaN when a side has no model number: absence says nothing.
    out["codes_conflict"] = np.where(
        (codes_a > 0) & (codes_b > 0), (codes_shared == 0).astype(np.float64), np.nan
    )
    first_a = context.first[left]
    same_first = (first_a >= 0) & (first_a == context.first[right])
    out["first_token_same"] = same_first
    # -1 (no first token) reads the padding: a catalog of empty titles has no rarities at all.
    padded = np.append(rarity, 0.0)
    out["first_token_rarity"] = np.where(same_first, padded[first_a], 0.0)
    return out


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
    context = context or title_context(titles)
    m = len(left)
    out: dict[str, np.ndarray] = {}
    starts = range(0, m, REPORT_EVERY)

    def block_features(start: int) -> dict[str, np.ndarray]:
        end = start + REPORT_EVERY
        block = _block_features(titles, context, left[start:end], right[start:end])
        if difflib_ratio:
            pairs = zip(left[start:end].tolist(), right[start:end].tolist(), strict=True)
            block["difflib_ratio"] = np.array(
                [sequence_ratio(titles[a], titles[b]) for a, b in pairs], np.float32
            )
        return block

    for start, block in zip(starts, map_in_threads(block_features, starts), strict=True):
        if progress is not None:
            progress(start, m)
        end = min(m, start + REPORT_EVERY)
        if not out:
            out = {name: np.zeros(m, np.float32) for name in block}
        for name, values in block.items():
            out[name][start:end] = values
    if not out:
        names = TEXT_FEATURES + (("difflib_ratio",) if difflib_ratio else ())
        out = {name: np.zeros(0, np.float32) for name in names}
    if progress is not None:
        progress(m, m)
    return out
