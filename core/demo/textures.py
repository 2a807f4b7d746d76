"""Seeded textures: the print on a family's packages and the clutter behind a seller's shot.

ImageNet networks judge a picture largely by its textures; flat-colour drawings all look
alike to them. On the first demo (flat packages, a wide label band, official photos on a
plain backdrop) MobileNet 0.25 put 16 % of the pairs of different products at cosine 0.85 or
more (37 % within a category), against 1 % on the real grocery photos, so the baseline's
photo rule matched nearly everything with everything. A textured print per brand+category
family (and the family's staged backdrop on its official photos, busy surfaces behind some
sellers' shots, a narrower label) brings that to 1.4 % (3 % within a category) while 61 %
of the pairs of one product stay above it; siblings of one family share the print, so they
stay the near misses they are meant to be (51 %). The baseline's F1 on the demo goes from
0.198 to 0.47 (0.36–0.39 on the real grocery photos, which have no titles).
"""

from __future__ import annotations

import random

import numpy as np
from PIL import Image

from core.demo.vocabulary import _SURFACE_TEXTURES, RGB


def _clouds(noise: np.random.Generator, size: int) -> np.ndarray:
    """Fractal value noise: a few octaves of smoothly upsampled random grids."""
    field = np.zeros((size, size), np.float32)
    for cells, weight in ((4, 1.0), (8, 0.5), (16, 0.25), (32, 0.125)):
        grid = noise.random((cells + 1, cells + 1)).astype(np.float32)
        field += weight * np.asarray(
            Image.fromarray(grid).resize((size, size), Image.Resampling.BICUBIC)
        )
    return field


def texture_field(kind: str, size: int, seed: int) -> np.ndarray:
    """A (size, size) float32 field in [0, 1] of one of ``_SURFACE_TEXTURES``.

    Raises:
        ValueError: an unknown kind.
    """
    if kind not in _SURFACE_TEXTURES:
        raise ValueError(f"unknown texture {kind!r}; known: {_SURFACE_TEXTURES}")
    rng = random.Random(seed)
    noise = np.random.default_rng(seed)
    coords = np.linspace(0.0, 1.0, size, dtype=np.float32)
    x, y = np.meshgrid(coords, coords)
    if kind == "zigzag":
        frequency, teeth = rng.uniform(8, 16), rng.uniform(6, 14)
        tooth = np.abs((x * teeth) % 1.0 - 0.5)
        field = (((y + tooth / teeth * rng.uniform(1, 3)) * frequency) % 1.0 < 0.5).astype(
            np.float32
        )
    elif kind == "plaid":
        across, down = rng.uniform(6, 14), rng.uniform(6, 14)
        field = 0.5 * ((x * across) % 1.0 < 0.35) + 0.5 * ((y * down) % 1.0 < 0.35)
        field += 0.25 * ((x * across * 4) % 1.0 < 0.2)
    elif kind == "cells":
        # Voronoi cell borders, like pebbles or crazed glaze.
        count = rng.randint(12, 36)
        points = noise.random((count, 2)).astype(np.float32)
        nearest = np.full((size, size), np.inf, np.float32)
        second = np.full((size, size), np.inf, np.float32)
        for px, py in points:
            distance = np.hypot(x - px, y - py)
            second = np.minimum(second, np.maximum(nearest, distance))
            nearest = np.minimum(nearest, distance)
        field = np.clip((second - nearest) * count**0.5 * 2.5, 0.0, 1.0)
    elif kind == "hatch":
        angle, frequency = rng.uniform(0, np.pi), rng.uniform(25, 60)
        across = x * np.cos(angle) + y * np.sin(angle)
        along = -x * np.sin(angle) + y * np.cos(angle)
        field = np.maximum(
            (np.sin(across * frequency) > 0).astype(np.float32),
            0.5 * (np.sin(along * frequency * 0.5) > 0.6),
        )
    elif kind == "grain":
        # Wood-like grain: bent parallel bands.
        frequency = rng.uniform(15, 35)
        field = 0.5 + 0.5 * np.sin(
            y * frequency + 3 * np.sin(x * rng.uniform(4, 10)) + 2 * np.sin(y * 5)
        )
    elif kind == "speckle":
        cells = max(size // 4, 1)
        dots = (noise.random((cells, cells)) > 0.7).astype(np.uint8) * 255
        field = np.asarray(
            Image.fromarray(dots).resize((size, size), Image.Resampling.NEAREST), np.float32
        )
    else:  # marble
        veins = (x + y) * rng.uniform(8, 16) + 4 * noise.random() + 3 * _clouds(noise, size)
        field = (0.5 + 0.5 * np.sin(veins)) ** 3
    low, high = float(field.min()), float(field.max())
    return ((field - low) / max(high - low, 1e-6)).astype(np.float32)


def textured(kind: str, size: int, seed: int, base: RGB, ink: RGB, strength: float) -> Image.Image:
    """An RGBA square of ``base`` with ``ink`` laid on by the texture, up to ``strength``."""
    field = texture_field(kind, size, seed)[..., None] * strength
    pixels = np.asarray(base, np.float32) * (1 - field) + np.asarray(ink, np.float32) * field
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB").convert("RGBA")
