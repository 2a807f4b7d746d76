"""A built-in, labelled demo catalog: synthetic product postings drawn with Pillow.

The app must be explorable without downloading anything, so this module invents a small
marketplace in the Shopee layout (``posting_id,image,image_phash,title,label_group``). Each
product gets a package design drawn from its attributes (shape, colours, pattern, a label with
the brand), and each of its 2–6 postings shows that design the way a different seller would:
another background, crop, angle, lighting, stickers and watermarks, and a title written in
mixed Indonesian/English with typos, promo words and emoji.

Matching is deliberately not trivial: some products are near-misses of each other (same brand
and category, another size or flavour, so nearly the same picture) and brands are reused
across categories.

Everything is driven by seeded ``random.Random`` instances, so a seed always gives
byte-identical files.
"""

from __future__ import annotations

import colorsys
import csv
import io
import logging
import math
import random
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import imagehash
import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageEnhance, ImageFilter, ImageFont

logger = logging.getLogger(__name__)

#: Bump whenever the generator's output changes, so cached demo catalogs are rebuilt.
DEMO_VERSION = 1
DEMO_FOLDER = "demo"
CATALOG_FILE = "catalog.csv"
IMAGES_FOLDER = "images"
VERSION_FILE = "VERSION"
CSV_COLUMNS = ("posting_id", "image", "image_phash", "title", "label_group")

MIN_POSTINGS_PER_PRODUCT = 2
MAX_POSTINGS_PER_PRODUCT = 6
#: Packages are drawn at this multiple of the output size and scaled down, for smooth edges.
SUPERSAMPLING = 2
#: Share of postings that reuse the brand's official photo rather than the seller's own shot.
OFFICIAL_PHOTO_SHARE = 0.5
#: First label_group id; ids are sequential from here in product order.
FIRST_LABEL_GROUP = 1_000

Progress = Callable[[int, int], None]
RGB = tuple[int, int, int]
Box = tuple[float, float, float, float]

# ---------------------------------------------------------------------------------------------
# Vocabulary
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    """A flavour, scent or colour, with the words sellers use for it and its package colour."""

    word_id: str
    word_en: str
    colour: RGB


@dataclass(frozen=True)
class Size:
    """A pack size: every way sellers write it (the first is printed on the package).

    ``rank`` runs from 0 (smallest size of its category) to 1 (largest) and stretches the
    package, so that a 1L bottle looks a little different from a 250ml one.
    """

    spellings: tuple[str, ...]
    rank: float

    @property
    def label(self) -> str:
        return self.spellings[0]


@dataclass(frozen=True)
class Category:
    """A kind of product: its names in both languages, package shape, variants and sizes."""

    key: str
    words: tuple[str, ...]
    shape: str
    variants: tuple[Variant, ...]
    sizes: tuple[Size, ...]
    price_range: tuple[int, int]
    extras: tuple[str, ...] = ()


_PHONE_MODEL_SPELLINGS = {
    "iPhone 11": ("iPhone 11", "iphone11", "ip 11", "IPHONE 11"),
    "iPhone 13": ("iPhone 13", "iphone13", "ip 13", "IPHONE 13"),
    "Samsung A52": ("Samsung A52", "samsung a52", "SS A52", "galaxy a52"),
    "Redmi Note 10": ("Redmi Note 10", "redmi note10", "RN10", "xiaomi redmi note 10"),
}
_APPAREL_SIZES = ("S", "M", "L", "XL", "XXL")
_AMOUNT_PATTERN = re.compile(r"^(\d+(?:\.\d+)?)(ml|L|gr|pcs)$")


def _number(value: float) -> str:
    return f"{value:g}"


def _size_spellings(code: str) -> tuple[str, ...]:
    """All the ways a seller may write ``code`` ("500ml", "1L", "100gr", "2pcs", "XL", model)."""
    if code in _PHONE_MODEL_SPELLINGS:
        return _PHONE_MODEL_SPELLINGS[code]
    if code in _APPAREL_SIZES:
        return (code, f"size {code}", f"uk {code}", f"{code.lower()}", f"({code})")
    match = _AMOUNT_PATTERN.match(code)
    if not match:
        raise ValueError(f"unknown size code {code!r}")
    amount, unit = float(match.group(1)), match.group(2)
    n = _number(amount)
    if unit == "ml":
        litres = _number(amount / 1000)
        return (f"{n}ml", f"{n} ml", f"{n}ML", f"{n} ML", f"{litres}L", f"{litres} liter")
    if unit == "L":
        ml = _number(amount * 1000)
        return (f"{n}L", f"{n} L", f"{n} liter", f"{n} Ltr", f"{ml}ml", f"{ml} ML")
    if unit == "gr":
        return (f"{n}gr", f"{n} gr", f"{n}g", f"{n} gram", f"{n}GR", f"{n} g")
    return (f"{n} pcs", f"{n}pcs", f"isi {n}", f"{n} PCS", f"{n}x", f"isi {n} pcs")


def _sizes(*codes: str) -> tuple[Size, ...]:
    last = max(len(codes) - 1, 1)
    return tuple(Size(_size_spellings(code), index / last) for index, code in enumerate(codes))


def _variants(*specs: tuple[str, str, RGB]) -> tuple[Variant, ...]:
    return tuple(Variant(*spec) for spec in specs)


CATEGORIES: tuple[Category, ...] = (
    Category(
        "shampoo",
        ("shampoo", "sampo", "shampo", "shampoo rambut"),
        "bottle",
        _variants(
            ("anti ketombe", "anti dandruff", (60, 120, 200)),
            ("mentol", "menthol", (80, 200, 210)),
            ("lidah buaya", "aloe vera", (110, 190, 80)),
            ("ginseng", "ginseng", (190, 120, 50)),
            ("stroberi", "strawberry", (230, 70, 120)),
        ),
        _sizes("170ml", "250ml", "500ml", "1L"),
        (18_000, 75_000),
        ("rambut rontok", "hair care", "perawatan rambut"),
    ),
    Category(
        "soap",
        ("sabun", "soap", "sabun mandi", "body wash"),
        "box",
        _variants(
            ("lemon", "lemon", (240, 210, 40)),
            ("mawar", "rose", (220, 90, 130)),
            ("arang", "charcoal", (60, 60, 60)),
            ("susu", "milk", (240, 235, 220)),
            ("sereh", "lemongrass", (150, 190, 60)),
        ),
        _sizes("75gr", "100gr", "3pcs", "6pcs"),
        (5_000, 40_000),
        ("antibakteri", "antibacterial", "kulit halus"),
    ),
    Category(
        "coffee",
        ("kopi", "coffee", "kopi bubuk", "kopi sachet"),
        "pouch",
        _variants(
            ("arabika", "arabica", (120, 70, 40)),
            ("robusta", "robusta", (80, 50, 30)),
            ("moka", "mocha", (150, 100, 70)),
            ("gula aren", "palm sugar", (170, 110, 50)),
            ("susu", "latte", (210, 180, 140)),
        ),
        _sizes("100gr", "200gr", "500gr", "10pcs"),
        (15_000, 120_000),
        ("asli", "premium", "biji pilihan"),
    ),
    Category(
        "milk",
        ("susu", "milk", "susu UHT", "susu cair"),
        "carton",
        _variants(
            ("cokelat", "chocolate", (110, 60, 30)),
            ("vanila", "vanilla", (240, 225, 170)),
            ("stroberi", "strawberry", (240, 110, 150)),
            ("full cream", "full cream", (70, 130, 220)),
            ("pisang", "banana", (250, 220, 60)),
        ),
        _sizes("200ml", "250ml", "1L"),
        (4_000, 25_000),
        ("UHT", "low fat"),
    ),
    Category(
        "tshirt",
        ("kaos", "t-shirt", "kaos polos", "baju kaos", "tshirt"),
        "shirt",
        _variants(
            ("hitam", "black", (35, 35, 40)),
            ("putih", "white", (235, 235, 235)),
            ("navy", "navy", (30, 45, 95)),
            ("merah", "red", (200, 40, 45)),
            ("abu", "grey", (140, 140, 145)),
            ("kuning", "yellow", (240, 200, 50)),
        ),
        _sizes("M", "L", "XL", "XXL"),
        (25_000, 90_000),
        ("cotton combed 30s", "unisex", "distro", "pria wanita"),
    ),
    Category(
        "phone_case",
        ("casing hp", "phone case", "case hp", "softcase", "casing"),
        "case",
        _variants(
            ("bening", "clear", (215, 225, 230)),
            ("hitam", "black", (30, 30, 35)),
            ("pink", "pink", (240, 150, 180)),
            ("biru", "blue", (60, 110, 210)),
            ("hijau", "green", (70, 160, 90)),
        ),
        _sizes("iPhone 11", "iPhone 13", "Samsung A52", "Redmi Note 10"),
        (10_000, 60_000),
        ("anti crack", "silikon", "shockproof"),
    ),
    Category(
        "face_mask",
        ("masker", "face mask", "masker medis", "masker 3 ply"),
        "box",
        _variants(
            ("hijau", "green", (90, 180, 150)),
            ("hitam", "black", (40, 40, 45)),
            ("biru", "blue", (90, 150, 220)),
            ("putih", "white", (235, 238, 240)),
        ),
        _sizes("10pcs", "50pcs"),
        (8_000, 45_000),
        ("earloop", "3 ply", "duckbill"),
    ),
    Category(
        "tea",
        ("teh", "tea", "teh celup", "teh tubruk"),
        "box",
        _variants(
            ("melati", "jasmine", (235, 235, 200)),
            ("hijau", "green tea", (100, 170, 70)),
            ("lemon", "lemon", (240, 215, 60)),
            ("leci", "lychee", (235, 140, 160)),
        ),
        _sizes("25pcs", "50pcs", "100gr"),
        (6_000, 35_000),
        ("wangi", "premium"),
    ),
    Category(
        "snack",
        ("keripik", "snack", "cemilan", "chips", "keripik singkong"),
        "pouch",
        _variants(
            ("balado", "balado", (210, 50, 40)),
            ("keju", "cheese", (250, 200, 40)),
            ("original", "original", (240, 170, 60)),
            ("pedas", "spicy", (180, 20, 20)),
            ("rumput laut", "seaweed", (60, 120, 60)),
        ),
        _sizes("68gr", "150gr", "250gr"),
        (7_000, 30_000),
        ("renyah", "crispy", "oleh oleh"),
    ),
    Category(
        "lipstick",
        ("lipstik", "lipstick", "lip matte", "lipstick matte"),
        "tube",
        _variants(
            ("merah", "red", (180, 20, 40)),
            ("nude", "nude", (200, 140, 120)),
            ("pink", "pink", (230, 100, 150)),
            ("maroon", "maroon", (110, 20, 35)),
            ("coral", "coral", (240, 110, 90)),
        ),
        _sizes("3.5gr", "2pcs"),
        (15_000, 95_000),
        ("tahan lama", "long lasting", "waterproof"),
    ),
    Category(
        "charger",
        ("charger", "kepala charger", "adaptor", "charger hp"),
        "box",
        _variants(
            ("type c", "usb c", (40, 40, 45)),
            ("micro usb", "micro usb", (235, 235, 235)),
            ("fast charging", "fast charge", (230, 120, 30)),
        ),
        _sizes("1pcs", "2pcs"),
        (20_000, 150_000),
        ("18W", "quick charge 3.0", "garansi"),
    ),
    Category(
        "bottle",
        ("botol minum", "water bottle", "tumbler", "botol air"),
        "bottle",
        _variants(
            ("biru", "blue", (60, 130, 220)),
            ("hijau", "green", (90, 190, 110)),
            ("ungu", "purple", (140, 90, 200)),
            ("pink", "pink", (240, 140, 180)),
            ("hitam", "black", (35, 35, 40)),
        ),
        _sizes("500ml", "750ml", "1L", "2L"),
        (15_000, 90_000),
        ("BPA free", "anti bocor", "motivasi"),
    ),
)

#: Invented single-word brands (a title always carries the brand as a separate token).
BRANDS: tuple[str, ...] = (
    "Kilaura", "Segarin", "Wangsari", "Harumi", "Sejuka", "Lumora", "Arunika", "Tirtana",
    "Zavira", "Nivaro", "Kalindra", "Sorena", "Bimora", "Tavisa", "Ruvela", "Dewara",
    "Melinta", "Suryana", "Pandawi", "Cahyo", "Rinjani", "Kenanga", "Bayuma", "Lestara",
    "Mirana", "Jayanti", "Oriza", "Nuvella", "Kirana", "Sakuri", "Velora", "Gemala",
    "Puspita", "Anggrek", "Widara", "Kemuning", "Yasmina", "Bromo", "Sinara", "Lavina",
)  # fmt: skip

#: Every brand+category family yields at least one product, so this many are always reachable.
MAX_PRODUCTS = len(BRANDS) * len(CATEGORIES)

_SHOP_PREFIXES = ("Toko", "Grosir", "Sinar", "Berkah", "Maju", "Lapak", "Gudang", "Pusat")
_SHOP_NAMES = ("Jaya", "Makmur", "Abadi", "Sentosa", "Murah", "Barokah", "Mandiri", "Lestari")
_SHOP_SUFFIXES = ("", " Shop", " Store", " Official", " ID", "88", " Mart")

_PROMO_WORDS = (
    "PROMO", "murah", "READY STOCK", "ORIGINAL", "BPOM", "COD", "grosir", "free ongkir",
    "TERMURAH", "ori 100%", "BISA COD", "best seller", "[READY]", "NEW", "HOT SALE", "diskon",
)  # fmt: skip
_EMOJIS = ("❤", "✨", "🔥", "⭐", "💯", "❤️")
_STICKER_WORDS = ("PROMO", "COD", "READY", "ORI", "SALE", "NEW", "FREE ONGKIR", "HOT")
_SHIRT_NECKLINE = ((0.35, 0.0), (0.41, 0.06), (0.5, 0.085), (0.59, 0.06), (0.65, 0.0))
_PACKAGE_PATTERNS = ("stripes", "diagonal", "dots", "circle", "wave", "split", "plain")
_SHAPE_ASPECT = {  # width / height of the package, smallest to largest size of a category
    "bottle": (0.36, 0.56),
    "box": (0.68, 1.15),
    "carton": (0.44, 0.62),
    "pouch": (0.66, 0.82),
    "tube": (0.30, 0.38),
    "shirt": (0.98, 1.10),
    "case": (0.48, 0.54),
}


# ---------------------------------------------------------------------------------------------
# Product plan
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PackageDesign:
    """How a product's package looks; shared by brand+category, except accent and aspect."""

    shape: str
    primary: RGB
    secondary: RGB
    cap: RGB
    accent: RGB
    pattern: str
    pattern_phase: float
    aspect: float
    brand_upper: bool


@dataclass(frozen=True)
class DemoProduct:
    """One product of the demo catalog (one ``label_group``)."""

    label_group: int
    brand: str
    category: Category
    variant: Variant
    size: Size
    design: PackageDesign
    price: int


def _hsv(hue: float, saturation: float, value: float) -> RGB:
    red, green, blue = colorsys.hsv_to_rgb(hue % 1.0, saturation, value)
    return (round(red * 255), round(green * 255), round(blue * 255))


def _family_palette(rng: random.Random) -> tuple[RGB, RGB, RGB, str, float, bool]:
    """Colours and pattern shared by every product of one brand+category family."""
    hue = rng.random()
    primary = _hsv(hue, rng.uniform(0.45, 0.9), rng.uniform(0.55, 0.95))
    secondary = _hsv(
        hue + rng.choice((0.5, 0.33, -0.33, 0.12)), rng.uniform(0.3, 0.9), rng.uniform(0.3, 1.0)
    )
    cap = rng.choice(((245, 245, 245), (30, 30, 30), (200, 165, 70), secondary))
    return (
        primary,
        secondary,
        cap,
        rng.choice(_PACKAGE_PATTERNS),
        rng.random(),
        rng.random() < 0.6,
    )


def plan_demo_products(n_products: int = 150, seed: int = 0) -> list[DemoProduct]:
    """The products of the demo catalog, without drawing anything.

    Products come in brand+category families of 1–3: siblings differ only in size or only in
    variant (near-miss distractors whose pictures and titles are almost the same).

    Args:
        n_products: how many distinct products (label groups), at most ``MAX_PRODUCTS``.
        seed: the seed; the same seed always gives the same plan.

    Returns:
        ``n_products`` products with distinct (brand, category, variant, size).
    """
    if not 1 <= n_products <= MAX_PRODUCTS:
        raise ValueError(f"n_products must be between 1 and {MAX_PRODUCTS}, got {n_products}")
    rng = random.Random(f"samesame-demo-plan:{seed}")
    products: list[DemoProduct] = []
    used_families: set[tuple[str, str]] = set()
    while len(products) < n_products:
        category = rng.choice(CATEGORIES)
        brand = rng.choice(BRANDS)
        if (brand, category.key) in used_families:
            continue
        used_families.add((brand, category.key))
        family_size = min(rng.choices((1, 2, 3), weights=(5, 3, 2))[0], n_products - len(products))
        primary, secondary, cap, pattern, phase, brand_upper = _family_palette(rng)
        low_price, high_price = category.price_range
        base_price = rng.randrange(low_price, high_price, 500)
        variant, size = rng.choice(category.variants), rng.choice(category.sizes)
        # Siblings all differ from each other in the same single attribute (size or variant):
        # that is what makes them near misses.
        if rng.random() < 0.5:
            options = [(variant, other) for other in category.sizes if other != size]
        else:
            options = [(other, size) for other in category.variants if other != variant]
        combos = [(variant, size), *rng.sample(options, min(family_size - 1, len(options)))]
        for variant, size in combos:
            low_aspect, high_aspect = _SHAPE_ASPECT[category.shape]
            design = PackageDesign(
                shape=category.shape,
                primary=primary,
                secondary=secondary,
                cap=cap,
                accent=variant.colour,
                pattern=pattern,
                pattern_phase=phase,
                aspect=low_aspect + (high_aspect - low_aspect) * size.rank,
                brand_upper=brand_upper,
            )
            price = round(base_price * (0.7 + 0.8 * size.rank) / 500) * 500
            products.append(
                DemoProduct(
                    label_group=FIRST_LABEL_GROUP + len(products),
                    brand=brand,
                    category=category,
                    variant=variant,
                    size=size,
                    design=design,
                    price=max(price, 1_000),
                )
            )
    return products


# ---------------------------------------------------------------------------------------------
# Titles
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# Drawing helpers
# ---------------------------------------------------------------------------------------------

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@lru_cache(maxsize=128)
def _font(pixels: int) -> Font:
    """Pillow's bundled font, at ``pixels`` size where this Pillow can scale it."""
    try:
        return ImageFont.load_default(size=max(pixels, 6))
    except TypeError:  # Pillow < 10.1: only the fixed-size bitmap font exists
        return ImageFont.load_default()


def _fitted_font(draw: ImageDraw.ImageDraw, text: str, max_width: float, max_height: float) -> Font:
    """The largest default-font size at which ``text`` fits in the given box."""
    pixels = max(int(max_height), 6)
    for _ in range(4):
        left, top, right, bottom = draw.textbbox((0, 0), text, font=_font(pixels))
        width, height = max(right - left, 1), max(bottom - top, 1)
        scale = min(max_width / width, max_height / height)
        if scale >= 1.0 or pixels <= 6:
            break
        pixels = max(int(pixels * scale), 6)
    return _font(pixels)


def _draw_text_centered(
    draw: ImageDraw.ImageDraw,
    box: Box,
    text: str,
    fill: tuple[int, ...],
    stroke: tuple[int, ...] | None = None,
) -> None:
    """Write ``text`` as large as fits, centred in ``box``."""
    x0, y0, x1, y1 = box
    font = _fitted_font(draw, text, (x1 - x0) * 0.92, (y1 - y0) * 0.8)
    stroke_width = max(1, int(getattr(font, "size", 10) / 12)) if stroke else 0
    # Centre by measured ink box rather than `anchor`, which bitmap fonts do not support.
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font, stroke_width=stroke_width)
    draw.text(
        ((x0 + x1 - left - right) / 2, (y0 + y1 - top - bottom) / 2),
        text,
        font=font,
        fill=fill,
        stroke_width=stroke_width,
        stroke_fill=stroke,
    )


def _shade(colour: RGB, factor: float) -> RGB:
    """Darker (factor < 1) or lighter (factor > 1) version of a colour."""
    if factor <= 1:
        return tuple(round(c * factor) for c in colour)  # type: ignore[return-value]
    return tuple(round(c + (255 - c) * (factor - 1)) for c in colour)  # type: ignore[return-value]


def _readable_on(colour: RGB) -> RGB:
    luminance = 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]
    return (25, 25, 25) if luminance > 150 else (250, 250, 250)


# ---------------------------------------------------------------------------------------------
# Package rendering (one canonical picture per product)
# ---------------------------------------------------------------------------------------------


def _pattern_layer(design: PackageDesign, canvas: int, body: Box) -> Image.Image:
    """The family's decoration over the package body, on a transparent layer."""
    layer = Image.new("RGBA", (canvas, canvas), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    x0, y0, x1, y1 = body
    width, height = x1 - x0, y1 - y0
    colour = (*design.secondary, 255)
    phase = design.pattern_phase
    if design.pattern == "stripes":
        period = height * (0.12 + 0.08 * phase)
        y = y0 + period * phase
        while y < y1:
            draw.rectangle((x0, y, x1, y + period * 0.4), fill=colour)
            y += period
    elif design.pattern == "diagonal":
        period = width * (0.22 + 0.1 * phase)
        x = x0 - height
        while x < x1:
            draw.polygon(
                [
                    (x, y1),
                    (x + period * 0.45, y1),
                    (x + period * 0.45 + height, y0),
                    (x + height, y0),
                ],
                fill=colour,
            )
            x += period
    elif design.pattern == "dots":
        step = min(width, height) * (0.16 + 0.06 * phase)
        radius = step * 0.22
        row = 0
        y = y0 + step / 2
        while y < y1:
            x = x0 + step / 2 + (step / 2 if row % 2 else 0)
            while x < x1:
                draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour)
                x += step
            y += step
            row += 1
    elif design.pattern == "circle":
        radius = min(width, height) * (0.3 + 0.15 * phase)
        centre_x, centre_y = x0 + width * (0.3 + 0.4 * phase), y0 + height * 0.2
        draw.ellipse(
            (centre_x - radius, centre_y - radius, centre_x + radius, centre_y + radius),
            fill=colour,
        )
    elif design.pattern == "wave":
        amplitude, base = height * 0.05, y0 + height * (0.72 + 0.1 * phase)
        points = [
            (x0 + width * t / 24, base + amplitude * math.sin(t / 24 * 2 * math.pi * 1.5 + phase))
            for t in range(25)
        ]
        draw.polygon([*points, (x1, y1), (x0, y1)], fill=colour)
    elif design.pattern == "split":
        draw.rectangle((x0, y0 + height * (0.55 + 0.2 * phase), x1, y1), fill=colour)
    return layer


def _clip(layer: Image.Image, mask: Image.Image) -> Image.Image:
    """``layer`` visible only where ``mask`` is set."""
    clipped = layer.copy()
    clipped.putalpha(ImageChops.multiply(layer.getchannel("A"), mask))
    return clipped


def _package_geometry(shape: str, box: Box) -> tuple[Box, Box]:
    """(printable body, label band) rectangles of a package drawn in ``box``."""
    x0, y0, x1, y1 = box
    width, height = x1 - x0, y1 - y0
    if shape == "box":
        depth = min(width, height) * 0.14
        body = (x0, y0 + depth, x1 - depth, y1)
    elif shape == "carton":
        depth = width * 0.16
        body = (x0, y0 + height * 0.22, x1 - depth, y1)
    elif shape == "bottle":
        body = (x0, y0 + height * 0.2, x1, y1)
    elif shape == "tube":
        body = (x0, y0 + height * 0.46, x1, y1)
    elif shape == "pouch":
        body = (x0, y0 + height * 0.08, x1, y1)
    else:  # shirt / case: the whole silhouette
        body = box
    bx0, by0, bx1, by1 = body
    body_height = by1 - by0
    band = (bx0, by0 + body_height * 0.36, bx1, by0 + body_height * 0.72)
    return body, band


def _draw_silhouette(draw: ImageDraw.ImageDraw, design: PackageDesign, box: Box, body: Box) -> None:
    """Parts of the package outside the printable body (caps, sides, seals, sleeves…)."""
    x0, y0, x1, y1 = box
    width, height = x1 - x0, y1 - y0
    primary = design.primary
    if design.shape == "bottle":
        draw.rectangle(
            (x0 + width * 0.34, y0 + height * 0.07, x1 - width * 0.34, body[1] + 5),
            fill=_shade(primary, 0.8),
        )
        draw.rounded_rectangle(
            (x0 + width * 0.28, y0, x1 - width * 0.28, y0 + height * 0.09),
            radius=width * 0.04,
            fill=design.cap,
        )
    elif design.shape in ("box", "carton"):
        bx0, by0, bx1, by1 = body
        depth = x1 - bx1
        draw.polygon(
            [(bx1, by0), (x1, by0 - depth), (x1, by1 - depth), (bx1, by1)],
            fill=_shade(primary, 0.65),
        )
        if design.shape == "box":
            draw.polygon(
                [(bx0, by0), (bx0 + depth, y0), (x1, y0), (bx1, by0)], fill=_shade(primary, 1.35)
            )
        else:
            peak = y0 + height * 0.06
            middle = (bx0 + bx1) / 2
            draw.polygon([(bx0, by0), (middle, peak), (bx1, by0)], fill=_shade(primary, 1.3))
            draw.polygon(
                [
                    (middle, peak),
                    (middle + depth, peak - depth * 0.4),
                    (x1, by0 - depth),
                    (bx1, by0),
                ],
                fill=_shade(primary, 0.8),
            )
            draw.rectangle(
                (bx0 + width * 0.05, y0, middle + depth, peak), fill=_shade(primary, 0.9)
            )
    elif design.shape == "tube":
        draw.polygon(
            [
                (x0 + width * 0.2, y0 + height * 0.4),
                (x0 + width * 0.2, y0 + height * 0.12),
                (x1 - width * 0.2, y0),
                (x1 - width * 0.2, y0 + height * 0.4),
            ],
            fill=design.accent,
        )
        draw.rectangle(
            (x0 + width * 0.1, y0 + height * 0.37, x1 - width * 0.1, body[1] + 4), fill=design.cap
        )
    elif design.shape == "pouch":
        teeth = 9
        seal_bottom = y0 + height * 0.11
        points = [(x0 + width * 0.03, seal_bottom)]
        for tooth in range(teeth + 1):
            x = x0 + width * 0.03 + (width * 0.94) * tooth / teeth
            points.append((x, y0 + (height * 0.02 if tooth % 2 else 0)))
        points.append((x1 - width * 0.03, seal_bottom))
        draw.polygon(points, fill=_shade(design.secondary, 0.85))


def _body_mask(design: PackageDesign, canvas: int, box: Box, body: Box) -> Image.Image:
    """Where the printable surface is (an L mask)."""
    mask = Image.new("L", (canvas, canvas), 0)
    draw = ImageDraw.Draw(mask)
    x0, y0, x1, y1 = box
    width, height = x1 - x0, y1 - y0
    if design.shape == "shirt":
        relative = [
            *_SHIRT_NECKLINE,
            (0.98, 0.13),
            (1.0, 0.36),
            (0.8, 0.4),
            (0.8, 1.0),
            (0.2, 1.0),
            (0.2, 0.4),
            (0.0, 0.36),
            (0.02, 0.13),
        ]
        draw.polygon([(x0 + width * u, y0 + height * v) for u, v in relative], fill=255)
    elif design.shape == "case":
        draw.rounded_rectangle(body, radius=width * 0.16, fill=255)
    elif design.shape in ("bottle", "pouch"):
        draw.rounded_rectangle(
            body, radius=width * (0.2 if design.shape == "bottle" else 0.1), fill=255
        )
    elif design.shape == "tube":
        draw.rounded_rectangle(body, radius=width * 0.08, fill=255)
    else:
        draw.rectangle(body, fill=255)
    return mask


def render_package(product: DemoProduct, image_size: int) -> Image.Image:
    """The product's canonical package picture (RGBA, transparent around, cropped tight).

    Drawn at ``SUPERSAMPLING`` times ``image_size`` so that postings scale it down smoothly.
    """
    design = product.design
    canvas = image_size * SUPERSAMPLING
    extent = canvas * 0.94
    if design.aspect <= 1:
        height, width = extent, extent * design.aspect
    else:
        width, height = extent, extent / design.aspect
    box = ((canvas - width) / 2, (canvas - height) / 2, (canvas + width) / 2, (canvas + height) / 2)
    body, band = _package_geometry(design.shape, box)

    apparel = design.shape in ("shirt", "case")
    surface = design.accent if apparel else design.primary
    mask = _body_mask(design, canvas, box, body)
    package = Image.new("RGBA", (canvas, canvas), (0, 0, 0, 0))
    _draw_silhouette(ImageDraw.Draw(package), design, box, body)
    package.paste(Image.new("RGBA", (canvas, canvas), (*surface, 255)), (0, 0), mask)
    if not (design.shape == "shirt" and design.pattern not in ("stripes", "plain")):
        package = Image.alpha_composite(package, _clip(_pattern_layer(design, canvas, body), mask))

    draw = ImageDraw.Draw(package)
    brand = product.brand.upper() if design.brand_upper else product.brand
    bx0, by0, bx1, by1 = body
    body_width, body_height = bx1 - bx0, by1 - by0
    if design.shape == "shirt":
        neck = [(bx0 + body_width * u, by0 + body_height * v) for u, v in _SHIRT_NECKLINE]
        draw.line(neck, fill=_shade(design.accent, 0.7), width=max(2, canvas // 60))
        # A chest print: round logo in the family colours and the brand under it.
        centre_x, centre_y, radius = (bx0 + bx1) / 2, by0 + body_height * 0.42, body_width * 0.12
        draw.ellipse(
            (centre_x - radius, centre_y - radius, centre_x + radius, centre_y + radius),
            fill=design.primary,
            outline=design.secondary,
            width=max(2, canvas // 80),
        )
        text_box = (
            bx0 + body_width * 0.25,
            centre_y + radius,
            bx1 - body_width * 0.25,
            centre_y + radius + body_height * 0.12,
        )
        _draw_text_centered(draw, text_box, brand, fill=_readable_on(design.accent))
    elif design.shape == "case":
        bump = (
            bx0 + body_width * 0.08,
            by0 + body_height * 0.04,
            bx0 + body_width * (0.42 + 0.12 * product.size.rank),
            by0 + body_height * 0.24,
        )
        draw.rounded_rectangle(bump, radius=body_width * 0.06, fill=_shade(design.accent, 0.6))
        lens = (bump[3] - bump[1]) * 0.3
        for lens_x, lens_y in ((0.3, 0.3), (0.3, 0.72), (0.72, 0.5)):
            centre_x = bump[0] + (bump[2] - bump[0]) * lens_x
            centre_y = bump[1] + (bump[3] - bump[1]) * lens_y
            draw.ellipse(
                (
                    centre_x - lens / 2,
                    centre_y - lens / 2,
                    centre_x + lens / 2,
                    centre_y + lens / 2,
                ),
                fill=(20, 20, 25),
            )
        text_box = (bx0, by0 + body_height * 0.78, bx1, by0 + body_height * 0.92)
        _draw_text_centered(draw, text_box, brand, fill=design.primary, stroke=(255, 255, 255))
    else:
        band_x0, band_y0, band_x1, band_y1 = band
        draw.rectangle(band, fill=design.accent)
        edge = max(2, canvas // 100)
        draw.rectangle((band_x0, band_y0, band_x1, band_y0 + edge), fill=design.secondary)
        draw.rectangle((band_x0, band_y1 - edge, band_x1, band_y1), fill=design.secondary)
        ink = _readable_on(design.accent)
        split = band_y0 + (band_y1 - band_y0) * 0.62
        _draw_text_centered(draw, (band_x0, band_y0 + edge, band_x1, split), brand, fill=ink)
        subtitle = f"{product.variant.word_en.upper()} {product.size.label}"
        _draw_text_centered(draw, (band_x0, split, band_x1, band_y1 - edge), subtitle, fill=ink)
    return package.crop(package.getbbox())


# ---------------------------------------------------------------------------------------------
# Posting rendering (one seller's photo of the package)
# ---------------------------------------------------------------------------------------------


def _random_colour(rng: random.Random, light: bool) -> RGB:
    if light:
        return _hsv(rng.random(), rng.uniform(0.0, 0.3), rng.uniform(0.85, 1.0))
    return _hsv(rng.random(), rng.uniform(0.1, 0.7), rng.uniform(0.25, 0.9))


def _background(rng: random.Random, noise: np.random.Generator, size: int) -> Image.Image:
    """A seller's backdrop: studio white, plain colour, gradient, blotchy texture, wood, tiles."""
    kind = rng.choices(
        ("white", "solid", "gradient", "texture", "wood", "tiles"), weights=(3, 2, 3, 2, 1, 1)
    )[0]
    if kind == "white":
        return Image.new("RGB", (size, size), _shade((255, 255, 255), 1.0 - rng.uniform(0, 0.06)))
    if kind == "solid":
        return Image.new("RGB", (size, size), _random_colour(rng, light=rng.random() < 0.85))
    coords = np.linspace(0.0, 1.0, size, dtype=np.float32)
    x, y = np.meshgrid(coords, coords)
    if kind == "gradient":
        angle = rng.uniform(0, 2 * math.pi)
        t = np.clip(0.5 + (x - 0.5) * math.cos(angle) + (y - 0.5) * math.sin(angle), 0, 1)
        start = np.array(_random_colour(rng, light=True), dtype=np.float32)
        end = np.array(_random_colour(rng, light=rng.random() < 0.8), dtype=np.float32)
        pixels = start * (1 - t[..., None]) + end * t[..., None]
    elif kind == "texture":
        blotches = noise.normal(0.0, 1.0, (6, 6)).astype(np.float32)
        smooth = Image.fromarray(blotches).resize((size, size), Image.Resampling.BICUBIC)
        grain = noise.normal(0.0, 6.0, (size, size)).astype(np.float32)
        base = np.array(_random_colour(rng, light=rng.random() < 0.85), dtype=np.float32)
        pixels = base + (np.asarray(smooth) * 18 + grain)[..., None]
    elif kind == "wood":
        frequency = rng.uniform(20, 40)
        rings = np.sin(y * frequency + 2.5 * np.sin(x * rng.uniform(3, 7)))
        light, dark = np.array((190, 140, 90), np.float32), np.array((140, 95, 55), np.float32)
        t = (rings[..., None] + 1) / 2
        pixels = dark * t + light * (1 - t) + noise.normal(0, 4, (size, size, 1))
    else:
        cells = rng.randint(4, 10)
        checker = ((np.floor(x * cells) + np.floor(y * cells)) % 2)[..., None]
        first = np.array(_random_colour(rng, light=True), dtype=np.float32)
        pixels = first * (1 - 0.12 * checker)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def _shop_name(rng: random.Random) -> str:
    return f"{rng.choice(_SHOP_PREFIXES)} {rng.choice(_SHOP_NAMES)}{rng.choice(_SHOP_SUFFIXES)}"


def _price_text(price: int) -> str:
    return f"Rp{price:,}".replace(",", ".")


def _place_package(
    photo: Image.Image,
    package: Image.Image,
    rng: random.Random,
    *,
    max_angle: float = 15.0,
    max_shift: float = 0.05,
) -> None:
    """Paste the package scaled, rotated and shifted, sometimes with a soft drop shadow."""
    size = photo.width
    scale = rng.uniform(0.68, 0.9) * size / max(package.size)
    scaled = package.resize(
        (max(1, round(package.width * scale)), max(1, round(package.height * scale))),
        Image.Resampling.LANCZOS,
    )
    rotated = scaled.rotate(
        rng.triangular(-max_angle, max_angle), Image.Resampling.BICUBIC, expand=True
    )
    left = round((size - rotated.width) / 2 + rng.uniform(-max_shift, max_shift) * size)
    top = round((size - rotated.height) / 2 + rng.uniform(-max_shift, max_shift) * size)
    if rng.random() < 0.5:
        offset = max(2, size // 50)
        shadow = Image.new("RGBA", rotated.size, (0, 0, 0, 0))
        shadow.putalpha(rotated.getchannel("A").point(lambda alpha: alpha * 0.35))
        shadow = shadow.filter(ImageFilter.GaussianBlur(max(1, size // 60)))
        photo.alpha_composite(
            shadow,
            (max(left + offset, 0), max(top + offset, 0)),
            (max(-left - offset, 0), max(-top - offset, 0)),
        )
    photo.alpha_composite(rotated, (max(left, 0), max(top, 0)), (max(-left, 0), max(-top, 0)))


def _add_overlays(photo: Image.Image, rng: random.Random, shop: str, price: int) -> Image.Image:
    """Seller decorations: a shop frame, watermark, promo ribbon and price sticker."""
    size = photo.width
    layer = Image.new("RGBA", photo.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    if rng.random() < 0.15:
        # Shop "template" frame: coloured border with the shop name in a bottom bar.
        colour = (*_random_colour(rng, light=False), 255)
        border = round(size * rng.uniform(0.03, 0.05))
        draw.rectangle((0, 0, size - 1, size - 1), outline=colour, width=border)
        bar = (0, size - size * 0.12, size, size)
        draw.rectangle(bar, fill=colour)
        _draw_text_centered(draw, bar, shop.upper(), fill=(255, 255, 255, 255))
    if rng.random() < 0.35:
        text_layer = Image.new("RGBA", photo.size, (0, 0, 0, 0))
        ink = (255, 255, 255) if rng.random() < 0.5 else (0, 0, 0)
        line_height = size * rng.uniform(0.07, 0.11)
        top = size * rng.uniform(0.3, 0.6)
        _draw_text_centered(
            ImageDraw.Draw(text_layer),
            (0, top, size, top + line_height),
            shop,
            fill=(*ink, rng.randint(70, 130)),
        )
        if rng.random() < 0.5:
            text_layer = text_layer.rotate(rng.uniform(20, 40), Image.Resampling.BICUBIC)
        layer = Image.alpha_composite(layer, text_layer)
        draw = ImageDraw.Draw(layer)
    if rng.random() < 0.35:
        word = rng.choice(_STICKER_WORDS)
        colour = (*rng.choice(((220, 30, 40), (245, 120, 20), (238, 77, 45), (30, 160, 70))), 255)
        width, height = size * rng.uniform(0.3, 0.45), size * rng.uniform(0.09, 0.13)
        left = 0.0 if rng.random() < 0.5 else size - width
        top = 0.0 if rng.random() < 0.7 else size - height
        ribbon = (left, top, left + width, top + height)
        draw.rectangle(ribbon, fill=colour)
        _draw_text_centered(draw, ribbon, word, fill=(255, 255, 255, 255))
    if rng.random() < 0.3:
        radius = size * rng.uniform(0.1, 0.14)
        centre_x = rng.uniform(radius, size - radius)
        centre_y = rng.uniform(size * 0.55, size - radius)
        colour = (*rng.choice(((250, 215, 30), (225, 35, 45), (255, 255, 255))), 255)
        disc = (centre_x - radius, centre_y - radius, centre_x + radius, centre_y + radius)
        draw.ellipse(disc, fill=colour, outline=(40, 40, 40, 255), width=max(1, size // 128))
        sticker_price = round(price * rng.uniform(0.85, 1.15) / 100) * 100
        _draw_text_centered(
            draw,
            (disc[0] + radius * 0.2, disc[1], disc[2] - radius * 0.2, disc[3]),
            _price_text(sticker_price),
            fill=(*_readable_on(colour[:3]), 255),
        )
    return Image.alpha_composite(photo, layer)


def render_official_photo(package: Image.Image, rng: random.Random, image_size: int) -> Image.Image:
    """The brand's catalogue shot of a product: light backdrop, centred, upright.

    Many sellers reuse this picture instead of taking their own, which is why identical or
    near-identical images are common within a real product group.
    """
    backdrop = _random_colour(rng, light=True) if rng.random() < 0.5 else (255, 255, 255)
    photo = Image.new("RGBA", (image_size, image_size), (*backdrop, 255))
    _place_package(photo, package, rng, max_angle=4.0, max_shift=0.03)
    return photo


def render_posting(
    package: Image.Image,
    official_photo: Image.Image,
    product: DemoProduct,
    rng: random.Random,
    image_size: int,
) -> Image.Image:
    """One seller's picture of a product, in ``image_size`` pixels square (RGB).

    Either the reused ``official_photo`` or the seller's own shot of ``package`` (own
    backdrop, angle, position), then cropped, decorated and re-lit differently every time.
    """
    if rng.random() < OFFICIAL_PHOTO_SHARE:
        photo = official_photo
        # Half of the re-uploads keep the original framing and add no stickers.
        retouched = rng.random() < 0.5
        crop_side = image_size * (rng.uniform(0.9, 1.0) if retouched else 1.0)
    else:
        noise = np.random.default_rng(rng.getrandbits(64))
        photo = _background(rng, noise, image_size).convert("RGBA")
        _place_package(photo, package, rng)
        retouched = True
        crop_side = image_size * rng.uniform(0.9, 1.0)
    crop_left = rng.uniform(0, image_size - crop_side)
    crop_top = rng.uniform(0, image_size - crop_side)
    photo = photo.resize(
        (image_size, image_size),
        Image.Resampling.BICUBIC,
        box=(crop_left, crop_top, crop_left + crop_side, crop_top + crop_side),
    )
    if retouched:
        photo = _add_overlays(photo, rng, _shop_name(rng), product.price)
    photo = photo.convert("RGB")
    photo = ImageEnhance.Brightness(photo).enhance(rng.uniform(0.8, 1.2))
    photo = ImageEnhance.Contrast(photo).enhance(rng.uniform(0.8, 1.2))
    photo = ImageEnhance.Color(photo).enhance(rng.uniform(0.8, 1.2))
    if rng.random() < 0.15:
        photo = photo.filter(ImageFilter.GaussianBlur(rng.uniform(0.4, 1.0)))
    return photo


# ---------------------------------------------------------------------------------------------
# Catalog files
# ---------------------------------------------------------------------------------------------


def _replace_directory(staging: Path, target: Path) -> None:
    """Move the finished ``staging`` folder to ``target``, replacing any previous one."""
    retired: Path | None = None
    if target.exists():
        retired = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
        target.rename(retired)
    try:
        staging.rename(target)
    except OSError:
        if not target.exists():
            if retired is not None:
                retired.rename(target)  # put the previous catalog back
                retired = None
            raise
        # Another process finished the same job first; its output is just as good.
        logger.info("demo catalog at %s was written concurrently; keeping that one", target)
        shutil.rmtree(staging, ignore_errors=True)
    finally:
        if retired is not None:
            shutil.rmtree(retired, ignore_errors=True)


def _write_postings(
    folder: Path,
    products: Sequence[DemoProduct],
    seed: int,
    image_size: int,
    progress: Progress | None,
) -> int:
    """Draw every posting into ``folder`` and write the CSV; returns the number of postings."""
    rng = random.Random(f"samesame-demo-postings:{seed}")
    postings = [
        product
        for product in products
        for _ in range(rng.randint(MIN_POSTINGS_PER_PRODUCT, MAX_POSTINGS_PER_PRODUCT))
    ]
    # Marketplaces list postings in no particular order; neither should the demo.
    rng.shuffle(postings)
    total = len(postings)
    images = folder / IMAGES_FOLDER
    images.mkdir()
    # Drawn once per product, on first use; every posting of it starts from these.
    packages: dict[int, tuple[Image.Image, Image.Image]] = {}
    if progress is not None:
        progress(0, total)
    with (folder / CATALOG_FILE).open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for index, product in enumerate(postings):
            posting_rng = random.Random(rng.getrandbits(64))
            if product.label_group not in packages:
                package = render_package(product, image_size)
                official = render_official_photo(package, posting_rng, image_size)
                packages[product.label_group] = (package, official)
            package, official = packages[product.label_group]
            photo = render_posting(package, official, product, posting_rng, image_size)
            buffer = io.BytesIO()
            photo.save(buffer, "JPEG", quality=posting_rng.randint(70, 95))
            jpeg = buffer.getvalue()
            posting_id = f"demo_{index:06d}"
            image_name = f"{posting_id}.jpg"
            (images / image_name).write_bytes(jpeg)
            # Hash the file as saved, the way an importer re-reading it would.
            phash = str(imagehash.phash(Image.open(io.BytesIO(jpeg))))
            title = make_title(product, posting_rng)
            writer.writerow((posting_id, image_name, phash, title, product.label_group))
            if progress is not None:
                progress(index + 1, total)
    return total


def build_demo_catalog(
    target_dir: Path,
    *,
    n_products: int = 150,
    seed: int = 0,
    image_size: int = 256,
    progress: Progress | None = None,
) -> Path:
    """Generate the demo catalog into ``target_dir`` (``catalog.csv``, ``images/``, ``VERSION``).

    The catalog is built in a temporary sibling folder and swapped in at the end, so an
    interrupted run never leaves half a catalog. ``target_dir`` belongs to the generator:
    anything already in it is replaced.

    Args:
        target_dir: the folder to (re)create.
        n_products: distinct products (label groups); each is posted 2–6 times.
        seed: the same seed gives byte-identical files.
        image_size: width and height of every image, in pixels.
        progress: called as ``progress(done, total)`` with the number of postings written.

    Returns:
        The path of ``catalog.csv``.
    """
    if image_size < 32:
        raise ValueError(f"image_size must be at least 32 pixels, got {image_size}")
    target_dir = Path(target_dir)
    products = plan_demo_products(n_products, seed)
    target_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target_dir.name}.tmp-", dir=target_dir.parent))
    try:
        total = _write_postings(staging, products, seed, image_size, progress)
        (staging / VERSION_FILE).write_text(f"{DEMO_VERSION}\n", encoding="utf-8")
        _replace_directory(staging, target_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info(
        "demo catalog: %d postings of %d products written to %s", total, n_products, target_dir
    )
    return target_dir / CATALOG_FILE


def ensure_demo_catalog(data_dir: Path) -> Path:
    """The default demo catalog under ``data_dir/demo``, generated only when missing or stale.

    Args:
        data_dir: the app's data folder.

    Returns:
        The path of ``data_dir/demo/catalog.csv``.
    """
    demo_dir = Path(data_dir) / DEMO_FOLDER
    catalog = demo_dir / CATALOG_FILE
    version_file = demo_dir / VERSION_FILE
    try:
        stored_version = version_file.read_text(encoding="utf-8").strip()
    except OSError:
        stored_version = None
    if catalog.is_file() and (demo_dir / IMAGES_FOLDER).is_dir():
        if stored_version == str(DEMO_VERSION):
            return catalog
        logger.info(
            "demo catalog version %s is outdated (now %d); regenerating",
            stored_version,
            DEMO_VERSION,
        )
    else:
        logger.info("no demo catalog in %s yet; generating it", demo_dir)
    return build_demo_catalog(demo_dir)
