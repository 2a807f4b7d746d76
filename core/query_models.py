"""Which image model a query compares an uploaded photo with, per pipeline: the one decision
the Compare page and the HTTP API share (`core.service`). Each caller passes its own loaders,
so each keeps its models loaded once per process its own way (Streamlit's resource cache, the
service's lock-guarded cache)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from core import models
from core.embedders.base import ImageEmbedder
from core.errors import SameSameError
from core.pipelines import Pipeline
from core.settings import MatchSettings
from core.store import Store

#: Loads the settings' pretrained embedder.
PretrainedLoader = Callable[[MatchSettings], ImageEmbedder]
#: Loads a trained Siamese model: (model folder, version, the settings it runs by).
SiameseLoader = Callable[[Path, str, MatchSettings], ImageEmbedder]


class ImageEvidence(NamedTuple):
    """How one pipeline compares a query's photo: the embedder to embed it with (None: the
    perceptual hash is the evidence), the stored vectors' (name, version), and a note for the
    person asking when the model cannot be used."""

    embedder: ImageEmbedder | None
    model: tuple[str, str | None] | None
    note: str | None


def image_evidence(
    store: Store,
    settings: MatchSettings,
    pipe: Pipeline,
    need_images: bool,
    pretrained: PretrainedLoader,
    siamese: SiameseLoader,
) -> ImageEvidence:
    """The pipeline's image evidence for a query; a model is loaded (TensorFlow) only when an
    uploaded photo can be compared with vectors that exist for it."""
    model = pipe.image_model(store, settings)
    has_vectors = pipe.vector_count(store, settings) > 0
    if not has_vectors and pipe.needs_model and model is None:
        # Trained without image vectors (or not trained): hashes are its image evidence.
        return ImageEvidence(None, None, None)
    if not has_vectors:
        name = model[0] if model else ("Siamese" if pipe.image_kind == "siamese" else "image")
        note = (
            f"No {name} embeddings in this catalog: the perceptual hash is the image "
            "evidence (run embeddings on the Embed page to use the model)."
        )
        return ImageEvidence(None, None, note if need_images else None)
    if not need_images:
        return ImageEvidence(None, model, None)
    try:
        if pipe.image_kind == "siamese":
            embedder = siamese(models.siamese_dir(store), model[1] or "", settings)
        else:
            # The photo is embedded by the model the stored vectors came from (a trained
            # `best` may use other vectors than the settings' backbone).
            embedder = pretrained(models.settings_for_image_model(settings, model[0]))
    except SameSameError as exc:
        return ImageEvidence(None, None, f"{exc} The perceptual hash is used instead.")
    return ImageEvidence(embedder, model, None)
