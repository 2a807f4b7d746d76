"""``best`` in the registry: the project's own learned matcher (LightGBM over kNN candidates)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.errors import ModelNotTrainedError
from core.matches import MatchResult
from core.models import BEST as BEST_FOLDER
from core.models import IMAGENET, best_dir, best_is_current, best_model_info, in_sample
from core.pipelines.base import (
    CLOSE_CALL_PROBABILITY,
    Pipeline,
    Prepared,
    Progress,
    Readiness,
    close_call_mask,
    decision_frame,
    register,
)
from core.pipelines.best.catalog_training import train_best_model
from core.pipelines.best.model import BEST_NAME
from core.pipelines.inputs import MatchInputs
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

    def prepare(
        self,
        inputs: MatchInputs,
        settings: MatchSettings,
        progress: Progress | None = None,
        rows: np.ndarray | None = None,
        relaxed: bool = False,
    ) -> Prepared:
        raise ModelNotTrainedError("best prepares its candidates with its trained model: use match")

    def pair_frame(self, prepared: Prepared, left: np.ndarray, right: np.ndarray) -> pd.DataFrame:
        raise ModelNotTrainedError("best's pair features come from its trained model: use match")

    def score(
        self, frame: pd.DataFrame, settings: MatchSettings, model: Any = None
    ) -> pd.DataFrame:
        """Probabilities of candidate pairs from their feature columns (stage 2's names when
        the model has a graph stage); ``rule`` "model" where it reaches the threshold."""
        if model is None:
            raise ModelNotTrainedError("The best pipeline needs its trained model to score")
        booster, names = (
            (model.stage2, model.names2)
            if model.stage2 is not None
            else (model.stage1, model.names1)
        )
        probability = booster.predict(frame[names].to_numpy(np.float32)).astype(np.float32)
        fired = {"model": probability >= model.config.threshold}
        return decision_frame(frame, {"probability": probability}, fired, probability)

    def close_calls(
        self, scores: pd.DataFrame, settings: MatchSettings, threshold: float | None = None
    ) -> np.ndarray:
        limit = 0.5 if threshold is None else threshold
        margin = (scores["probability"].to_numpy(np.float32) - limit) / CLOSE_CALL_PROBABILITY
        return close_call_mask(scores, {"model": margin})

    def match(
        self,
        inputs: MatchInputs,
        settings: MatchSettings,
        progress: Progress | None = None,
        **options: Any,
    ) -> MatchResult:
        model = options.get("model")
        if model is None:
            raise ModelNotTrainedError(
                "The best pipeline needs a trained model: train it on a labelled catalog first."
            )
        return model.match(inputs, settings, stages=options.get("stages"))


BEST = register(BestPipeline())
