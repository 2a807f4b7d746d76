"""Thumbnails: a posting without a usable photo shows the "no photo" tile, never empty text."""

from __future__ import annotations

import base64
import io
from pathlib import Path

from PIL import Image

from ui import resources


def _decode(uri: str) -> Image.Image:
    kind, _, data = uri.partition(";base64,")
    assert kind in ("data:image/png", "data:image/jpeg"), kind
    return Image.open(io.BytesIO(base64.b64decode(data)))


def test_a_posting_without_an_image_gets_the_placeholder_tile() -> None:
    tile = resources.thumbnail(None)

    assert tile == resources.placeholder()
    picture = _decode(tile)
    assert picture.size == (resources.THUMBNAIL_PIXELS, resources.THUMBNAIL_PIXELS)
    # Not a blank square: the frame and the words are drawn on it.
    assert len(set(picture.convert("L").getdata())) > 2


def test_a_missing_or_unreadable_file_gets_the_placeholder(tmp_path: Path) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg at all")

    assert resources.thumbnail(str(tmp_path / "gone.jpg")) == resources.placeholder()
    assert resources.thumbnail(str(broken)) == resources.placeholder()


def test_a_real_photo_gets_its_own_thumbnail(tmp_path: Path) -> None:
    photo = tmp_path / "red.jpg"
    Image.new("RGB", (300, 200), (200, 30, 30)).save(photo)

    thumb = _decode(resources.thumbnail(str(photo)))

    assert max(thumb.size) == resources.THUMBNAIL_PIXELS
    red, green, blue = thumb.convert("RGB").getpixel((10, 10))
    assert red > 150 and green < 80 and blue < 80
