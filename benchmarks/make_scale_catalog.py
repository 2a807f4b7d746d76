"""Build large labelled catalogs (100k, 1M postings) for scale benchmarks from real Shopee titles.

Nothing is downloaded and nothing here is shipped: the output goes where ``--out`` says (a
temporary folder, not the project). Each synthetic product is named from slices of three real
titles of ``../shared/data/shopee/train.csv`` (``--mix``) plus a variant token, so products are
distinct but read like real listings; each of its 2–6 postings is a seller-style
rewrite of that title (words dropped or swapped, typos, promo words, units, emoji, case) with a
perceptual hash a few bits away from the product's.

    python benchmarks/make_scale_catalog.py --postings 100000 --out /tmp/scale/100k.csv
    python benchmarks/make_scale_catalog.py --postings 1000000 --out /tmp/scale/1m.csv --vectors 64
    python benchmarks/make_scale_catalog.py --postings 200000 --shape dense --out /tmp/scale/d.csv

``--shape dense`` is how a real marketplace looks around popular items: about a third of the
products belong to a family of 10–50 products that share one base title and differ only by a
size, colour or variant word (each posted by 2–12 sellers), so hundreds of postings have
near-identical titles; hashes are identical for about half the postings of a product and a few
bits apart for the rest.

With ``--vectors D``, also writes ``<out>.vectors.npy``: one synthetic unit image vector per
posting (product direction plus noise), in catalog order, for image-side benchmarks.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

try:
    from benchmarks.common import SHARED
except ImportError:  # run as a file: benchmarks/ itself is first on sys.path
    from common import SHARED

PROMO = ["promo", "murah", "ready stock", "original", "ori", "bpom", "cod", "termurah", "laris"]
UNITS = ["100ml", "250 ml", "500ml", "1kg", "500 gr", "2 pcs", "3pcs", "1 lusin", "isi 10"]
EMOJI = ["\u2764", "\U0001f525", "\u2b50", "\U0001f381", "\u2728"]
LETTERS = "abcdefghijklmnopqrstuvwxyz"
#: What tells the products of a dense family apart (one word each, as sellers list variants).
VARIANT_WORDS = [
    *("S", "M", "L", "XL", "XXL", "100ml", "250ml", "500ml", "1L", "1kg", "500gr", "isi 6"),
    *("merah", "hitam", "putih", "biru", "hijau", "pink", "abu", "coklat", "kuning", "navy"),
    *("original", "pedas", "manis", "asin", "keju", "coklat", "vanila", "mint", "v2", "pro"),
]


def perturb(title: str, rng: np.random.Generator) -> str:
    """One seller's rewrite of a product title."""
    words = title.split()
    if len(words) > 3 and rng.random() < 0.5:  # drop a word
        del words[rng.integers(len(words))]
    if len(words) > 2 and rng.random() < 0.4:  # swap two neighbours
        i = int(rng.integers(len(words) - 1))
        words[i], words[i + 1] = words[i + 1], words[i]
    for _ in range(int(rng.integers(0, 3))):  # typos: replace, delete or double a letter
        i = int(rng.integers(len(words))) if words else 0
        if not words or len(words[i]) < 3:
            continue
        w, j = words[i], int(rng.integers(1, len(words[i]) - 1))
        kind = rng.integers(3)
        words[i] = (
            w[:j] + LETTERS[rng.integers(26)] + w[j + 1 :]
            if kind == 0
            else w[:j] + w[j + 1 :]
            if kind == 1
            else w[:j] + w[j] + w[j:]
        )
    if rng.random() < 0.4:
        words.insert(0 if rng.random() < 0.5 else len(words), str(rng.choice(PROMO)))
    if rng.random() < 0.25:
        words.append(str(rng.choice(UNITS)))
    if rng.random() < 0.15:
        words.append(str(rng.choice(EMOJI)))
    text = " ".join(words)
    return text.upper() if rng.random() < 0.1 else text


def splice(titles: list[str], base: int, mix: int, rng: np.random.Generator) -> str:
    """A product name from ``mix`` real titles: a third (for mix 3) of each one's words.

    A million postings from 34k real titles would otherwise repeat every real title in ~9
    products that differ by one token, which no marketplace does and which turns text matching
    into a clique problem; spliced names keep real words and lengths but make products
    distinct (two products share at most one source's slice).
    """
    if mix <= 1:
        return titles[base]
    parts = []
    for k in range(mix):
        words = titles[base if k == 0 else int(rng.integers(len(titles)))].split()
        take = max(1, round(len(words) / mix))
        start = int(rng.integers(0, max(1, len(words) - take + 1)))
        parts.extend(words[start : start + take])
    return " ".join(parts)


def flip_bits(phash: int, bits: int, rng: np.random.Generator) -> int:
    for b in rng.choice(64, size=bits, replace=False):
        phash ^= 1 << int(b)
    return phash


def generate(
    source: Path,
    postings: int,
    out: Path,
    seed: int,
    vector_dim: int = 0,
    mix: int = 3,
    shape: str = "dev",
) -> tuple[int, int]:
    """Write the catalog; returns (postings, products)."""
    import pandas as pd

    real = pd.read_csv(source, usecols=["title", "image_phash"], dtype=str).dropna()
    titles, hashes = real["title"].tolist(), [int(h, 16) for h in real["image_phash"]]
    rng = np.random.default_rng(seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    vectors = None
    if vector_dim:
        vectors = np.lib.format.open_memmap(
            out.with_suffix(out.suffix + ".vectors.npy"),
            mode="w+",
            dtype=np.float32,
            shape=(postings, vector_dim),
        )
    written = product = 0
    with out.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["posting_id", "image", "image_phash", "title", "label_group"])
        while written < postings:
            base = int(rng.integers(len(titles)))
            name = splice(titles, base, mix, rng)
            if shape == "dense":
                family = int(rng.integers(10, 51)) if rng.random() < 1 / 3 else 1
                sizes = rng.integers(2, 13, size=family)
                words = rng.choice(VARIANT_WORDS, size=family, replace=family > len(VARIANT_WORDS))
                products = [
                    (f"{name} {w}" if family > 1 else name, int(k))
                    for w, k in zip(words, sizes, strict=True)
                ]
            else:
                variant = f"{LETTERS[rng.integers(26)].upper()}{rng.integers(10, 999)}"
                size = int(rng.choice([2, 2, 2, 3, 3, 4, 5, 6]))
                products = [(f"{name} {variant}", size)]
            for title, size in products:
                if written >= postings:
                    break
                # Each product's own photo: its source's hash moved by 10 bits, so products
                # made from one real posting do not share a picture.
                phash = flip_bits(hashes[base], 10, rng)
                direction = (
                    rng.standard_normal(vector_dim).astype(np.float32) if vector_dim else None
                )
                for _ in range(max(1, min(size, postings - written))):
                    choices = [0, 0, 0, 1, 2, 4, 6] if shape == "dense" else [0, 0, 1, 2, 3, 4, 6]
                    bits = int(rng.choice(choices))
                    writer.writerow(
                        [
                            f"s{written:08d}",
                            "",
                            f"{flip_bits(phash, bits, rng):016x}",
                            perturb(title, rng),
                            f"g{product:07d}",
                        ]
                    )
                    if vectors is not None:
                        noise = 0.6 * rng.standard_normal(vector_dim).astype(np.float32)
                        noisy = direction + noise
                        vectors[written] = noisy / np.linalg.norm(noisy)
                    written += 1
                product += 1
    if vectors is not None:
        vectors.flush()
    return written, product


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postings", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--source", type=Path, default=SHARED / "data" / "shopee" / "train.csv")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--vectors", type=int, default=0, metavar="D", help="image vector size")
    parser.add_argument("--mix", type=int, default=3, help="real titles spliced per product")
    parser.add_argument(
        "--shape", choices=["dev", "dense"], default="dev", help="dense: product families"
    )
    args = parser.parse_args()
    if not args.source.is_file():
        sys.exit(f"real titles not found: {args.source}")
    started = time.perf_counter()
    written, products = generate(
        args.source, args.postings, args.out, args.seed, args.vectors, args.mix, args.shape
    )
    print(
        f"wrote {written:,} postings of {products:,} products to {args.out} in "
        f"{time.perf_counter() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
