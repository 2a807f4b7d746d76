"""Evaluate page: stored metrics, threshold recompute, the F1 curve, worst postings, download."""

from __future__ import annotations

from streamlit.proto.Metric_pb2 import Metric

from core import evaluation, matching
from core.store import Store
from tests.app.helpers import assert_table_fits, button, open_page, run_pipelines, texts


def _metrics(at) -> list[tuple[str, str]]:
    return [(m.label, m.value) for m in at.metric]


def test_stored_metrics_match_the_evaluation(app, demo_db):
    run_pipelines(demo_db)
    with Store(demo_db) as store:
        expected = {
            p: evaluation.evaluate_result(store, matching.stored_result(store, p))
            for p in ("baseline", "ensemble")
        }
    open_page(app, "evaluate")
    assert not app.error, texts(app.error)
    shown = _metrics(app)
    assert shown[:3] == [
        ("F1", f"{expected['baseline']['f1']:.3f}"),
        ("Precision", f"{expected['baseline']['precision']:.3f}"),
        ("Recall", f"{expected['baseline']['recall']:.3f}"),
    ]
    assert shown[3] == ("F1", f"{expected['ensemble']['f1']:.3f}")
    # Worst postings first, and a submission file per pipeline.
    worst = next(d.value for d in app.dataframe if "f1" in d.value.columns)
    assert worst["f1"].is_monotonic_increasing
    assert worst["f1"].iloc[0] < expected["baseline"]["f1"]
    labels = [b.label for b in app.get("download_button")]
    assert labels == ["Download baseline submission.csv", "Download ensemble submission.csv"]


def test_recompute_with_other_thresholds_shows_new_metrics(app, demo_db):
    run_pipelines(demo_db)
    with Store(demo_db) as store:
        settings = store.load_settings().replace(baseline_text_cosine=0.3)
        trial = evaluation.evaluate_result(
            store, matching.run_pipeline(store, "baseline", settings, save=False)
        )
    open_page(app, "evaluate")
    slider = next(s for s in app.slider if s.label == "Title TF-IDF cosine ≥")
    slider.set_value(0.3)
    button(app, "Recompute").click().run()

    assert not app.exception
    values = _metrics(app)
    # Stored (2 pipelines × 3) first, then the recomputed ones.
    assert values[6] == ("F1", f"{trial['f1']:.3f}")
    with Store(demo_db) as store:
        assert store.load_settings().baseline_text_cosine == 0.5  # nothing saved yet
    button(app, "Save these thresholds as this catalog's settings").click().run()
    with Store(demo_db) as store:
        assert store.load_settings().baseline_text_cosine == 0.3


def test_f1_curve_over_the_text_threshold(app):
    open_page(app, "evaluate")
    app.selectbox(key="curve_threshold").set_value("baseline_text_cosine").run()
    button(app, "Draw the curve").click().run()
    assert not app.exception
    [best] = [c.value for c in app.caption if c.value.startswith("Best F1")]
    assert "Title TF-IDF cosine" in best
    assert "At the current setting (0.5) F1 is" in best
    assert app.get("vega_lite_chart")


def test_image_threshold_without_vectors_says_the_curve_is_flat(app):
    open_page(app, "evaluate")
    app.selectbox(key="curve_threshold").set_value("baseline_image_cosine").run()
    assert not app.exception
    [warning] = [w for w in texts(app.warning) if "no image vectors" in w]
    assert "Embed page" in warning


def test_catalog_without_labels_says_so(app, samesame_home):
    bare = samesame_home / "catalogs" / "bare.db"
    with Store(bare) as store:
        store.upsert_postings(
            [
                {
                    "posting_id": f"p{i}",
                    "title": f"Gula pasir {i} kg",
                    "title_norm": f"gula pasir {i} kg",
                    "image_status": "none",
                    "source": "catalog",
                }
                for i in range(3)
            ]
        )
    app.run()
    app.sidebar.selectbox(key="sidebar_catalog").set_value(str(bare)).run()
    open_page(app, "evaluate")
    assert "no label_group column" in texts(app.info)[0]
    assert not app.metric


def test_catalog_without_labels_is_estimated_from_verdicts(app, demo_db, samesame_home):
    """The demo without its labels: a reviewer's verdicts on a random sample of the baseline's
    matches give its precision, with an interval and how many more reviews narrow it."""
    from core.catalog import import_catalog
    from core.review_queue import match_sample
    from tests.app.helpers import demo_rows, write_catalog

    rows = demo_rows(samesame_home, 200)
    labels = {row["posting_id"]: row["label_group"] for row in rows}
    for row in rows:
        row.pop("label_group")
    csv = write_catalog(samesame_home / "unlabelled.csv", rows)
    bare = samesame_home / "catalogs" / "unlabelled.db"
    with Store(bare) as store:
        import_catalog(store, csv, samesame_home / "demo" / "images")
        matching.run_pipeline(store, "baseline")
        sample = match_sample(store, "baseline", size=12)
        for pair in sample.itertuples():
            verdict = "same" if labels[pair.left] == labels[pair.right] else "different"
            store.save_review(pair.left, pair.right, verdict, chosen="sample")
        same = sum(labels[p.left] == labels[p.right] for p in sample.itertuples())
    app.run()
    app.sidebar.selectbox(key="sidebar_catalog").set_value(str(bare)).run()
    open_page(app, "evaluate")

    assert "estimated from your verdicts" in texts(app.info)[0]
    [table] = [d.value for d in app.dataframe if "measure" in d.value.columns]
    precision = table[(table["pipeline"] == "baseline") & (table["measure"] == "precision")]
    assert precision["estimate"].iloc[0] == f"{same / 12:.0%}"
    assert precision["from"].iloc[0] == "12 pair(s)"
    assert precision["for ±5 points"].iloc[0].endswith(" more")
    assert precision["note"].iloc[0] == ""


def test_the_demo_tells_a_newcomer_that_the_untrained_rules_score_low(app, demo_db):
    run_pipelines(demo_db)
    with Store(demo_db) as store:
        f1 = {
            p: evaluation.evaluate_result(store, matching.stored_result(store, p))["f1"]
            for p in ("baseline", "ensemble")
        }
    open_page(app, "evaluate")

    notes = [i for i in texts(app.info) if "expected on the demo" in i]
    assert notes == [
        f"F1 {f1['baseline']:.2f} (baseline) and {f1['ensemble']:.2f} (ensemble) are expected on "
        "the demo: the untrained rules' thresholds were set on real Shopee photos and titles, "
        "and the demo's drawn photos and made-up titles fool them. Train the best matcher on "
        "the Embed page: it learns from the demo's labels (out-of-fold F1 about 0.88 here)."
    ]


def test_unchanged_figures_show_no_change_not_a_green_gain(app, demo_db):
    run_pipelines(demo_db)
    open_page(app, "evaluate")
    button(app, "Recompute").click().run()  # the same thresholds: the same figures

    assert not app.exception
    tried = app.metric[6:]
    assert len(tried) == 6
    assert {m.delta for m in tried} == {"no change"}
    assert not any(m.delta.startswith("+") for m in tried)
    # Grey, with no arrow up: nothing reads as a gain.
    assert {(m.proto.color, m.proto.direction) for m in tried} == {
        (Metric.MetricColor.GRAY, Metric.MetricDirection.NONE)
    }


def test_the_worst_postings_table_shows_the_photos_and_fits(app, demo_db):
    run_pipelines(demo_db)
    open_page(app, "evaluate")
    worst = next(d for d in app.dataframe if "f1" in d.value.columns)
    columns = assert_table_fits(worst)
    assert columns["thumbnail"]["label"] == "photo"
