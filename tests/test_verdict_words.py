"""Verdict words: the cut points at their edges, the rule pipelines' uncalibrated default
probability (0.5 at the run's threshold, monotone), and the words on real stored matches of
the demo catalog and the image-only grocery catalog."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core import matching
from core.catalog import import_catalog
from core.settings import MatchSettings
from core.store import Store
from core.verdict_words import (
    BOTH,
    CUT_POINTS,
    FROM_DEFAULT,
    FROM_MODEL,
    PHOTO_COSINE,
    PHOTO_HASH,
    PHOTO_SIAMESE,
    TITLE_RATIO,
    TITLE_TFIDF,
    VERDICT_WORDS,
    evidence_line,
    evidence_lines,
    pair_probability,
    pair_verdict,
    verdict_label,
    verdict_word,
    verdict_words,
)


@pytest.mark.parametrize(
    ("probability", "word"),
    [
        (1.0, "Same"),
        (0.9, "Same"),
        (float(np.float32(0.9)), "Same"),  # stored as float32: 0.8999999762
        (0.8999, "Probably same"),
        (0.6, "Probably same"),
        (0.5999, "Unsure"),
        (0.4, "Unsure"),
        (0.3999, "Different"),
        (0.0, "Different"),
        (None, "Unsure"),
        (math.nan, "Unsure"),
    ],
)
def test_each_word_starts_at_its_cut_point(probability, word) -> None:
    assert verdict_word(probability) == word
    assert verdict_words(np.array([np.nan if probability is None else probability]))[0] == word


def test_a_persons_verdict_wins_and_says_so() -> None:
    assert verdict_word(0.01, "same") == "Same"
    assert verdict_word(0.99, "different") == "Different"
    assert verdict_label("Different", True) == "Different (checked by a person)"
    assert verdict_label("Unsure", False) == "Unsure"
    assert pair_verdict({"probability": 0.95}, review="different") == (
        "Different (checked by a person)",
        pytest.approx(0.95),
    )
    assert CUT_POINTS == (0.9, 0.6, 0.4) and VERDICT_WORDS[-1] == "Different"


@pytest.mark.parametrize(
    "ladder", [PHOTO_COSINE, PHOTO_SIAMESE, PHOTO_HASH, TITLE_TFIDF, TITLE_RATIO, BOTH]
)
def test_default_is_one_half_at_the_threshold_and_monotone(ladder) -> None:
    for settings in (MatchSettings(), MatchSettings(**{ladder.setting: _moved(ladder)})):
        threshold = float(getattr(settings, ladder.setting))
        assert ladder.probability(np.array([threshold]), settings)[0] == pytest.approx(0.5)
        grid = np.linspace(0.0, 3.0 if ladder.lower_is_alike else 1.0, 301)
        if ladder is PHOTO_HASH:
            grid = np.arange(0, 65, dtype=float)
        p = ladder.probability(grid, settings)
        steps = np.diff(p)
        assert (steps <= 1e-12).all() if ladder.lower_is_alike else (steps >= -1e-12).all()
        assert p.min() == pytest.approx(0.05) and p.max() == pytest.approx(0.99)
    assert np.isnan(ladder.probability(np.array([np.nan]), MatchSettings())[0])


def _moved(ladder) -> float:
    value = float(getattr(MatchSettings(), ladder.setting))
    return int(value) + 4 if ladder is PHOTO_HASH else round(value * 0.8, 2)


def test_model_probability_is_used_as_it_is() -> None:
    frame = pd.DataFrame(
        {"probability": [0.3, np.nan], "tfidf_cosine": [1.0, 1.0], "hash_distance": [0.0, 0.0]}
    )
    p, source = pair_probability(frame, MatchSettings())
    assert p[0] == pytest.approx(0.3) and source.tolist() == [FROM_MODEL, FROM_DEFAULT]
    assert p[1] == pytest.approx(0.99)


@pytest.fixture(scope="module")
def demo_runs(demo_store: Store) -> Store:
    for pipeline in ("baseline", "ensemble"):
        matching.run_pipeline(demo_store, pipeline)
    return demo_store


@pytest.mark.parametrize("pipeline", ["baseline", "ensemble"])
def test_every_stored_rule_match_reached_its_threshold_so_none_reads_different(
    demo_runs: Store, pipeline: str
) -> None:
    pairs = demo_runs.load_match_pairs(pipeline)
    settings = MatchSettings.from_dict(demo_runs.match_run(pipeline)["settings"])
    p, source = pair_probability(pairs, settings)
    words = verdict_words(p)

    assert len(pairs) > 100 and set(source) == {FROM_DEFAULT}
    assert (p >= 0.5 - 1e-3).all()  # each pair passed a rule: at least its threshold's 0.5
    assert "Different" not in set(words) and {"Same", "Unsure"} <= set(words)
    # Identical photo hashes are the strongest photo evidence there is.
    identical = pairs["hash_distance"].to_numpy() == 0
    assert identical.any() and (words[identical] == "Same").all()
    lines = evidence_lines(pairs, settings)
    assert all(" · " in line and "photos" in line and "titles" in line for line in lines)
    assert not any(any(ch.isdigit() for ch in line) for line in lines)  # words, no numbers


def test_one_stored_match_as_the_pages_would_show_it(demo_runs: Store) -> None:
    pairs = demo_runs.load_match_pairs("baseline")
    row = pairs.sort_values("tfidf_cosine").iloc[-1].to_dict()
    word, probability = pair_verdict(row)
    assert word in VERDICT_WORDS and 0.5 <= probability <= 0.99
    assert "titles nearly the same" in evidence_line(row)
    assert pair_verdict(row, review="same")[0] == "Same (checked by a person)"


def test_image_only_catalog_has_no_title_evidence(grocery_dir: Path, tmp_path: Path) -> None:
    with Store(tmp_path / "grocery.db") as store:
        import_catalog(store, grocery_dir / "catalog.csv", grocery_dir / "images")
        settings = MatchSettings(hash_max_distance=16)
        matching.run_pipeline(store, "baseline", settings)
        pairs = store.load_match_pairs("baseline")
    no_titles = np.zeros(len(pairs), bool)
    lines = evidence_lines(pairs, settings, no_titles)
    p, _ = pair_probability(pairs, settings, no_titles)

    assert len(pairs) >= 5
    assert all(line.startswith("photos ") and "title" not in line for line in lines)
    # Without titles the probability is the photos' alone.
    photo = PHOTO_HASH.probability(pairs["hash_distance"].to_numpy(), settings)
    assert np.allclose(p, photo)
