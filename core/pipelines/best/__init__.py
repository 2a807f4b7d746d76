"""The learned ``best`` pipeline: candidates by nearest neighbours, a pair classifier trained on
the catalog's own labels, and a second, graph-aware classifier on top.

1. Candidates (`features`): each posting's top-k neighbours by word TF-IDF, character TF-IDF,
   perceptual hash and, when present, image vectors and a learned title encoder (all computed
   inside the catalog being matched; TF-IDF is refitted per catalog, so no vocabulary has to be
   stored).
2. Stage 1: LightGBM on pair features: cosines, ranks of each side in the other's list,
   neighbourhood density, fuzzy string scores, token and number/unit agreement
   (`text_features`), hash distance, image cosine.
3. Stage 2 (`graph`): LightGBM on stage 1's features plus graph features of stage 1's
   probabilities.
4. Optionally (`rescoring`): a fine-tuned title cross-encoder re-scores the pairs stage 2 is
   unsure of, blended with its probability.
5. Decisions (`model`): thresholds tuned on out-of-fold probabilities (`thresholds`), learnt
   from sub-catalogs of the labelled catalog (`training_set`, `training`).

A catalog's pairs are scored a chunk at a time (`scoring`), on this machine or as Spark tasks
(`core.spark.best`), by the same code.
"""

from __future__ import annotations

from core.pipelines.best.config import BestConfig
from core.pipelines.best.model import CONFIG_FILE, BestMatcher
from core.pipelines.best.pipeline import BEST, BestPipeline
from core.pipelines.best.thresholds import group_folds, select_pairs, tune_thresholds

__all__ = [
    "BEST",
    "CONFIG_FILE",
    "BestConfig",
    "BestMatcher",
    "BestPipeline",
    "group_folds",
    "select_pairs",
    "tune_thresholds",
]
