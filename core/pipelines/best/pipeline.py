"""``best`` in the registry: the project's own learned matcher (LightGBM over kNN candidates)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.errors import ModelNotTrainedError
from core.models import BEST as BEST_FOLDER
from core.models import (
    IMAGENET,
    best_dir,
    best_is_current,
    best_model_info,
    best_threshold,
    in_sample,
)
from core.pipelines.base import (
    CLOSE_CALL_PROBABILITY,
    MatchRequest,
    Pipeline,
    Prepared,
    Progress,
    Readiness,
    close_call_mask,
    decision_frame,
    register,
)
from core.pipelines.best.catalog_training import train_best_model
from core.pipelines.best.model import BEST_NAME, BestMatcher
from core.pipelines.best.scored_catalog import ScoredCatalog
from core.pipelines.best.scoring import score_candidates
from core.pipelines.best.thresholds import select_pairs
from core.settings import MatchSettings
from core.store import Store


class BestPipeline(Pipeline):
    name = BEST_NAME
    accuracy_rank = 0
    title = "Best: learned pair classifier"
    summary = (
        "Finds each posting's nearest postings by title words, title letters, photo hash and "
        "(when embedded) photo vectors, then a classifier trained on labelled products decides "
        "which of them are the same product. Needs a model trained on a labelled catalog."
    )
    image_kind = "imagenet"
    needs_model = True
    trainable = True
    score_columns = (
        "probability",
        "tfidf_cosine",
        "char_cosine",
        "text_ratio",
        "hash_distance",
        "image_cosine",
    )

    def image_model(
        self, store: Store, settings: MatchSettings, model_dir: Path | None = None
    ) -> tuple[str, str | None] | None:
        info = best_model_info(best_dir(store, model_dir)) or {}
        return (info["image_model"], IMAGENET) if info.get("image_model") else None

    def model_folder(self, store: Store, model_dir: Path | None = None) -> Path | None:
        return best_dir(store, model_dir)

    def load_model(self, store: Store, model_dir: Path | None = None) -> BestMatcher:
        return BestMatcher.load(best_dir(store, model_dir))

    def decision_threshold(self, store: Store) -> float | None:
        return best_threshold(best_dir(store))

    def in_sample(self, store: Store, model_dir: Path | None = None) -> bool:
        return in_sample(store, best_dir(store, model_dir), BEST_FOLDER)

    def readiness(
        self, store: Store, settings: MatchSettings, model_dir: Path | None = None
    ) -> Readiness:
        folder = best_dir(store, model_dir)
        info = best_model_info(folder)
        labelled = store.info()["label_groups"] > 0
        if info is None:
            if labelled:
                return Readiness(
                    False,
                    "No trained model yet; this catalog has labels to train one on.",
                    "Train the best matcher",
                )
            return Readiness(
                False,
                "Needs a model trained on a labelled catalog (a label_group column).",
                "Train it on a labelled catalog, or give a trained model folder",
            )
        if model_dir is None and labelled and not best_is_current(store, folder):
            return Readiness(
                True,
                "Trained on an earlier version of this catalog.",
                "Retrain the best matcher to learn from the changes",
            )
        return Readiness(True, f"Trained model in {folder}.")

    def train(
        self,
        store: Store,
        settings: MatchSettings,
        model_dir: Path,
        progress: Progress | None = None,
    ) -> dict[str, Any]:
        report = train_best_model(store, settings, model_dir, progress)
        report["summary"] = (
            f"best matcher: trained on {report['postings']:,} postings in "
            f"{report['label_groups']:,} groups in {report['seconds']:.0f}s, out-of-fold F1 "
            f"{report['oof_f1']:.3f}; saved to {model_dir}"
        )
        return report

    def prepare(self, request: MatchRequest) -> Prepared:
        """Every candidate pair of the catalog scored by the trained model (``request.model``),
        stage by stage, here or by ``request.runner``; a single-item query's posting
        (``request.rows``) has its pairs alone re-scored by the title transformer."""
        matcher = request.model
        if matcher is None:
            raise ModelNotTrainedError(
                "The best pipeline needs a trained model: train it on a labelled catalog first."
            )
        rows = request.rows
        only = int(rows[0]) if rows is not None and len(rows) == 1 else None
        table, prob1, prob = score_candidates(
            matcher, request.inputs, request.stages, request.runner, only
        )
        return ScoredCatalog.of(request, table, prob1, prob)

    def pair_frame(self, prepared: Prepared, left: np.ndarray, right: np.ndarray) -> pd.DataFrame:
        """The pairs' probabilities and the similarities reported with them, read from the
        scored catalog (every pair asked about is one of its candidates)."""
        if not isinstance(prepared, ScoredCatalog):
            raise ModelNotTrainedError("best's pairs are read from a catalog it has prepared")
        return prepared.frame(left, right)

    def score(
        self, frame: pd.DataFrame, settings: MatchSettings, model: Any = None
    ) -> pd.DataFrame:
        """``rule`` "model" where a pair's probability reaches the model's threshold."""
        if model is None:
            raise ModelNotTrainedError("The best pipeline needs its trained model to score")
        matched = frame["probability"].to_numpy(np.float32) >= model.config.threshold
        return _decided(frame, matched, np.zeros(len(frame), bool))

    def refine(self, prepared: Prepared, model: Any = None) -> pd.DataFrame | None:
        """The "nearest" rule: a posting no pair matches still gets its most probable partner
        at ``threshold_low`` (`select_pairs`, the rule the thresholds were tuned with)."""
        config = model.config
        if not config.min_one or not isinstance(prepared, ScoredCatalog):
            return None
        t = config.threshold
        left, right, prob = prepared.left, prepared.right, prepared.prob
        low = min(t, config.threshold_low)
        keep = select_pairs(prepared.inputs.size, left, right, prob, t, low, True)
        nearest = np.flatnonzero(keep & (prob < t))
        frame = prepared.frame(left[nearest], right[nearest], chosen=True)
        decided = _decided(frame, np.zeros(len(nearest), bool), np.ones(len(nearest), bool))
        decided.insert(0, "right", right[nearest])
        decided.insert(0, "left", left[nearest])
        return decided

    def close_calls(
        self, scores: pd.DataFrame, settings: MatchSettings, threshold: float | None = None
    ) -> np.ndarray:
        limit = 0.5 if threshold is None else threshold
        margin = (scores["probability"].to_numpy(np.float32) - limit) / CLOSE_CALL_PROBABILITY
        return close_call_mask(scores, {"model": margin})


#: The scores a match keeps, in the order a run stores them.
KEPT_SCORES = (
    "probability",
    "stage1_probability",
    "tfidf_cosine",
    "char_cosine",
    "text_ratio",
    "hash_distance",
    "image_cosine",
)


def _decided(frame: pd.DataFrame, model: np.ndarray, nearest: np.ndarray) -> pd.DataFrame:
    """`Pipeline.score`'s frame of pairs the rules ``model`` and ``nearest`` decide."""
    scores = {name: frame[name].to_numpy(np.float32) for name in KEPT_SCORES}
    fired = {"model": model, "nearest": nearest}
    return decision_frame(frame, scores, fired, scores["probability"])


BEST = register(BestPipeline())
