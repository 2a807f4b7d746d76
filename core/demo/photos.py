"""One seller's photo of a package: background, crop, angle, lighting, stickers."""

from __future__ import annotations

import math
import random

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

from core.demo.paint import draw_text_centered, readable_on, shade
from core.demo.plan import DemoProduct, PackageDesign, _hsv
from core.demo.textures import textured
from core.demo.vocabulary import (
    _SHOP_NAMES,
    _SHOP_PREFIXES,
    _SHOP_SUFFIXES,
    _STICKER_WORDS,
    _SURFACE_TEXTURES,
    OFFICIAL_PHOTO_SHARE,
    RGB,
)

#: A seller's backdrops and how often each is used.
BACKGROUND_KINDS = ("white", "solid", "gradient", "texture", "wood", "tiles", "clutter")
BACKGROUND_WEIGHTS = (3, 2, 3, 2, 1, 1, 6)
#: How large the package is drawn, as a share of the photo's side (its longer side).
PACKAGE_SCALE = (0.8, 1.0)


def _random_colour(rng: random.Random, light: bool) -> RGB:
    if light:
        return _hsv(rng.random(), rng.uniform(0.0, 0.3), rng.uniform(0.85, 1.0))
    return _hsv(rng.random(), rng.uniform(0.1, 0.7), rng.uniform(0.25, 0.9))


def _background(rng: random.Random, noise: np.random.Generator, size: int) -> Image.Image:
    """A seller's backdrop: studio white, plain colour, gradient, blotchy texture, wood, tiles,
    or a busy surface."""
    kind = rng.choices(BACKGROUND_KINDS, weights=BACKGROUND_WEIGHTS)[0]
    if kind == "clutter":
        # A busy surface (a market table, fabric, a shelf): a texture in two random colours.
        return textured(
            rng.choice(_SURFACE_TEXTURES),
            size,
            rng.getrandbits(32),
            _random_colour(rng, light=rng.random() < 0.5),
            _random_colour(rng, light=False),
            rng.uniform(0.5, 1.0),
        ).convert("RGB")
    if kind == "white":
        return Image.new("RGB", (size, size), shade((255, 255, 255), 1.0 - rng.uniform(0, 0.06)))
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
    scale = rng.uniform(*PACKAGE_SCALE) * size / max(package.size)
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
        draw_text_centered(draw, bar, shop.upper(), fill=(255, 255, 255, 255))
    if rng.random() < 0.35:
        text_layer = Image.new("RGBA", photo.size, (0, 0, 0, 0))
        ink = (255, 255, 255) if rng.random() < 0.5 else (0, 0, 0)
        line_height = size * rng.uniform(0.07, 0.11)
        top = size * rng.uniform(0.3, 0.6)
        draw_text_centered(
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
        draw_text_centered(draw, ribbon, word, fill=(255, 255, 255, 255))
    if rng.random() < 0.3:
        radius = size * rng.uniform(0.1, 0.14)
        centre_x = rng.uniform(radius, size - radius)
        centre_y = rng.uniform(size * 0.55, size - radius)
        colour = (*rng.choice(((250, 215, 30), (225, 35, 45), (255, 255, 255))), 255)
        disc = (centre_x - radius, centre_y - radius, centre_x + radius, centre_y + radius)
        draw.ellipse(disc, fill=colour, outline=(40, 40, 40, 255), width=max(1, size // 128))
        sticker_price = round(price * rng.uniform(0.85, 1.15) / 100) * 100
        draw_text_centered(
            draw,
            (disc[0] + radius * 0.2, disc[1], disc[2] - radius * 0.2, disc[3]),
            _price_text(sticker_price),
            fill=(*readable_on(colour[:3]), 255),
        )
    return Image.alpha_composite(photo, layer)


def render_official_photo(
    package: Image.Image, design: PackageDesign, rng: random.Random, image_size: int
) -> Image.Image:
    """The brand's catalogue shot of a product: centred, upright, on the family's own light
    backdrop (its print's texture in pale family colours, as brands stage their products).

    Many sellers reuse this picture instead of taking their own, which is why identical or
    near-identical images are common within a real product group.
    """
    photo = textured(
        design.texture,
        image_size,
        design.texture_seed ^ rng.getrandbits(8),
        shade(design.primary, 1.5),
        shade(design.secondary, 1.2),
        0.6,
    )
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
