"""Compare page: upload photos and/or type a title, see the catalog postings the chosen pipeline
(the one every page answers with) calls the same product (cards, side by side, every pipeline
compared), and optionally add the item to the catalog."""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import streamlit as st

from core.best_queries import slow_first_query
from core.copies import catalog_copies
from core.errors import SameSameError
from core.pipeline_choice import chosen_pipeline
from core.pipelines import Pipeline, get_pipeline
from core.query import NewItem, add_to_catalog, query_item
from core.query_models import ImageEvidence, image_evidence
from core.settings import MatchSettings, data_dir
from core.store import Store
from ui import common, link_view, match_view, pipeline_bar, resources

ITEMS_KEY = "compare_items"
RESULTS_KEY = "compare_results"
IMAGE_TYPES = ["jpg", "jpeg", "png", "webp"]
TOP_N = 10
#: Title scores, left out of the evidence words when no title was typed.
TITLE_SCORES = ("tfidf_cosine", "text_ratio", "char_cosine")


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
) -> dict[str, ImageEvidence]:
    """Per pipeline: (embedder, stored model, note), models from this process's caches."""

    def siamese(folder, version: str, settings: MatchSettings):
        return resources.siamese_embedder(
            str(folder), version, settings.batch_size, settings.inference_backend
        )

    return {
        pipe.name: image_evidence(
            store, settings, pipe, need_images, resources.image_embedder_for, siamese
        )
        for pipe in common.pipelines()
    }


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
        matcher = resources.best_matcher_of(store) if pipe.needs_model else None
        with st.spinner(
            f"{pipe.name}: scoring the catalog once for questions about new items (only the "
            "first question takes this long)…"
            if slow_first_query(store, matcher, model)
            else f"{pipe.name}: comparing…",
            show_time=True,
        ):
            frame = query_item(
                store,
                item,
                pipe.name,
                settings,
                image_embedder=embedder,
                image_model=model,
                best_matcher=matcher,
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


def _lead(store: Store, pipe: Pipeline, frame: pd.DataFrame, notices: list[str], note) -> None:
    matched = int(frame["matched"].sum())
    if matched:
        st.success(
            f"{matched} catalog posting(s) are the same product, says **{pipe.title}** (the "
            "chosen pipeline, named at the top; the others are under *Compare pipelines*)."
        )
    else:
        st.info(f"No catalog posting passes the {pipe.name} rules; the closest ones are listed.")
    if note:
        st.caption(note)
    common.in_sample_note(store, pipe)
    for notice in notices:
        st.caption(f":material/info: {notice}")
    match_view.match_cards(frame, key=f"compare_cards_{pipe.name}_{id(frame)}")


def _not_ready(pipe: Pipeline, readiness) -> None:
    st.caption(f"**{pipe.name}**: {readiness.reason} {readiness.action or ''}".strip())


def _annotated(store: Store, item: NewItem, settings: MatchSettings, answers: dict) -> dict:
    """Each pipeline's answer with the verdict words and the evidence in words (title scores
    left out when no title was typed)."""
    annotated = {}
    for name, (frame, notices) in answers.items():
        pipe = get_pipeline(name)
        annotated[name] = (
            match_view.annotate(
                frame,
                pipe,
                settings,
                pipe.decision_threshold(store),
                without=() if item.title.strip() else TITLE_SCORES,
                store=store,
                own_title=item.title,
            ),
            notices,
        )
    return annotated


def _results(
    store: Store,
    index: int,
    item: NewItem,
    settings: MatchSettings,
    image_models: dict,
    ready: dict,
    answers: dict,
) -> None:
    """The chosen pipeline's answer, side by side, every pipeline compared."""
    pipes = common.pipelines()
    lead = chosen_pipeline(store, settings)
    if not answers:
        for pipe in pipes:
            _not_ready(pipe, ready[pipe.name])
        return
    annotated = _annotated(store, item, settings, answers)
    frame, notices = annotated.get(lead.name, (None, []))
    key = f"compare_{index}_{_item_key(item)[:12]}"
    count = "" if frame is None else f" ({int(frame['matched'].sum())})"
    # Only the open tab is drawn; choosing another reruns (see Browse).
    matches_tab, side_tab, pipelines_tab = st.tabs(
        [f"Matches{count}", "Side by side", "Compare pipelines"],
        key=f"compare_tab_{index}",
        on_change="rerun",
    )
    if frame is None:
        if matches_tab.open or side_tab.open:
            with matches_tab if matches_tab.open else side_tab:
                st.warning(
                    f"The {lead.name} pipeline (the chosen one) cannot answer yet: "
                    f"{ready[lead.name].reason} The others' answers are under *Compare "
                    "pipelines*; choose another pipeline in the sidebar to lead with it.",
                    icon=":material/route:",
                )
    elif matches_tab.open:
        with matches_tab:
            _lead(store, lead, frame, notices, image_models[lead.name][2])
    elif side_tab.open:
        with side_tab:
            match_view.side_by_side(
                {"label": item.name, "title": item.title, "image": item.image},
                frame,
                key=f"{key}_side",
            )
    if pipelines_tab.open:
        with pipelines_tab:
            match_view.pipelines_table(
                {p.name: annotated[p.name][0] for p in pipes if p.name in annotated}
            )
            for pipe in pipes:
                if not ready[pipe.name].ready:
                    _not_ready(pipe, ready[pipe.name])
                elif image_models[pipe.name][2]:
                    st.caption(f"**{pipe.name}**: {image_models[pipe.name][2]}")


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
        _results(store, index, item, settings, image_models, ready, answers)


def main() -> None:
    st.title("Compare a new item")
    st.caption(
        "Upload one or more product photos and/or type a title: SameSame lists the catalog "
        "postings each pipeline calls the same product. Or link a whole other catalog."
    )
    common.show_flashes()
    with common.open_store() as store:
        pipeline_bar.header(store)
    items_tab, catalog_tab = st.tabs(
        ["New items", "Another catalog"], key="compare_mode", on_change="rerun"
    )
    if catalog_tab.open:
        with catalog_tab:
            link_view.link_section()
        return
    with items_tab:
        _new_items()


def _new_items() -> None:
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
        usable, refused = [], []
        for index, item in enumerate(items):
            try:
                item.validate()
            except SameSameError:
                refused.append((index, item))
            else:
                usable.append((index, item))
        image_models = _image_models(store, settings, any(item.image for _, item in usable))
        # Files that cannot be compared are named first, above any results.
        for index, item in refused + usable:
            _show_item(store, index, item, settings, image_models)


common.run_page(main)
