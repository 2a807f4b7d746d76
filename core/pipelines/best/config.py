"""How the ``best`` pipeline finds candidates, learns and decides (stored with the model)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from core.errors import SameSameError
from core.settings import MatchSettings

#: Stage 1 similarities every pair keeps past scoring (what matches and queries report).
ALWAYS_KEPT = ("char_sim", "hash_sim", "image_sim", "word_sim")


@dataclass(frozen=True)
class BestConfig:
    """How the ``best`` pipeline finds candidates, learns and decides (stored with the model).

    Immutable: training returns a new record with what it learnt (thresholds, blend weights,
    which parts it could fit), so a configuration handed in is never changed behind its owner.
    """

    k_word: int = 20
    k_char: int = 20
    k_hash: int = 5
    hash_max_distance: int = 24
    k_image: int = 20
    k_title_model: int = 20
    char_ngram_min: int = 3
    char_ngram_max: int = 5
    difflib_ratio: bool = False
    title_model: bool = False
    title_model_epochs: int = 12
    # A Siamese head (triplet loss) over the stored image vectors, cross-fitted like the title
    # encoder; its cosines are a modality of their own (k_image neighbours). Epochs chosen on
    # the grocery training products only (BENCHMARKS.md).
    image_head: bool = True
    image_head_epochs: int = 20
    graph_stage: bool = True
    # The third stage (`core.pipelines.best.rescoring`): a fine-tuned title cross-encoder
    # re-scores unsure pairs among each posting's top candidates; the blend weights are learnt.
    cross_encoder: bool = False
    cross_encoder_top: int = 5
    cross_encoder_band: list[float] = field(default_factory=lambda: [0.001, 0.98])
    cross_encoder_epochs: int = 3
    cross_encoder_max_pairs: int = 4000
    cross_encoder_max_length: int = 48
    cross_encoder_blend: list[float] = field(default_factory=list)
    min_one: bool = True
    n_estimators: int = 200
    learning_rate: float = 0.1
    num_leaves: int = 63
    min_child_samples: int = 40
    # One thread by default: LightGBM's OpenMP threads spin-wait, and on a shared 2-core
    # machine two of them ran 20x slower than one (measured).
    threads: int = 1
    seed: int = 0
    # Training sub-catalog levels: each level splits the labelled catalog by group into that
    # many parts, every level a multiple of the coarsest so the parts nest. The coarsest parts
    # are also the folds of the out-of-fold predictions (at least 3: see training.py), so a
    # candidate pair never spans two folds. [3, 6] (thirds and sixths) is what BENCHMARKS.md
    # measures.
    train_splits: list[int] = field(default_factory=lambda: [3, 6])
    # Feature-name prefixes both stages leave out (ablations: what each feature family adds;
    # BENCHMARKS.md). The similarities matches report are always kept.
    drop_features: list[str] = field(default_factory=list)
    threshold: float = 0.5
    threshold_low: float = 0.5
    stage1_threshold: float = 0.5
    stage1_threshold_low: float = 0.5

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> BestConfig:
        known = {f.name for f in fields(cls)}
        # Models saved before the image head existed have none, whatever the default now.
        values = {"image_head": False, **values}
        return cls(**{k: v for k, v in values.items() if k in known})

    @classmethod
    def from_settings(cls, settings: MatchSettings) -> BestConfig:
        """The training configuration the settings choose (thresholds are learnt)."""
        return cls(
            k_word=settings.best_k_word,
            k_char=settings.best_k_char,
            k_hash=settings.best_k_hash,
            hash_max_distance=settings.best_hash_max_distance,
            k_image=settings.best_k_image,
            title_model=settings.best_title_model,
            image_head=settings.best_image_head,
            graph_stage=settings.best_graph_stage,
            cross_encoder=settings.best_cross_encoder,
            min_one=settings.best_min_one,
            n_estimators=settings.best_n_estimators,
            learning_rate=settings.best_learning_rate,
            train_splits=settings.train_splits(),
        )

    def keeps(self, name: str) -> bool:
        """Whether the classifier sees feature ``name`` (see ``drop_features``)."""
        return name in ALWAYS_KEPT or not name.startswith(tuple(self.drop_features))

    def learnt(self, **values: Any) -> BestConfig:
        """This configuration with what training found (thresholds, weights, parts fitted)."""
        return replace(self, **values)


def training_levels(config: BestConfig) -> list[int]:
    """The sub-catalog levels, coarsest first; the coarsest is the number of folds.

    Raises:
        SameSameError: fewer than 3 coarsest parts, or levels that do not nest.
    """
    levels = sorted({int(v) for v in config.train_splits})
    if not levels or levels[0] < 3 or any(v % levels[0] for v in levels):
        raise SameSameError(
            "train_splits must start at 3 or more parts (the folds that score training pairs "
            f"out of fold) and every level must be a multiple of the first, e.g. 3,6: {levels}"
        )
    return levels
