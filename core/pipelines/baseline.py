"""Baseline pipeline (the original write-up, F1 0.48 there): ImageNet MobileNet cosine >= 0.85
OR TF-IDF title cosine >= 0.5. Where a pair lacks image vectors, a perceptual-hash distance at
most ``hash_max_distance`` bits stands in for the image rule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.candidates import SparseIndex, fit_tfidf, row_cosine
from core.models import IMAGENET, image_model_name
from core.pipelines.base import (
    CLOSE_CALL_BAND,
    MatchRequest,
    Pipeline,
    Prepared,
    Readiness,
    Source,
    close_call_mask,
    decision_frame,
    hash_margin,
    hash_source,
    image_source,
    register,
)
from core.pipelines.inputs import catalog_pair_columns
from core.settings import MatchSettings
from core.store import Store

#: Scores within this of a threshold count as reaching it (float32 rounding).
TOLERANCE = 1e-6


def hash_similarity(hash_distance: np.ndarray) -> np.ndarray:
    """0..1 from bits apart (0 bits = 1.0, 32 bits or more = 0), for ordering matches."""
    return np.clip(1.0 - hash_distance / 32.0, 0.0, 1.0)


def image_readiness(store: Store, have: int, what: str) -> tuple[str, str | None]:
    """How much of the catalog's images ``have`` vectors cover, in words."""
    images = int(store.info()["images"]["ok"])
    if images == 0:
        return "No posting has an image file: perceptual hashes are the image evidence.", None
    if have == 0:
        return (
            f"No {what} embeddings yet: perceptual hashes stand in for the photos.",
            f"Embed the images with {what}",
        )
    if have < images:
        return (
            f"{images - have:,} of {images:,} images have no {what} embedding: hashes stand "
            "in for them.",
            f"Embed the remaining images with {what}",
        )
    return f"Uses {what} vectors of all {images:,} images.", None


class BaselinePipeline(Pipeline):
    name = "baseline"
    accuracy_rank = 2
    title = "Baseline: MobileNet + TF-IDF"
    summary = (
        "Two postings match when their photos look alike to an ImageNet MobileNet "
        "(cosine ≥ 0.85) or their titles share enough weighted words (TF-IDF cosine ≥ 0.5). "
        "Without photo vectors, nearly identical perceptual hashes count as alike photos."
    )
    image_kind = "imagenet"
    threshold_fields = ("baseline_image_cosine", "baseline_text_cosine", "hash_max_distance")
    image_threshold_fields = ("baseline_image_cosine",)
    score_columns = ("image_cosine", "hash_distance", "tfidf_cosine")

    def image_model(
        self, store: Store, settings: MatchSettings, model_dir: Path | None = None
    ) -> tuple[str, str | None]:
        return image_model_name(settings), IMAGENET

    def readiness(
        self, store: Store, settings: MatchSettings, model_dir: Path | None = None
    ) -> Readiness:
        what = self.image_model(store, settings, model_dir)[0]
        reason, action = image_readiness(store, self.vector_count(store, settings, model_dir), what)
        return Readiness(True, reason, action)

    def candidate_floors(self, settings: MatchSettings) -> dict[str, float]:
        return {
            "text": settings.baseline_text_cosine,
            "image": settings.baseline_image_cosine,
            "hash": float(settings.hash_max_distance),
        }

    def prepare(self, request: MatchRequest) -> Prepared:
        inputs, settings = request.inputs, request.settings
        words = fit_tfidf(inputs.titles)
        k = settings.top_k
        floors = self.candidate_floors(settings)
        if request.relaxed:
            floors = {"text": None, "image": None, "hash": 64}
        sources = [Source(SparseIndex("text", words.matrix), k, floors["text"])]
        image = image_source(inputs, settings, floors["image"])
        sources += [image] if image else []
        sources.append(hash_source(inputs, settings, int(floors["hash"])))
        return Prepared(inputs, settings, sources, {"words": words.matrix})

    def pair_frame(self, prepared: Prepared, left: np.ndarray, right: np.ndarray) -> pd.DataFrame:
        columns = catalog_pair_columns(prepared.inputs, left, right)
        columns["tfidf_cosine"] = row_cosine(prepared.extra["words"], left, right)
        return pd.DataFrame(columns)

    def score(
        self, frame: pd.DataFrame, settings: MatchSettings, model: Any = None
    ) -> pd.DataFrame:
        cosine = frame["image_cosine"].to_numpy(np.float32)
        distance = frame["hash_distance"].to_numpy(np.float32)
        text = frame["tfidf_cosine"].to_numpy(np.float32)
        by_vector = frame["by_vector"].to_numpy(bool)
        with np.errstate(invalid="ignore"):
            fired = {
                "image": by_vector & (cosine >= settings.baseline_image_cosine - TOLERANCE),
                "hash": ~by_vector & (distance <= settings.hash_max_distance),
                "text": text >= settings.baseline_text_cosine - TOLERANCE,
            }
        photo = np.where(by_vector, cosine, hash_similarity(distance))
        similarity = np.fmax(np.nan_to_num(photo, nan=0.0), text)
        scores = {"image_cosine": cosine, "hash_distance": distance, "tfidf_cosine": text}
        return decision_frame(frame, scores, fired, similarity)

    def close_calls(
        self, scores: pd.DataFrame, settings: MatchSettings, threshold: float | None = None
    ) -> np.ndarray:
        band = CLOSE_CALL_BAND
        return close_call_mask(
            scores,
            {
                "image": (
                    scores["image_cosine"].to_numpy(np.float32) - settings.baseline_image_cosine
                )
                / band,
                "hash": hash_margin(scores, settings),
                "text": (
                    scores["tfidf_cosine"].to_numpy(np.float32) - settings.baseline_text_cosine
                )
                / band,
            },
        )


BASELINE = register(BaselinePipeline())
