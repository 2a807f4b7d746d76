"""Reading and checking a catalog CSV: one streamed pass for the structure (columns, ids,
encoding, size) and a streamed parse of its records."""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import itertools
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pandas as pd

from core.errors import CatalogError

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("posting_id", "image", "title")
OPTIONAL_COLUMNS = ("image_phash", "label_group")
MAX_FIELD_CHARS = 5_000
MAX_CATALOG_BYTES = 2 * 1024**3
#: Postings written per transaction: small enough that a reader waits well under a second.
DEFAULT_CHUNK_ROWS = 5_000
_READ_BYTES = 1 << 20  # raw bytes read from the file at a time
_PARSE_BATCH = 1_000  # CSV rows parsed per raise of the (process-wide) field size limit
_SHOWN_ROWS = 10  # row numbers named in one message

Progress = Callable[[int, int], None]
CatalogSource = Path | bytes


@dataclass(frozen=True)
class CatalogScan:
    """What the validation pass learned about a file: enough to write it, and to recognise the
    same file when an interrupted import is run again."""

    label: str
    rows: int  # postings, blank lines not counted
    columns: tuple[str, ...]  # the known columns the header has, required ones first
    size: int
    sha256: str

    @property
    def fingerprint(self) -> str:
        return f"{self.size}:{self.sha256}"


def missing_columns_error(label: str, missing: list[str], found: list[str]) -> CatalogError:
    """The one message for a catalog without its required columns (CSV import and Spark)."""
    return CatalogError(
        f"{label}: missing required column(s) {', '.join(missing)}; found "
        f"{', '.join(found) or 'none'}. Expected the layout "
        "posting_id,image,image_phash,title,label_group (image_phash, label_group optional)."
    )


def _decode_message(label: str, encoding: str, line: int, byte: int) -> str:
    return (
        f"{label}: cannot read the text as {encoding.upper()} (bad byte at line {line}, "
        f"byte {byte}). Save the file as UTF-8 and import it again."
    )


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
        raise CatalogError(_decode_message(name, encoding, line, exc.start)) from exc


# -- streaming reader ------------------------------------------------------------------------
class _DigestReader(io.RawIOBase):
    """Passes a binary stream through while counting and hashing its bytes, so fingerprinting
    the file costs no extra read."""

    def __init__(self, inner: IO[bytes]) -> None:
        super().__init__()
        self.inner = inner
        self.size = 0
        self.sha = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = self.inner.readinto(buffer) or 0
        view = memoryview(buffer)[:count]
        self.sha.update(view)
        self.size += count
        return count


@contextmanager
def _field_limit() -> Iterator[None]:
    """csv's field size limit is process-wide: raise it only while we parse, then give the old
    one back (so it never leaks to other code, even between the chunks of a long import)."""
    previous = csv.field_size_limit(MAX_FIELD_CHARS * 4)
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def _shown(rows: list[int], total: int) -> str:
    shown = ", ".join(str(r) for r in rows[:_SHOWN_ROWS])
    return shown + (f" and {total - _SHOWN_ROWS} more" if total > _SHOWN_ROWS else "")


def _rows(rows: list[int], limit: int = _SHOWN_ROWS) -> str:
    shown = ", ".join(str(r) for r in rows[:limit])
    return shown + (f" and {len(rows) - limit} more" if len(rows) > limit else "")


class _CatalogReader:
    """One streaming pass over a catalog: bytes → text → CSV rows → checked records.

    ``records()`` yields one dict per non-blank data row (``row`` numbered as a spreadsheet
    would: header = 1) with every known column ('' when absent) and a stripped posting_id.
    Structural problems raise `CatalogError`; after a complete pass ``size`` and ``sha256``
    describe the bytes read."""

    def __init__(self, source: CatalogSource, name: str | None = None) -> None:
        self.source = source
        if isinstance(source, bytes | bytearray | memoryview):
            self.label = name or "uploaded catalog"
            self.path: Path | None = None
        else:
            self.path = Path(source)
            self.label = name or str(self.path)
        self.columns: tuple[str, ...] = ()
        self.size = 0
        self.sha256 = ""

    def _open(self) -> IO[bytes]:
        if self.path is None:
            return io.BytesIO(self.source)  # type: ignore[arg-type]
        if not self.path.exists():
            raise CatalogError(f"{self.label}: file not found")
        if not self.path.is_file():
            raise CatalogError(f"{self.label}: is a folder, not a CSV file")
        if self.path.stat().st_size > MAX_CATALOG_BYTES:
            raise CatalogError(f"{self.label}: larger than {MAX_CATALOG_BYTES // 2**30} GB")
        return self.path.open("rb")

    def _sniff(self, handle: IO[bytes]) -> tuple[str, int]:
        """(encoding, BOM bytes to skip) from the start of the file; refuses empty and binary
        files. Leaves ``handle`` at its start."""
        head = handle.read(4096)
        # A byte-order mark alone (an editor's "empty" UTF-8 or UTF-16 file) is still empty.
        if not head.removeprefix(b"\xef\xbb\xbf").strip() or head in (b"\xff\xfe", b"\xfe\xff"):
            # Only whitespace so far: the file is empty unless something else follows.
            while block := handle.read(_READ_BYTES):
                if block.strip():
                    break
            else:
                raise CatalogError(
                    f"{self.label}: the file is empty; expected a CSV with a header row"
                )
        handle.seek(0)
        utf16 = head.startswith((b"\xff\xfe", b"\xfe\xff"))
        if b"\x00" in head and not utf16:
            raise CatalogError(f"{self.label}: this is a binary file, not a CSV catalog")
        if head.startswith(b"\xef\xbb\xbf"):
            return "utf-8", 3
        return ("utf-16" if utf16 else "utf-8"), 0

    def _bad_byte(self, encoding: str, skip: int) -> CatalogError:
        """The first undecodable byte, found by decoding the file again block by block (only on
        this error path; the position is relative to the text after a UTF-8 BOM, as before)."""
        decoder = codecs.getincrementaldecoder(encoding)()
        offset = newlines = 0
        with self._open() as handle:
            handle.read(skip)
            while True:
                block = handle.read(_READ_BYTES)
                pending = decoder.getstate()[0]  # bytes of a character split across blocks
                try:
                    decoder.decode(block, final=not block)
                except UnicodeDecodeError as exc:
                    data = pending + block
                    byte = offset - len(pending) + exc.start
                    line = newlines - pending.count(b"\n") + data[: exc.start].count(b"\n") + 1
                    return CatalogError(_decode_message(self.label, encoding, line, byte))
                if not block:
                    break
                offset += len(block)
                newlines += block.count(b"\n")
        # The file decoded this time: it changed between the two reads.
        return CatalogError(
            f"{self.label}: cannot read the text as {encoding.upper()}. Save the file as UTF-8 "
            "and import it again."
        )

    def _csv_rows(self, text: IO[str], encoding: str, skip: int) -> Iterator[list[str]]:
        reader = csv.reader(text, strict=True)
        while True:
            try:
                with _field_limit():
                    batch = list(itertools.islice(reader, _PARSE_BATCH))
            except csv.Error as exc:
                raise CatalogError(
                    f"{self.label}: malformed CSV near line {reader.line_num}: {exc}. "
                    "Check the quoting."
                ) from exc
            except UnicodeDecodeError as exc:
                raise self._bad_byte(encoding, skip) from exc
            if not batch:
                return
            yield from batch

    def records(self) -> Iterator[dict[str, Any]]:
        label = self.label
        with self._open() as handle:
            encoding, skip = self._sniff(handle)
            digest = _DigestReader(handle)
            buffered = io.BufferedReader(digest, _READ_BYTES)
            buffered.read(skip)
            # newline="" keeps line endings inside quoted fields, as csv requires.
            text = io.TextIOWrapper(buffered, encoding=encoding, newline="")
            rows = self._csv_rows(text, encoding, skip)
            header = next(rows, None)
            if not header:
                raise CatalogError(f"{label}: the file has no header row")
            header = [h.strip().lstrip("\ufeff").lower() for h in header]
            missing = [c for c in REQUIRED_COLUMNS if c not in header]
            if missing:
                raise missing_columns_error(label, missing, [h for h in header if h])
            wanted = [*REQUIRED_COLUMNS, *[c for c in OPTIONAL_COLUMNS if c in header]]
            index = {c: header.index(c) for c in wanted}
            absent = [c for c in OPTIONAL_COLUMNS if c not in index]
            self.columns = tuple(wanted)
            seen_rows = postings = 0
            for offset, values in enumerate(rows):
                seen_rows += 1
                row_number = offset + 2
                # Blank lines carry nothing (the first field decides for almost every row).
                if not values or (not values[0].strip() and all(not v.strip() for v in values)):
                    continue
                if len(values) != len(header):
                    raise CatalogError(
                        f"{label}: row {row_number} has {len(values)} fields but the header has "
                        f"{len(header)}. Check for unquoted commas in titles."
                    )
                record: dict[str, Any] = {"row": row_number}
                for column, i in index.items():
                    value = values[i]
                    if len(value) > MAX_FIELD_CHARS:
                        raise CatalogError(
                            f"{label}: row {row_number}, column {column} is {len(value):,} "
                            f"characters long (limit {MAX_FIELD_CHARS:,}); the file is probably "
                            "malformed."
                        )
                    record[column] = value
                record["posting_id"] = record["posting_id"].strip()
                for column in absent:
                    record[column] = ""
                postings += 1
                yield record
            if not seen_rows:
                raise CatalogError(f"{label}: the header is there but the file has no postings")
            if not postings:
                raise CatalogError(
                    f"{label}: the header is there but every row is blank; no postings"
                )
            self.size, self.sha256 = digest.size, digest.sha.hexdigest()


def scan_catalog(source: CatalogSource, name: str | None = None) -> CatalogScan:
    """Check a catalog's file-level structure in one streaming pass (nothing is written).

    Memory: one parse batch plus the set of posting ids (for duplicates).

    Raises:
        CatalogError: naming the problem and the rows or columns involved.
    """
    reader = _CatalogReader(source, name)
    seen: set[str] = set()
    duplicated: set[str] = set()
    empty: list[int] = []
    empty_count = rows = 0
    for record in reader.records():
        rows += 1
        pid = record["posting_id"]
        if not pid:
            empty_count += 1
            if len(empty) < _SHOWN_ROWS:
                empty.append(record["row"])
        elif pid in seen:
            duplicated.add(pid)
        else:
            seen.add(pid)
    del seen
    if empty_count:
        raise CatalogError(
            f"{reader.label}: empty posting_id in row(s) {_shown(empty, empty_count)}"
        )
    if duplicated:
        # Rare error path: a second pass collects the rows of the first few duplicated ids.
        where: dict[str, list[int]] = {pid: [] for pid in sorted(duplicated)[:5]}
        for record in _CatalogReader(source, name).records():
            if record["posting_id"] in where:
                where[record["posting_id"]].append(record["row"])
        detail = "; ".join(f"{pid!r} in rows {_rows(r)}" for pid, r in where.items())
        raise CatalogError(f"{reader.label}: duplicate posting_id: {detail}")
    return CatalogScan(reader.label, rows, reader.columns, reader.size, reader.sha256)


def iter_catalog_records(source: CatalogSource, name: str | None = None) -> Iterator[dict]:
    """The records of a catalog, streamed (validate it with `scan_catalog` first)."""
    return _CatalogReader(source, name).records()


def read_catalog_csv(source: CatalogSource, name: str | None = None) -> pd.DataFrame:
    """Parse and validate the file-level structure of a catalog, as one DataFrame (for small
    files and callers that want a frame; imports stream instead).

    Args:
        source: a CSV path, or the bytes of an uploaded file.
        name: how to call the file in messages.

    Returns:
        One string column per known field ('' for blanks), with a 1-based ``row`` column that
        counts data rows as a spreadsheet would (header = row 1, first posting = row 2).

    Raises:
        CatalogError: naming the problem and the rows or columns involved.
    """
    scan_catalog(source, name)
    return pd.DataFrame.from_records(list(iter_catalog_records(source, name)))


# -- rows ------------------------------------------------------------------------------------
