"""The ``best`` pipeline's training pairs: candidates found inside sub-catalogs split from the
labelled catalog by group, at several sizes, stacked over "virtual" postings.

A posting appears once per level (e.g. once in its half and once in its quarter), so the
classifier sees rank and density features learnt at more than one catalog size; the coarsest
sub-catalogs are the folds every out-of-fold prediction holds out.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from core.embedders.text_model import TitleEncoder, TitleEncoderConfig
from core.embedders.vector_head import VectorHead, VectorHeadConfig, can_fit_cross
from core.errors import SameSameError
from core.pipelines.best.config import BestConfig
from core.pipelines.best.features import PairTable, build_pair_table
from core.pipelines.best.thresholds import tune_thresholds
from core.pipelines.inputs import MatchInputs


@dataclass(frozen=True)
class TrainingSet:
    """Every training sub-catalog's candidate pairs over virtual postings.

    Attributes:
        parts: each sub-catalog's postings (rows of the labelled catalog), in table order.
        tables: each sub-catalog's candidate pairs and stage 1 features.
        real: (virtual postings,) int: each virtual posting's row in the labelled catalog.
        virtual_labels: (virtual postings,) object: labels prefixed by their sub-catalog, so
            a group in two sub-catalogs counts as two groups when F1 is measured.
        names: the stage 1 feature names.
        x1: (pairs, features) float32 stage 1 features of all tables, stacked.
        left, right: (pairs,) int virtual postings of each pair.
        y: (pairs,) float32: 1 where both sides share a label.
        posting_fold: (virtual postings,) the fold (coarsest sub-catalog) of each.
        fold: (pairs,) each pair's fold (both sides lie in it).
    """

    parts: list[np.ndarray]
    tables: list[PairTable]
    real: np.ndarray
    virtual_labels: np.ndarray
    names: list[str]
    x1: np.ndarray
    left: np.ndarray
    right: np.ndarray
    y: np.ndarray
    posting_fold: np.ndarray
    fold: np.ndarray

    @property
    def size(self) -> int:
        """The number of virtual postings."""
        return len(self.real)

    def table_rows(self, table: int) -> slice:
        """The rows of ``x1`` (and of every per-pair array) holding table ``table``'s pairs."""
        start = sum(len(t.left) for t in self.tables[:table])
        return slice(start, start + len(self.tables[table].left))

    def table_fold(self, table: int) -> int:
        """The fold table ``table``'s sub-catalog lies in."""
        first = sum(len(idx) for idx in self.parts[:table])
        return int(self.posting_fold[first])

    def tune_thresholds(self, prob: np.ndarray, min_one: bool) -> tuple[float, float, float]:
        """`tune_thresholds` over every sub-catalog's pairs, scored ``prob``."""
        return tune_thresholds(self.size, self.virtual_labels, self.left, self.right, prob, min_one)

    def check(self) -> None:
        """Raises SameSameError where the pairs cannot train a classifier held out by fold."""
        if self.y.sum() == 0 or self.y.min() == self.y.max():
            raise SameSameError("No candidate pair shares a label: nothing to learn from")
        if (self.posting_fold[self.right] != self.fold).any():
            raise SameSameError(
                "training sub-catalogs do not nest in the folds; check train_splits"
            )


def fit_title_encoder(
    inputs: MatchInputs,
    labels: np.ndarray,
    coarsest: np.ndarray,
    config: BestConfig,
    timings: dict[str, float],
) -> tuple[TitleEncoder | None, np.ndarray | None]:
    """The title encoder and each posting's vector from a member that never saw its fold
    (None, None when off)."""
    if not config.title_model:
        return None, None
    t0 = time.perf_counter()
    encoder, vectors = TitleEncoder.fit_cross(
        inputs.titles,
        labels,
        coarsest,
        TitleEncoderConfig(epochs=config.title_model_epochs, seed=config.seed),
    )
    timings["title_model"] = time.perf_counter() - t0
    return encoder, vectors


def fit_image_head(
    inputs: MatchInputs,
    labels: np.ndarray,
    coarsest: np.ndarray,
    config: BestConfig,
    timings: dict[str, float],
) -> tuple[VectorHead | None, np.ndarray | None]:
    """The image head, cross-fitted like the title encoder (None, None when off, or when too
    few photos lie outside some fold: a member with nothing to learn would serve noise)."""
    if not (
        config.image_head
        and inputs.has_vector is not None
        and can_fit_cross(inputs.has_vector, labels, coarsest)
    ):
        return None, None
    t0 = time.perf_counter()
    head, head_vectors = VectorHead.fit_cross(
        inputs.image_vectors,
        inputs.has_vector,
        labels,
        coarsest,
        VectorHeadConfig(epochs=config.image_head_epochs, seed=config.seed),
    )
    timings["image_head"] = time.perf_counter() - t0
    return head, head_vectors


def _sub_catalog_tables(
    inputs: MatchInputs,
    part_of: np.ndarray,
    levels: list[int],
    config: BestConfig,
    vectors: np.ndarray | None,
    head_vectors: np.ndarray | None,
    timings: dict[str, float],
) -> tuple[list[np.ndarray], list[PairTable], list[str]]:
    """Each sub-catalog's postings, candidate pairs and label prefix, level by level; adds
    the tables' stage timings to ``timings``."""
    top = max(levels)
    parts: list[np.ndarray] = []
    tables: list[PairTable] = []
    tags: list[str] = []
    for level in levels:
        for s in range(level):
            idx = np.flatnonzero(part_of // (top // level) == s)
            sub_vectors = vectors[idx] if vectors is not None else None
            sub_head = head_vectors[idx] if head_vectors is not None else None
            table = build_pair_table(inputs.subset(idx), config, sub_vectors, None, sub_head)
            for key, value in table.timings.items():
                timings[key] = timings.get(key, 0.0) + value
            parts.append(idx)
            tables.append(table)
            tags.append(f"{level}/{s}|")
    return parts, tables, tags


def build_training_set(
    inputs: MatchInputs,
    labels: np.ndarray,
    part_of: np.ndarray,
    coarsest: np.ndarray,
    levels: list[int],
    config: BestConfig,
    vectors: np.ndarray | None,
    head_vectors: np.ndarray | None,
    timings: dict[str, float],
) -> TrainingSet:
    """The candidate pairs of every sub-catalog (``part_of``: each posting's finest part,
    ``coarsest`` its fold), with the learned encoders' cross-fitted vectors when given.

    Not checked yet: call `TrainingSet.check` before training on it.
    """
    parts, tables, tags = _sub_catalog_tables(
        inputs, part_of, levels, config, vectors, head_vectors, timings
    )
    # "Virtual" postings: a posting appears once per level; ids are offsets into `real`.
    real = np.concatenate(parts)
    offsets = np.cumsum([0] + [len(idx) for idx in parts])
    virtual_labels = np.concatenate(
        [np.char.add(tag, labels[idx].astype(str)) for tag, idx in zip(tags, parts, strict=True)]
    ).astype(object)
    left = np.concatenate([o + t.left for o, t in zip(offsets, tables, strict=False)])
    right = np.concatenate([o + t.right for o, t in zip(offsets, tables, strict=False)])
    # The folds are the coarsest sub-catalogs: every candidate pair lies inside one.
    posting_fold = coarsest[real]
    return TrainingSet(
        parts=parts,
        tables=tables,
        real=real,
        virtual_labels=virtual_labels,
        names=tables[0].names,
        x1=np.vstack([t.features for t in tables]),
        left=left,
        right=right,
        y=(labels[real[left]] == labels[real[right]]).astype(np.float32),
        posting_fold=posting_fold,
        fold=posting_fold[left],
    )
