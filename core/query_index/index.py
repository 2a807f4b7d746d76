"""The in-memory query index: frozen TF-IDF rows, hashes, FAISS image indexes, and its files."""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.candidates import WORDS, TfidfModel, fit_tfidf
from core.candidates.dense import HNSW_EF_SEARCH, HNSW_FROM, build_faiss_index
from core.errors import SameSameError
from core.images import phash_to_uint64
from core.store import Store
from core.workspace import catalog_stamp

logger = logging.getLogger(__name__)

#: From this many postings, `query_item` answers from the index instead of a full recompute:
#: at 27k postings a recompute refits TF-IDF per query (0.86 s), the index answers in 13 ms
#: (57 of 60 matched sets identical; the others differ in a tail posting or three).
INDEXED_QUERY_FROM = 5_000
#: Ensemble queries score SequenceMatcher on at most this many postings, best TF-IDF first.
RATIO_CANDIDATES = 2_000
FORMAT_VERSION = 1
#: Postings added after the base files were written, one JSON object per line.
DELTA_FILE = "delta.jsonl"


@dataclass
class ImageIndex:
    """One image model's vectors in a FAISS index, row i = posting position ``positions[i]``."""

    model: str
    version: str | None
    index: object
    positions: np.ndarray
    _row_of: np.ndarray | None = field(default=None, repr=False)
    _rows_known: int = field(default=0, repr=False)

    def search(self, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(cosines, posting positions) of the k nearest stored vectors, best first."""
        if self.index.ntotal == 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        if hasattr(self.index, "hnsw"):
            self.index.hnsw.efSearch = max(HNSW_EF_SEARCH, 2 * k)
        sims, rows = self.index.search(vector.reshape(1, -1).astype(np.float32), k)
        found = rows[0] >= 0
        return sims[0][found], self.positions[rows[0][found]]

    def vectors_of(self, postings: np.ndarray) -> np.ndarray:
        """The stored vectors of some posting positions (rows of NaN where a posting has none)."""
        postings = np.asarray(postings, dtype=np.int64)
        out = np.full((len(postings), self.index.d), np.nan, np.float32)
        if len(postings) == 0 or len(self.positions) == 0:
            return out
        if self._row_of is None or self._rows_known != len(self.positions):
            # Grown by uploads since: rebuild the position -> row lookup (one pass, vectorised).
            self._row_of = np.full(int(self.positions.max()) + 1, -1, np.int64)
            self._row_of[self.positions] = np.arange(len(self.positions))
            self._rows_known = len(self.positions)
        inside = postings < len(self._row_of)
        rows = np.full(len(postings), -1, np.int64)
        rows[inside] = self._row_of[postings[inside]]
        for i in np.flatnonzero(rows >= 0).tolist():
            out[i] = self.index.reconstruct(int(rows[i]))
        return out


@dataclass
class QueryIndex:
    """What a single-item query needs, in memory, aligned by posting position."""

    stamp: str
    posting_ids: list[str]
    titles: list[str]
    hashes: np.ndarray
    has_hash: np.ndarray
    vocabulary: dict[str, int]
    idf: np.ndarray
    rows: object  # csr_matrix (postings × words), L2-normalised TF-IDF
    inverted: object  # csr_matrix (words × postings)
    images: dict[str, ImageIndex] = field(default_factory=dict)
    _has_title: np.ndarray | None = field(default=None, repr=False)

    # -- building ---------------------------------------------------------------------------
    @classmethod
    def build(cls, store: Store, image_models: Sequence[tuple[str, str | None]] = ()) -> QueryIndex:
        """Index the catalog as it is now (titles, hashes, and the given models' vectors)."""
        started = time.perf_counter()
        postings = store.postings()
        if postings.empty:
            raise SameSameError("The catalog is empty: import a catalog first.")
        titles = postings["title_norm"].fillna("").tolist()
        hashes, has_hash = phash_to_uint64(postings["image_phash"].tolist())
        # The baseline's own TF-IDF (core.candidates.tfidf), frozen: uploads reuse it.
        words = fit_tfidf(titles)
        rows, vocabulary, idf = words.matrix, words.vocabulary, words.idf
        index = cls(
            stamp=catalog_stamp(store),
            posting_ids=postings["posting_id"].tolist(),
            titles=titles,
            hashes=hashes,
            has_hash=has_hash,
            vocabulary=vocabulary,
            idf=idf,
            rows=rows,
            inverted=rows.T.tocsr(),
        )
        for model, version in image_models:
            index.add_image_model(store, model, version)
        logger.info(
            "query index of %d postings built in %.1f s",
            len(titles),
            time.perf_counter() - started,
        )
        return index

    def add_image_model(self, store: Store, model: str, version: str | None) -> None:
        ids, matrix = store.load_embeddings(model, version)
        position_of = {pid: i for i, pid in enumerate(self.posting_ids)}
        positions = np.array([position_of.get(pid, -1) for pid in ids], dtype=np.int64)
        known = positions >= 0
        matrix = np.asarray(matrix, dtype=np.float32).reshape(len(ids), -1)[known]
        kind = "hnsw" if len(matrix) >= HNSW_FROM else "faiss"
        self.images[model] = ImageIndex(
            model, version, build_faiss_index(matrix, kind), positions[known]
        )

    # -- queries ------------------------------------------------------------------------------
    def title_vector(self, title: str):
        """The query title's TF-IDF row with the catalog's vocabulary and IDF (unknown words,
        which no posting shares, are dropped)."""
        return TfidfModel(WORDS, self.rows, self.vocabulary, self.idf).transform([title])

    @property
    def has_title(self) -> np.ndarray:
        """Which postings have a (normalised) title: an empty one is no text evidence."""
        if self._has_title is None or len(self._has_title) != len(self.titles):
            self._has_title = np.fromiter((bool(t) for t in self.titles), bool, len(self.titles))
        return self._has_title

    def title_cosines(self, title: str) -> tuple[np.ndarray, np.ndarray]:
        """(positions, cosine) of the postings sharing at least one word with ``title``."""
        query = self.title_vector(title)
        if not title or query.nnz == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        scores = (query @ self.inverted).tocsr()
        return scores.indices.astype(np.int64), scores.data.astype(np.float32)

    def hash_distances(self, query_hash: int) -> np.ndarray:
        """Bits between the query hash and every posting's (NaN where a posting has none)."""
        distance = np.bitwise_count(self.hashes ^ np.uint64(query_hash)).astype(np.float32)
        distance[~self.has_hash] = np.nan
        return distance

    # -- growing ------------------------------------------------------------------------------
    def add_postings(
        self,
        posting_ids: Sequence[str],
        titles: Sequence[str],
        phashes: Sequence[str | None],
        vectors: dict[str, np.ndarray] | None = None,
    ) -> None:
        """Append postings (an upload) without rebuilding: TF-IDF rows with the frozen vocabulary,
        hashes, and vectors added to the FAISS indexes."""
        from scipy.sparse import vstack

        start = len(self.posting_ids)
        new_rows = vstack([self.title_vector(t) for t in titles], format="csr")
        self.rows = vstack([self.rows, new_rows], format="csr")
        self.inverted = self.rows.T.tocsr()  # transposing is linear and fast; no refit
        hashes, has_hash = phash_to_uint64(list(phashes))
        self.hashes = np.concatenate([self.hashes, hashes])
        self.has_hash = np.concatenate([self.has_hash, has_hash])
        self.posting_ids.extend(posting_ids)
        self.titles.extend(titles)
        for model, vector_rows in (vectors or {}).items():
            image = self.images.get(model)
            if image is None:
                continue
            matrix = np.asarray(vector_rows, dtype=np.float32).reshape(len(posting_ids), -1)
            present = ~np.isnan(matrix).any(axis=1)
            image.index.add(np.ascontiguousarray(matrix[present]))
            image.positions = np.concatenate(
                [image.positions, start + np.flatnonzero(present).astype(np.int64)]
            )

    # -- files --------------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        """Write the index (atomically: a half-written index is never picked up)."""
        import faiss
        from scipy.sparse import save_npz

        folder.parent.mkdir(parents=True, exist_ok=True)
        # One staging folder per process: server workers may build the same index at once.
        staging = folder.with_name(f"{folder.name}.{os.getpid()}.tmp")
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir()
        save_npz(staging / "rows.npz", self.rows, compressed=False)
        np.save(staging / "hashes.npy", self.hashes, allow_pickle=False)
        np.save(staging / "has_hash.npy", self.has_hash, allow_pickle=False)
        np.save(staging / "idf.npy", self.idf, allow_pickle=False)
        images = {}
        for name, image in self.images.items():
            safe = f"image{len(images)}"
            faiss.write_index(image.index, str(staging / f"{safe}.faiss"))
            np.save(staging / f"{safe}.positions.npy", image.positions, allow_pickle=False)
            images[name] = {"file": safe, "version": image.version}
        meta = {
            "format": FORMAT_VERSION,
            "stamp": self.stamp,
            "vocabulary": self.vocabulary,
            "posting_ids": self.posting_ids,
            "titles": self.titles,
            "images": images,
        }
        (staging / "index.json").write_text(json.dumps(meta), encoding="utf-8")
        # The base now holds every added posting, so the new folder starts without a delta.
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)
        try:
            staging.rename(folder)
        except OSError:  # another process put its (equal) index there first
            shutil.rmtree(staging, ignore_errors=True)

    @classmethod
    def load(cls, folder: Path) -> QueryIndex:
        """Read an index written by `save`; raises SameSameError when it is not one."""
        import faiss
        from scipy.sparse import load_npz

        try:
            meta = json.loads((folder / "index.json").read_text(encoding="utf-8"))
            if meta.get("format") != FORMAT_VERSION:
                raise ValueError(f"format {meta.get('format')!r}")
            rows = load_npz(folder / "rows.npz").tocsr()
            index = cls(
                stamp=meta["stamp"],
                posting_ids=list(meta["posting_ids"]),
                titles=list(meta["titles"]),
                hashes=np.load(folder / "hashes.npy", allow_pickle=False),
                has_hash=np.load(folder / "has_hash.npy", allow_pickle=False),
                vocabulary={str(k): int(v) for k, v in meta["vocabulary"].items()},
                idf=np.load(folder / "idf.npy", allow_pickle=False),
                rows=rows,
                inverted=rows.T.tocsr(),
            )
            for name, entry in meta["images"].items():
                safe = str(entry["file"])
                if not safe.startswith("image") or not safe[5:].isdigit():
                    raise ValueError(f"unexpected index file name {safe!r}")
                index.images[name] = ImageIndex(
                    name,
                    entry.get("version"),
                    faiss.read_index(str(folder / f"{safe}.faiss")),
                    np.load(folder / f"{safe}.positions.npy", allow_pickle=False),
                )
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise SameSameError(f"{folder} is not a readable query index ({exc})") from exc
        if (
            len(index.posting_ids) != index.rows.shape[0]
            or len(index.hashes) != index.rows.shape[0]
        ):
            raise SameSameError(f"{folder} is not a consistent query index; it will be rebuilt")
        index._replay_delta(folder / DELTA_FILE)
        return index

    def _replay_delta(self, path: Path) -> None:
        if not path.exists():
            return
        entries = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                entries.append(
                    (
                        str(entry["posting_id"]),
                        str(entry["title"]),
                        entry["phash"],
                        {str(m): list(v) for m, v in entry.get("vectors", {}).items()},
                        str(entry["stamp"]),
                    )
                )
            except (ValueError, KeyError, TypeError) as exc:
                # A line cut short by a crash: what came before it is still good.
                logger.warning("%s line %d unreadable (%s); ignored", path, number, exc)
                break
        if not entries:
            return
        vectors = {}
        for model, image in self.images.items():
            dim = image.index.d
            rows = np.full((len(entries), dim), np.nan, dtype=np.float32)
            for i, entry in enumerate(entries):
                if model in entry[3]:
                    rows[i] = entry[3][model]
            vectors[model] = rows
        self.add_postings(
            [e[0] for e in entries], [e[1] for e in entries], [e[2] for e in entries], vectors
        )
        self.stamp = entries[-1][4]
