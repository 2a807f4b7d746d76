"""Compare's "another catalog" tab: link the current catalog to another imported one (each
posting with the other catalog's postings that are the same product) and download the links."""

from __future__ import annotations

import tempfile
from pathlib import Path

import streamlit as st

from core.errors import SameSameError
from core.link import link_catalogs
from core.matching import Hooks
from core.pipeline_choice import chosen_pipeline
from core.pipelines import most_accurate_first
from core.settings import MatchSettings
from core.store import Store
from ui import common

LINK_KEY = "compare_links"


def _chosen_pipeline(store: Store, settings: MatchSettings) -> str | None:
    """The pipeline the user links with, among those ready (None, said, when none is)."""
    ready = [p.name for p in most_accurate_first() if p.readiness(store, settings).ready]
    if not ready:
        st.info("No pipeline is ready for this catalog yet (see the Embed page).")
        return None
    chosen = chosen_pipeline(store, settings).name
    return st.selectbox(
        "Pipeline",
        ready,
        index=ready.index(chosen) if chosen in ready else 0,
        key="link_pipeline",
    )


def _link(
    store: Store, against: Path, pipeline: str, settings: MatchSettings, current: Path
) -> bool:
    """Link the catalogs with a progress bar and keep the links in the session; False when
    linking failed (the error is shown instead)."""
    bar = st.progress(0.0, text=f"Linking with the {pipeline} pipeline…")

    def progress(done: int, total: int) -> None:
        bar.progress(done / max(1, total), text=f"Linking: {done:,} of {total:,}")

    try:
        with tempfile.TemporaryDirectory() as work, Store(against) as other:
            links = link_catalogs(
                store,
                other,
                pipeline,
                settings,
                Path(work),
                embed=False,  # the vectors already computed; hashes stand in for others
                hooks=Hooks(progress=lambda stage: progress),
            )
    except SameSameError as exc:
        bar.empty()
        st.error(str(exc))
        return False
    bar.empty()
    st.session_state[LINK_KEY] = {
        "catalog": str(current),
        "against": str(against),
        "pipeline": pipeline,
        "links": links,
    }
    return True


def _show_links(done: dict, current: Path, against: Path) -> None:
    """How many postings found a match, the CSV to download and the first linked postings."""
    links = done["links"]
    linked = int((links["matches"] != "").sum())
    st.success(
        f"{linked:,} of {len(links):,} postings of {common.catalog_label(current)} have a match "
        f"in {common.catalog_label(against)} ({done['pipeline']})."
    )
    st.download_button(
        "Download links.csv",
        links.to_csv(index=False),
        file_name=f"{common.catalog_label(current)}-{common.catalog_label(against)}-links.csv",
        mime="text/csv",
        icon=":material/download:",
    )
    st.dataframe(
        links[links["matches"] != ""].head(50),
        hide_index=True,
        width="stretch",
        column_config={
            "posting_id": st.column_config.TextColumn("posting (this catalog)", width=200),
            "matches": st.column_config.TextColumn("same product in the other", width="large"),
        },
    )


def link_section() -> None:
    """Link the current catalog with another imported one, and offer the links as a CSV."""
    st.caption(
        "For every posting of this catalog, the postings of another imported catalog that are "
        "the same product (price matching): posting_id,matches with this catalog's ids and "
        "the other's, space-separated, best first."
    )
    current = common.current_db()
    others = [p for p in common.known_databases() if p != current and p.is_file()]
    if not others:
        st.info("Import a second catalog on the Catalog page to link the two.")
        return
    against = st.selectbox(
        "Other catalog", others, format_func=common.catalog_label, key="link_against"
    )
    with common.open_store() as store:
        settings = common.load_settings(store)
        pipeline = _chosen_pipeline(store, settings)
        if pipeline is None:
            return
        clicked = st.button("Link the catalogs", type="primary", icon=":material/link:")
        if clicked and not _link(store, against, pipeline, settings, current):
            return
    done = st.session_state.get(LINK_KEY)
    if not done or done["catalog"] != str(current) or done["against"] != str(against):
        return
    _show_links(done, current, against)
