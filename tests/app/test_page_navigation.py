"""The app's first start, its sidebar, and navigation to every page."""

from __future__ import annotations

import json
import tomllib

import pytest

from core import workspace
from core.store import Store
from tests.app.helpers import PROJECT, new_app, open_page
from ui import navigation

PAGES = {
    "catalog": "Catalog",
    "embed": "Embed and match",
    "browse": "Browse matches",
    "review": "Review pairs",
    "compare": "Compare a new item",
    "evaluate": "Evaluate",
    "settings": "Settings",
}


def test_first_start_generates_and_imports_the_demo(prepared_home):
    assert not prepared_home.exceptions
    assert not prepared_home.errors
    # The first run shows the preparation's progress; once it is done the first page opens.
    assert any("preparing a **demo catalog**" in text for text in prepared_home.first_run)
    assert prepared_home.titles == ["Catalog"]
    with Store(prepared_home.path / "demo.db") as store:
        info = store.info()
    # The demo is labelled and every photo was usable.
    assert info["postings"] > 100
    assert info["images"]["ok"] == info["postings"] == info["hashes"]
    assert info["label_groups"] > 10


def test_sidebar_shows_current_catalog_and_counts(app, demo_db):
    assert app.sidebar.selectbox(key="sidebar_catalog").value == str(demo_db)
    with Store(demo_db) as store:
        postings = store.count_postings()
    captions = " ".join(c.value for c in app.sidebar.caption)
    assert f"{postings:,} postings" in captions
    assert str(demo_db) in captions


def test_device_badge_shows_tensorflow_device_once_detected(app):
    from ui import resources

    # The probe runs in the background so the first paint never waits for TensorFlow.
    resources.device_probe().wait(timeout=120)
    app.run()
    badges = [m.value for m in app.sidebar.markdown if "CPU" in m.value or "GPU" in m.value]
    assert badges, [m.value for m in app.sidebar.markdown]


@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_opens_without_error(app, page):
    open_page(app, page)
    assert app.title[0].value == PAGES[page]
    assert not app.error, [e.value for e in app.error]


def test_restart_reopens_the_last_used_database(app, samesame_home):
    other = samesame_home / "catalogs" / "other.db"
    with Store(other) as store:
        store.upsert_postings(
            [
                {
                    "posting_id": "p1",
                    "title": "Kopi Susu Gula Aren 1L",
                    "title_norm": "kopi susu gula aren 1l",
                    "image_status": "none",
                    "source": "catalog",
                }
            ]
        )
    app.run()  # the switcher lists databases found under the data folder
    app.sidebar.selectbox(key="sidebar_catalog").set_value(str(other)).run()
    assert not app.exception
    assert json.loads((samesame_home / "app_state.json").read_text())["last_db"] == str(other)

    restarted = new_app()
    restarted.run()
    assert restarted.sidebar.selectbox(key="sidebar_catalog").value == str(other)
    assert "1 postings" in " ".join(c.value for c in restarted.sidebar.caption)


def test_missing_remembered_database_falls_back_to_demo(samesame_home):
    (samesame_home / "app_state.json").write_text(
        json.dumps({"last_db": str(samesame_home / "gone.db")})
    )
    at = new_app()
    at.run()
    assert not at.exception
    assert at.sidebar.selectbox(key="sidebar_catalog").value == str(workspace.demo_db_path())


def test_sidebar_menu_lists_the_page_titles_only(app):
    links = app.sidebar.get("page_link")
    assert [link.label for link in links] == [title for _, title, _ in navigation.PAGES]
    # Streamlit's own sidebar navigation (file names before st.navigation) is switched off.
    config = tomllib.loads((PROJECT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["client"]["showSidebarNavigation"] is False


def test_a_page_streamlit_runs_alone_is_handed_to_app_py(monkeypatch):
    """AppTest starts every run in Streamlit's legacy pages/ mode, as a server's first run is:
    a deep link runs the page's script alone. The page hands the run to app.py, which shows
    it with the sidebar."""
    by_app = []
    hand_over_to_app = navigation.hand_over_to_app

    def spy() -> bool:
        by_app.append(getattr(navigation._run, "by_app", False))
        return hand_over_to_app()

    monkeypatch.setattr(navigation, "hand_over_to_app", spy)
    at = new_app()
    at.switch_page("pages/browse.py")
    at.run()

    assert by_app == [False, True]
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == PAGES["browse"]
    assert at.sidebar.selectbox(key="sidebar_catalog").value == str(workspace.demo_db_path())
