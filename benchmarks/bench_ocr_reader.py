"""How `core.ocr` reads photos: the confidence cut and the sizes, measured on real photos.

``--part cut`` (seconds): the lines stored by `bench_grocery_ocr` (every line, with its
confidence) of the 48 grocery training products, kept at each confidence cut: how many photos
say something, and how often a photo's nearest photo by its text (word TF-IDF cosine) is the
same product. ``--part sizes`` (minutes): the detector's input side on grocery training
photos (seconds a photo, the same figures), and the shrink before reading on the Shopee
photos (seconds a photo, and how many of the words read at the package's own 2000 px stay).

    python benchmarks/bench_grocery_ocr.py          # fills the database --part cut reads
    python benchmarks/bench_ocr_reader.py --part cut
    python benchmarks/bench_ocr_reader.py --part sizes --photos 100
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_grocery_ocr import DEFAULT_DB  # noqa: E402
from benchmarks.common import SHARED, load_line, machine_lines  # noqa: E402
from core import ocr  # noqa: E402

CUTS = (0.0, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9)


def training_photos(shared: Path, hold_back: int = 13) -> pd.DataFrame:
    """The grocery photos of the products `bench_grocery_best` does not hold back."""
    catalog = pd.read_csv(shared / "data" / "grocery" / "catalog.csv", dtype=str)
    products = sorted(catalog["label_group"].unique())
    return catalog[catalog["label_group"].isin(products[:-hold_back])].reset_index(drop=True)


def neighbour_figures(texts: list[str], labels: list[str]) -> dict[str, float]:
    """Photos with text; of those with a neighbour sharing a word, how many have the same
    product as their nearest one (word TF-IDF cosine)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    said = [i for i, t in enumerate(texts) if t]
    if len(said) < 2:
        return {"with text": len(said), "with a neighbour": 0, "same product": 0, "share": 0.0}
    matrix = TfidfVectorizer(token_pattern=r"\S+").fit_transform([texts[i] for i in said])
    cosines = (matrix @ matrix.T).toarray()
    np.fill_diagonal(cosines, -1.0)
    nearest, found = cosines.argmax(1), cosines.max(1) > 0
    own = np.asarray([labels[i] for i in said])
    same = (own[nearest] == own) & found
    return {
        "with text": len(said),
        "with a neighbour": int(found.sum()),
        "same product": int(same.sum()),
        "share": round(float(same.sum() / max(found.sum(), 1)), 3),
    }


def cut_part(shared: Path, db: Path) -> None:
    from core.store import Store

    photos = training_photos(shared)
    with Store(db) as store:
        lines = store.photo_lines_by_posting(ocr.READER)
    missing = [p for p in photos["posting_id"] if p not in lines]
    if missing:
        raise SystemExit(f"{len(missing)} photos not read in {db}: run bench_grocery_ocr.py")
    rows = []
    for cut in CUTS:
        texts = [
            ocr.title_with_photo_text("", ocr.text_of(lines[p], cut)) for p in photos["posting_id"]
        ]
        rows.append({"cut": cut, **neighbour_figures(texts, photos["label_group"].tolist())})
    print(f"- {len(photos)} photos of the grocery training products, read by {ocr.READER}")
    print(pd.DataFrame(rows).to_markdown(index=False))


def _read_all(paths: list[Path], **sizes: int) -> tuple[float, list[list]]:
    started = time.perf_counter()
    found = [ocr.photo_lines(path, **sizes) for path in paths]
    return (time.perf_counter() - started) / len(paths), found


def sizes_part(shared: Path, photos: int) -> None:
    grocery = training_photos(shared).head(photos)
    paths = [shared / "data" / "grocery" / "images" / name for name in grocery["image"]]
    rows = []
    for side in (480, 736, 960):
        ocr._engine(side)  # loaded before the clock starts
        seconds, found = _read_all(paths, detector_side=side)
        texts = [ocr.title_with_photo_text("", ocr.text_of(lines)) for lines in found]
        figures = neighbour_figures(texts, grocery["label_group"].tolist())
        rows.append({"detector side": side, "s/photo": round(seconds, 2), **figures})
    print(f"- detector input side, {len(paths)} grocery training photos (348-464 px):")
    print(pd.DataFrame(rows).to_markdown(index=False))
    shopee = sorted((shared / "data" / "shopee" / "images").iterdir())
    words = {}
    rows = []
    for side in (2000, 1024, 640):
        seconds, found = _read_all(shopee, max_side=side)
        words[side] = [set(ocr.title_with_photo_text("", ocr.text_of(x)).split()) for x in found]
        kept = sum(len(a & b) for a, b in zip(words[2000], words[side], strict=True))
        rows.append(
            {
                "longest side": side,
                "s/photo": round(seconds, 2),
                "words": sum(len(w) for w in words[side]),
                "words of 2000 px kept": f"{kept / max(sum(map(len, words[2000])), 1):.2f}",
            }
        )
    print(f"- shrink before reading, {len(shopee)} Shopee photos (300-4500 px):")
    print(pd.DataFrame(rows).to_markdown(index=False))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["cut", "sizes"], default="cut")
    parser.add_argument("--shared", type=Path, default=SHARED)
    parser.add_argument("--db", type=Path, default=DEFAULT_DB)
    parser.add_argument("--photos", type=int, default=100, help="grocery photos for sizes")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    for line in machine_lines():
        print(line)
    if args.part == "cut":
        cut_part(args.shared, args.db)
    else:
        sizes_part(args.shared, args.photos)
    print(load_line())
    print(f"- benchmark wall time: {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
