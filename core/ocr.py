"""Text read from product photos (OCR): brand names, sizes and flavours printed on packs, as
optional title evidence for ``best``.

The reader is RapidOCR on ONNX Runtime (``rapidocr-onnxruntime``, an optional package: its
detection and recognition models ship inside the wheel, nothing is downloaded at run time).
Photos are decoded by the project's own safe decoder (`core.images.open_image`) and shrunk
before reading; the OCR package never opens a catalog path itself. What a photo says is kept
per image file content in the database (`core.store.photo_text`), so a photo is read once.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import ImageError, SameSameError, first_line
from core.images import MAX_IMAGE_BYTES, check_stored_path, open_image
from core.text import normalize_title

if TYPE_CHECKING:
    from PIL import Image

    from core.pipelines.inputs import MatchInputs
    from core.store import Store

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]

#: The optional package, pinned as requirements-ocr.txt pins it.
OCR_PACKAGE = "rapidocr-onnxruntime"
OCR_VERSION = "1.4.4"
INSTALL_HINT = f"pip install {OCR_PACKAGE}=={OCR_VERSION}"

#: A photo's longest side is shrunk to this many pixels before reading (JPEGs decode at a
#: reduced scale). On the 30 Shopee photos (300 to 4500 px) it keeps 99 % of the words read
#: at the package's own 2000 px in two thirds of the time (0.31 against 0.46 s a photo);
#: 640 px lost 16 % of them (benchmarks/bench_ocr_reader.py --part sizes).
MAX_SIDE = 1024
#: The detector's input: the shorter side is scaled to this many pixels (the package's 736).
#: On 100 grocery training photos (348 px) 480 and 960 found about as many same-product
#: words (17 and 19 against 17), with no time difference clear of the shared cores' noise.
DETECTOR_SIDE = 736
#: Lines the recogniser is less sure of are dropped. Chosen on the 48 grocery training
#: products: at 0.7 a photo's nearest photo by its text is most often the same product
#: (112 of 432 photos, 70 % of those with a neighbour; 0.5: 108, 65 %; 0.9: 101); below it
#: most lines are glyphs read into glare, shelves and fruit skin.
MIN_CONFIDENCE = 0.7
#: What read the stored lines: another version or size reads the photos again.
READER = f"{OCR_PACKAGE}-{OCR_VERSION}/side{MAX_SIDE}/det{DETECTOR_SIDE}"


class OcrUnavailableError(SameSameError, RuntimeError):
    """The optional OCR package is not installed (or cannot load)."""


def _missing(exc: BaseException) -> OcrUnavailableError:
    return OcrUnavailableError(
        f"Reading text from photos needs the optional OCR package, which is not installed "
        f"here ({exc}): {INSTALL_HINT} (or pip install -r requirements-ocr.txt)"
    )


def ocr_available() -> bool:
    """Whether the OCR package imports (it is optional)."""
    try:
        import rapidocr_onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


@functools.lru_cache(maxsize=2)
def _engine(detector_side: int = DETECTOR_SIDE):
    """One loaded reader per process (loading the three networks takes about a second)."""
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError as exc:
        raise _missing(exc) from exc
    return RapidOCR(det_limit_side_len=detector_side, print_verbose=False)


def _shrunk(image: Image.Image, max_side: int) -> Image.Image:
    from PIL import Image

    if max(image.size) <= max_side:
        return image
    image = image.copy()
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return image


def image_lines(
    image: Image.Image, *, max_side: int = MAX_SIDE, detector_side: int = DETECTOR_SIDE
) -> list[tuple[str, float]]:
    """Every line the reader finds in a decoded RGB picture, in reading order (top to
    bottom, left to right), with its confidence (0-1).

    Raises:
        OcrUnavailableError: the OCR package is missing.
    """
    engine = _engine(detector_side)
    # A PIL picture is RGB; the package turns it into the BGR array its networks expect.
    found, _ = engine(_shrunk(image, max_side), text_score=0.0)
    return [(str(text).strip(), round(float(score), 4)) for _, text, score in found or []]


def photo_lines(
    source: Path | bytes, *, max_side: int = MAX_SIDE, detector_side: int = DETECTOR_SIDE
) -> list[tuple[str, float]]:
    """Decode a photo safely (`core.images.open_image`: size caps, EXIF turn, RGB) at a
    reduced scale where it is a large JPEG, and read its lines (`image_lines`).

    Raises:
        ImageError: the photo cannot be decoded.
        OcrUnavailableError: the OCR package is missing.
    """
    _engine(detector_side)  # a missing package is said before any photo is opened
    image = open_image(source, draft_size=max_side)
    return image_lines(image, max_side=max_side, detector_side=detector_side)


def text_of(lines: Sequence[Sequence], min_confidence: float = MIN_CONFIDENCE) -> str:
    """The lines the reader is sure enough of, in reading order, one space apart."""
    kept = [str(text) for text, score in lines if float(score) >= min_confidence]
    return " ".join(t for t in kept if any(ch.isalnum() for ch in t))


def read_photo_text(path: Path | str | bytes) -> str:
    """The text printed on one photo (a file path or the bytes of one): confident lines
    joined in reading order; "" when it shows none.

    Raises:
        ImageError: the photo cannot be decoded.
        OcrUnavailableError: the OCR package is missing.
    """
    source = path if isinstance(path, bytes) else Path(path)
    return text_of(photo_lines(source))


def file_digest(data: bytes) -> str:
    """What a photo is cached under: the SHA-256 of the file's bytes."""
    return hashlib.sha256(data).hexdigest()


# -- a catalog's photos, read once --------------------------------------------------------------
@dataclass
class OcrReport:
    """What one ``read_catalog_photos`` run did."""

    read: int = 0  # photos read by this run
    with_text: int = 0  # of those, how many say something (`text_of` is not empty)
    reused: int = 0  # photos whose content was read before (by this or an earlier run)
    failed: int = 0  # photos that could not be opened or decoded (the run goes on)
    failures: list[str] = field(default_factory=list)  # the first few, "posting: why"
    seconds: float = 0.0

    def sentence(self) -> str:
        said = (
            f"read text from {self.read:,} photo{'s' if self.read != 1 else ''} "
            f"({self.with_text:,} had text); {self.failed:,} failed"
        )
        if self.reused:
            said += f"; {self.reused:,} already read"
        return said


#: Failures named one by one in the report (the count is always complete).
FAILURES_SHOWN = 10


def _digest_of(path: Path, known: tuple[int, int, str] | None) -> tuple[tuple, bytes | None]:
    """((path, size, mtime_ns, digest), the bytes when they had to be read): an unchanged
    file (same size and modification time as when it was hashed) is not read again.

    Raises:
        ImageError: the file is gone or too large.
    """
    try:
        stat = path.stat()
    except OSError as exc:
        raise ImageError(f"image {path} cannot be read: {exc}") from exc
    if known is not None and known[:2] == (stat.st_size, stat.st_mtime_ns):
        return (str(path), stat.st_size, stat.st_mtime_ns, known[2]), None
    if stat.st_size > MAX_IMAGE_BYTES:
        raise ImageError(f"image file {path} is larger than {MAX_IMAGE_BYTES // 2**20} MB")
    data = path.read_bytes()
    return (str(path), stat.st_size, stat.st_mtime_ns, file_digest(data)), data


def _read_batch(
    store: Store,
    batch: list[tuple[int, str, str]],
    report: OcrReport,
    reader: str,
    tick: Callable[[int], None],
) -> None:
    """Hash one batch of postings' photos, read those whose content no run has read (once
    per content: the same photo posted twice is read once), and store both in one
    transaction."""
    known = store.file_digests([path for _, _, path in batch])
    files, pending = [], {}  # pending: digest -> [(posting id, path, bytes or None), ...]
    for _, pid, stored in batch:
        try:
            path = check_stored_path(stored)
            row, data = _digest_of(path, known.get(stored))
        except ImageError as exc:
            _failed(report, [pid], exc)
            tick(1)
            continue
        files.append(row)
        pending.setdefault(row[3], []).append((pid, path, data))
    done = store.read_digests(pending, reader)
    reads = []
    for digest, postings in pending.items():
        if digest in done:
            report.reused += len(postings)
            tick(len(postings))
            continue
        _, path, data = postings[0]
        started = time.perf_counter()
        try:
            lines = photo_lines(data if data is not None else path.read_bytes())
        except (ImageError, OSError) as exc:
            _failed(report, [pid for pid, _, _ in postings], exc)
            tick(len(postings))
            continue
        reads.append((digest, [list(line) for line in lines], time.perf_counter() - started))
        report.read += 1
        report.reused += len(postings) - 1
        report.with_text += bool(text_of(lines))
        tick(len(postings))
    store.save_photo_reads(files, reads, reader)


def _failed(report: OcrReport, posting_ids: list[str], exc: BaseException) -> None:
    report.failed += len(posting_ids)
    for posting_id in posting_ids[: max(0, FAILURES_SHOWN - len(report.failures))]:
        report.failures.append(f"{posting_id}: {first_line(exc)}")
    logger.warning("photo text of %s skipped: %s", ", ".join(posting_ids), exc)


def read_catalog_photos(
    store: Store, *, batch: int = 32, progress: Progress | None = None, reader: str = READER
) -> OcrReport:
    """Read the text of every catalog photo no run has read yet, ``batch`` postings at a
    time, each batch stored in its own transaction: an interrupted run keeps what it read,
    and the next one goes on from there (photos already read are only hashed, and an
    unchanged file not even that). A photo that cannot be decoded is counted and skipped.

    Raises:
        OcrUnavailableError: the OCR package is missing (before any photo is opened).
    """
    _engine()
    started = time.perf_counter()
    report = OcrReport()
    total, done, after = store.count_photo_postings(), [0], 0

    def tick(postings: int) -> None:
        done[0] += postings
        if progress is not None:
            progress(done[0], total)

    while rows := store.photo_postings(after, batch):
        _read_batch(store, rows, report, reader, tick)
        after = rows[-1][0]
    report.seconds = time.perf_counter() - started
    return report


# -- as title evidence ------------------------------------------------------------------------
def catalog_photo_texts(store: Store, reader: str = READER) -> dict[str, str]:
    """Each posting's photo text (`text_of` its stored lines), for postings whose photo has
    been read; "" where it was read and says nothing."""
    return {pid: text_of(lines) for pid, lines in store.photo_lines_by_posting(reader).items()}


def title_with_photo_text(title: str, photo_text: str) -> str:
    """A normalised title with the photo's text after it, normalised as titles are."""
    return normalize_title(f"{title} {photo_text}") if photo_text else title


def photo_text_for_model(
    store: Store, inputs: MatchInputs, model: Any
) -> tuple[MatchInputs, str | None]:
    """``inputs`` as ``model`` reads them: with each posting's photo text when it learnt from
    it (`add_photo_text`, the evidence it was trained with), else as they are."""
    if not getattr(model, "reads_photo_text", False):
        return inputs, None
    return add_photo_text(store, inputs)


def add_photo_text(store: Store, inputs: MatchInputs) -> tuple[MatchInputs, str | None]:
    """``inputs`` with each posting's photo text after its title, and a note when photos of
    these postings have not been read (those postings keep their titles alone)."""
    texts = catalog_photo_texts(store)
    titles = [
        title_with_photo_text(title, texts.get(pid, ""))
        for pid, title in zip(inputs.posting_ids, inputs.titles, strict=True)
    ]
    photos = store.photo_posting_ids() & set(inputs.posting_ids)
    unread = len(photos - texts.keys())
    note = None
    if photos and unread == len(photos):
        note = (
            "This best model was trained with text read from photos, but none of these "
            f"{len(photos):,} photos has been read: they are matched without it, which the "
            "model was not trained for. Run python -m core ocr to read them."
        )
    elif unread:
        note = (
            f"{unread:,} of {len(photos):,} photos have not been read yet: their postings are "
            "matched without photo text (python -m core ocr reads them)."
        )
    return inputs.with_titles(titles), note


def training_photo_text(store: Store, inputs: MatchInputs) -> MatchInputs:
    """The training postings with their photo text (setting ``best_photo_text``).

    Raises:
        SameSameError: none of their photos has been read yet.
    """
    with_text, note = add_photo_text(store, inputs)
    if note is not None and not catalog_photo_texts(store):
        raise SameSameError(
            "Text read from photos is on (best_photo_text), but no photo of this catalog has "
            "been read yet: run python -m core ocr first, or turn the setting off."
        )
    if note is not None:
        logger.warning("%s", note)
    return with_text


def item_photo_text(image: bytes | None) -> tuple[str, str | None]:
    """An uploaded photo's text for a model that reads photos, and a note when it cannot be
    read (the OCR package missing, or the photo undecodable): then it is compared without."""
    if not image:
        return "", None
    try:
        return read_photo_text(image), None
    except SameSameError as exc:
        return "", f"The uploaded photo's text was not read: {exc}"
