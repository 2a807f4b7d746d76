"""Training the best matcher on a catalog's database and saving it in a model folder: from its
labelled postings (labels corrected by the reviewer's verdicts) or from labelled pairs, each
time with the stored image vectors `best` prefers and, when the settings ask, the text read
from the photos. Where models live and whether they are current is `core.models`."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from core.errors import SameSameError
from core.models import BEST, IMAGENET, Progress, best_image_model, record_training
from core.ocr import training_photo_text
from core.pipelines.best.config import BestConfig
from core.pipelines.best.model import BestMatcher
from core.pipelines.best.pair_training import fit_from_pairs
from core.pipelines.inputs import MatchInputs
from core.settings import MatchSettings
from core.store import Store
from core.verdicts import labels_with_verdicts
from core.workspace import catalog_stamp


def training_inputs(store: Store, postings: pd.DataFrame, settings: MatchSettings):
    """The postings as the best matcher learns from them, and the image model whose vectors
    it uses (`best_image_model`; None: hashes are the image evidence)."""
    image_model = best_image_model(store, postings, settings)
    vectors = None
    if image_model is not None:
        ids, matrix = store.load_embeddings(image_model, IMAGENET)
        vectors = dict(zip(ids, matrix, strict=True))
    return MatchInputs.from_frame(postings, vectors, image_model), image_model


def with_photo_text(store: Store, inputs, settings: MatchSettings):
    """The training postings with the text read from their photos after their titles, when
    the settings ask for it (``best_photo_text``; the model records it and matches so)."""
    if not settings.best_photo_text:
        return inputs
    return training_photo_text(store, inputs)


def train_best_model(
    store: Store, settings: MatchSettings, model_dir: Path, progress: Progress | None = None
) -> dict:
    """Train the best pipeline on this catalog's labelled postings, their labels corrected by
    the reviewer's verdicts (`core.verdicts.labels_with_verdicts`), and save it in model_dir.

    Image vectors of the baseline model are used when every posting with an image file has
    one; otherwise hashes are the image evidence (the saved model remembers which).
    """
    postings = store.postings()
    labelled = postings[postings["label_group"].notna()].reset_index(drop=True)
    if labelled["label_group"].duplicated().sum() == 0:
        raise SameSameError(
            "Training the best pipeline needs a labelled catalog (a label_group column where "
            "postings of the same product share a value); this catalog has none."
        )
    inputs, image_model = training_inputs(store, labelled, settings)
    inputs = with_photo_text(store, inputs, settings)
    # Labels and verdicts combine: the reviewer's word corrects the labels it contradicts.
    labels, corrected = labels_with_verdicts(
        labelled["posting_id"].tolist(), labelled["label_group"].tolist(), store.reviews()
    )
    started = time.perf_counter()
    matcher = BestMatcher.fit(inputs, labels, settings, progress)
    matcher.info["image_model"] = image_model
    matcher.info["photo_text"] = settings.best_photo_text
    matcher.info["verdicts_applied"] = corrected
    matcher.info["catalog"] = catalog_stamp(store)
    matcher.save(Path(model_dir))
    record_training(store, model_dir, BEST)
    return {**matcher.info, "seconds": time.perf_counter() - started}


def train_best_from_pairs(
    store: Store, settings: MatchSettings, model_dir: Path, pairs: pd.DataFrame
) -> dict:
    """Train the best pipeline from labelled pairs of this catalog (``left_id``, ``right_id``,
    ``same`` 1/0: a reviewer's verdicts or a pairs file) and save it in model_dir. The
    catalog needs no labels; every posting's candidates count (see
    `core.pipelines.best.pair_training`)."""
    postings = store.postings()
    inputs, image_model = training_inputs(store, postings, settings)
    inputs = with_photo_text(store, inputs, settings)
    position = pd.Index(postings["posting_id"])
    triples = list(
        zip(
            position.get_indexer(pairs["left_id"]).tolist(),
            position.get_indexer(pairs["right_id"]).tolist(),
            pairs["same"].astype(int).tolist(),
            strict=True,
        )
    )
    if any(a < 0 or b < 0 for a, b, _ in triples):
        raise SameSameError("Some labelled pairs name postings this catalog does not have")
    started = time.perf_counter()
    config = BestConfig.from_settings(settings)
    # Where the baseline has matched this catalog, its decisions are the unlabelled pairs'
    # weak labels.
    weak = None
    if store.match_run("baseline") is not None:
        found = store.load_match_pairs("baseline")
        weak = (position.get_indexer(found["left"]), position.get_indexer(found["right"]))
    booster, names, info, config = fit_from_pairs(inputs, triples, config, settings.to_dict(), weak)
    matcher = BestMatcher(config, booster, None, names, [], None, info)
    matcher.info["image_model"] = image_model
    matcher.info["photo_text"] = settings.best_photo_text
    matcher.info["catalog"] = catalog_stamp(store)
    matcher.save(Path(model_dir))
    record_training(store, model_dir, BEST)
    return {**matcher.info, "seconds": time.perf_counter() - started}
