"""Matching a catalog's database with a registered pipeline, as the CLI and the app do it:
make what the pipeline reads exist (`ensure_ready`), run it (`run_pipeline`), store the
result with what it reported and its clusters and figures (`run_summary`), read it back
(`stored_result`, `summarised_run`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from core import models
from core.engine import match_catalog
from core.errors import SameSameError
from core.evaluation import evaluate_result, worst_postings
from core.matches import MatchResult
from core.ocr import photo_text_for_model
from core.pipelines import get_pipeline, load_inputs
from core.settings import MatchSettings
from core.store import Store
from core.translate import translate_titles
from core.verdicts import pipeline_decisions, with_verdicts

if TYPE_CHECKING:
    from core.clusters import Clustering

logger = logging.getLogger(__name__)

#: Postings with the lowest F1 kept with each labelled run (the Evaluate page lists them).
WORST_POSTINGS = 20

Progress = Callable[[int, int], None]


@dataclass
class Hooks:
    """How long work reports back: a progress callback per stage, and notes for the user."""

    progress: Callable[[str], Progress | None] = lambda stage: None
    note: Callable[[str], None] = lambda text: logger.info("%s", text)


def _has_labels(store: Store) -> bool:
    return store.info()["label_groups"] > 0


def _images(store: Store) -> int:
    return int(store.info()["images"]["ok"])


def ensure_ready(
    store: Store,
    pipeline: str,
    settings: MatchSettings,
    *,
    model_dir: Path | None = None,
    hash_only: bool = False,
    hooks: Hooks | None = None,
    train: bool = True,
) -> None:
    """Make what a pipeline reads exist: its trained model (trained here when the catalog has
    labels and ``train``) and its image vectors (unless ``hash_only``).

    Raises:
        SameSameError: a model is needed and cannot be had (no labels, no model folder, or
            training not allowed).
    """
    hooks = hooks or Hooks()
    pipe = get_pipeline(pipeline)
    photos = not hash_only and _images(store) > 0 and pipe.image_kind is not None
    if pipe.needs_model:
        _ensure_best(store, pipe, settings, model_dir, hooks, train, photos)
    if not photos:
        return
    if pipe.image_kind == "siamese":
        folder = models.siamese_dir(store, model_dir)
        if models.siamese_version(folder) is None:
            if not train:
                return  # no trained model: perceptual hashes stand in, and the run says so
            if not _has_labels(store):
                raise SameSameError(
                    f"The {pipeline} pipeline needs a trained Siamese model and {folder} has "
                    "none; pass --model DIR (trained with python -m core train), or --hash-only."
                )
            hooks.note(f"training a Siamese model on this catalog's labels into {folder}")
            pipe.train(store, settings, folder, hooks.progress("training siamese (steps)"))
        models.embed_siamese(store, settings, folder, hooks.progress("embedding (siamese)"))
        return
    wanted = pipe.image_model(store, settings, model_dir)
    if wanted is not None:
        # A trained model's own vectors, whichever backbone the settings choose now.
        embedding = models.settings_for_image_model(settings, wanted[0])
        models.embed_images(store, embedding, hooks.progress(f"embedding ({wanted[0]})"))


def embed_for_training(
    store: Store, settings: MatchSettings, progress: Callable[[str], Progress | None]
) -> None:
    """Give every photo a pretrained vector before `best` trains, so a model given photos
    learns from them: by the settings' backbone, unless vectors of a model `best` prefers
    already cover them (`core.models.best_image_model`)."""
    if models.best_image_model(store, store.postings(), settings) is None:
        name = models.image_model_name(settings)
        models.embed_images(store, settings, progress(f"embedding ({name})"))


def _ensure_best(
    store: Store,
    pipe,
    settings: MatchSettings,
    model_dir: Path | None,
    hooks: Hooks,
    train: bool,
    photos: bool,
) -> None:
    """Use ``model_dir`` as given; else the database's own model, (re)trained when the catalog
    changed since it was trained (and it has labels to train on), from its photos' vectors
    too when it has ``photos`` (embedded first, by the settings' backbone where none is)."""
    folder = models.best_dir(store, model_dir)
    if model_dir is not None:
        if models.best_model_info(folder) is None:
            raise SameSameError(
                f"{folder} holds no trained best matcher; train one with python -m core train "
                "--pipeline best --model DIR on a labelled catalog"
            )
        return
    if models.best_is_current(store, folder):
        return
    if not _has_labels(store) or not train:
        if models.best_model_info(folder) is not None:
            return  # trained earlier; the catalog changed (retraining is the user's call)
        raise SameSameError(
            f"The {pipe.name} pipeline needs a trained model: train it on a labelled catalog "
            "(python -m core train, or the Embed page), or pass --model DIR."
        )
    if photos:
        embed_for_training(store, settings, hooks.progress)
    hooks.note(f"training the {pipe.name} matcher on this catalog's labels into {folder}")
    pipe.train(store, settings, folder, hooks.progress(f"training {pipe.name} (stages)"))


def run_pipeline(
    store: Store,
    pipeline: str,
    settings: MatchSettings | None = None,
    *,
    model_dir: Path | None = None,
    translate: Callable | None = None,
    save: bool = True,
    hash_only: bool = False,
    progress: Progress | None = None,
    stages: Callable[[str], Progress | None] | None = None,
) -> MatchResult:
    """Match the whole catalog with one pipeline and (by default) store the matches.

    Args:
        translate: a translator for the titles (tests); else Google through deep-translator.
        hash_only: ignore image vectors; perceptual hashes are the only image evidence.
        progress: the matching's (done, total), for pipelines that match in one pass.
        stages: a progress bar per named stage (`Hooks.progress`), for pipelines with
            stages of their own (``best``: candidates, pair features, scoring).
    """
    pipe = get_pipeline(pipeline)
    settings, note = pipe.settings_for(store, settings or store.load_settings(), model_dir)
    image_model = None if hash_only else pipe.image_model(store, settings, model_dir)
    inputs = load_inputs(store, image_model)
    notices: list[str] = [note] if note else []
    if pipe.translates and settings.translate_titles:
        titles, notice = translate_titles(store, inputs.titles, translator=translate)
        inputs = inputs.with_titles(titles)
        if notice:
            notices.append(notice)
    model = pipe.load_model(store, model_dir)
    inputs, notice = photo_text_for_model(store, inputs, model)
    notices += [notice] if notice else []
    # The reviewer's verdicts overrule the scores before anything is stored or counted; what
    # the rules said about the reviewed pairs is kept for the estimates of precision.
    own = match_catalog(pipe, inputs, settings, progress, model=model, stages=stages)
    reviews = store.reviews()
    decisions = pipeline_decisions(own, reviews)
    result = with_verdicts(own, reviews)
    result.notices = notices + result.notices
    images = _images(store)
    if image_model is not None and 0 < inputs.vector_count < images:
        result.notices.append(
            f"{images - inputs.vector_count} posting image(s) have no {image_model[0]} "
            "embedding yet: perceptual hashes stand in for them. Run embedding to use the model."
        )
    if result.capped:
        result.notices.append(
            f"{result.capped:,} posting(s) reached the cap of {settings.max_matches} matches "
            "each and kept their best ones (Matches kept per posting, in Settings)."
        )
    if save:
        _store_run(store, pipeline, settings, result, decisions)
    return result


def _store_run(
    store: Store,
    pipeline: str,
    settings: MatchSettings,
    result: MatchResult,
    decisions: list[list],
) -> None:
    """Store a run with its clusters and figures, replacing the pipeline's last one: its pairs
    go to the database a slice at a time, inside one transaction (`Store.save_matches`)."""
    clustering, figures = run_summary(store, result)
    details = {
        "notices": result.notices,
        "capped": result.capped,
        "stats": result.stats,
        "decisions": decisions,
        **figures,
    }
    store.save_matches(
        pipeline, result.pair_frames(), settings, result.seconds, details, clustering
    )


def run_summary(store: Store, result: MatchResult) -> tuple[Clustering, dict[str, Any]]:
    """What pages show of a whole run, worked out once when it is stored (pages then read
    one posting's share instead of every pair): its clusters and, for a labelled catalog, F1,
    precision and recall, plain and as clusters, and the postings it gets most wrong."""
    clustering = result.clusters()
    figures: dict[str, Any] = {"summarised": True}
    if _has_labels(store):
        plain = evaluate_result(store, result)
        clustered = evaluate_result(store, result, clusters=True)
        figures["metrics"] = {**plain, **{f"cluster_{k}": v for k, v in clustered.items()}}
        figures["worst"] = worst_postings(store, result, n=WORST_POSTINGS).to_dict("records")
    return clustering, figures


def summarised_run(store: Store, pipeline: str) -> dict[str, Any] | None:
    """The pipeline's stored run (`Store.match_run`) with its clusters and figures, which a
    run stored by an older SameSame lacks: those are worked out here, once, and kept."""
    run = store.match_run(pipeline)
    if run is None or run["details"].get("summarised"):
        return run
    result = stored_result(store, pipeline)
    clustering, figures = run_summary(store, result)
    store.save_run_summary(pipeline, clustering, {**run["details"], **figures})
    return store.match_run(pipeline)


def stored_result(store: Store, pipeline: str) -> MatchResult | None:
    """The last stored matches of a pipeline, or None if it never ran."""
    run = store.match_run(pipeline)
    if run is None:
        return None
    pairs = store.load_match_pairs(pipeline)
    ids = store.postings()["posting_id"].tolist()
    # Pairs of postings deleted since the run are left out. A hash lookup of each side
    # (get_indexer) takes 0.1 s for 100k pairs where Series.isin on Arrow strings takes 0.7 s.
    known = pd.Index(ids)
    present = (known.get_indexer(pairs["left"]) >= 0) & (known.get_indexer(pairs["right"]) >= 0)
    pairs = pairs[present].reset_index(drop=True)
    details = run["details"]
    result = MatchResult(
        pipeline,
        ids,
        pairs,
        MatchSettings.from_dict(run["settings"]),
        run["seconds"],
        list(run["notices"]),
        capped=int(details.get("capped", 0)),
        stats=details.get("stats"),
    )
    # Verdicts given since the run count too (exports, the CLI).
    return with_verdicts(result, store.reviews())
