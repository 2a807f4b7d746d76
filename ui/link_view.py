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
from core.store import Store
from ui import common

LINK_KEY = "compare_links"


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
        ready = [p.name for p in most_accurate_first() if p.readiness(store, settings).ready]
        if not ready:
            st.info("No pipeline is ready for this catalog yet (see the Embed page).")
            return
        chosen = chosen_pipeline(store, settings).name
        pipeline = st.selectbox(
            "Pipeline",
            ready,
            index=ready.index(chosen) if chosen in ready else 0,
            key="link_pipeline",
        )
        if st.button("Link the catalogs", type="primary", icon=":material/link:"):
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
                return
            bar.empty()
            st.session_state[LINK_KEY] = {
                "catalog": str(current),
                "against": str(against),
                "pipeline": pipeline,
                "links": links,
            }
    done = st.session_state.get(LINK_KEY)
    if not done or done["catalog"] != str(current) or done["against"] != str(against):
        return
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
