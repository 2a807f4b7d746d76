"""What a pipeline reads (titles, hashes, image vectors aligned by catalog position) and the
per-modality pair scores every engine computes the same way.

The pair scorers here are the only place a pair's image cosine, hash distance or TF-IDF cosine
is computed from the postings' data: the batch engine, the single-item query and the Spark job
(inside ``mapInPandas``) all call them, so a pair gets the same numbers on every path.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.errors import SameSameError
from core.images import hamming, phash_to_uint64
from core.store import Store


@dataclass
class MatchInputs:
    """Everything a pipeline needs, one entry per posting in catalog order.

    image_vectors rows are only meaningful where ``has_vector`` is True.
    """

    posting_ids: list[str]
    titles: list[str]
    hashes: np.ndarray
    has_hash: np.ndarray
    image_vectors: np.ndarray | None = None
    has_vector: np.ndarray | None = None
    image_model: str | None = None

    @classmethod
    def from_frame(
        cls,
        postings: pd.DataFrame,
        vectors: dict[str, np.ndarray] | None = None,
        image_model: str | None = None,
    ) -> MatchInputs:
        ids = postings["posting_id"].tolist()
        hashes, has_hash = phash_to_uint64(postings["image_phash"].tolist())
        inputs = cls(ids, postings["title_norm"].fillna("").tolist(), hashes, has_hash)
        if vectors:
            dim = len(next(iter(vectors.values())))
            matrix = np.zeros((len(ids), dim), dtype=np.float32)
            mask = np.zeros(len(ids), dtype=bool)
            for i, pid in enumerate(ids):
                vec = vectors.get(pid)
                if vec is not None:
                    matrix[i], mask[i] = vec, True
            inputs.image_vectors, inputs.has_vector, inputs.image_model = matrix, mask, image_model
        return inputs

    @property
    def size(self) -> int:
        return len(self.posting_ids)

    @property
    def vector_count(self) -> int:
        return 0 if self.has_vector is None else int(self.has_vector.sum())

    def subset(self, idx: np.ndarray) -> MatchInputs:
        """The postings at positions ``idx`` as a catalog of their own."""
        return MatchInputs(
            [self.posting_ids[i] for i in idx],
            [self.titles[i] for i in idx],
            self.hashes[idx],
            self.has_hash[idx],
            None if self.image_vectors is None else self.image_vectors[idx],
            None if self.has_vector is None else self.has_vector[idx],
            self.image_model,
        )

    def with_titles(self, titles: list[str]) -> MatchInputs:
        return MatchInputs(
            self.posting_ids,
            titles,
            self.hashes,
            self.has_hash,
            self.image_vectors,
            self.has_vector,
            self.image_model,
        )


def load_inputs(store: Store, image_model: tuple[str, str | None] | None) -> MatchInputs:
    """Read a pipeline's inputs from the database (vectors of ``image_model`` when given)."""
    postings = store.postings()
    vectors = None
    if image_model:
        ids, matrix = store.load_embeddings(image_model[0], image_model[1])
        vectors = dict(zip(ids, matrix, strict=True)) if ids else None
    return MatchInputs.from_frame(postings, vectors, image_model[0] if vectors else None)


#: The item's id while it is scored (cannot collide with an imported id: no control chars).
QUERY_ID = "\x00query"


def load_inputs_with_item(
    store: Store,
    title: str,
    item_hash: int | None,
    vector: np.ndarray | None,
    image_model: tuple[str, str | None] | None,
) -> MatchInputs:
    """The catalog with a new item appended as its last posting (a single-item query), called
    `QUERY_ID`."""
    postings = store.postings()
    if postings.empty:
        raise SameSameError("The catalog is empty: import a catalog first.")
    extended = pd.concat(
        [
            postings[["posting_id", "title_norm", "image_phash"]],
            pd.DataFrame(
                {
                    "posting_id": [QUERY_ID],
                    "title_norm": [title],
                    "image_phash": [None if item_hash is None else f"{item_hash:016x}"],
                }
            ),
        ],
        ignore_index=True,
    )
    by_id = None
    if vector is not None and image_model is not None:
        ids, matrix = store.load_embeddings(image_model[0], image_model[1])
        if ids:
            by_id = dict(zip(ids, matrix, strict=True))
            by_id[QUERY_ID] = vector
    return MatchInputs.from_frame(extended, by_id, image_model[0] if by_id else None)


# -- pair scorers ----------------------------------------------------------------------------
def vector_cosines(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Cosine of each row pair of two (m, d) float32 arrays of unit vectors."""
    left = np.asarray(left, dtype=np.float32)
    right = np.asarray(right, dtype=np.float32)
    if len(left) == 0:
        return np.zeros(0, np.float32)
    return np.einsum("ij,ij->i", left, right).astype(np.float32)


def hash_distances(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Hamming distance (bits, float32) of each uint64 hash pair."""
    return hamming(np.asarray(left, np.uint64), np.asarray(right, np.uint64)).astype(np.float32)


def image_columns(
    inputs: MatchInputs, left: np.ndarray, right: np.ndarray
) -> dict[str, np.ndarray]:
    """``image_cosine`` (NaN unless both have vectors), ``hash_distance`` (NaN unless both have
    hashes) and ``by_vector`` (both have vectors: the vector, not the hash, is the evidence)."""
    m = len(left)
    cosine = np.full(m, np.nan, dtype=np.float32)
    by_vector = np.zeros(m, dtype=bool)
    if inputs.has_vector is not None and m:
        by_vector = inputs.has_vector[left] & inputs.has_vector[right]
        cosine[by_vector] = vector_cosines(
            inputs.image_vectors[left[by_vector]], inputs.image_vectors[right[by_vector]]
        )
    distance = np.full(m, np.nan, dtype=np.float32)
    if m:
        both = inputs.has_hash[left] & inputs.has_hash[right]
        distance[both] = hash_distances(inputs.hashes[left[both]], inputs.hashes[right[both]])
    return {"image_cosine": cosine, "hash_distance": distance, "by_vector": by_vector}


def title_columns(titles: list[str], left: np.ndarray, right: np.ndarray) -> dict[str, np.ndarray]:
    """Both titles of each pair (earlier posting first) and whether both have one."""
    left_titles = np.asarray([titles[i] for i in left.tolist()], dtype=object)
    right_titles = np.asarray([titles[j] for j in right.tolist()], dtype=object)
    has_text = np.fromiter(
        (bool(a) and bool(b) for a, b in zip(left_titles, right_titles, strict=True)),
        bool,
        len(left_titles),
    )
    return {"left_title": left_titles, "right_title": right_titles, "has_text": has_text}
