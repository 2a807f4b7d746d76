"""One pipeline throughout: the sidebar's one selector, the chosen pipeline named at the top of
every page and used by Browse, Compare, the clusters, Review and the downloads, and the banner
that says at once (in the settings' labels) that the matches are from the old settings, with
the re-run button in it."""

from __future__ import annotations

from core import matching
from core.pipeline_choice import chosen_by_hand
from core.store import Store
from tests.app.helpers import button, card_ids, open_page, open_tab, run_pipelines, texts

PAGES = ("catalog", "embed", "browse", "review", "compare", "evaluate", "settings")
BANNER = "**Matches are from the old settings — re-run**"


def _named(at) -> str:
    [line] = [c for c in texts(at.caption) if c.startswith(":material/route: Pipeline: ")]
    return line


def _posting_with_different_answers(db) -> tuple[str, set[str], set[str]]:
    with Store(db) as store:
        sets = {p: matching.stored_result(store, p).match_sets() for p in ("baseline", "ensemble")}
    for pid, ensemble in sets["ensemble"].items():
        baseline = sets["baseline"][pid]
        if len(baseline) > 1 and baseline != ensemble:
            return pid, baseline - {pid}, ensemble - {pid}
    raise AssertionError("the demo's pipelines agree on every posting")


def test_the_chosen_pipeline_is_named_on_every_page_and_kept_with_the_catalog(app, demo_db):
    run_pipelines(demo_db)
    for page in PAGES:
        open_page(app, page)
        # By default the most accurate pipeline that has run.
        assert "Pipeline: **Ensemble: Siamese + title ratio**" in _named(app)
        assert app.selectbox(key="sidebar_pipeline").value == "ensemble"
        assert not any(BANNER in w for w in texts(app.warning))

    app.selectbox(key="sidebar_pipeline").set_value("baseline").run()
    assert not app.exception
    with Store(demo_db) as store:
        assert chosen_by_hand(store) == "baseline"
    for page in PAGES:
        open_page(app, page)
        assert "Pipeline: **Baseline: MobileNet + TF-IDF**" in _named(app)


def test_browse_cluster_review_and_downloads_use_the_chosen_pipeline(app, demo_db):
    run_pipelines(demo_db)
    pid, baseline, ensemble = _posting_with_different_answers(demo_db)
    open_page(app, "browse")
    app.selectbox(key="sidebar_pipeline").set_value("baseline").run()
    app.selectbox(key="browse_posting").set_value(pid).run()

    assert set(card_ids(app)) == baseline != ensemble
    assert app.tabs[0].label == f"Matches ({len(baseline)})"
    assert any(
        "Found by **Baseline: MobileNet + TF-IDF**, the chosen" in c for c in texts(app.caption)
    )
    assert any("baseline pipeline's stored matches" in c for c in texts(app.caption))
    # The cluster shown first is the chosen pipeline's (it used to be the baseline's always).
    app.selectbox(key="sidebar_pipeline").set_value("ensemble").run()
    open_tab(app, "browse_tab", "Cluster")
    assert [t.label for t in app.tabs][4].startswith("ensemble cluster (")
    assert any("ensemble pipeline's stored matches" in c for c in texts(app.caption))

    open_page(app, "review")
    app.selectbox(key="sidebar_pipeline").set_value("baseline").run()
    app.segmented_control(key="review_mode").set_value("Random sample of matches").run()
    answer = next(m.value for m in app.markdown if m.value.startswith("### :"))
    assert answer.endswith("— the baseline pipeline")


def test_compare_answers_with_the_chosen_pipeline(app, demo_db):
    run_pipelines(demo_db)
    with Store(demo_db) as store:
        title = store.postings().iloc[3]["title"]
    open_page(app, "compare")
    app.selectbox(key="sidebar_pipeline").set_value("baseline").run()
    app.text_input(key="compare_title").set_value(title)
    button(app, "Find matches").click().run()

    assert not app.exception
    assert any("says **Baseline: MobileNet + TF-IDF** (the chosen" in s for s in texts(app.success))


def test_a_changed_setting_shows_the_banner_at_once_with_the_rerun_button(app, demo_db):
    run_pipelines(demo_db, "ensemble")
    open_page(app, "settings")
    field = next(n for n in app.number_input if n.label == "Title ratio >")
    field.set_value(0.6)
    button(app, "Save settings").click().run()

    assert not app.exception
    # At once, on the page where the setting changed: no re-run needed to see it.
    [banner] = [w for w in texts(app.warning) if BANNER in w]
    assert "Title ratio > 0.55 → 0.6" in banner
    assert "ensemble_text_ratio" not in " ".join(texts(app.warning) + texts(app.success))
    assert "Title ratio >" in texts(app.success)[0]
    # Every page shows it until the pipeline runs again, from the button in the banner.
    open_page(app, "browse")
    assert any(BANNER in w for w in texts(app.warning))
    button(app, "Re-run ensemble").click().run()
    assert not app.exception
    assert texts(app.success)[0].startswith("ensemble: ")
    assert not any(BANNER in w for w in texts(app.warning))
    with Store(demo_db) as store:
        assert store.match_run("ensemble")["settings"]["ensemble_text_ratio"] == 0.6


def test_a_setting_the_chosen_pipeline_does_not_read_needs_no_rerun(app, demo_db):
    run_pipelines(demo_db, "ensemble")
    with Store(demo_db) as store:
        store.save_settings(store.load_settings().replace(baseline_text_cosine=0.3))
    open_page(app, "browse")
    assert not app.warning


def test_choosing_a_pipeline_that_has_not_run_offers_to_run_it(app, demo_db):
    run_pipelines(demo_db, "ensemble")
    open_page(app, "browse")
    app.selectbox(key="sidebar_pipeline").set_value("baseline").run()

    assert texts(app.warning)[0].startswith(
        "**The baseline pipeline has no matches for this catalog yet — run it**"
    )
    button(app, "Run baseline now").click().run()
    assert not app.exception
    assert texts(app.success)[0].startswith("baseline: ")
    assert any("Found by **Baseline" in c for c in texts(app.caption))
