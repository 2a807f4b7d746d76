"""The Embed page's image sections: the baseline's ImageNet embeddings, and training and
embedding with the Siamese network of a pipeline that trains on images.

TensorFlow is imported only when one of their buttons is pressed.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import streamlit as st

from core import models
from core.embedders.backbones import backbone_details, resolve_siamese_inputs
from core.embedders.siamese import trained_members
from core.embedding import embed_catalog
from core.errors import WeightsUnavailableError
from core.pipelines import Pipeline
from core.settings import MatchSettings
from core.store import Store
from ui import common, resources

IMAGENET = models.IMAGENET
#: The losses in words (the setting's values are short names).
LOSS_NAMES = {
    "triplet": "semi-hard triplet loss",
    "margin": "boundary margin loss",
    "arcface": "ArcFace angular-margin loss",
}


def embedded_status(done: int, total: int) -> None:
    if total == 0:
        st.info("No posting has a usable image file: there is nothing to embed.")
        return
    st.progress(done / total, text=f"{done:,} of {total:,} images already embedded")


def mobilenet_section(store: Store, settings: MatchSettings, images: int) -> None:
    """The baseline's ImageNet vectors: what is embedded, and a button to embed the rest."""
    st.subheader("Baseline image embeddings")
    common.show_flashes(place="mobilenet")
    name = models.image_model_name(settings)
    st.markdown(
        f"Model **{name}** (ImageNet {settings.image_backbone}, "
        f"{backbone_details(settings.image_backbone, settings.image_alpha, settings.image_size)}"
        "). Saved in batches: a new run continues where the last stopped."
    )
    st.caption(
        common.weights_note(
            settings.image_backbone, settings.image_alpha, settings.image_size, settings
        )
    )
    done = len(store.embedded_ids(name, IMAGENET))
    embedded_status(done, images)
    label = "Continue embedding" if 0 < done < images else "Embed images"
    if st.button(label, key="embed_mobilenet", type="primary", disabled=done >= images):
        try:
            embedder = resources.image_embedder_for(settings)
        except WeightsUnavailableError as exc:
            st.error(str(exc))
            return
        started = time.perf_counter()
        added = embed_catalog(
            store, embedder, progress=common.ProgressBar(f"Embedding with {name}", already=done)
        )
        common.flash(
            "success",
            f"Embedded {added:,} new images with {name} in "
            f"{common.format_seconds(time.perf_counter() - started)}.",
            place="mobilenet",
        )
        st.rerun()


def _vector_size(settings: MatchSettings) -> str:
    members = trained_members(settings.siamese_members, settings.siamese_train_backbone)
    size = f"{settings.siamese_embedding_dim}-d"
    return size if members == 1 else f"{members} networks side by side, {members} × {size}"


def _members_note(members: int) -> str:
    return f", {members} networks side by side" if members > 1 else ""


def _siamese_plan(settings: MatchSettings) -> None:
    """What training would build: loss, backbone (and why, when chosen for the user), vector
    size, epochs; and where the backbone's weights come from."""
    backbone, size = resolve_siamese_inputs(
        settings.siamese_backbone, settings.siamese_image_size, settings.resolved_weights_dir()
    )
    chosen = ""
    if settings.siamese_backbone == "auto":
        chosen = "; chosen for you" + (
            "" if backbone == "vgg16" else ", as VGG16's weights are not on this computer"
        )
    details = backbone_details(backbone, settings.siamese_alpha, size)
    st.markdown(
        f"Training builds a Siamese network with **{LOSS_NAMES[settings.siamese_loss]}** on "
        f"**{backbone}** ({details}, {_vector_size(settings)}{chosen}), "
        f"{settings.siamese_epochs} epoch{'s' if settings.siamese_epochs != 1 else ''}, "
        "from this catalog's labelled groups."
    )
    st.caption(common.weights_note(backbone, settings.siamese_alpha, size, settings))


def _siamese_training(
    store: Store,
    pipe: Pipeline,
    settings: MatchSettings,
    model_dir: Path,
    version: str | None,
    images: int,
) -> bool:
    """The trained model, if any, and the button that trains one; False when training could
    not start (its error shown: the section stops there)."""
    if version:
        trained = models.siamese_config(model_dir)
        st.caption(
            f"Trained model `{version}` in `{model_dir}`: "
            f"{LOSS_NAMES.get(trained.get('loss', ''), trained.get('loss', '?'))}, "
            f"{trained.get('backbone', '?')} {trained.get('image_size', '?')}px"
            + _members_note(trained.get("members", 1))
        )
    else:
        st.caption("No trained model yet.")
    if not st.button("Train Siamese model", key="train_siamese", disabled=images == 0):
        return True
    resources.tensorflow_ready()
    started = time.perf_counter()
    try:
        report = pipe.train(
            store, settings, model_dir, progress=common.ProgressBar("Training steps")
        )
    except WeightsUnavailableError as exc:
        st.error(str(exc))
        return False
    loss = report["history"][-1]["loss"] if report["history"] else float("nan")
    common.flash(
        "success",
        f"Trained on {report['images']:,} images in "
        f"{common.format_seconds(time.perf_counter() - started)}; final loss {loss:.4f}.",
        place="siamese",
    )
    st.rerun()
    return True  # not reached: the page runs again


def _siamese_embedding(
    store: Store, settings: MatchSettings, model_dir: Path, version: str | None, images: int
) -> None:
    """How many photos the trained model embedded, and the button that embeds the rest."""
    done = len(store.embedded_ids(models.SIAMESE, version)) if version else 0
    if version:
        embedded_status(done, images)
    else:
        st.caption("Embedding needs a trained model.")
    if not st.button(
        "Embed with the Siamese model",
        key="embed_siamese",
        disabled=not version or done >= images,
    ):
        return
    embedder = resources.siamese_embedder(
        str(model_dir), version, settings.batch_size, settings.inference_backend
    )
    started = time.perf_counter()
    added = embed_catalog(
        store, embedder, progress=common.ProgressBar("Siamese embedding", already=done)
    )
    common.flash(
        "success",
        f"Embedded {added:,} new images with the Siamese model in "
        f"{common.format_seconds(time.perf_counter() - started)}.",
        place="siamese",
    )
    st.rerun()


def siamese_section(store: Store, pipe: Pipeline, settings: MatchSettings, images: int) -> None:
    """The Siamese network of a pipeline that trains on images: what training builds, the
    trained model and its embeddings, and the last training's loss curve."""
    st.subheader(f"Siamese network ({pipe.name} pipeline)")
    common.show_flashes(place="siamese")
    model_dir = models.siamese_dir(store)
    version = models.siamese_version(model_dir)
    _siamese_plan(settings)
    history = models.siamese_history(model_dir)
    train_col, embed_col = st.columns(2)
    with train_col:
        if not _siamese_training(store, pipe, settings, model_dir, version, images):
            return
    with embed_col:
        _siamese_embedding(store, settings, model_dir, version, images)
    common.in_sample_note(store, pipe)
    if history:
        st.caption("Training loss per epoch")
        curve = pd.DataFrame(history).set_index("epoch")[["loss"]]
        st.line_chart(curve, x_label="epoch", y_label="training loss", height=220)
