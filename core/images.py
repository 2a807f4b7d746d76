"""Safe image loading, resizing and perceptual hashes.

Catalog images come from strangers: paths may try to leave the image folder, files may be
truncated, enormous, CMYK, 16-bit, palette or animated. Everything here either returns a
plain RGB picture or raises `ImageError` with the reason.
"""

from __future__ import annotations

import io
import logging
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from core.errors import ImageError

logger = logging.getLogger(__name__)

#: Our own cap, well under Pillow's decompression-bomb limit (which stays in force).
MAX_IMAGE_PIXELS = 40_000_000
MAX_IMAGE_BYTES = 50 * 1024 * 1024
SUPPORTED_FORMATS = {"JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "MPO"}


def resolve_image_path(image_root: Path, name: str) -> Path:
    """The file ``name`` inside ``image_root``, refusing anything that would leave the folder.

    Raises:
        ImageError: for URLs, absolute paths, ``..`` segments, or symlinks pointing outside.
    """
    if not name or not name.strip():
        raise ImageError("no image file name")
    if "://" in name or name.startswith(("http:", "https:", "file:", "data:")):
        raise ImageError(f"image {name!r} is a URL; only files inside the image folder are read")
    if os.path.isabs(name) or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise ImageError(f"image {name!r} is an absolute path; give a path inside the image folder")
    parts = Path(name.replace("\\", "/")).parts
    if ".." in parts:
        raise ImageError(f"image {name!r} leaves the image folder ('..' is not allowed)")
    root = image_root.resolve()
    candidate = (root / Path(*parts)).resolve()
    if not candidate.is_relative_to(root):
        raise ImageError(f"image {name!r} points outside the image folder (symlink?)")
    return candidate


def check_stored_path(stored: str | Path) -> Path:
    """A path stored at import, checked again before it is opened: it must still resolve to
    itself, so a file or folder swapped for a symlink since the import (pointing anywhere,
    inside the image folder or not) is refused rather than followed.

    Raises:
        ImageError: the path now resolves elsewhere, or is gone.
    """
    path = Path(stored)
    try:
        resolved = path.resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        raise ImageError(f"image {path} is gone since the import") from exc
    if resolved != path:
        raise ImageError(
            f"image {path} now leads to {resolved} (replaced by a link since the import): not "
            "opened; import the catalog again if the change is wanted"
        )
    return path


def _checked_source(source: Path | bytes | os.PathLike[str]) -> tuple[str, io.BytesIO | Path]:
    """(what to call the image in messages, what Pillow opens), after the cheap checks.

    Raises:
        ImageError: missing, empty or too large a file.
    """
    label = "uploaded image" if isinstance(source, bytes) else str(source)
    if isinstance(source, bytes):
        if not source:
            raise ImageError(f"{label} is empty (0 bytes)")
        if len(source) > MAX_IMAGE_BYTES:
            raise ImageError(f"{label} is larger than {MAX_IMAGE_BYTES // 2**20} MB")
        return label, io.BytesIO(source)
    path = Path(source)
    if not path.is_file():
        raise ImageError(f"image file {label} does not exist")
    size = path.stat().st_size
    if size == 0:
        raise ImageError(f"image file {label} is empty (0 bytes)")
    if size > MAX_IMAGE_BYTES:
        raise ImageError(f"image file {label} is larger than {MAX_IMAGE_BYTES // 2**20} MB")
    return label, path


def _decoded(
    stream: io.BytesIO | Path, label: str, max_pixels: int, draft_size: int | None
) -> Image.Image:
    """The first frame, decoded, turned as its EXIF says and in RGB.

    Raises:
        ImageError: an unsupported format or too many pixels (Pillow's own errors pass).
    """
    with Image.open(stream) as img:
        if img.format not in SUPPORTED_FORMATS:
            raise ImageError(f"{label} is a {img.format} image, which is not supported")
        if img.width * img.height > max_pixels:
            raise ImageError(
                f"{label} is {img.width}x{img.height} pixels, over the limit of {max_pixels:,}"
            )
        img.seek(0)  # animated images: the first frame stands for the product
        if draft_size and img.format == "JPEG":
            img.draft("RGB", (draft_size, draft_size))
        img.load()
        img = ImageOps.exif_transpose(img)
        return _to_rgb(img)


def open_image(
    source: Path | bytes | os.PathLike[str],
    *,
    max_pixels: int = MAX_IMAGE_PIXELS,
    draft_size: int | None = None,
) -> Image.Image:
    """Decode an image fully into RGB, honouring EXIF orientation.

    Args:
        draft_size: for JPEGs, let libjpeg decode at a reduced scale no smaller than this,
            which is several times faster when the picture is about to be shrunk anyway.

    Raises:
        ImageError: missing, empty, not an image, unsupported, too large or corrupt.
    """
    label, stream = _checked_source(source)
    try:
        return _decoded(stream, label, max_pixels, draft_size)
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageError(
            f"{label} is too large to open safely (over {Image.MAX_IMAGE_PIXELS:,} pixels)"
        ) from exc
    except UnidentifiedImageError as exc:
        raise ImageError(
            f"{label} is not an image file that can be read (JPEG, PNG, WebP, GIF, BMP or TIFF)"
        ) from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageError(
            f"{label} is corrupt or truncated: the file ends early or its data is damaged; "
            "export or download it again"
        ) from exc


def _to_rgb(img: Image.Image) -> Image.Image:
    """RGB version of ``img``; an RGB image is returned as is (the caller's own copy from
    ``exif_transpose``, so no second full-size copy)."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        array = np.asarray(img, dtype=np.float64)
        peak = array.max() or 1.0
        img = Image.fromarray(np.clip(array / peak * 255, 0, 255).astype(np.uint8))
    if img.mode in ("P", "PA"):
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA"):
        background = Image.new("RGB", img.size, (255, 255, 255))
        background.paste(img, mask=img.getchannel("A"))
        return background
    return img.convert("RGB")


def load_for_model(source: Path | bytes, size: int) -> np.ndarray:
    """RGB uint8 array (size, size, 3) for a network; JPEG decoding uses `draft` to skip detail
    that the resize would throw away anyway."""
    img = open_image(source, draft_size=size)
    return np.asarray(img.resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8)


def phash_hex(source: Path | bytes | Image.Image) -> str:
    """64-bit perceptual hash as 16 hex digits (imagehash's DCT pHash)."""
    import imagehash

    img = source if isinstance(source, Image.Image) else open_image(source)
    return str(imagehash.phash(img))


def is_valid_phash(value: str) -> bool:
    return len(value) == 16 and all(c in "0123456789abcdefABCDEF" for c in value)


def phash_to_uint64(hashes: list[str | None]) -> tuple[np.ndarray, np.ndarray]:
    """Hex hashes to uint64 values plus a mask of which postings have one."""
    values = np.zeros(len(hashes), dtype=np.uint64)
    present = np.zeros(len(hashes), dtype=bool)
    for i, h in enumerate(hashes):
        # Missing hashes arrive as None or, from a pandas string column, as NaN (a float).
        if isinstance(h, str) and is_valid_phash(h):
            values[i] = np.uint64(int(h, 16))
            present[i] = True
    return values, present


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bit distance between uint64 hashes (broadcasts)."""
    return np.bitwise_count(np.bitwise_xor(a, b)).astype(np.int16)
