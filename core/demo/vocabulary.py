"""Products, brands, sizes and variants the demo marketplace sells."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

#: Bump whenever the generator's output changes, so cached demo catalogs are rebuilt.
DEMO_VERSION = 2
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
_SURFACE_TEXTURES = ("zigzag", "cells", "hatch", "grain", "speckle", "marble", "plaid")
_SHAPE_ASPECT = {  # width / height of the package, smallest to largest size of a category
    "bottle": (0.36, 0.56),
    "box": (0.68, 1.15),
    "carton": (0.44, 0.62),
    "pouch": (0.66, 0.82),
    "tube": (0.30, 0.38),
    "shirt": (0.98, 1.10),
    "case": (0.48, 0.54),
}
