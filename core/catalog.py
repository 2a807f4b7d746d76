"""Catalog import: a CSV in the Shopee layout plus an image folder, validated before anything is
written.

File-level problems (not a CSV, missing columns, duplicate ids, bad encoding…) raise
`CatalogError` and leave the database untouched. Row-level problems (missing or corrupt image,
bad hash, empty title) are reported per row and the row is kept with whatever evidence it has.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from core.errors import CatalogError, ImageError
from core.images import is_valid_phash, open_image, phash_hex, resolve_image_path
from core.store import Store
from core.text import normalize_title

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("posting_id", "image", "title")
OPTIONAL_COLUMNS = ("image_phash", "label_group")
MAX_FIELD_CHARS = 5_000
MAX_CATALOG_BYTES = 2 * 1024**3

Progress = Callable[[int, int], None]


@dataclass
class ImportReport:
    """What an import did: rows read, postings changed, and every row-level problem."""

    rows: int
    changed: int
    problems: list[dict] = field(default_factory=list)

    @property
    def problems_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.problems, columns=["row", "posting_id", "field", "problem"])


def decode_catalog_bytes(raw: bytes, name: str = "catalog") -> str:
    """Text of a CSV file: UTF-8 (with or without BOM) or UTF-16 with BOM; anything else fails
    with the position of the first bad byte."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raw, encoding = raw[3:], "utf-8"
    elif raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        encoding = "utf-16"
    else:
        encoding = "utf-8"
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise CatalogError(
            f"{name}: cannot read the text as {encoding.upper()} (bad byte at line {line}, "
            f"byte {exc.start}). Save the file as UTF-8 and import it again."
        ) from exc


def read_catalog_csv(source: Path | bytes, name: str | None = None) -> pd.DataFrame:
    """Parse and validate the file-level structure of a catalog.

    Args:
        source: a CSV path, or the bytes of an uploaded file.
        name: how to call the file in messages.

    Returns:
        One string column per known field ('' for blanks), with a 1-based ``row`` column that
        counts data rows as a spreadsheet would (header = row 1, first posting = row 2).

    Raises:
        CatalogError: naming the problem and the rows or columns involved.
    """
    if isinstance(source, bytes):
        label = name or "uploaded catalog"
        raw = source
    else:
        path = Path(source)
        label = name or str(path)
        if not path.exists():
            raise CatalogError(f"{label}: file not found")
        if not path.is_file():
            raise CatalogError(f"{label}: is a folder, not a CSV file")
        if path.stat().st_size > MAX_CATALOG_BYTES:
            raise CatalogError(f"{label}: larger than {MAX_CATALOG_BYTES // 2**30} GB")
        raw = path.read_bytes()
    if not raw.strip():
        raise CatalogError(f"{label}: the file is empty; expected a CSV with a header row")
    if b"\x00" in raw[:4096] and not raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise CatalogError(f"{label}: this is a binary file, not a CSV catalog")
    text = decode_catalog_bytes(raw, label)

    # The limit is process-wide: set it for this parse only, then give the old one back.
    previous_limit = csv.field_size_limit(MAX_FIELD_CHARS * 4)
    try:
        reader = csv.reader(io.StringIO(text, newline=""), strict=True)
        header = next(reader, None)
        rows = list(reader)
    except csv.Error as exc:
        raise CatalogError(
            f"{label}: malformed CSV near line {reader.line_num}: {exc}. Check the quoting."
        ) from exc
    finally:
        csv.field_size_limit(previous_limit)
    if not header:
        raise CatalogError(f"{label}: the file has no header row")
    header = [h.strip().lstrip("\ufeff").lower() for h in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise CatalogError(
            f"{label}: missing required column(s) {', '.join(missing)}; found "
            f"{', '.join(h for h in header if h) or 'none'}. Expected the layout "
            "posting_id,image,image_phash,title,label_group (image_phash, label_group optional)."
        )
    if not rows:
        raise CatalogError(f"{label}: the header is there but the file has no postings")

    wanted = [*REQUIRED_COLUMNS, *[c for c in OPTIONAL_COLUMNS if c in header]]
    index = {c: header.index(c) for c in wanted}
    records = []
    for offset, values in enumerate(rows):
        row_number = offset + 2
        if not values or all(not v.strip() for v in values):
            continue  # blank lines carry nothing
        if len(values) != len(header):
            raise CatalogError(
                f"{label}: row {row_number} has {len(values)} fields but the header has "
                f"{len(header)}. Check for unquoted commas in titles."
            )
        record = {"row": row_number}
        for column, i in index.items():
            value = values[i]
            if len(value) > MAX_FIELD_CHARS:
                raise CatalogError(
                    f"{label}: row {row_number}, column {column} is {len(value):,} characters "
                    f"long (limit {MAX_FIELD_CHARS:,}); the file is probably malformed."
                )
            record[column] = value
        records.append(record)
    if not records:
        raise CatalogError(f"{label}: the header is there but every row is blank; no postings")
    frame = pd.DataFrame.from_records(records)
    for column in OPTIONAL_COLUMNS:
        if column not in frame:
            frame[column] = ""
    frame["posting_id"] = frame["posting_id"].str.strip()

    empty = frame.loc[frame["posting_id"] == "", "row"].tolist()
    if empty:
        raise CatalogError(f"{label}: empty posting_id in row(s) {_rows(empty)}")
    duplicated = frame[frame["posting_id"].duplicated(keep=False)]
    if not duplicated.empty:
        first = duplicated.groupby("posting_id")["row"].apply(list).head(5)
        detail = "; ".join(f"{pid!r} in rows {_rows(r)}" for pid, r in first.items())
        raise CatalogError(f"{label}: duplicate posting_id: {detail}")
    return frame


def _rows(rows: list[int], limit: int = 10) -> str:
    shown = ", ".join(str(r) for r in rows[:limit])
    return shown + (f" and {len(rows) - limit} more" if len(rows) > limit else "")


def prepare_postings(
    frame: pd.DataFrame, image_root: Path | None, progress: Progress | None = None
) -> tuple[list[dict], list[dict]]:
    """Check each row's image, hash and title; returns (posting rows, row problems)."""
    postings: list[dict] = []
    problems: list[dict] = []
    root = Path(image_root) if image_root is not None else None
    if root is not None and not root.is_dir():
        raise CatalogError(f"image folder {root} does not exist or is not a folder")
    total = len(frame)
    for done, rec in enumerate(frame.to_dict("records"), start=1):
        row, pid = rec["row"], rec["posting_id"]

        def problem(field_name: str, text: str, row: int = row, pid: str = pid) -> None:
            problems.append({"row": row, "posting_id": pid, "field": field_name, "problem": text})

        title = rec["title"]
        title_norm = normalize_title(title)
        if not title_norm:
            problem("title", "empty title: this posting is matched by its image only")

        given_hash = rec["image_phash"].strip().lower()
        if given_hash and not is_valid_phash(given_hash):
            problem("image_phash", f"{rec['image_phash']!r} is not 16 hex digits; ignored")
            given_hash = ""

        image_name = rec["image"].strip()
        image_path, status, phash = None, "none", given_hash or None
        if root is not None and image_name:
            try:
                resolved = resolve_image_path(root, image_name)
            except ImageError as exc:
                status = "refused"
                problem("image", str(exc))
            else:
                try:
                    picture = open_image(resolved)
                except ImageError as exc:
                    status = "missing" if not resolved.exists() else "corrupt"
                    problem("image", str(exc).replace(str(resolved), image_name))
                else:
                    status, image_path = "ok", str(resolved)
                    if not phash:
                        phash = phash_hex(picture)
        elif root is None and image_name:
            status = "none"
        if status != "ok" and not title_norm and not phash:
            problem("row", "no usable title, image or hash: this posting can only match itself")

        label = rec["label_group"].strip() or None
        postings.append(
            {
                "posting_id": pid,
                "title": title,
                "title_norm": title_norm,
                "image": image_name or None,
                "image_path": image_path,
                "image_status": status,
                "image_phash": phash,
                "label_group": label,
                "source": "catalog",
            }
        )
        if progress is not None and (done % 200 == 0 or done == total):
            progress(done, total)
    return postings, problems


def import_catalog(
    store: Store,
    catalog: Path | bytes,
    image_root: Path | None = None,
    *,
    name: str | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Validate a catalog and write it in one transaction (all of it, or nothing).

    Raises:
        CatalogError: on any file-level problem; the database is unchanged.
    """
    frame = read_catalog_csv(catalog, name)
    postings, problems = prepare_postings(frame, image_root, progress)
    with store.transaction():
        changed = store.upsert_postings(postings)
        store.replace_import_problems(problems)
    logger.info("imported %d rows (%d changed, %d problems)", len(postings), changed, len(problems))
    return ImportReport(rows=len(postings), changed=changed, problems=problems)
