"""Title normalisation (TF-IDF vectors are built by `core.candidates.tfidf`).

Shopee titles carry literal UTF-8 byte escapes (``\\xe2\\x9d\\xa4`` written out as text), HTML
entities, full-width characters, emoji and promo punctuation; all of it is noise for matching.
The escapes are decoded once, on import (`stored_title`): the store keeps the title as its
writer meant it, and the raw one beside it when they differ.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable

import pandas as pd

_BYTE_ESCAPE_RUN = re.compile(r"(?:\\x[0-9a-fA-F]{2})+")
_NOISE = re.compile(r"[^\w\s]|_", re.UNICODE)
_SPACES = re.compile(r"\s+")
#: Escapes decode only to characters from here up: ASCII and C1 control characters stay
#: written out (see `decode_byte_escapes`).
_FIRST_DECODED = "\xa0"


def _decode_run(match: re.Match[str]) -> str:
    """One run of ``\\xNN`` escapes: each valid UTF-8 sequence of a character from U+00A0 up
    becomes that character; every other byte keeps its escape exactly as written."""
    run = match.group(0)
    escapes = [run[i : i + 4] for i in range(0, len(run), 4)]
    data = bytes(int(escape[2:], 16) for escape in escapes)
    pieces: list[str] = []
    at = 0
    for char in data.decode("utf-8", errors="surrogateescape"):
        invalid = "\udc80" <= char <= "\udcff"
        width = 1 if invalid else len(char.encode("utf-8"))
        keep = invalid or char < _FIRST_DECODED
        pieces.append("".join(escapes[at : at + width]) if keep else char)
        at += width
    return "".join(pieces)


def decode_byte_escapes(text: str) -> str:
    """Turn runs of literal ``\\xNN`` escapes back into the characters their bytes encode.

    ``Nescafe \\xc3\\x89clair`` becomes ``Nescafe Éclair``. Never raises and never loses text:
    bytes that are not valid UTF-8 stay exactly as written, and so do escapes of ASCII (a byte
    dump writes printable ASCII as itself, so ``\\x41`` was meant as written) and of control
    characters (no place in a title). Idempotent: what it leaves never decodes later.
    """
    if "\\x" not in text:
        return text
    return _BYTE_ESCAPE_RUN.sub(_decode_run, text)


def stored_title(raw: object) -> tuple[str, str | None]:
    """A catalog title as the store keeps it: (title with its byte escapes decoded, the raw
    title when decoding changed it, else ``None``). ``None``/NaN give ``("", None)``."""
    if raw is None or (isinstance(raw, float) and raw != raw):
        return "", None
    text = str(raw)
    title = decode_byte_escapes(text)
    return title, (text if title != text else None)


def display_title(title: object) -> str:
    """A title as a person should read it: byte escapes and HTML entities decoded, case, emoji
    and punctuation kept."""
    if title is None or (isinstance(title, float) and title != title):
        return ""
    return html.unescape(decode_byte_escapes(str(title)))


def display_titles(titles: pd.Series) -> pd.Series:
    """`display_title` of each title; only those with an escape or an entity are decoded
    (a million titles in a fraction of a second rather than two)."""
    out = titles.fillna("").astype(str)
    encoded = out.str.contains("\\x", regex=False) | out.str.contains("&", regex=False)
    if encoded.any():
        out = out.copy()
        out[encoded] = out[encoded].map(display_title)
    return out


def normalize_title(title: object) -> str:
    """Lower-cased, unicode-normalised title with escapes decoded and punctuation/emoji removed.

    Args:
        title: anything; ``None``/NaN give ``""``.

    Returns:
        Words separated by single spaces (may be empty: an empty title is no evidence).
    """
    if title is None or (isinstance(title, float) and title != title):
        return ""
    # Escapes that do not decode (invalid UTF-8, control bytes) are noise for matching.
    text = _BYTE_ESCAPE_RUN.sub("", decode_byte_escapes(str(title)))
    text = html.unescape(text)
    text = unicodedata.normalize("NFKC", text).lower()
    # Emoji and symbols are category S*, punctuation P*: both become separators.
    text = "".join(" " if unicodedata.category(ch)[0] in "PSC" else ch for ch in text)
    text = _NOISE.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


def normalize_titles(titles: Iterable[object]) -> list[str]:
    return [normalize_title(t) for t in titles]
