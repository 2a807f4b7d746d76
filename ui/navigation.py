"""The app's pages, the sidebar menu that lists them, and the page runs Streamlit starts alone.

The pages live in ``pages/`` beside ``app.py``. Until a script has called ``st.navigation``,
Streamlit takes a folder of that name for a legacy multipage app: in a server's very first run
(and in every run of an AppTest) it lists the folder's file names in its own sidebar navigation
and runs a deep-linked page (``/browse``) on its own, without ``app.py``. Two things keep that
from ever showing:

- ``client.showSidebarNavigation = false`` (``.streamlit/config.toml``) hides Streamlit's own
  sidebar navigation, the legacy one and ``st.navigation``'s alike. The app registers its pages
  with ``st.navigation(position="hidden")`` and :func:`sidebar_menu` lists them as page links:
  the sidebar holds the app's page titles and nothing else from the first paint on.
- :func:`hand_over_to_app`, which every page calls before its body (``ui.common.run_page``):
  in a page run that ``app.py`` did not start, it runs ``app.py``, which registers the app's
  pages (ending the legacy mode for the whole server), draws the sidebar and runs the same
  page as its own; the page's outer run then ends. The run's widget events (a button pressed)
  reach the page as usual: nothing is rerun.
"""

from __future__ import annotations

import runpy
import threading

import streamlit as st
from streamlit.navigation.page import StreamlitPage
from streamlit.runtime.scriptrunner import get_script_run_ctx

#: (script, title, icon) of every page, in menu order; scripts are relative to app.py's folder.
PAGES = [
    ("pages/catalog.py", "Catalog", ":material/inventory_2:"),
    ("pages/embed.py", "Embed", ":material/memory:"),
    ("pages/browse.py", "Browse", ":material/view_comfy:"),
    ("pages/review.py", "Review", ":material/rule:"),
    ("pages/compare.py", "Compare", ":material/compare:"),
    ("pages/evaluate.py", "Evaluate", ":material/monitoring:"),
    ("pages/settings.py", "Settings", ":material/tune:"),
]

# Each session runs its script in a thread of its own.
_run = threading.local()


def navigation() -> StreamlitPage:
    """Register the app's pages (none listed by Streamlit: see the module's note) and return
    the page this run shows."""
    return st.navigation(
        [st.Page(path, title=title, icon=icon) for path, title, icon in PAGES],
        position="hidden",
    )


def sidebar_menu() -> None:
    """The pages as links, the current one highlighted (call inside ``st.sidebar``)."""
    for path, title, icon in PAGES:
        st.page_link(path, label=title, icon=icon)


def run(page: StreamlitPage) -> None:
    """Run the page ``navigation()`` chose, as app.py's own."""
    _run.by_app = True
    try:
        page.run()
    finally:
        _run.by_app = False


def hand_over_to_app() -> bool:
    """In a page run app.py did not start, run app.py (the server's main script), which shows
    this page; True when it did so and the page must not run its body again."""
    if getattr(_run, "by_app", False):
        return False
    runpy.run_path(get_script_run_ctx().main_script_path, run_name="__main__")
    return True
