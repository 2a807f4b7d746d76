"""Ensemble pipeline (the original write-up, F1 0.71 there): Siamese (triplet-loss) image
distance < 0.95, OR SequenceMatcher title ratio > 0.55, OR distance + (1 - ratio) < 1.4.
Where a pair lacks Siamese vectors, a perceptual-hash distance stands in for the image rule."""

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
from core.similarity import sequence_ratio, text_pairs_above


def match_ensemble(inputs: MatchInputs, settings: MatchSettings | None = None) -> MatchResult:
    settings = settings or MatchSettings()
    started = time.perf_counter()
    text_l, text_r, text_ratio = text_pairs_above(inputs.titles, settings.ensemble_text_ratio)
    # A pair can pass the combined rule only when its distance is under the combined threshold
    # (the ratio is at most 1), so image candidates are searched out to the larger radius.
    radius = max(settings.ensemble_image_distance, settings.ensemble_combined)
    min_cosine = max(-1.0, 1.0 - radius**2 / 2.0)  # unit vectors: |a-b|² = 2 - 2·cos
    image_l, image_r = image_vector_pairs(
        inputs, min_cosine, settings.top_k, settings.neighbour_backend
    )
    hash_l, hash_r = hash_only_pairs(inputs, settings.hash_max_distance)
    left, right = union_pairs((text_l, text_r), (image_l, image_r), (hash_l, hash_r))

    ratio_of = {
        (int(a), int(b)): float(r) for a, b, r in zip(text_l, text_r, text_ratio, strict=True)
    }
    ratio = np.array(
        [
            ratio_of.get((int(a), int(b)))
            if (int(a), int(b)) in ratio_of
            else sequence_ratio(inputs.titles[a], inputs.titles[b])
            for a, b in zip(left, right, strict=True)
        ],
        dtype=np.float32,
    )
    cosine, hash_distance = pair_image_scores(inputs, left, right)
    distance = np.sqrt(np.maximum(0.0, 2.0 - 2.0 * cosine)).astype(np.float32)
    by_vector = image_evidence_is_vector(inputs, left, right)
    has_text = np.array(
        [
            bool(inputs.titles[a]) and bool(inputs.titles[b])
            for a, b in zip(left, right, strict=True)
        ],
        dtype=bool,
    )
    fired = ensemble_rules(distance, hash_distance, by_vector, ratio, has_text, settings)
    keep = np.logical_or.reduce(list(fired.values()))
    rule = rules_text({k: v[keep] for k, v in fired.items()})
    frame = pairs_frame(
        inputs,
        left[keep],
        right[keep],
        rule,
        {
            "siamese_distance": distance[keep],
            "hash_distance": hash_distance[keep],
            "text_ratio": ratio[keep],
        },
    )
    notices = []
    if inputs.vector_count == 0:
        notices.append("No Siamese embeddings: image evidence came from perceptual hashes only.")
    return MatchResult(
        "ensemble", inputs.posting_ids, frame, settings, time.perf_counter() - started, notices
    )


def ensemble_rules(
    distance: np.ndarray,
    hash_distance: np.ndarray,
    by_vector: np.ndarray,
    ratio: np.ndarray,
    has_text: np.ndarray,
    settings: MatchSettings,
) -> dict[str, np.ndarray]:
    """Which ensemble rules fire for each pair (arrays of equal length; NaN = score absent)."""
    with np.errstate(invalid="ignore"):
        return {
            "image": by_vector & (distance < settings.ensemble_image_distance),
            "hash": ~by_vector & (hash_distance <= settings.hash_max_distance),
            "text": has_text & (ratio > settings.ensemble_text_ratio),
            "combined": by_vector
            & has_text
            & (distance + (1.0 - ratio) < settings.ensemble_combined),
        }
