"""Seller-style titles: mixed Indonesian/English, typos, promo words, emoji, byte escapes."""

from __future__ import annotations

import random

from core.demo.plan import DemoProduct
from core.demo.vocabulary import _EMOJIS, _PROMO_WORDS


def _byte_escape(text: str) -> str:
    """``❤`` -> the 12 characters ``\\xe2\\x9d\\xa4``, as mangled titles in real Shopee data."""
    return "".join(f"\\x{byte:02x}" for byte in text.encode("utf-8"))


def _typo(word: str, rng: random.Random) -> str:
    """One keyboard slip: two letters swapped, one dropped or one doubled."""
    if len(word) < 4:
        return word
    position = rng.randrange(1, len(word) - 1)
    kind = rng.randrange(3)
    if kind == 0:
        return word[: position - 1] + word[position] + word[position - 1] + word[position + 1 :]
    if kind == 1:
        return word[:position] + word[position + 1 :]
    return word[:position] + word[position] + word[position:]


def _vary_case(text: str, rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.2:
        return text.upper()
    if roll < 0.35:
        return text.lower()
    if roll < 0.45:
        return text.title()
    return text


def _emoji(rng: random.Random) -> str:
    emoji = rng.choice(_EMOJIS) * rng.choice((1, 1, 2, 3))
    # Real scraped titles sometimes carry emoji as escaped UTF-8 bytes; matching must cope.
    return _byte_escape(emoji) if rng.random() < 0.4 else emoji


def make_title(product: DemoProduct, rng: random.Random) -> str:
    """A seller-style title for ``product``: shuffled attributes, typos, promo words, emoji.

    The brand is always present as its own whitespace-separated token (any case).
    """
    category = product.category
    descriptive = [rng.choice(category.words)]
    if rng.random() < 0.85:
        descriptive.append(rng.choice((product.variant.word_id, product.variant.word_en)))
    if rng.random() < 0.9:
        descriptive.append(rng.choice(product.size.spellings))
    if category.extras and rng.random() < 0.35:
        descriptive.append(rng.choice(category.extras))
    descriptive = [
        " ".join(_typo(word, rng) if rng.random() < 0.08 else word for word in phrase.split())
        for phrase in descriptive
    ]
    brand = rng.choice((product.brand, product.brand.upper(), product.brand.lower()))
    rng.shuffle(descriptive)
    tokens = descriptive.copy()
    tokens.insert(0 if rng.random() < 0.55 else rng.randrange(len(tokens) + 1), brand)
    for promo in rng.sample(_PROMO_WORDS, rng.choices((0, 1, 2, 3), weights=(3, 4, 2, 1))[0]):
        if rng.random() < 0.5:
            tokens.insert(0, promo)
        else:
            tokens.append(promo)
    title = _vary_case(" ".join(tokens), rng)
    if rng.random() < 0.25:
        title = f"{_emoji(rng)} {title}"
    if rng.random() < 0.3:
        title = f"{title} {_emoji(rng)}"
    return title
