"""BERT's uncased WordPiece tokenizer in plain Python, read from a ``tokenizer.json``.

It does what the Hugging Face ``tokenizers`` package does for all-MiniLM-L6-v2 (``BertNormalizer``
with lower-casing and accent stripping, ``BertPreTokenizer``, ``WordPiece``, the special tokens
matched in the raw text, pairs truncated "longest first"), so the app needs neither that package
nor the eight packages it pulls in. ``scripts/reference_minilm_vectors.py`` checks the ids
against ``tokenizers`` on every title of the real data sets and stores a sample for the tests.
"""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path

import numpy as np

#: CJK ideograph blocks that BERT surrounds with spaces (each becomes a word of its own).
_CJK = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)
_ASCII_PUNCTUATION = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")


def _normalise_char(ch: str) -> str:
    """One character after BERT's text cleaning and Chinese-character handling."""
    if ch in "\t\n\r":
        return " "
    if ch in "\x00\ufffd" or unicodedata.category(ch).startswith("C"):
        return ""
    if ch.isspace():
        return " "
    code = ord(ch)
    if any(low <= code <= high for low, high in _CJK):
        return f" {ch} "
    return ch


def normalise(text: str) -> str:
    """BertNormalizer(clean_text, handle_chinese_chars, strip_accents, lowercase)."""
    cleaned = "".join(_normalise_char(ch) for ch in text)
    stripped = "".join(
        ch for ch in unicodedata.normalize("NFD", cleaned) if unicodedata.category(ch) != "Mn"
    )
    # Per character, as the reference does (no final-sigma context).
    return "".join(ch.lower() for ch in stripped)


def _is_punctuation(ch: str) -> bool:
    return ch in _ASCII_PUNCTUATION or unicodedata.category(ch).startswith("P")


def pre_tokenise(text: str) -> list[str]:
    """Words split at whitespace (dropped) and punctuation (each mark a word of its own)."""
    words: list[str] = []
    for chunk in text.split():
        start = 0
        for index, ch in enumerate(chunk):
            if _is_punctuation(ch):
                if index > start:
                    words.append(chunk[start:index])
                words.append(ch)
                start = index + 1
        if start < len(chunk):
            words.append(chunk[start:])
    return words


class WordPieceTokenizer:
    """Text → token ids of an uncased BERT vocabulary.

    Args:
        vocab: token → id.
        special: the special tokens' names → ids (``[CLS]``, ``[SEP]``, ``[PAD]``, ``[UNK]``…).
        max_chars: a longer word is one ``[UNK]``.
    """

    def __init__(self, vocab: dict[str, int], special: dict[str, int], max_chars: int = 100):
        self.vocab = vocab
        self.special = special
        self.max_chars = max_chars
        self.unk = special["[UNK]"]
        self.cls, self.sep, self.pad = special["[CLS]"], special["[SEP]"], special["[PAD]"]
        names = sorted(special, key=len, reverse=True)
        self._special_re = re.compile("(" + "|".join(re.escape(n) for n in names) + ")")
        self._cache: dict[str, list[int]] = {}

    @classmethod
    def from_file(cls, path: Path) -> WordPieceTokenizer:
        """Read the vocabulary and special tokens of a Hugging Face ``tokenizer.json``."""
        spec = json.loads(Path(path).read_text(encoding="utf-8"))
        model = spec["model"]
        if model.get("type") != "WordPiece":
            raise ValueError(f"{path} is not a WordPiece tokenizer")
        special = {t["content"]: t["id"] for t in spec.get("added_tokens", []) if t["special"]}
        return cls(model["vocab"], special, model.get("max_input_chars_per_word", 100))

    def _word_ids(self, word: str) -> list[int]:
        cached = self._cache.get(word)
        if cached is None:
            cached = self._wordpiece(word)
            if len(self._cache) < 200_000:
                self._cache[word] = cached
        return cached

    def _wordpiece(self, word: str) -> list[int]:
        """Greedy longest-match-first pieces; one unknown piece makes the word one [UNK]."""
        if len(word) > self.max_chars:
            return [self.unk]
        ids: list[int] = []
        start = 0
        while start < len(word):
            for end in range(len(word), start, -1):
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                found = self.vocab.get(piece)
                if found is not None:
                    break
            else:
                return [self.unk]
            ids.append(found)
            start = end
        return ids

    def tokenise(self, text: str) -> list[int]:
        """The ids of ``text`` without [CLS]/[SEP]; special tokens written in it count as such."""
        ids: list[int] = []
        for part in self._special_re.split(text):
            if part in self.special:
                ids.append(self.special[part])
            elif part:
                for word in pre_tokenise(normalise(part)):
                    ids.extend(self._word_ids(word))
        return ids

    def encode(self, texts: list[str], max_length: int) -> np.ndarray:
        """[CLS] text [SEP], cut to ``max_length`` tokens, packed as `pack` does.

        Returns:
            float32 (n, 3, length): ids, token types (0), attention mask; ``length`` is the
            longest encoded text (≤ max_length).
        """
        rows = []
        for text in texts:
            ids = self.tokenise(text)[: max_length - 2]
            rows.append(([self.cls, *ids, self.sep], [0] * (len(ids) + 2)))
        return pack(rows, self.pad)

    def encode_pairs(self, left: list[str], right: list[str], max_length: int) -> np.ndarray:
        """[CLS] a [SEP] b [SEP] (token types 0 … 0 1 … 1), the longer title cut first.

        Returns:
            float32 (n, 3, length) as `encode`.
        """
        if len(left) != len(right):
            raise ValueError(f"{len(left)} left titles but {len(right)} right titles")
        rows = []
        for a_text, b_text in zip(left, right, strict=True):
            a, b = self.tokenise(a_text), self.tokenise(b_text)
            keep_a, keep_b = longest_first(len(a), len(b), max_length - 3)
            a, b = a[:keep_a], b[:keep_b]
            ids = [self.cls, *a, self.sep, *b, self.sep]
            rows.append((ids, [0] * (len(a) + 2) + [1] * (len(b) + 1)))
        return pack(rows, self.pad)


def longest_first(n_a: int, n_b: int, budget: int) -> tuple[int, int]:
    """How many tokens of each side to keep, as the reference's "longest first" truncation."""
    if n_a + n_b <= budget:
        return n_a, n_b
    short, long_ = sorted((n_a, n_b))
    long_ = short if short > budget else max(short, budget - short)
    if short + long_ > budget:
        short, long_ = budget // 2, budget // 2 + budget % 2
    return (long_, short) if n_a > n_b else (short, long_)


def pack(rows: list[tuple[list[int], list[int]]], pad: int) -> np.ndarray:
    """(ids, token types) rows → float32 (n, 3, longest): ids, types, mask, padded right."""
    length = max((len(ids) for ids, _ in rows), default=1)
    packed = np.zeros((len(rows), 3, length), np.float32)
    packed[:, 0, :] = pad
    for row, (ids, types) in enumerate(rows):
        packed[row, 0, : len(ids)] = ids
        packed[row, 1, : len(types)] = types
        packed[row, 2, : len(ids)] = 1.0
    return packed
