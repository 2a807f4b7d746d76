"""What a pipeline reads: the catalog's titles, hashes and image vectors, aligned by position."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.images import phash_to_uint64
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
    def vector_count(self) -> int:
        return 0 if self.has_vector is None else int(self.has_vector.sum())


def load_inputs(store: Store, image_model: str | None) -> MatchInputs:
    """Read a pipeline's inputs from the database (vectors of ``image_model`` when given)."""
    postings = store.postings()
    vectors = None
    if image_model:
        ids, matrix = store.load_embeddings(image_model)
        vectors = dict(zip(ids, matrix, strict=True)) if ids else None
    return MatchInputs.from_frame(postings, vectors, image_model if vectors else None)


def union_pairs(*pair_sets: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (left, right) position pairs from several candidate sources (left < right)."""
    lefts = np.concatenate([p[0] for p in pair_sets]).astype(np.int64)
    rights = np.concatenate([p[1] for p in pair_sets]).astype(np.int64)
    if len(lefts) == 0:
        return lefts, rights
    n = int(max(lefts.max(), rights.max())) + 1
    unique = np.unique(lefts * n + rights)
    return unique // n, unique % n


def image_vector_pairs(inputs: MatchInputs, min_cosine: float, k: int, backend: str):
    """Pairs of postings that both have image vectors, cosine >= min_cosine among top-k."""
    from core.neighbours import similar_pairs

    if inputs.has_vector is None or inputs.vector_count < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    where = np.flatnonzero(inputs.has_vector)
    left, right, _ = similar_pairs(inputs.image_vectors[where], min_cosine, k, backend)
    return where[left], where[right]


def hash_only_pairs(inputs: MatchInputs, max_distance: int):
    """Hash-close pairs where at least one side has no image vector (hash stands in for it)."""
    from core.similarity import hash_pairs_within

    left, right, _ = hash_pairs_within(inputs.hashes, inputs.has_hash, max_distance)
    if inputs.has_vector is not None and len(left):
        keep = ~(inputs.has_vector[left] & inputs.has_vector[right])
        left, right = left[keep], right[keep]
    return left, right


def pair_image_scores(inputs: MatchInputs, left: np.ndarray, right: np.ndarray):
    """(cosine or NaN, hash distance or NaN) for each pair."""
    cosine = np.full(len(left), np.nan, dtype=np.float32)
    if inputs.has_vector is not None and len(left):
        both = inputs.has_vector[left] & inputs.has_vector[right]
        vl, vr = inputs.image_vectors[left[both]], inputs.image_vectors[right[both]]
        cosine[both] = np.einsum("ij,ij->i", vl, vr)
    distance = np.full(len(left), np.nan, dtype=np.float32)
    if len(left):
        from core.images import hamming

        both_hash = inputs.has_hash[left] & inputs.has_hash[right]
        distance[both_hash] = hamming(
            inputs.hashes[left[both_hash]], inputs.hashes[right[both_hash]]
        )
    return cosine, distance


def image_evidence_is_vector(
    inputs: MatchInputs, left: np.ndarray, right: np.ndarray
) -> np.ndarray:
    if inputs.has_vector is None:
        return np.zeros(len(left), dtype=bool)
    return inputs.has_vector[left] & inputs.has_vector[right]


def rules_text(fired: dict[str, np.ndarray]) -> np.ndarray:
    """'image+text'-style labels from boolean arrays of which rules fired per pair."""
    names = list(fired)
    n = len(next(iter(fired.values()))) if fired else 0
    labels = np.array([""] * n, dtype=object)
    for name in names:
        mask = fired[name]
        labels[mask] = np.where(labels[mask] == "", name, labels[mask] + "+" + name)
    return labels


def pairs_frame(
    inputs: MatchInputs,
    left: np.ndarray,
    right: np.ndarray,
    rule: np.ndarray,
    scores: dict[str, np.ndarray],
) -> pd.DataFrame:
    ids = np.asarray(inputs.posting_ids, dtype=object)
    frame = pd.DataFrame({"left": ids[left], "right": ids[right], "rule": rule})
    for name, values in scores.items():
        frame[name] = values
    return frame.reset_index(drop=True)
