"""Painting primitives the demo's packages and photos share: text fitted into a box, and
shades of a colour with an ink that reads on it."""

from __future__ import annotations

from functools import lru_cache

from PIL import ImageDraw, ImageFont

from core.demo.vocabulary import RGB, Box

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


def draw_text_centered(
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


def shade(colour: RGB, factor: float) -> RGB:
    """Darker (factor < 1) or lighter (factor > 1) version of a colour."""
    if factor <= 1:
        return tuple(round(c * factor) for c in colour)  # type: ignore[return-value]
    return tuple(round(c + (255 - c) * (factor - 1)) for c in colour)  # type: ignore[return-value]


def readable_on(colour: RGB) -> RGB:
    """Near-black ink on a light colour, near-white on a dark one."""
    luminance = 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]
    return (25, 25, 25) if luminance > 150 else (250, 250, 250)
