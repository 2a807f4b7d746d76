"""Drawing a product's package: one canonical picture per product."""

from __future__ import annotations

import math
from functools import lru_cache

from PIL import Image, ImageChops, ImageDraw, ImageFont

from core.demo.plan import DemoProduct, PackageDesign
from core.demo.textures import textured
from core.demo.vocabulary import _SHIRT_NECKLINE, RGB, SUPERSAMPLING, Box

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
#: How far the print's texture goes from the surface colour to the secondary one (0 to 1).
PRINT_STRENGTH = 0.75
APPAREL_PRINT_STRENGTH = 0.5
#: The label band across the body (top and bottom, as shares of the body's height): narrow
#: enough that the print shows around it (a wide flat band made every package alike to an
#: image model), wide enough for the brand to read in a thumbnail.
LABEL_BAND = (0.42, 0.60)


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
    band = (bx0, by0 + body_height * LABEL_BAND[0], bx1, by0 + body_height * LABEL_BAND[1])
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
    # The family's print: its texture in the secondary colour over the surface colour.
    strength = APPAREL_PRINT_STRENGTH if apparel else PRINT_STRENGTH
    print_ = textured(
        design.texture, canvas, design.texture_seed, surface, design.secondary, strength
    )
    package.paste(print_, (0, 0), mask)
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
