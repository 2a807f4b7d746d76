"""String, token and number/unit features of title pairs for the ``best`` classifier.

Every feature is symmetric in (i, j), so the pair's order never matters. Token rarity is
counted within the catalog being matched (not the training catalog), so "a rare word both
titles share" means the same in a catalog of shoes and one of shampoo; model-number-like
tokens (letters and digits) decide between products of one brand in any domain. What each
title says on its own (words, numbers, amounts, model numbers) is `title_facts`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.sparse import csr_matrix

from core.candidates.ratio import sequence_ratio
from core.pipelines.best.title_facts import UNITS, title_facts
from core.threads import map_in_threads

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
    #: Each kind's value → column ("tokens", "numbers", "quantities", "codes").
    vocabularies: dict[str, dict] = field(default_factory=dict, repr=False)


#: The kinds of value a title has, each a matrix of `TitleContext`.
_KINDS = ("tokens", "numbers", "quantities", "codes")


def _incidence(rows: list[list[int]], width: int) -> csr_matrix:
    """One row per title, 1.0 in each of its columns (sorted, no repeats)."""
    indptr = np.zeros(len(rows) + 1, np.int64)
    indptr[1:] = np.cumsum([len(r) for r in rows])
    indices = np.fromiter((c for r in rows for c in sorted(r)), np.int32, int(indptr[-1]))
    data = np.ones(len(indices), np.float64)
    return csr_matrix((data, indices, indptr), shape=(len(rows), width))


def title_context(titles: Sequence[str]) -> TitleContext:
    vocabularies: dict[str, dict] = {kind: {} for kind in _KINDS}
    columns: dict[str, list[list[int]]] = {kind: [] for kind in _KINDS}
    chars, first = np.zeros(len(titles), np.int64), np.full(len(titles), -1, np.int64)
    for row, title in enumerate(titles):
        facts = title_facts(title)
        for kind in _KINDS:
            vocabulary = vocabularies[kind]
            values = getattr(facts, kind)
            columns[kind].append([vocabulary.setdefault(v, len(vocabulary)) for v in values])
        chars[row] = facts.chars
        if facts.first:
            first[row] = vocabularies["tokens"][facts.first]
    matrices = {k: _incidence(columns.pop(k), len(v)) for k, v in vocabularies.items()}
    return _context(matrices, vocabularies, chars, first)


def _context(
    matrices: dict[str, csr_matrix],
    vocabularies: dict[str, dict],
    chars: np.ndarray,
    first: np.ndarray,
) -> TitleContext:
    """The context of titles whose values are ``matrices`` (one row per title)."""
    tokens = matrices["tokens"]
    # Inverse document frequency within these titles, smoothed, >= 1.
    counts = np.bincount(tokens.indices, minlength=tokens.shape[1])
    rarity = np.log((1 + tokens.shape[0]) / (1 + counts)) + 1.0
    unit_kinds = sorted({base for base, _ in UNITS.values()})
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
        vocabularies,
    )


def with_title(context: TitleContext, title: str) -> TitleContext:
    """``context`` with one more title as its last row (a single-item query): the same as
    `title_context` of the titles plus ``title``, up to the order of new columns; the
    catalog's own vocabularies and matrices are not changed."""
    facts = title_facts(title)
    vocabularies = {kind: dict(context.vocabularies[kind]) for kind in _KINDS}
    matrices = {}
    for kind in _KINDS:
        vocabulary, old = vocabularies[kind], getattr(context, kind)
        row = sorted(vocabulary.setdefault(v, len(vocabulary)) for v in getattr(facts, kind))
        matrices[kind] = csr_matrix(
            (
                np.concatenate([old.data, np.ones(len(row))]),
                np.concatenate([old.indices, np.asarray(row, old.indices.dtype)]),
                np.append(old.indptr, old.indptr[-1] + len(row)),
            ),
            shape=(old.shape[0] + 1, len(vocabulary)),
        )
    first = vocabularies["tokens"][facts.first] if facts.first else -1
    return _context(
        matrices,
        vocabularies,
        np.append(context.chars, facts.chars),
        np.append(context.first, first),
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


Features = dict[str, np.ndarray]


def _fuzzy_features(titles: Sequence[str], left: np.ndarray, right: np.ndarray) -> Features:
    """rapidfuzz's string similarities of each pair's titles (0..100)."""
    from rapidfuzz import fuzz, process

    out: Features = {}
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
    return out


def _word_features(
    context: TitleContext, left: np.ndarray, right: np.ndarray
) -> tuple[Features, csr_matrix, csr_matrix]:
    """How many words the titles share, and their lengths; also each left title's words and
    the words both share (the rarity features reuse them)."""
    tokens_a, _, tokens_both, count_a, count_b, shared = _shared(context.tokens, left, right)
    chars_a, chars_b = context.chars[left], context.chars[right]
    out = {
        "token_jaccard": _ratio(shared, count_a + count_b - shared, 0.0),
        "tokens_shared": shared,
        "chars_min": np.minimum(chars_a, chars_b),
        "chars_max": np.maximum(chars_a, chars_b),
        "tokens_min": np.minimum(count_a, count_b),
        "tokens_max": np.maximum(count_a, count_b),
    }
    return out, tokens_a, tokens_both


def _number_features(context: TitleContext, left: np.ndarray, right: np.ndarray) -> Features:
    """The numbers the titles share, and those only one has."""
    *_, numbers_a, numbers_b, numbers_shared = _shared(context.numbers, left, right)
    numbers_union = numbers_a + numbers_b - numbers_shared
    return {
        "numbers_shared": numbers_shared,
        "numbers_only_one": numbers_union - numbers_shared,
        "numbers_jaccard": _ratio(numbers_shared, numbers_union, np.nan),
    }


def _quantity_features(context: TitleContext, left: np.ndarray, right: np.ndarray) -> Features:
    """Amounts with units both titles give, and units both give with no common amount."""
    amounts_a, amounts_b, amounts_both, *_, amounts_shared = _shared(
        context.quantities, left, right
    )
    # Same kind of unit on both sides (e.g. both volumes) but no common amount: a 250 ml
    # and a 500 ml bottle are different products however alike the rest of the title is.
    units_a = (amounts_a @ context.quantity_unit) > 0
    units_b = (amounts_b @ context.quantity_unit) > 0
    common_units = _row_sums(units_a.multiply(units_b))
    agreeing_units = _row_sums((amounts_both @ context.quantity_unit) > 0)
    return {"quantity_shared": amounts_shared, "quantity_conflict": common_units - agreeing_units}


def _rarity_features(
    context: TitleContext,
    left: np.ndarray,
    right: np.ndarray,
    tokens_a: csr_matrix,
    tokens_both: csr_matrix,
) -> Features:
    """The shared words weighed by rarity, and the rarest word only one title has."""
    rarity, weight = context.rarity, context.weight
    shared_weight = tokens_both @ rarity
    weight_a, weight_b = weight[left], weight[right]
    # The rarest word only one title has: a rare word the other lacks (a model, a flavour,
    # a colour) is what tells two near-identical titles apart.
    tokens_b = context.tokens[right]
    only_a = _row_max((tokens_a - tokens_both).multiply(rarity).tocsr())
    only_b = _row_max((tokens_b - tokens_both).multiply(rarity).tocsr())
    return {
        "rarity_jaccard": _ratio(shared_weight, weight_a + weight_b - shared_weight, 0.0),
        "rarity_containment": _ratio(shared_weight, np.minimum(weight_a, weight_b), 0.0),
        "rarity_only_one_max": np.maximum(only_a, only_b),
        "rarity_only_one_min": np.minimum(only_a, only_b),
    }


def _code_and_first_features(
    context: TitleContext, left: np.ndarray, right: np.ndarray
) -> Features:
    """Model numbers shared or in conflict, and whether both titles start with one word."""
    *_, codes_a, codes_b, codes_shared = _shared(context.codes, left, right)
    first_a = context.first[left]
    same_first = (first_a >= 0) & (first_a == context.first[right])
    # -1 (no first token) reads the padding: a catalog of empty titles has no rarities at all.
    padded = np.append(context.rarity, 0.0)
    return {
        "codes_shared": codes_shared,
        # NaN when a side has no model number: absence says nothing.
        "codes_conflict": np.where(
            (codes_a > 0) & (codes_b > 0), (codes_shared == 0).astype(np.float64), np.nan
        ),
        "first_token_same": same_first,
        "first_token_rarity": np.where(same_first, padded[first_a], 0.0),
    }


def _block_features(
    titles: Sequence[str], context: TitleContext, left: np.ndarray, right: np.ndarray
) -> Features:
    """Every title feature of a block of pairs, in the order the classifier's columns take."""
    words, tokens_a, tokens_both = _word_features(context, left, right)
    return {
        **_fuzzy_features(titles, left, right),
        **words,
        **_number_features(context, left, right),
        **_quantity_features(context, left, right),
        **_rarity_features(context, left, right, tokens_a, tokens_both),
        **_code_and_first_features(context, left, right),
    }


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
