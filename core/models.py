"""The models a catalog's pipelines read: the pretrained image backbone, the ensemble's trained
Siamese network and the trained ``best`` matcher (where each lives, whether it is current,
training the Siamese network, embedding; `core.pipelines.best.catalog_training` trains the
best matcher). TensorFlow and LightGBM are imported only by the functions that run them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from core.embedders.backbones import resolve_siamese_inputs
from core.embedders.mobilenet import PretrainedEmbedder, embedder_name
from core.embedders.siamese import SiameseConfig, SiameseEmbedder
from core.embedders.siamese_training import train_siamese
from core.embedding import embed_catalog
from core.errors import SameSameError
from core.settings import MatchSettings
from core.settings.match import BACKBONES
from core.store import Store
from core.workspace import catalog_stamp, models_folder

Progress = Callable[[int, int], None]

SIAMESE = "siamese"
IMAGENET = "imagenet"


# -- where a model learnt ------------------------------------------------------------------
TRAINING_FILE = "training.json"


def record_training(store: Store, model_dir: Path, what: str) -> None:
    """Note in the model folder which catalog (database and revision) it learnt from."""
    record = {"catalog": catalog_stamp(store), "model": what, "at": time.strftime("%FT%T")}
    path = Path(model_dir) / f"{what}.{TRAINING_FILE}"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record))
    tmp.replace(path)


def trained_on(model_dir: Path, what: str) -> str | None:
    """The catalog stamp a model was trained on (None when unknown)."""
    try:
        return json.loads((Path(model_dir) / f"{what}.{TRAINING_FILE}").read_text())["catalog"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def in_sample(store: Store, model_dir: Path, what: str) -> bool:
    """Whether a model learnt from this very database's labels (any revision of it): its
    scores here are then in-sample and overstate what it does on unseen products."""
    stamp = trained_on(model_dir, what)
    return stamp is not None and stamp.split("#")[0] == catalog_stamp(store).split("#")[0]


# -- the pretrained image backbone -------------------------------------------------------------
def image_model_name(settings: MatchSettings) -> str:
    return embedder_name(settings.image_backbone, settings.image_alpha, settings.image_size)


def settings_for_image_model(settings: MatchSettings, name: str) -> MatchSettings:
    """``settings`` choosing the pretrained model whose vectors are stored as ``name`` (what
    `image_model_name` gives), so a model trained on other vectors than the settings' own can
    embed an uploaded photo or a new catalog the same way.

    Raises:
        SameSameError: ``name`` is no pretrained image model SameSame knows.
    """
    for backbone in sorted(BACKBONES, key=len, reverse=True):
        if not name.startswith(backbone + "-"):
            continue
        width, _, size = name[len(backbone) + 1 :].rpartition("-")
        try:
            alpha = float(width[1:]) if width.startswith("a") else settings.image_alpha
            changed = settings.replace(
                image_backbone=backbone, image_alpha=alpha, image_size=int(size)
            )
        except ValueError:
            break
        if image_model_name(changed) == name:
            return changed
    raise SameSameError(f"{name!r} is not a pretrained image model this version knows")


#: Pretrained backbones `best` prefers for its image evidence, strongest first, where a
#: catalog holds complete vectors of more than one (grocery, 13 products held back from every
#: choice: `best` image-only F1 0.656 on Lite2 vectors against 0.540–0.557 on MobileNet 0.25).
BEST_IMAGE_PREFERENCE = ("efficientnet-lite2", "efficientnet-lite0")


#: The settings that make one pretrained embedder: equal values load the same model, run the
#: same way (what processes that keep loaded embedders key them by).
PRETRAINED_FIELDS = (
    "image_backbone",
    "image_alpha",
    "image_size",
    "weights_dir",
    "batch_size",
    "inference_backend",
)


def pretrained_identity(settings: MatchSettings) -> tuple:
    return tuple(getattr(settings, name) for name in PRETRAINED_FIELDS)


def load_image_embedder(settings: MatchSettings):
    """The baseline's pretrained embedder (loads TensorFlow and the weights), run by the
    settings' inference engine."""
    return PretrainedEmbedder(
        settings.image_backbone,
        settings.image_alpha,
        settings.image_size,
        settings.resolved_weights_dir(),
        settings.batch_size,
    ).serve_with(settings.inference_backend)


def embed_images(store: Store, settings: MatchSettings, progress: Progress | None = None) -> int:
    return embed_catalog(store, load_image_embedder(settings), progress=progress)


# -- the ensemble's Siamese network ------------------------------------------------------------
def siamese_dir(store: Store, explicit: Path | None = None) -> Path:
    """Where this database's trained Siamese model lives (``--model`` wins)."""
    if explicit is not None:
        return Path(explicit)
    stored = store.get_setting("siamese_model_dir")
    if stored:
        return Path(stored)
    return models_folder(store) / SIAMESE


def siamese_version(model_dir: Path) -> str | None:
    """Version of the saved Siamese model, read without loading TensorFlow."""
    config = Path(model_dir) / "siamese.json"
    if not config.is_file():
        return None
    try:
        return json.loads(config.read_text()).get("version")
    except ValueError:
        return None


def siamese_config(model_dir: Path) -> dict:
    """How the saved Siamese model was built and trained (loss, backbone…), or {}."""
    config = Path(model_dir) / "siamese.json"
    try:
        return json.loads(config.read_text()) if config.is_file() else {}
    except ValueError:
        return {}


def calibration_summary(model_dir: Path) -> str:
    """One sentence on the saved Siamese model's calibrated distance, for people."""
    stored = siamese_config(model_dir)
    found = stored.get("calibration") or {}
    if not stored:
        return (
            "No Siamese model yet: training it (Embed page) also calibrates a distance on "
            "labelled products it holds back."
        )
    if not found:
        return (
            "This Siamese model has no calibrated distance (trained before calibration existed, "
            "or on too few products to hold some back); retrain it to get one."
        )
    return (
        f"This catalog's Siamese model calibrated a distance of {found['distance']:.2f} on "
        f"{found['products']} products it did not train on (F1 {found['f1']:.3f} there, "
        f"{found['f1_at_default']:.3f} at the fixed {stored.get('boundary', 0.95):g}). "
        "Choose “calibrated” under Ensemble to use it."
    )


def siamese_history(model_dir: Path) -> list[dict]:
    config = Path(model_dir) / "siamese.json"
    return json.loads(config.read_text()).get("history", []) if config.is_file() else []


def train_siamese_model(
    store: Store, settings: MatchSettings, model_dir: Path, progress: Progress | None = None
) -> dict:
    """Train the ensemble's Siamese network on this catalog's labelled images and save it."""
    postings = store.postings()
    usable = postings[(postings["image_status"] == "ok") & postings["label_group"].notna()]
    if usable.empty:
        raise SameSameError(
            "Training needs postings with both an image file and a label_group; this catalog "
            "has none. Import a labelled catalog with its image folder, or use --model with a "
            "model trained elsewhere."
        )
    weights_dir = settings.resolved_weights_dir()
    backbone, size = resolve_siamese_inputs(
        settings.siamese_backbone, settings.siamese_image_size, weights_dir
    )
    config = SiameseConfig.from_settings(settings, backbone, size)
    started = time.perf_counter()
    embedder = train_siamese(
        [Path(p) for p in usable["image_path"]],
        usable["label_group"].tolist(),
        config,
        weights_dir=weights_dir,
        progress=progress,
        batch_size=settings.batch_size,
    )
    embedder.save(model_dir)
    record_training(store, model_dir, SIAMESE)
    return {
        "seconds": time.perf_counter() - started,
        "history": embedder.config.history,
        "version": embedder.version,
        "images": len(usable),
        "calibration": embedder.config.calibration,
    }


def embed_siamese(
    store: Store, settings: MatchSettings, model_dir: Path, progress: Progress | None = None
) -> int:
    embedder = SiameseEmbedder.load(model_dir, settings.batch_size)
    embedder.serve_with(settings.inference_backend)
    return embed_catalog(store, embedder, progress=progress)


# -- the learned best matcher ------------------------------------------------------------------
BEST = "best"  # the folder of the best matcher's model files
#: The best matcher's record in its folder (configuration, thresholds, what it learnt from),
#: read here without loading LightGBM.
BEST_CONFIG_FILE = "best.json"


def best_dir(store: Store, explicit: Path | None = None) -> Path:
    """Where this database's trained best matcher lives (``--model`` wins)."""
    if explicit is not None:
        return Path(explicit)
    return models_folder(store) / BEST


def best_model_info(model_dir: Path) -> dict | None:
    """The saved best matcher's training record, read without loading LightGBM."""
    config = Path(model_dir) / BEST_CONFIG_FILE
    if not config.is_file():
        return None
    try:
        return json.loads(config.read_text()).get("info", {})
    except ValueError as exc:
        raise SameSameError(f"{config} is not a readable best model ({exc}); retrain it") from exc


def best_threshold(model_dir: Path) -> float | None:
    """The saved best matcher's decision threshold (None without a model), read without
    loading LightGBM."""
    config = Path(model_dir) / BEST_CONFIG_FILE
    if not config.is_file():
        return None
    try:
        return json.loads(config.read_text()).get("config", {}).get("threshold")
    except ValueError as exc:
        raise SameSameError(f"{config} is not a readable best model ({exc}); retrain it") from exc


def best_is_current(store: Store, model_dir: Path) -> bool:
    """True when the model exists and was trained on this catalog as it is now."""
    info = best_model_info(model_dir)
    return info is not None and info.get("catalog") == catalog_stamp(store)


def best_image_model(store: Store, postings: pd.DataFrame, settings: MatchSettings) -> str | None:
    """The pretrained vectors `best` learns from: the strongest model (`BEST_IMAGE_PREFERENCE`,
    then the settings' own, then any other) that every posting with an image file has a
    vector of; None when no model covers them (hashes are then the image evidence)."""
    with_image = set(postings.loc[postings["image_status"] == "ok", "posting_id"])
    if not with_image:
        return None
    stored = store.embedding_models(IMAGENET)
    own = image_model_name(settings)

    def rank(name: str) -> int:
        for place, backbone in enumerate(BEST_IMAGE_PREFERENCE):
            if name.startswith(backbone + "-"):
                return place
        return len(BEST_IMAGE_PREFERENCE) + (name != own)

    for name in sorted(stored, key=lambda name: (rank(name), name)):
        if with_image <= store.embedded_ids(name, IMAGENET):
            return name
    return None


def other_best_models(store: Store) -> list[tuple[str, Path, dict]]:
    """Best matchers trained on the labels of other databases in this data folder, newest
    first: (database name, model folder, training record)."""
    mine = best_dir(store).resolve()
    found = []
    for folder in (models_folder(store).parent).glob(f"*/{BEST}"):
        try:
            info = best_model_info(folder)
        except SameSameError:
            continue  # unreadable: not offered
        if (
            folder.resolve() == mine
            or info is None
            or info.get("label_groups", 0) == 0
            or info.get("adopted_from")
        ):
            continue  # this database's own, learnt from pairs only, or a copy of another
        found.append((folder.parent.name, folder, info))
    return sorted(found, key=lambda entry: str(entry[2].get("trained_at", "")), reverse=True)


def adopt_best_model(store: Store, settings: MatchSettings, source: Path) -> dict:
    """Make a best matcher trained on another, labelled catalog this database's own (a copy,
    so retraining the other does not change this one). Its figures here are not in-sample.

    Raises:
        SameSameError: the model compares photos by vectors this catalog does not have (or
            the other way round).
    """
    import shutil

    info = best_model_info(Path(source))
    if info is None:
        raise SameSameError(f"No trained best matcher in {source}")
    image_model = best_image_model(store, store.postings(), settings)
    if (info.get("image_model") or None) != image_model:
        raise SameSameError(
            f"That model compares photos by {info.get('image_model') or 'perceptual hash'}, "
            f"this catalog by {image_model or 'perceptual hash'}: embed the same image model "
            "here (or there) first"
        )
    target = best_dir(store)
    staging = target.with_name(f"{target.name}.adopting")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(source, staging)
    config = staging / BEST_CONFIG_FILE
    payload = json.loads(config.read_text())
    payload.setdefault("info", {})["adopted_from"] = str(Path(source).parent.name)
    config.write_text(json.dumps(payload, indent=2))
    shutil.rmtree(target, ignore_errors=True)
    staging.replace(target)
    return payload["info"]
