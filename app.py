"""SameSame's Streamlit entry point: page config, sidebar (catalog + device), navigation.

Run with ``streamlit run app.py`` (or ``samesame app``). Pages live in ``pages/`` and hold UI
only; the work is done by ``core``. Streamlit takes a ``pages/`` folder for its legacy multipage
app until ``st.navigation`` has run (file names in its own sidebar navigation, a deep-linked
page run without this script): ``ui.navigation`` says how configuration and the pages' first
call keep that from ever showing.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import streamlit as st

from core.errors import SameSameError
from core.store import Store
from core.workspace import demo_db_path
from ui import common, demo, navigation, pipeline_bar, resources, review_cache

ASSETS = Path(__file__).resolve().parent / "assets"


#: Streamlit's own "running" widget lives in the toolbar the minimal toolbar mode hides. This
#: badge shows while any run takes longer than a moment (quick reruns and the sidebar's polls
#: never flash it): the app marks its state on the stApp element.
RUNNING_BADGE = """<style>
[data-testid="stApp"][data-test-script-state="running"]::after {
  content: "Working…";
  position: fixed; top: 0.75rem; right: 1.5rem; z-index: 1000000;
  padding: 0.2rem 0.8rem; border-radius: 1rem;
  background: #e4572e; color: #fff; font-size: 0.875rem; font-weight: 600;
  box-shadow: 0 1px 4px rgba(0, 0, 0, 0.25);
  opacity: 0; animation: samesame-working 1.2s ease-in-out 0.8s infinite alternate;
}
@keyframes samesame-working { from { opacity: 1; } to { opacity: 0.55; } }
</style>"""


def _configure_logging() -> None:
    # Only the entry points configure logging; core modules just log.
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )


def _switch_catalog() -> None:
    common.set_current_db(Path(st.session_state["sidebar_catalog"]))


def _catalog_switcher() -> None:
    options = [str(p) for p in common.known_databases()]
    # Keep the widget in step with switches made elsewhere (Catalog page, imports).
    st.session_state["sidebar_catalog"] = str(common.current_db())
    st.selectbox(
        "Catalog",
        options,
        key="sidebar_catalog",
        format_func=lambda p: common.catalog_label(Path(p)),
        on_change=_switch_catalog,
        help="The database every page works on. Import new catalogs on the Catalog page.",
    )
    try:
        with Store(common.current_db()) as store:
            info = store.info()
    except SameSameError as exc:
        st.error(str(exc))
        return
    st.caption(
        f"{info['postings']:,} postings · {info['label_groups']:,} labelled groups  \n"
        f"`{common.current_db()}`"
    )


def _device_badge() -> None:
    probe = resources.device_probe()

    # Polls only while TensorFlow is still importing in the background; fragment reruns never
    # interrupt a running page (e.g. an embedding run).
    @st.fragment(run_every=2.0 if not probe.done else None)
    def badge() -> None:
        if not probe.done:
            st.badge("Detecting compute device…", icon=":material/hourglass_top:", color="gray")
        elif probe.error:
            st.badge(probe.error, icon=":material/error:", color="red")
        elif probe.result and probe.result.startswith("GPU"):
            st.badge(probe.result, icon=":material/bolt:", color="green")
        else:
            st.badge(probe.result or "CPU", icon=":material/developer_board:", color="blue")

    badge()


def main() -> None:
    st.set_page_config(
        page_title="SameSame",
        page_icon=str(ASSETS / "icon.svg"),
        layout="wide",
        initial_sidebar_state="expanded",
    )
    _configure_logging()
    st.logo(str(ASSETS / "logo.svg"), size="large")
    st.html(RUNNING_BADGE)

    db = common.current_db()
    if not db.is_file() and not common.is_demo(db):
        st.warning(f"The last catalog, {db}, is gone; showing the demo catalog instead.")
        common.set_current_db(demo_db_path())
        db = common.current_db()
    # Navigation first: while the demo is prepared on a first start, the sidebar already lists
    # the app's pages (and only them).
    page = navigation.navigation()
    with st.sidebar:
        navigation.sidebar_menu()
    if common.is_demo(db) and not st.session_state.get("demo_ready"):
        if not demo.ready():
            # The catalog is being written: no page (nor the sidebar's counts) may read it yet.
            with st.sidebar:
                _device_badge()
            st.stop()
        st.session_state["demo_ready"] = True

    with st.sidebar:
        _catalog_switcher()
        pipeline_bar.sidebar_selector(common.current_db())
        _device_badge()
    started = time.perf_counter()
    try:
        navigation.run(page)
    finally:
        _log_run_time(page.title, time.perf_counter() - started)
    _prefetch_review_queue()


def _prefetch_review_queue() -> None:
    # After the page has drawn, so the background work never holds up what a person sees.
    try:
        with Store(common.current_db()) as store:
            review_cache.prefetch(store)
    except SameSameError:
        pass  # the page has already said what is wrong with the catalog


def _log_run_time(page: str, seconds: float) -> None:
    """With SAMESAME_RUN_LOG set, one line per page run (page, seconds on the server): how
    benchmarks/bench_pages.py tells the server's share of a click from the browser's."""
    log = os.environ.get("SAMESAME_RUN_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(f"{page}\t{seconds:.4f}\n")


main()
