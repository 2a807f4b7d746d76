"""Baseline pipeline (the original write-up, F1 0.48 there): ImageNet MobileNet cosine >= 0.85
OR TF-IDF title cosine >= 0.5. Where a pair lacks image vectors, a perceptual-hash distance at
most ``hash_max_distance`` bits stands in for the image rule."""

from __future__ import annotations

import time

import numpy as np

from core.matches import MatchResult
from core.pipelines.base import (
    MatchInputs,
    hash_only_pairs,
    image_evidence_is_vector,
    image_vector_pairs,
    pair_image_scores,
    pairs_frame,
    rules_text,
    union_pairs,
)
from core.settings import MatchSettings
from core.similarity import tfidf_pairs_above
from core.text import tfidf_vectors


def match_baseline(inputs: MatchInputs, settings: MatchSettings | None = None) -> MatchResult:
    settings = settings or MatchSettings()
    started = time.perf_counter()
    tfidf = tfidf_vectors(inputs.titles)
    text_l, text_r, _ = tfidf_pairs_above(tfidf, settings.baseline_text_cosine)
    image_l, image_r = image_vector_pairs(
        inputs, settings.baseline_image_cosine, settings.top_k, settings.neighbour_backend
    )
    hash_l, hash_r = hash_only_pairs(inputs, settings.hash_max_distance)
    left, right = union_pairs((text_l, text_r), (image_l, image_r), (hash_l, hash_r))

    cosine, distance = pair_image_scores(inputs, left, right)
    text_cosine = np.asarray(tfidf[left].multiply(tfidf[right]).sum(axis=1)).ravel()
    by_vector = image_evidence_is_vector(inputs, left, right)
    fired = baseline_rules(cosine, distance, by_vector, text_cosine, settings)
    keep = np.logical_or.reduce(list(fired.values()))
    rule = rules_text({k: v[keep] for k, v in fired.items()})
    frame = pairs_frame(
        inputs,
        left[keep],
        right[keep],
        rule,
        {
            "image_cosine": cosine[keep],
            "hash_distance": distance[keep],
            "tfidf_cosine": text_cosine[keep].astype(np.float32),
        },
    )
    notices = []
    if inputs.vector_count == 0:
        notices.append("No image embeddings: image evidence came from perceptual hashes only.")
    return MatchResult(
        "baseline", inputs.posting_ids, frame, settings, time.perf_counter() - started, notices
    )


def baseline_rules(
    cosine: np.ndarray,
    hash_distance: np.ndarray,
    by_vector: np.ndarray,
    text_cosine: np.ndarray,
    settings: MatchSettings,
) -> dict[str, np.ndarray]:
    """Which baseline rules fire for each pair (arrays of equal length; NaN = score absent)."""
    with np.errstate(invalid="ignore"):
        return {
            "image": by_vector & (cosine >= settings.baseline_image_cosine - 1e-6),
            "hash": ~by_vector & (hash_distance <= settings.hash_max_distance),
            "text": text_cosine >= settings.baseline_text_cosine - 1e-6,
        }
