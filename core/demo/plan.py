"""Which products the demo catalog holds: seeded choices of category, brand, size and design."""

from __future__ import annotations

import colorsys
import random
from dataclasses import dataclass

from core.demo.vocabulary import (
    _PACKAGE_PATTERNS,
    _SHAPE_ASPECT,
    _SURFACE_TEXTURES,
    BRANDS,
    CATEGORIES,
    FIRST_LABEL_GROUP,
    MAX_PRODUCTS,
    RGB,
    Category,
    Size,
    Variant,
)


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
    #: The print's texture (one of ``_SURFACE_TEXTURES``) and its seed: what an image model
    #: tells families apart by, as it does real packages (flat colours all look alike to it).
    texture: str = "plain"
    texture_seed: int = 0


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


def _siblings(
    rng: random.Random, category: Category, family_size: int
) -> list[tuple[Variant, Size]]:
    """(variant, size) of each product of a family. Siblings all differ from each other in the
    same single attribute (size or variant): that is what makes them near misses."""
    variant, size = rng.choice(category.variants), rng.choice(category.sizes)
    if rng.random() < 0.5:
        options = [(variant, other) for other in category.sizes if other != size]
    else:
        options = [(other, size) for other in category.variants if other != variant]
    return [(variant, size), *rng.sample(options, min(family_size - 1, len(options)))]


def _family(
    rng: random.Random, seed: int, brand: str, category: Category, family_size: int, first: int
) -> list[DemoProduct]:
    """One brand+category family: one palette, pattern and print, ``family_size`` siblings
    numbered from label group ``first``."""
    primary, secondary, cap, pattern, phase, brand_upper = _family_palette(rng)
    # From a generator of its own, so the rest of the plan is as before textures came.
    print_rng = random.Random(f"samesame-demo-print:{seed}:{brand}:{category.key}")
    texture, texture_seed = print_rng.choice(_SURFACE_TEXTURES), print_rng.getrandbits(32)
    low_price, high_price = category.price_range
    base_price = rng.randrange(low_price, high_price, 500)
    products = []
    for variant, size in _siblings(rng, category, family_size):
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
            texture=texture,
            texture_seed=texture_seed,
        )
        price = round(base_price * (0.7 + 0.8 * size.rank) / 500) * 500
        products.append(
            DemoProduct(
                label_group=first + len(products),
                brand=brand,
                category=category,
                variant=variant,
                size=size,
                design=design,
                price=max(price, 1_000),
            )
        )
    return products


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
        first = FIRST_LABEL_GROUP + len(products)
        products.extend(_family(rng, seed, brand, category, family_size, first))
    return products
