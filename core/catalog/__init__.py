"""Catalog import: a CSV in the Shopee layout plus an image folder, validated before anything is
written, then written in chunks that a crashed import resumes from.

File-level problems (not a CSV, missing columns, duplicate ids, bad encoding…) raise
`CatalogError` and leave the database untouched. Row-level problems (missing or corrupt image,
bad hash, empty title) are reported per row and the row is kept with whatever evidence it has.

The file is streamed twice and never held in memory: a first pass checks its structure (and
fingerprints it: size + SHA-256), a second pass writes ``chunk_rows`` postings per transaction,
so concurrent readers and embedders never wait long. Each chunk's transaction also records how
far the import got; running the same import again after a crash skips what is already written.
"""

from __future__ import annotations

from core.catalog.importer import ImportReport, import_catalog
from core.catalog.reader import (
    DEFAULT_CHUNK_ROWS,
    MAX_CATALOG_BYTES,
    MAX_FIELD_CHARS,
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    CatalogScan,
    decode_catalog_bytes,
    iter_catalog_records,
    missing_columns_error,
    read_catalog_csv,
    scan_catalog,
)
from core.catalog.rows import prepare_postings
from core.catalog.summary import ProblemGroup, summarize_problems

__all__ = [
    "ProblemGroup",
    "summarize_problems",
    "DEFAULT_CHUNK_ROWS",
    "MAX_CATALOG_BYTES",
    "MAX_FIELD_CHARS",
    "OPTIONAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "CatalogScan",
    "ImportReport",
    "decode_catalog_bytes",
    "import_catalog",
    "iter_catalog_records",
    "missing_columns_error",
    "prepare_postings",
    "read_catalog_csv",
    "scan_catalog",
]
