"""One pipeline throughout (`core.pipeline_choice`): the sidebar's selector, the line naming
the chosen pipeline at the top of every page, and the banner that says, as soon as a setting
or the pipeline changes, that its matches are not those it would compute now, with the button
that runs it again."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.errors import SameSameError
from core.matching import run_pipeline
from core.pipeline_choice import RunState, choose_pipeline, chosen_pipeline, run_state
from core.pipelines import Pipeline, get_pipeline, most_accurate_first
from core.settings import MatchSettings
from core.store import Store
from ui import common

WIDGET_KEY = "sidebar_pipeline"


def _settings(store: Store) -> MatchSettings:
    """The catalog's settings, the defaults when the stored ones no longer validate (the page
    itself says so, once)."""
    try:
        return store.load_settings()
    except SameSameError:
        return MatchSettings()


def _choose(db_path: str) -> None:
    with Store(db_path) as store:
        choose_pipeline(store, st.session_state[WIDGET_KEY])


def sidebar_selector(db_path: Path) -> None:
    """The one selector of the pipeline every page answers with (call inside ``st.sidebar``);
    the choice is kept with the catalog."""
    try:
        with Store(db_path) as store:
            chosen = chosen_pipeline(store, _settings(store)).name
            ran = {p.name for p in most_accurate_first() if store.match_run(p.name)}
    except SameSameError:
        return  # the catalog switcher above says what is wrong with the database
    names = [p.name for p in most_accurate_first()]
    # Keep the widget in step with the catalog's stored choice (another catalog, another tab).
    st.session_state[WIDGET_KEY] = chosen
    st.selectbox(
        "Pipeline",
        names,
        key=WIDGET_KEY,
        format_func=lambda n: get_pipeline(n).title + ("" if n in ran else " (not run yet)"),
        on_change=_choose,
        args=(str(db_path),),
        help="The pipeline every page answers with: Browse, Compare, the clusters, Review "
        "and the downloads. By default the most accurate one that has run on this catalog.",
    )


def header(store: Store, settings: MatchSettings | None = None) -> Pipeline:
    """Name the chosen pipeline at the top of a page, with the banner when its matches are
    old or missing; returns the pipeline."""
    settings = settings or _settings(store)
    pipe = chosen_pipeline(store, settings)
    st.caption(
        f":material/route: Pipeline: **{pipe.title}** — every page answers with it "
        "(change it in the sidebar)."
    )
    if store.count_postings():
        state = run_state(store, pipe.name, settings)
        if not state.current:
            banner(store, pipe, settings, state)
    common.show_flashes(place="pipeline")
    return pipe


def banner(store: Store, pipe: Pipeline, settings: MatchSettings, state: RunState) -> None:
    """What is old about the pipeline's matches, and the button that runs it again (or what
    it needs first)."""
    with st.container(border=True, key="stale_banner"):
        st.warning(
            f"**{state.headline}**" + (f"  \n{state.details}" if state.details else ""),
            icon=":material/update:",
        )
        readiness = pipe.readiness(store, settings)
        if not readiness.ready:
            st.caption(readiness.reason)
            st.page_link(
                "pages/embed.py",
                label=readiness.action or "Prepare it on the Embed page",
                icon=":material/model_training:",
            )
            return
        label = f"Re-run {pipe.name}" if state.ran else f"Run {pipe.name} now"
        if st.button(label, key=f"rerun_{pipe.name}", type="primary", icon=":material/refresh:"):
            rerun(store, pipe, settings)


def rerun(store: Store, pipe: Pipeline, settings: MatchSettings) -> None:
    """Match the catalog again with the pipeline and the current settings, then show it."""
    with st.spinner(f"Matching the catalog with the {pipe.name} pipeline…"):
        result = run_pipeline(
            store, pipe.name, settings, stages=lambda stage: common.ProgressBar(stage)
        )
    common.flash(
        "success",
        f"{pipe.name}: {len(result.pairs):,} pairs in {result.seconds:.1f} s",
        place="pipeline",
    )
    st.rerun()
