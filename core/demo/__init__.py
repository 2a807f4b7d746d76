"""A built-in, labelled demo catalog: synthetic product postings drawn with Pillow.

The app must be explorable without downloading anything, so this package invents a small
marketplace in the Shopee layout (``posting_id,image,image_phash,title,label_group``). Each
product gets a package design drawn from its attributes (shape, colours, a textured print and
pattern, a label with the brand), and each of its 2–6 postings shows that design the way a
different seller would:
another background, crop, angle, lighting, stickers and watermarks, and a title written in
mixed Indonesian/English with typos, promo words and emoji.

Matching is deliberately not trivial: some products are near-misses of each other (same brand
and category, another size or flavour, so nearly the same picture) and brands are reused
across categories.

Everything is driven by seeded ``random.Random`` instances, so a seed always gives
byte-identical files.
"""

from __future__ import annotations

from core.demo.build import build_demo_catalog, ensure_demo_catalog
from core.demo.plan import DemoProduct, plan_demo_products
from core.demo.titles import make_title
from core.demo.vocabulary import (
    CATALOG_FILE,
    CSV_COLUMNS,
    DEMO_FOLDER,
    DEMO_VERSION,
    IMAGES_FOLDER,
    VERSION_FILE,
)

__all__ = [
    "CATALOG_FILE",
    "CSV_COLUMNS",
    "DEMO_FOLDER",
    "DEMO_VERSION",
    "IMAGES_FOLDER",
    "VERSION_FILE",
    "DemoProduct",
    "build_demo_catalog",
    "ensure_demo_catalog",
    "make_title",
    "plan_demo_products",
]
