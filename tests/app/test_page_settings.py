"""Settings page: edits are validated and saved per database."""

from __future__ import annotations

from core.settings import MatchSettings
from core.store import Store
from tests.app.helpers import WEIGHTS, button, open_page, texts


def _widget(widgets, label: str):
    return next(w for w in widgets if w.label == label)


def test_saving_settings_persists_them_in_the_database(app, demo_db):
    open_page(app, "settings")
    _widget(app.number_input, "Title TF-IDF cosine ≥").set_value(0.42)
    _widget(app.selectbox, "MobileNet width (alpha)").set_value(0.25)
    _widget(app.text_input, "Weights folder").set_value(str(WEIGHTS))
    button(app, "Save settings").click().run()

    assert not app.exception
    assert not app.error, texts(app.error)
    # Changes are named by the labels the page shows, never by internal keys.
    assert texts(app.success)[0] == (
        "Settings saved (changed: Title TF-IDF cosine ≥, MobileNet width (alpha), Weights folder)."
    )
    with Store(demo_db) as store:
        saved = store.load_settings()
    assert saved.baseline_text_cosine == 0.42
    assert saved.image_alpha == 0.25
    assert saved.weights_dir == str(WEIGHTS)
    # The form shows what is stored on the next visit.
    assert _widget(app.number_input, "Title TF-IDF cosine ≥").value == 0.42


def test_missing_weights_folder_is_refused(app, demo_db, tmp_path):
    open_page(app, "settings")
    _widget(app.text_input, "Weights folder").set_value(str(tmp_path / "nowhere"))
    button(app, "Save settings").click().run()

    assert not app.exception
    assert "does not exist" in texts(app.error)[0]
    with Store(demo_db) as store:
        assert store.load_settings() == MatchSettings()


def test_reset_restores_the_defaults(app, demo_db):
    with Store(demo_db) as store:
        store.save_settings(MatchSettings(hash_max_distance=3))
    open_page(app, "settings")
    assert _widget(app.number_input, "Photo hash bits ≤").value == 3
    button(app, "Reset to defaults").click().run()

    assert _widget(app.number_input, "Photo hash bits ≤").value == 8
    with Store(demo_db) as store:
        assert store.load_settings() == MatchSettings()


def test_invalid_stored_settings_fall_back_with_a_warning(app, demo_db):
    with Store(demo_db) as store:
        store.set_setting("match_settings", {"image_alpha": 0.3})
    open_page(app, "settings")
    assert not app.exception
    assert "Stored settings are invalid" in texts(app.warning)[0]
    # Said once, by the page (the sidebar's pipeline selector and the header stay quiet).
    assert sum("Stored settings are invalid" in w for w in texts(app.warning)) == 1
    assert _widget(app.selectbox, "MobileNet width (alpha)").value == 1.0


def test_enter_in_a_field_does_not_save_the_form(app, demo_db):
    open_page(app, "settings")
    [form] = [f.proto.form for f in app.get("form") if f.proto.form.form_id == "settings_form"]
    # Streamlit submits a form on Enter unless told not to; the Save button still does.
    assert form.enter_to_submit is False
    assert [b.label for b in app.button if b.proto.is_form_submitter] == ["Save settings"]
