"""Every score column a page shows explains itself in words (the header's help)."""

from __future__ import annotations

import pandas as pd

from ui import common

SCORES = [
    "image_cosine",
    "hash_distance",
    "tfidf_cosine",
    "text_ratio",
    "siamese_distance",
    "probability",
    "similarity",
    "rule",
]


def test_each_score_column_has_a_plain_language_help() -> None:
    config = common.score_columns(pd.DataFrame(columns=[*SCORES, "posting_id"]))

    assert sorted(config) == sorted(SCORES)
    for name in SCORES:
        text = config[name]["help"]
        assert len(text.split()) >= 10, name
        # Said for people: no snake_case field name in its own explanation.
        assert "_" not in name or name not in text, (name, text)


def test_only_the_columns_shown_get_a_config() -> None:
    assert list(common.score_columns(pd.DataFrame(columns=["tfidf_cosine", "x"]))) == [
        "tfidf_cosine"
    ]
