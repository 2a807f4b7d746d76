"""The ``best`` matcher's training settings (its thresholds are learnt, so only how it trains
is a setting), part of `MatchSettings`."""

from __future__ import annotations

from dataclasses import dataclass

from core.settings.fields import SettingsBase, setting

BEST = "Best: training"


@dataclass(frozen=True)
class BestTrainingSettings(SettingsBase):
    """Candidates, stages and boosting of the learned matcher (`core.pipelines.best`)."""

    best_k_word: int = setting(
        20,
        "Word neighbours",
        "Candidates per posting by word TF-IDF.",
        BEST,
        minimum=1,
        maximum=500,
        step=1,
        advanced=True,
    )
    best_k_char: int = setting(
        20,
        "Character neighbours",
        "Candidates per posting by character TF-IDF.",
        BEST,
        minimum=1,
        maximum=500,
        step=1,
        advanced=True,
    )
    best_k_hash: int = setting(
        5,
        "Hash neighbours",
        "Candidates per posting by perceptual hash.",
        BEST,
        minimum=0,
        maximum=500,
        step=1,
        advanced=True,
    )
    best_hash_max_distance: int = setting(
        24,
        "Hash neighbour bits ≤",
        "Farthest hash a candidate may have.",
        BEST,
        minimum=0,
        maximum=64,
        step=1,
        advanced=True,
    )
    best_k_image: int = setting(
        20,
        "Photo neighbours",
        "Candidates per posting by photo vectors.",
        BEST,
        minimum=0,
        maximum=500,
        step=1,
        advanced=True,
    )
    best_title_model: bool = setting(
        False,
        "Learned title encoder",
        "Also train a small title encoder for candidates and features (slower).",
        BEST,
        advanced=True,
    )
    best_image_head: bool = setting(
        True,
        "Learned image head",
        "Also train a Siamese head (triplet loss) on the photo vectors for candidates and "
        "features (needs embedded photos).",
        BEST,
        advanced=True,
    )
    best_photo_text: bool = setting(
        False,
        "Text read from photos",
        "Train with the text printed on each photo (brand, size: python -m core ocr reads "
        "it) after the title; the model keeps using it when it matches.",
        BEST,
        advanced=True,
    )
    best_cross_encoder: bool = setting(
        False,
        "Title transformer re-scoring",
        "Also fine-tune a small transformer (all-MiniLM-L6-v2) that reads both titles of a "
        "pair, and let it re-score the pairs the model is unsure of (minutes more training, "
        "about 100 pairs a second when matching; needs requirements-models.txt).",
        BEST,
        advanced=True,
    )
    best_graph_stage: bool = setting(
        True,
        "Graph stage",
        "A second classifier that also sees each pair's neighbourhood of "
        "first-stage probabilities.",
        BEST,
        advanced=True,
    )
    best_min_one: bool = setting(
        True,
        "Keep the nearest partner",
        "A posting no pair matched keeps its most probable partner if that one is likely enough.",
        BEST,
        advanced=True,
    )
    best_n_estimators: int = setting(
        200,
        "Trees per classifier",
        "LightGBM boosting rounds.",
        BEST,
        minimum=10,
        maximum=5000,
        step=10,
        advanced=True,
    )
    best_learning_rate: float = setting(
        0.1,
        "Learning rate",
        "LightGBM learning rate.",
        BEST,
        minimum=0.001,
        maximum=1.0,
        step=0.01,
        advanced=True,
    )
    best_train_splits: str = setting(
        "3,6",
        "Training sub-catalogs",
        "The labelled catalog is also split by product into "
        "these many parts, so the model learns at several catalog sizes.",
        BEST,
        advanced=True,
    )

    def train_splits(self) -> list[int]:
        return [int(v) for v in self.best_train_splits.split(",") if v.strip()]
