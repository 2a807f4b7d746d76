"""Drawing a product's package: one canonical picture per product."""

from __future__ import annotations

import math

from PIL import Image, ImageChops, ImageDraw

from core.demo.paint import draw_text_centered, readable_on, shade
from core.demo.plan import DemoProduct, PackageDesign
from core.demo.textures import textured
from core.demo.vocabulary import _SHIRT_NECKLINE, SUPERSAMPLING, Box

#: How far the print's texture goes from the surface colour to the secondary one (0 to 1).
PRINT_STRENGTH = 0.75
APPAREL_PRINT_STRENGTH = 0.5
#: The label band across the body (top and bottom, as shares of the body's height): narrow
#: enough that the print shows around it (a wide flat band made every package alike to an
#: image model), wide enough for the brand to read in a thumbnail.
LABEL_BAND = (0.42, 0.60)


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


def _draw_bottle_neck(
    draw: ImageDraw.ImageDraw, design: PackageDesign, box: Box, body: Box
) -> None:
    """A bottle's neck and cap above its body."""
    x0, y0, x1, y1 = box
    width, height = x1 - x0, y1 - y0
    draw.rectangle(
        (x0 + width * 0.34, y0 + height * 0.07, x1 - width * 0.34, body[1] + 5),
        fill=shade(design.primary, 0.8),
    )
    draw.rounded_rectangle(
        (x0 + width * 0.28, y0, x1 - width * 0.28, y0 + height * 0.09),
        radius=width * 0.04,
        fill=design.cap,
    )


def _draw_box_sides(draw: ImageDraw.ImageDraw, design: PackageDesign, box: Box, body: Box) -> None:
    """A box's side and top, or a carton's side and gabled top, in shades of its colour."""
    x0, y0, x1, y1 = box
    width, height = x1 - x0, y1 - y0
    primary = design.primary
    bx0, by0, bx1, by1 = body
    depth = x1 - bx1
    draw.polygon(
        [(bx1, by0), (x1, by0 - depth), (x1, by1 - depth), (bx1, by1)],
        fill=shade(primary, 0.65),
    )
    if design.shape == "box":
        draw.polygon(
            [(bx0, by0), (bx0 + depth, y0), (x1, y0), (bx1, by0)], fill=shade(primary, 1.35)
        )
        return
    peak = y0 + height * 0.06
    middle = (bx0 + bx1) / 2
    draw.polygon([(bx0, by0), (middle, peak), (bx1, by0)], fill=shade(primary, 1.3))
    draw.polygon(
        [
            (middle, peak),
            (middle + depth, peak - depth * 0.4),
            (x1, by0 - depth),
            (bx1, by0),
        ],
        fill=shade(primary, 0.8),
    )
    draw.rectangle((bx0 + width * 0.05, y0, middle + depth, peak), fill=shade(primary, 0.9))


def _draw_tube_end(draw: ImageDraw.ImageDraw, design: PackageDesign, box: Box, body: Box) -> None:
    """A tube's crimped end and its cap."""
    x0, y0, x1, y1 = box
    width, height = x1 - x0, y1 - y0
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


def _draw_pouch_seal(draw: ImageDraw.ImageDraw, design: PackageDesign, box: Box, body: Box) -> None:
    """A pouch's toothed seal along its top."""
    x0, y0, x1, y1 = box
    width, height = x1 - x0, y1 - y0
    teeth = 9
    seal_bottom = y0 + height * 0.11
    points = [(x0 + width * 0.03, seal_bottom)]
    for tooth in range(teeth + 1):
        x = x0 + width * 0.03 + (width * 0.94) * tooth / teeth
        points.append((x, y0 + (height * 0.02 if tooth % 2 else 0)))
    points.append((x1 - width * 0.03, seal_bottom))
    draw.polygon(points, fill=shade(design.secondary, 0.85))


#: What each shape has outside its printable body (shirts and cases have nothing).
_SILHOUETTE_PARTS = {
    "bottle": _draw_bottle_neck,
    "box": _draw_box_sides,
    "carton": _draw_box_sides,
    "tube": _draw_tube_end,
    "pouch": _draw_pouch_seal,
}


def _draw_silhouette(draw: ImageDraw.ImageDraw, design: PackageDesign, box: Box, body: Box) -> None:
    """Parts of the package outside the printable body (caps, sides, seals, sleeves…)."""
    parts = _SILHOUETTE_PARTS.get(design.shape)
    if parts is not None:
        parts(draw, design, box, body)


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


def _package_box(design: PackageDesign, canvas: int) -> Box:
    """The package's box, centred on the canvas at its aspect ratio."""
    extent = canvas * 0.94
    if design.aspect <= 1:
        height, width = extent, extent * design.aspect
    else:
        width, height = extent, extent / design.aspect
    return (
        (canvas - width) / 2,
        (canvas - height) / 2,
        (canvas + width) / 2,
        (canvas + height) / 2,
    )


def _printed_package(design: PackageDesign, canvas: int, box: Box, body: Box) -> Image.Image:
    """The package without its words: silhouette, the family's print on the body, and the
    pattern over it."""
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
    return package


def _draw_shirt_print(
    draw: ImageDraw.ImageDraw, design: PackageDesign, canvas: int, body: Box, brand: str
) -> None:
    """A shirt's neckline and chest print: a round logo in the family colours, the brand
    under it."""
    bx0, by0, bx1, by1 = body
    body_width, body_height = bx1 - bx0, by1 - by0
    neck = [(bx0 + body_width * u, by0 + body_height * v) for u, v in _SHIRT_NECKLINE]
    draw.line(neck, fill=shade(design.accent, 0.7), width=max(2, canvas // 60))
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
    draw_text_centered(draw, text_box, brand, fill=readable_on(design.accent))


def _draw_case_camera(
    draw: ImageDraw.ImageDraw, product: DemoProduct, body: Box, brand: str
) -> None:
    """A phone case's camera bump (wider for larger sizes), its lenses, and the brand."""
    design = product.design
    bx0, by0, bx1, by1 = body
    body_width, body_height = bx1 - bx0, by1 - by0
    bump = (
        bx0 + body_width * 0.08,
        by0 + body_height * 0.04,
        bx0 + body_width * (0.42 + 0.12 * product.size.rank),
        by0 + body_height * 0.24,
    )
    draw.rounded_rectangle(bump, radius=body_width * 0.06, fill=shade(design.accent, 0.6))
    lens = (bump[3] - bump[1]) * 0.3
    for lens_x, lens_y in ((0.3, 0.3), (0.3, 0.72), (0.72, 0.5)):
        centre_x = bump[0] + (bump[2] - bump[0]) * lens_x
        centre_y = bump[1] + (bump[3] - bump[1]) * lens_y
        draw.ellipse(
            (centre_x - lens / 2, centre_y - lens / 2, centre_x + lens / 2, centre_y + lens / 2),
            fill=(20, 20, 25),
        )
    text_box = (bx0, by0 + body_height * 0.78, bx1, by0 + body_height * 0.92)
    draw_text_centered(draw, text_box, brand, fill=design.primary, stroke=(255, 255, 255))


def _draw_label(
    draw: ImageDraw.ImageDraw, product: DemoProduct, canvas: int, band: Box, brand: str
) -> None:
    """A package's label band: the brand, then the variant and size."""
    design = product.design
    band_x0, band_y0, band_x1, band_y1 = band
    draw.rectangle(band, fill=design.accent)
    edge = max(2, canvas // 100)
    draw.rectangle((band_x0, band_y0, band_x1, band_y0 + edge), fill=design.secondary)
    draw.rectangle((band_x0, band_y1 - edge, band_x1, band_y1), fill=design.secondary)
    ink = readable_on(design.accent)
    split = band_y0 + (band_y1 - band_y0) * 0.62
    draw_text_centered(draw, (band_x0, band_y0 + edge, band_x1, split), brand, fill=ink)
    subtitle = f"{product.variant.word_en.upper()} {product.size.label}"
    draw_text_centered(draw, (band_x0, split, band_x1, band_y1 - edge), subtitle, fill=ink)


def render_package(product: DemoProduct, image_size: int) -> Image.Image:
    """The product's canonical package picture (RGBA, transparent around, cropped tight).

    Drawn at ``SUPERSAMPLING`` times ``image_size`` so that postings scale it down smoothly.
    """
    design = product.design
    canvas = image_size * SUPERSAMPLING
    box = _package_box(design, canvas)
    body, band = _package_geometry(design.shape, box)
    package = _printed_package(design, canvas, box, body)
    draw = ImageDraw.Draw(package)
    brand = product.brand.upper() if design.brand_upper else product.brand
    if design.shape == "shirt":
        _draw_shirt_print(draw, design, canvas, body, brand)
    elif design.shape == "case":
        _draw_case_camera(draw, product, body, brand)
    else:
        _draw_label(draw, product, canvas, band, brand)
    return package.crop(package.getbbox())
