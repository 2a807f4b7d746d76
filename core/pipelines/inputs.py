"""What a pipeline reads (titles, hashes, image vectors aligned by catalog position) and the
per-modality pair scores every engine computes the same way.

The pair scorers here are the only place a pair's image cosine, hash distance or TF-IDF cosine
is computed from the postings' data: the batch engine, the single-item query and the Spark job
(inside ``mapInPandas``) all call them, so a pair gets the same numbers on every path.
"""

from __future__ import annotations

from collections.abc import Callable
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


@dataclass(frozen=True)
class PairSide:
    """One end of a set of pairs, a value per pair: what `pair_columns` compares.

    Args:
        has_hash: whether that end has a perceptual hash.
        hashes: its hash (uint64; anything where it has none).
        has_vector: whether that end has an image vector.
        vectors: the vectors of the pairs a mask selects (gathered only where both ends have
            one: a chunk of pairs × vector length can be hundreds of MB).
        titles: its title (object array), where the pipeline reads titles.
    """

    has_hash: np.ndarray
    hashes: np.ndarray
    has_vector: np.ndarray
    vectors: Callable[[np.ndarray], np.ndarray]
    titles: np.ndarray | None = None

    @classmethod
    def of(cls, inputs: MatchInputs, positions: np.ndarray, titles: bool = False) -> PairSide:
        """The postings at ``positions`` of a catalog."""
        has_vector = np.zeros(len(positions), bool)
        if inputs.has_vector is not None:
            has_vector = inputs.has_vector[positions]
        return cls(
            inputs.has_hash[positions],
            inputs.hashes[positions],
            has_vector,
            lambda mask: inputs.image_vectors[positions[mask]],
            np.asarray([inputs.titles[i] for i in positions.tolist()], dtype=object)
            if titles
            else None,
        )


def pair_columns(left: PairSide, right: PairSide) -> dict[str, np.ndarray]:
    """The columns every path builds for the rules to read: ``image_cosine`` (NaN unless both
    have vectors), ``hash_distance`` (NaN unless both have hashes), ``by_vector`` (both have
    vectors: the vector, not the hash, is the evidence) and, with titles, ``left_title``,
    ``right_title`` and ``has_text`` (both have one)."""
    m = len(left.has_hash)
    by_vector = left.has_vector & right.has_vector
    cosine = np.full(m, np.nan, dtype=np.float32)
    if by_vector.any():
        cosine[by_vector] = vector_cosines(left.vectors(by_vector), right.vectors(by_vector))
    both = left.has_hash & right.has_hash
    distance = np.full(m, np.nan, dtype=np.float32)
    if both.any():
        distance[both] = hash_distances(left.hashes[both], right.hashes[both])
    columns = {"image_cosine": cosine, "hash_distance": distance, "by_vector": by_vector}
    if left.titles is not None and right.titles is not None:
        has_text = np.fromiter(
            (bool(a) and bool(b) for a, b in zip(left.titles, right.titles, strict=True)), bool, m
        )
        columns |= {"left_title": left.titles, "right_title": right.titles, "has_text": has_text}
    return columns


def catalog_pair_columns(
    inputs: MatchInputs, left: np.ndarray, right: np.ndarray, titles: bool = False
) -> dict[str, np.ndarray]:
    """`pair_columns` of pairs of catalog positions."""
    return pair_columns(PairSide.of(inputs, left, titles), PairSide.of(inputs, right, titles))
