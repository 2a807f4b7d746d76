"""High-level operations shared by the CLI and the app: open a catalog database, import, embed,
train, match, evaluate, query one new item. Pages and commands call these and nothing deeper
when they can, so both behave the same."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from core.errors import SameSameError
from core.matches import MatchResult
from core.metrics import evaluate, per_posting_scores, true_match_sets
from core.pipelines import PIPELINES, load_inputs, match_baseline, match_ensemble
from core.settings import MatchSettings, data_dir
from core.store import Store

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]

SIAMESE = "siamese"
BEST = "best"


def default_db_path() -> Path:
    return data_dir() / "samesame.db"


def demo_db_path() -> Path:
    return data_dir() / "demo.db"


def open_demo(progress: Progress | None = None) -> Store:
    """The built-in demo catalog's database, generating and importing it on first use."""
    from core.catalog import import_catalog
    from core.demo import ensure_demo_catalog

    csv_path = ensure_demo_catalog(data_dir())
    store = Store(demo_db_path())
    if store.count_postings() == 0 or store.meta("demo_catalog") != _file_stamp(csv_path):
        import_catalog(store, csv_path, csv_path.parent / "images", progress=progress)
        store.set_meta("demo_catalog", _file_stamp(csv_path))
    return store


def _file_stamp(path: Path) -> str:
    stat = path.stat()
    return f"{stat.st_size}:{int(stat.st_mtime)}"


# -- models ----------------------------------------------------------------------------------
def image_model_name(settings: MatchSettings) -> str:
    from core.embedders.mobilenet import embedder_name

    return embedder_name(settings.image_backbone, settings.image_alpha, settings.image_size)


def load_image_embedder(settings: MatchSettings):
    """The baseline's pretrained embedder (loads TensorFlow and the weights)."""
    from core.embedders.mobilenet import PretrainedEmbedder

    return PretrainedEmbedder(
        settings.image_backbone,
        settings.image_alpha,
        settings.image_size,
        settings.resolved_weights_dir(),
        settings.batch_size,
    )


def siamese_dir(store: Store, explicit: Path | None = None) -> Path:
    """Where this database's trained Siamese model lives (``--model`` wins)."""
    if explicit is not None:
        return Path(explicit)
    stored = store.get_setting("siamese_model_dir")
    if stored:
        return Path(stored)
    stem = store.path.stem if store.path is not None else "memory"
    return data_dir() / "models" / stem / "siamese"


def siamese_version(model_dir: Path) -> str | None:
    """Version of the saved Siamese model, read without loading TensorFlow."""
    config = model_dir / "siamese.json"
    if not config.is_file():
        return None
    return json.loads(config.read_text()).get("version")


def siamese_history(model_dir: Path) -> list[dict]:
    config = model_dir / "siamese.json"
    return json.loads(config.read_text()).get("history", []) if config.is_file() else []


def train_siamese_model(
    store: Store, settings: MatchSettings, model_dir: Path, progress: Progress | None = None
) -> dict:
    """Train the ensemble's Siamese network on this catalog's labelled images and save it."""
    from core.embedders.siamese import SiameseConfig, train_siamese

    postings = store.postings()
    usable = postings[(postings["image_status"] == "ok") & postings["label_group"].notna()]
    if usable.empty:
        raise SameSameError(
            "Training needs postings with both an image file and a label_group; this catalog "
            "has none. Import a labelled catalog with its image folder, or use --model with a "
            "model trained elsewhere."
        )
    config = SiameseConfig(
        backbone=settings.siamese_backbone,
        alpha=settings.siamese_alpha,
        image_size=settings.siamese_image_size,
        embedding_dim=settings.siamese_embedding_dim,
        epochs=settings.siamese_epochs,
        loss=settings.siamese_loss,
        train_backbone=settings.siamese_train_backbone,
        boundary=settings.ensemble_image_distance,
    )
    started = time.perf_counter()
    embedder = train_siamese(
        [Path(p) for p in usable["image_path"]],
        usable["label_group"].tolist(),
        config,
        weights_dir=settings.resolved_weights_dir(),
        progress=progress,
        batch_size=settings.batch_size,
    )
    embedder.save(model_dir)
    return {
        "seconds": time.perf_counter() - started,
        "history": config.history,
        "version": embedder.version,
        "images": len(usable),
    }


def embed_images(store: Store, settings: MatchSettings, progress: Progress | None = None) -> int:
    from core.embedding import embed_catalog

    return embed_catalog(store, load_image_embedder(settings), progress=progress)


def embed_siamese(
    store: Store, settings: MatchSettings, model_dir: Path, progress: Progress | None = None
) -> int:
    from core.embedders.siamese import SiameseEmbedder
    from core.embedding import embed_catalog

    embedder = SiameseEmbedder.load(model_dir, settings.batch_size)
    return embed_catalog(store, embedder, progress=progress)


# -- the learned best pipeline --------------------------------------------------------------
def best_dir(store: Store, explicit: Path | None = None) -> Path:
    """Where this database's trained best matcher lives (``--model`` wins)."""
    if explicit is not None:
        return Path(explicit)
    stem = store.path.stem if store.path is not None else "memory"
    return data_dir() / "models" / stem / BEST


def best_model_info(model_dir: Path) -> dict | None:
    """The saved best matcher's training record, read without loading LightGBM."""
    from core.pipelines.best import CONFIG_FILE

    config = Path(model_dir) / CONFIG_FILE
    if not config.is_file():
        return None
    try:
        return json.loads(config.read_text()).get("info", {})
    except ValueError as exc:
        raise SameSameError(f"{config} is not a readable best model ({exc}); retrain it") from exc


def catalog_stamp(store: Store) -> str:
    """Identifies a database's catalog as it is now: changes when postings change, survives
    moving or copying the database file (an id stored in it, not its path)."""
    database_id = store.meta("database_id")
    if database_id is None:
        import uuid

        database_id = uuid.uuid4().hex
        store.set_meta("database_id", database_id)
    return f"{database_id}#{store.catalog_revision}"


def best_is_current(store: Store, model_dir: Path) -> bool:
    """True when the model exists and was trained on this catalog as it is now."""
    info = best_model_info(model_dir)
    return info is not None and info.get("catalog") == catalog_stamp(store)


def train_best_model(
    store: Store, settings: MatchSettings, model_dir: Path, progress: Progress | None = None
) -> dict:
    """Train the best pipeline on this catalog's labelled postings and save it in model_dir.

    Image vectors of the baseline model are used when every posting with an image file has
    one; otherwise hashes are the image evidence (the saved model remembers which).
    """
    from core.pipelines.base import MatchInputs
    from core.pipelines.best import BestMatcher

    postings = store.postings()
    labelled = postings[postings["label_group"].notna()].reset_index(drop=True)
    if labelled["label_group"].duplicated().sum() == 0:
        raise SameSameError(
            "Training the best pipeline needs a labelled catalog (a label_group column where "
            "postings of the same product share a value); this catalog has none."
        )
    image_model = image_model_name(settings)
    ids, matrix = store.load_embeddings(image_model, "imagenet")
    with_image = set(labelled.loc[labelled["image_status"] == "ok", "posting_id"])
    use_images = bool(with_image) and with_image <= set(ids)
    vectors = dict(zip(ids, matrix, strict=True)) if use_images else None
    inputs = MatchInputs.from_frame(labelled, vectors, image_model if use_images else None)
    started = time.perf_counter()
    matcher = BestMatcher.fit(inputs, labelled["label_group"].tolist(), settings, progress)
    matcher.info["image_model"] = image_model if use_images else None
    matcher.info["catalog"] = catalog_stamp(store)
    matcher.save(Path(model_dir))
    return {**matcher.info, "seconds": time.perf_counter() - started}


def _match_best(
    store: Store, settings: MatchSettings, model_dir: Path | None, hash_only: bool
) -> MatchResult:
    from core.pipelines.best import BestMatcher

    folder = best_dir(store, model_dir)
    matcher = BestMatcher.load(folder)
    image_model = matcher.info.get("image_model")
    inputs = _inputs_for(
        store, (image_model, "imagenet") if image_model and not hash_only else None
    )
    result = matcher.match(inputs, settings)
    if image_model and inputs.vector_count < _image_count(store):
        result.notices.append(
            f"The best model was trained with {image_model} image vectors and "
            f"{_image_count(store) - inputs.vector_count} image(s) here have none: embed them "
            "with that model for its full accuracy."
        )
    return result


# -- matching --------------------------------------------------------------------------------
def pipeline_image_model(
    store: Store, pipeline: str, settings: MatchSettings, model_dir: Path | None = None
) -> tuple[str, str | None] | None:
    """(model name, version) whose vectors the pipeline reads, or None for hash-only."""
    if pipeline == "baseline":
        return image_model_name(settings), "imagenet"
    if pipeline == BEST:
        info = best_model_info(best_dir(store, model_dir)) or {}
        return (info["image_model"], "imagenet") if info.get("image_model") else None
    version = siamese_version(siamese_dir(store, model_dir))
    return (SIAMESE, version) if version else None


def run_pipeline(
    store: Store,
    pipeline: str,
    settings: MatchSettings | None = None,
    *,
    model_dir: Path | None = None,
    translate: Callable | None = None,
    save: bool = True,
    hash_only: bool = False,
) -> MatchResult:
    """Match the whole catalog with one pipeline and (by default) store the matches.

    Args:
        hash_only: ignore image vectors; perceptual hashes are the only image evidence.
    """
    if pipeline not in PIPELINES:
        raise SameSameError(f"Unknown pipeline {pipeline!r}; choose one of {', '.join(PIPELINES)}")
    settings = settings or store.load_settings()
    if pipeline == BEST:
        result = _match_best(store, settings, model_dir, hash_only)
        if save:
            store.save_matches(pipeline, result.pairs, settings, result.seconds)
        return result
    model = None if hash_only else pipeline_image_model(store, pipeline, settings, model_dir)
    inputs = _inputs_for(store, model)
    notices = []
    if pipeline == "ensemble" and settings.translate_titles:
        from core.translate import translate_titles

        inputs.titles, notice = translate_titles(store, inputs.titles, translator=translate)
        if notice:
            notices.append(notice)
    matcher = match_baseline if pipeline == "baseline" else match_ensemble
    result = matcher(inputs, settings)
    result.notices = notices + result.notices
    if model is not None and inputs.vector_count < _image_count(store):
        missing = _image_count(store) - inputs.vector_count
        result.notices.append(
            f"{missing} posting image(s) have no {model[0]} embedding yet: perceptual hashes "
            "stand in for them. Run embedding to use the model."
        )
    if save:
        store.save_matches(pipeline, result.pairs, settings, result.seconds)
    return result


def _inputs_for(store: Store, model: tuple[str, str | None] | None):
    from core.pipelines.base import MatchInputs

    if model is None:
        return load_inputs(store, None)
    postings = store.postings()
    ids, matrix = store.load_embeddings(model[0], model[1])
    vectors = dict(zip(ids, matrix, strict=True)) if ids else None
    return MatchInputs.from_frame(postings, vectors, model[0] if vectors else None)


def _image_count(store: Store) -> int:
    return int(store.info()["images"]["ok"])


def stored_result(store: Store, pipeline: str) -> MatchResult | None:
    """The last stored matches of a pipeline, or None if it never ran."""
    run = store.match_run(pipeline)
    if run is None:
        return None
    pairs = store.load_match_pairs(pipeline)
    if pairs.empty:
        pairs = pd.DataFrame(columns=["left", "right", "rule"])
    ids = store.postings()["posting_id"].tolist()
    known = set(ids)
    pairs = pairs[pairs["left"].isin(known) & pairs["right"].isin(known)]
    return MatchResult(
        pipeline, ids, pairs, MatchSettings.from_dict(run["settings"]), run["seconds"]
    )


def labels_of(store: Store) -> dict[str, str] | None:
    postings = store.postings()
    if postings["label_group"].isna().all():
        return None
    labelled = postings[postings["label_group"].notna()]
    return dict(zip(labelled["posting_id"], labelled["label_group"], strict=True))


def evaluate_result(store: Store, result: MatchResult) -> dict[str, float]:
    """F1/precision/recall against label_group over the labelled postings.

    Raises:
        SameSameError: the catalog has no labels.
    """
    labels = labels_of(store)
    if labels is None:
        raise SameSameError("This catalog has no label_group column: there is nothing to score.")
    predicted = {pid: s & labels.keys() for pid, s in result.match_sets().items() if pid in labels}
    return evaluate(predicted, true_match_sets(labels))


def worst_postings(store: Store, result: MatchResult, n: int = 20) -> pd.DataFrame:
    labels = labels_of(store)
    if labels is None:
        raise SameSameError("This catalog has no label_group column: there is nothing to score.")
    predicted = {pid: s & labels.keys() for pid, s in result.match_sets().items() if pid in labels}
    scores = per_posting_scores(predicted, true_match_sets(labels))
    return scores.sort_values(["f1", "posting_id"]).head(n).reset_index(drop=True)
