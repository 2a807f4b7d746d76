"""Compare page: upload photos and/or type a title, see the catalog's closest postings under each
pipeline, and optionally add the item to the catalog."""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import streamlit as st

from core import models
from core.copies import catalog_copies
from core.errors import SameSameError
from core.pipelines import Pipeline
from core.query import NewItem, add_to_catalog, query_item
from core.settings import MatchSettings, data_dir
from core.store import Store
from ui import common, resources

ITEMS_KEY = "compare_items"
RESULTS_KEY = "compare_results"
IMAGE_TYPES = ["jpg", "jpeg", "png", "webp"]
TOP_N = 10


def _item_key(item: NewItem) -> str:
    return hashlib.sha256(
        item.name.encode() + item.title.encode() + (item.image or b"")
    ).hexdigest()


def _add(db_path: str, item: NewItem) -> None:
    # Button callback: its own connection, like every other write from a widget.
    try:
        with Store(db_path) as store:
            posting_id = add_to_catalog(store, item, data_dir() / "uploads")
            resources.grow_query_index(store, posting_id)
    except SameSameError as exc:
        common.flash("error", f"{item.name}: {exc}")
        return
    common.flash(
        "success",
        f"Added {item.name} to the catalog as {posting_id}. Run the pipelines again (Embed "
        "page) to match it with the rest of the catalog.",
    )


def _image_models(
    store: Store, settings: MatchSettings, need_images: bool
) -> dict[str, tuple[object | None, tuple[str, str | None] | None, str | None]]:
    """Per pipeline: (embedder, stored model, note). The model is loaded (TensorFlow) only when
    an uploaded photo can be compared with vectors that exist for it."""
    found = {}
    for pipe in common.pipelines():
        model = pipe.image_model(store, settings)
        has_vectors = model is not None and store.count_embeddings(model[0], model[1]) > 0
        if not has_vectors and pipe.needs_model and model is None:
            # Trained without image vectors (or not trained): hashes are its image evidence.
            found[pipe.name] = (None, None, None)
            continue
        if not has_vectors:
            name = model[0] if model else ("Siamese" if pipe.image_kind == "siamese" else "image")
            note = (
                f"No {name} embeddings in this catalog: the perceptual hash is the image "
                "evidence (run embeddings on the Embed page to use the model)."
            )
            found[pipe.name] = (None, None, note if need_images else None)
            continue
        if not need_images:
            found[pipe.name] = (None, model, None)
            continue
        try:
            if pipe.image_kind == "siamese":
                embedder = resources.siamese_embedder(
                    str(models.siamese_dir(store)), model[1] or "", settings.batch_size
                )
            else:
                # Pretrained-backbone vectors: the settings must choose the same model.
                if model[0] != models.image_model_name(settings):
                    raise SameSameError(
                        f"The stored vectors are {model[0]}, the settings choose "
                        f"{models.image_model_name(settings)}."
                    )
                embedder = resources.image_embedder_for(settings)
        except SameSameError as exc:
            found[pipe.name] = (None, None, f"{exc} The perceptual hash is used instead.")
        else:
            found[pipe.name] = (embedder, model, None)
    return found


def _query(
    store: Store, item: NewItem, pipe: Pipeline, settings: MatchSettings, embedder, model
) -> pd.DataFrame:
    """query_item, remembered for this session: reruns (a review click, a tab switch) reuse it."""
    key = json.dumps(
        [
            str(store.path),
            store.catalog_revision,
            _item_key(item),
            pipe.name,
            settings.to_dict(),
            list(model) if model else None,
        ]
    )
    cache = st.session_state.setdefault(RESULTS_KEY, {})
    if key not in cache:
        notices: list[str] = []
        frame = query_item(
            store,
            item,
            pipe.name,
            settings,
            image_embedder=embedder,
            image_model=model,
            best_matcher=resources.best_matcher_of(store) if pipe.needs_model else None,
            top_n=TOP_N,
            index=None if pipe.needs_model else resources.query_index_for(store, model),
            notices=notices,
        )
        cache[key] = (frame, notices)
    return cache[key]


def _copies(
    store: Store, item: NewItem, settings: MatchSettings, image_models: dict, answers: dict
) -> list:
    """catalog_copies, remembered under what the query answers it reads depend on: its hash
    lookup scans the postings table (0.2–0.6 s at 1M), which a rerun need not repeat."""
    models_used = {name: image_models[name][1] for name in sorted(answers)}
    key = json.dumps(
        [
            "copies",
            str(store.path),
            store.catalog_revision,
            _item_key(item),
            settings.to_dict(),
            {name: list(m) if m else None for name, m in models_used.items()},
        ]
    )
    cache = st.session_state.setdefault(RESULTS_KEY, {})
    if key not in cache:
        cache[key] = catalog_copies(store, item, [frame for frame, _ in answers.values()])
    return cache[key]


def _show_results(frame: pd.DataFrame, pipeline: str) -> None:
    matched = int(frame["matched"].sum())
    if matched:
        st.success(f"{matched} catalog posting(s) match under the {pipeline} rules.")
    else:
        st.info(f"No posting passes the {pipeline} rules; the closest ones are listed.")
    scores = [
        c
        for c in (
            "probability",
            "image_cosine",
            "siamese_distance",
            "hash_distance",
            "tfidf_cosine",
            "text_ratio",
        )
        if c in frame and frame[c].notna().any()
    ]
    shown = resources.with_thumbnails(frame)
    # Verdict and scores before the (long) title, so they are visible in a half-width column.
    columns = ["thumbnail", "posting_id", "matched", "rule", "similarity", *scores, "title"]
    st.dataframe(
        shown[columns],
        hide_index=True,
        width="stretch",
        row_height=common.THUMB_ROW_HEIGHT,
        height=common.table_height(len(shown)),
        column_config=common.score_columns(shown),
    )


def _show_item(
    store: Store, index: int, item: NewItem, settings: MatchSettings, image_models: dict
) -> None:
    try:
        item.validate()
    except SameSameError as exc:
        message = str(exc)
        st.error(message if message.startswith(item.name) else f"{item.name}: {message}")
        return
    with st.container(border=True):
        picture, details = st.columns([1, 4])
        picture.image(item.image or resources.placeholder(), width="stretch")
        details.markdown(f"#### {item.name}")
        details.markdown(f"Title: **{item.title}**" if item.title.strip() else "No title given.")
        pipes = common.pipelines()
        ready = {p.name: p.readiness(store, settings) for p in pipes}
        answers = {
            p.name: _query(store, item, p, settings, *image_models[p.name][:2])
            for p in pipes
            if ready[p.name].ready
        }
        copies = _copies(store, item, settings, image_models, answers)
        if copies:
            details.warning(
                "This photo is already in the catalog as "
                + ", ".join(f"**{c.posting_id}** ({c.evidence})" for c in copies)
                + ".",
                icon=":material/content_copy:",
            )
        details.button(
            "Add to catalog",
            key=f"add:{index}:{_item_key(item)}",
            icon=":material/add:",
            on_click=_add,
            args=(str(store.path), item),
        )
        for column, pipe in zip(st.columns(len(pipes)), pipes, strict=True):
            _, _, note = image_models[pipe.name]
            with column:
                st.markdown(f"**{pipe.title}**")
                readiness = ready[pipe.name]
                if not readiness.ready:
                    st.caption(f"{readiness.reason} {readiness.action or ''}".strip())
                    continue
                if note:
                    st.caption(note)
                common.in_sample_note(store, pipe)
                frame, notices = answers[pipe.name]
                for notice in notices:
                    st.caption(f":material/info: {notice}")
                _show_results(frame, pipe.name)


def main() -> None:
    st.title("Compare a new item")
    st.caption(
        "Upload one or more product photos and/or type a title: SameSame lists the catalog "
        "postings each pipeline calls the same product."
    )
    common.show_flashes()
    with st.form("compare_form"):
        files = st.file_uploader(
            "Product photos", type=IMAGE_TYPES, accept_multiple_files=True, key="compare_files"
        )
        title = st.text_input("Title", key="compare_title", placeholder="e.g. Sampo Lifebuoy 170ml")
        submitted = st.form_submit_button("Find matches", type="primary", icon=":material/search:")
    if submitted:
        if files:
            items = [NewItem(title, f.getvalue(), name=f.name) for f in files]
        else:
            items = [NewItem(title, None, name="typed title")]
        st.session_state[ITEMS_KEY] = items
    items: list[NewItem] = st.session_state.get(ITEMS_KEY, [])
    if not items:
        return
    with common.open_store() as store:
        if store.count_postings() == 0:
            st.info("The catalog is empty: import a catalog on the Catalog page first.")
            return
        settings = common.load_settings(store)
        usable_images = False
        for item in items:
            try:
                item.validate()
                usable_images = usable_images or bool(item.image)
            except SameSameError:
                pass  # reported next to the item below
        image_models = _image_models(store, settings, usable_images)
        for index, item in enumerate(items):
            _show_item(store, index, item, settings, image_models)


common.run_page(main)
