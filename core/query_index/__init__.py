"""A persisted index for single-item queries on large catalogs (an upload in Compare).

`core.query.query_item` recomputes TF-IDF over the whole catalog and scores every posting: exact
and consistent with the batch pipelines, but seconds per query at a million postings. This index
is built once per catalog and then loaded:

- titles: the TF-IDF vocabulary and IDF frozen at build time, the catalog's rows as a sparse
  matrix, and its transpose as inverted lists, so a query touches only postings sharing a word;
- hashes: one uint64 per posting, compared to the query's by popcount (a few ms at 1M);
- image vectors (per image model): a FAISS index (exact flat, HNSW from `HNSW_FROM` vectors).

Files (NumPy ``.npy``/``.npz`` without pickles, JSON, FAISS's own format: nothing that can run
code) live in the data folder under ``indexes/``, one folder per database. Adding a posting
(`add_to_index`) appends to the in-memory index (FAISS ``add``, TF-IDF rows with the frozen
vocabulary) and one line to ``delta.jsonl``; the base files are not rewritten, so an upload never
triggers a rebuild.
"""

from __future__ import annotations

from core.query_index.files import add_to_index, index_folder, open_query_index
from core.query_index.index import (
    DELTA_FILE,
    FORMAT_VERSION,
    INDEXED_QUERY_FROM,
    RATIO_CANDIDATES,
    ImageIndex,
    QueryIndex,
)

__all__ = [
    "DELTA_FILE",
    "FORMAT_VERSION",
    "INDEXED_QUERY_FROM",
    "RATIO_CANDIDATES",
    "ImageIndex",
    "QueryIndex",
    "add_to_index",
    "index_folder",
    "open_query_index",
]
