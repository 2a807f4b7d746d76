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


# -- matching --------------------------------------------------------------------------------
def pipeline_image_model(
    store: Store, pipeline: str, settings: MatchSettings, model_dir: Path | None = None
) -> tuple[str, str | None] | None:
    """(model name, version) whose vectors the pipeline reads, or None for hash-only."""
    if pipeline == "baseline":
        return image_model_name(settings), "imagenet"
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
