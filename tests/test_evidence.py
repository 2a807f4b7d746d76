"""Evidence in words and close calls: what the match cards say about a pair."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.evidence import evidence_text, rule_text, shared_words
from core.pipelines import get_pipeline, most_accurate_first
from core.settings import MatchSettings


def test_scores_read_as_words():
    row = {"image_cosine": 0.912, "tfidf_cosine": 0.62, "hash_distance": 0.0, "rule": "image"}
    assert evidence_text(row) == "photo 0.91 similar · same hash · title 0.62"
    assert evidence_text({"probability": 0.873, "hash_distance": 12}) == (
        "model 87% sure · hash 12 bits apart"
    )
    # A score that does not apply (NaN, None) is left out, never printed as "nan".
    assert evidence_text({"image_cosine": float("nan"), "text_ratio": 0.5}) == "title 0.50"
    assert evidence_text({}) == "no scores"


def test_rules_read_as_words():
    assert rule_text("image+text") == "matched on photo and title"
    assert rule_text("combined") == "matched on photo and title together"
    assert rule_text("") == "no rule passed"


def test_shared_words_ignore_case_and_punctuation():
    assert shared_words("Sampo LIFEBUOY 170ml!", "lifebuoy shampoo 170ML") == {"lifebuoy", "170ml"}


def _baseline_pairs(cosines, texts, rules):
    n = len(cosines)
    return pd.DataFrame(
        {
            "image_cosine": np.array(cosines, np.float32),
            "hash_distance": np.full(n, np.nan, np.float32),
            "tfidf_cosine": np.array(texts, np.float32),
            "rule": rules,
        }
    )


def test_a_match_just_past_its_threshold_is_a_close_call():
    pairs = _baseline_pairs(
        [0.86, 0.97, 0.86, 0.30], [0.10, 0.10, 0.90, 0.52], ["image", "image", "image+text", "text"]
    )
    close = get_pipeline("baseline").close_calls(pairs, MatchSettings())
    # 0.86 is 0.01 past 0.85; 0.97 is well past; a narrow photo with a sure title is sure;
    # title 0.52 is 0.02 past 0.5.
    assert close.tolist() == [True, False, False, True]


def test_a_pair_no_rule_passed_is_not_a_close_call():
    pairs = _baseline_pairs([0.84], [0.49], [""])
    assert not get_pipeline("baseline").close_calls(pairs, MatchSettings()).any()


def test_ensemble_and_best_close_calls_use_their_own_thresholds():
    settings = MatchSettings()
    ensemble = pd.DataFrame(
        {
            "siamese_distance": np.array([0.93, 0.50], np.float32),
            "hash_distance": np.full(2, np.nan, np.float32),
            "text_ratio": np.array([0.2, 0.2], np.float32),
            "rule": ["image", "image"],
        }
    )
    assert get_pipeline("ensemble").close_calls(ensemble, settings).tolist() == [True, False]
    best = pd.DataFrame({"probability": np.array([0.55, 0.95], np.float32), "rule": ["model"] * 2})
    assert get_pipeline("best").close_calls(best, settings, threshold=0.5).tolist() == [
        True,
        False,
    ]


def test_pages_lead_with_the_learned_matcher_then_the_ensemble():
    assert [p.name for p in most_accurate_first()] == ["best", "ensemble", "baseline"]
