"""Ensemble pipeline (the original write-up, F1 0.71 there): Siamese (triplet-loss) image
distance < 0.95, OR SequenceMatcher title ratio > 0.55, OR distance + (1 - ratio) < 1.4.
Where a pair lacks Siamese vectors, a perceptual-hash distance stands in for the image rule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.candidates import SparseIndex, fit_tfidf
from core.candidates.ratio import EXACT_RATIO_UP_TO, RatioIndex, sequence_ratio
from core.models import (
    SIAMESE,
    in_sample,
    siamese_config,
    siamese_dir,
    siamese_version,
    train_siamese_model,
)
from core.pipelines.base import (
    CLOSE_CALL_BAND,
    MatchRequest,
    Pipeline,
    Prepared,
    Progress,
    Readiness,
    Source,
    close_call_mask,
    decision_frame,
    hash_margin,
    hash_source,
    image_source,
    register,
)
from core.pipelines.baseline import hash_similarity, image_readiness
from core.pipelines.inputs import catalog_pair_columns
from core.settings import MatchSettings
from core.store import Store

#: Past EXACT_RATIO_UP_TO titles, text candidates are each posting's best word TF-IDF
#: neighbours down to this cosine (their recall of the exact pairs is in BENCHMARKS.md).
RATIO_CANDIDATE_COSINE = 0.2
#: rapidfuzz's bound is compared after a division by 100 in float: a hair of slack.
BOUND_SLACK = 1e-4


def siamese_distance(cosine: np.ndarray) -> np.ndarray:
    """Euclidean distance of unit vectors from their cosine: |a - b|² = 2 - 2·cos."""
    return np.sqrt(np.maximum(0.0, 2.0 - 2.0 * cosine)).astype(np.float32)


def title_ratios(
    left: np.ndarray, right: np.ndarray, needed: np.ndarray, known: np.ndarray | None = None
) -> np.ndarray:
    """difflib's ratio(left title, right title) wherever it could reach ``needed``.

    rapidfuzz's Indel similarity bounds difflib's ratio from above (`core.candidates.ratio`),
    so where the bound is below what any rule needs, the bound itself is returned: it decides
    nothing and costs no difflib call. ``known`` holds ratios computed already (NaN elsewhere).
    """
    from rapidfuzz import fuzz, process

    m = len(left)
    if m == 0:
        return np.zeros(0, np.float32)
    bound = process.cpdist(
        list(left), list(right), scorer=fuzz.ratio, dtype=np.float32, workers=-1
    ) / np.float32(100.0)
    ratio = bound.astype(np.float32)
    empty = np.fromiter((not a or not b for a, b in zip(left, right, strict=True)), bool, m)
    ratio[empty] = 0.0
    exact = ~empty & (bound > needed - BOUND_SLACK)
    if known is not None:
        have = exact & np.isfinite(known)
        ratio[have] = known[have]
        exact &= ~have
    where = np.flatnonzero(exact)
    ratio[where] = [sequence_ratio(left[i], right[i]) for i in where.tolist()]
    return ratio


def with_calibrated_distance(
    settings: MatchSettings, model_dir: Path | None
) -> tuple[MatchSettings, str | None]:
    """``settings`` with the Siamese distance the model in ``model_dir`` calibrated on held-back
    products, when ``siamese_threshold`` asks for it; else as given. The note says why the
    fixed distance stays where no calibrated one exists."""
    if settings.siamese_threshold != "calibrated":
        return settings, None
    stored = siamese_config(model_dir) if model_dir is not None else {}
    calibrated = stored.get("calibrated_distance")
    if isinstance(calibrated, int | float):
        return settings.replace(ensemble_image_distance=float(calibrated)), None
    why = (
        "there is no trained Siamese model"
        if not stored
        else "the Siamese model was trained without one (retrain it to calibrate)"
    )
    return settings, (
        f"No calibrated Siamese distance: {why}; the fixed distance "
        f"{settings.ensemble_image_distance:g} applies."
    )


class EnsemblePipeline(Pipeline):
    name = "ensemble"
    accuracy_rank = 1
    title = "Ensemble: Siamese + title ratio"
    summary = (
        "Two postings match when a Siamese network trained on labelled photos puts them close "
        "(distance < 0.95), their titles read alike letter by letter (SequenceMatcher "
        "ratio > 0.55), or both together are close enough (distance + 1 − ratio < 1.4). "
        "Without Siamese vectors, nearly identical perceptual hashes count as alike photos."
    )
    image_kind = "siamese"
    translates = True
    text_evidence = "ratio"
    trainable = True
    trains_on_images = True
    threshold_fields = (
        "ensemble_image_distance",
        "ensemble_text_ratio",
        "ensemble_combined",
        "hash_max_distance",
    )
    image_threshold_fields = ("ensemble_image_distance", "ensemble_combined")
    score_columns = ("siamese_distance", "hash_distance", "text_ratio")

    def image_model(
        self, store: Store, settings: MatchSettings, model_dir: Path | None = None
    ) -> tuple[str, str | None] | None:
        version = siamese_version(siamese_dir(store, model_dir))
        return (SIAMESE, version) if version else None

    def model_folder(self, store: Store, model_dir: Path | None = None) -> Path | None:
        return siamese_dir(store, model_dir)

    def in_sample(self, store: Store, model_dir: Path | None = None) -> bool:
        return in_sample(store, siamese_dir(store, model_dir), SIAMESE)

    def settings_for(
        self,
        store: Store | None,
        settings: MatchSettings,
        model_dir: Path | None = None,
        pin: bool = False,
    ) -> tuple[MatchSettings, str | None]:
        if settings.siamese_threshold != "calibrated":
            return settings, None  # no model folder to look up (a query answers faster)
        folder = siamese_dir(store, model_dir) if store is not None else model_dir
        resolved, note = with_calibrated_distance(settings, folder)
        return (resolved.replace(siamese_threshold="fixed") if pin else resolved), note

    def readiness(
        self, store: Store, settings: MatchSettings, model_dir: Path | None = None
    ) -> Readiness:
        model = self.image_model(store, settings, model_dir)
        if model is None and int(store.info()["images"]["ok"]):
            return Readiness(
                True,
                "No trained Siamese model: perceptual hashes stand in for the photos.",
                "Train the Siamese model on labelled photos",
            )
        have = self.vector_count(store, settings, model_dir)
        reason, action = image_readiness(store, have, "the Siamese model")
        return Readiness(True, reason, action)

    def train(
        self,
        store: Store,
        settings: MatchSettings,
        model_dir: Path,
        progress: Progress | None = None,
    ) -> dict[str, Any]:
        report = train_siamese_model(store, settings, model_dir, progress)
        last = report["history"][-1]["loss"] if report["history"] else float("nan")
        calibration = report["calibration"]
        calibrated = (
            f"; calibrated distance {calibration['distance']:.2f} on {calibration['products']} "
            f"held-back products (F1 {calibration['f1']:.3f}, "
            f"{calibration['f1_at_default']:.3f} at {settings.ensemble_image_distance:g})"
            if calibration
            else "; too few labelled products to hold some back and calibrate a distance"
        )
        report["summary"] = (
            f"siamese ({settings.siamese_loss} loss): trained on {report['images']} images in "
            f"{report['seconds']:.0f}s, final loss {last:.4f}{calibrated}; saved to {model_dir}"
        )
        return report

    def candidate_floors(self, settings: MatchSettings) -> dict[str, float]:
        # The combined rule can pass only when the distance is under its threshold (the ratio
        # is at most 1), so image candidates are searched out to the larger radius.
        radius = max(settings.ensemble_image_distance, settings.ensemble_combined)
        return {
            "text": settings.ensemble_text_ratio,
            "image": max(-1.0, 1.0 - radius**2 / 2.0),  # unit vectors: |a-b|² = 2 - 2·cos
            "hash": float(settings.hash_max_distance),
        }

    def prepare(self, request: MatchRequest) -> Prepared:
        inputs, settings, relaxed = request.inputs, request.settings, request.relaxed
        k = settings.top_k
        floors = self.candidate_floors(settings)
        extra = {}
        sources = []
        if inputs.size <= EXACT_RATIO_UP_TO:
            ratios = RatioIndex(
                "text",
                inputs.titles,
                k,
                settings.ensemble_text_ratio,
                request.progress,
                request.rows,
            )
            sources.append(Source(ratios, k, settings.ensemble_text_ratio))
            extra["ratios"] = ratios
        if inputs.size > EXACT_RATIO_UP_TO or relaxed:
            words = fit_tfidf(inputs.titles).matrix
            floor = None if relaxed else RATIO_CANDIDATE_COSINE
            sources.append(Source(SparseIndex("text", words), k, floor))
        image = image_source(inputs, settings, None if relaxed else floors["image"])
        sources += [image] if image else []
        sources.append(hash_source(inputs, settings, 64 if relaxed else int(floors["hash"])))
        return Prepared(inputs, settings, sources, extra)

    def pair_frame(self, prepared: Prepared, left: np.ndarray, right: np.ndarray) -> pd.DataFrame:
        columns = catalog_pair_columns(prepared.inputs, left, right, titles=True)
        ratios = prepared.extra.get("ratios")
        if ratios is not None:
            columns["known_ratio"] = ratios.known(left, right)
        return pd.DataFrame(columns)

    def score(
        self, frame: pd.DataFrame, settings: MatchSettings, model: Any = None
    ) -> pd.DataFrame:
        cosine = frame["image_cosine"].to_numpy(np.float32)
        hash_distance = frame["hash_distance"].to_numpy(np.float32)
        by_vector = frame["by_vector"].to_numpy(bool)
        has_text = frame["has_text"].to_numpy(bool)
        distance = siamese_distance(cosine)
        # The smallest ratio that could still fire a rule for each pair.
        with np.errstate(invalid="ignore"):
            combined_needs = np.where(
                by_vector, distance - (settings.ensemble_combined - 1.0), np.inf
            )
        needed = np.minimum(settings.ensemble_text_ratio, combined_needs)
        known = frame["known_ratio"].to_numpy(np.float32) if "known_ratio" in frame else None
        ratio = title_ratios(
            frame["left_title"].to_numpy(object),
            frame["right_title"].to_numpy(object),
            needed,
            known,
        )
        with np.errstate(invalid="ignore"):
            fired = {
                "image": by_vector & (distance < settings.ensemble_image_distance),
                "hash": ~by_vector & (hash_distance <= settings.hash_max_distance),
                "text": has_text & (ratio > settings.ensemble_text_ratio),
                "combined": by_vector
                & has_text
                & (distance + (1.0 - ratio) < settings.ensemble_combined),
            }
        photo = np.where(by_vector, 1.0 - distance / 2.0, hash_similarity(hash_distance))
        similarity = np.fmax(np.nan_to_num(photo, nan=0.0), np.where(has_text, ratio, 0.0))
        scores = {
            "siamese_distance": np.where(by_vector, distance, np.nan).astype(np.float32),
            "hash_distance": hash_distance,
            "text_ratio": ratio,
        }
        return decision_frame(frame, scores, fired, similarity)

    def close_calls(
        self, scores: pd.DataFrame, settings: MatchSettings, threshold: float | None = None
    ) -> np.ndarray:
        band = CLOSE_CALL_BAND
        distance = scores["siamese_distance"].to_numpy(np.float32)
        ratio = scores["text_ratio"].to_numpy(np.float32)
        return close_call_mask(
            scores,
            {
                "image": (settings.ensemble_image_distance - distance) / band,
                "hash": hash_margin(scores, settings),
                "text": (ratio - settings.ensemble_text_ratio) / band,
                "combined": (settings.ensemble_combined - (distance + 1.0 - ratio)) / band,
            },
        )


ENSEMBLE = register(EnsemblePipeline())
