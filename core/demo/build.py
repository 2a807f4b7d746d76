"""Writing the demo catalog (CSV + images) atomically, and reusing a current one."""

from __future__ import annotations

import csv
import io
import logging
import random
import shutil
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path

import imagehash
from PIL import Image

from core.demo.drawing import render_package
from core.demo.photos import render_official_photo, render_posting
from core.demo.plan import DemoProduct, plan_demo_products
from core.demo.titles import make_title
from core.demo.vocabulary import (
    CATALOG_FILE,
    CSV_COLUMNS,
    DEMO_FOLDER,
    DEMO_VERSION,
    IMAGES_FOLDER,
    MAX_POSTINGS_PER_PRODUCT,
    MIN_POSTINGS_PER_PRODUCT,
    VERSION_FILE,
    Progress,
)

logger = logging.getLogger(__name__)


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
                official = render_official_photo(package, product.design, posting_rng, image_size)
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
