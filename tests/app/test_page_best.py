"""The learned best pipeline in the app: training on the Embed page, its column on Browse,
Compare and Evaluate."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from core import evaluation, matching, models
from core.pipelines.best import catalog_training
from core.settings import MatchSettings
from core.store import Store
from tests.app.helpers import button, card_ids, open_page, open_tab, texts


@pytest.fixture(scope="module")
def trained_demo_model(prepared_home, tmp_path_factory) -> Path:
    """The best matcher trained once on a copy of the prepared demo database."""
    folder = tmp_path_factory.mktemp("best_demo")
    shutil.copy2(prepared_home.path / "demo.db", folder / "demo.db")
    with Store(folder / "demo.db") as store:
        catalog_training.train_best_model(store, MatchSettings(), folder / "model")
    return folder / "model"


@pytest.fixture
def demo_with_best(demo_db: Path, trained_demo_model: Path) -> Path:
    with Store(demo_db) as store:
        target = models.best_dir(store)
    shutil.copytree(trained_demo_model, target)
    return demo_db


@pytest.mark.slow
def test_training_on_the_embed_page_saves_a_model_and_matching_uses_it(app, demo_db):
    open_page(app, "embed")
    assert "No trained model yet." in texts(app.caption)
    assert button(app, "Match now: best").disabled
    button(app, "Train best matcher").click().run()

    assert not app.exception
    assert not app.error, texts(app.error)
    [message] = texts(app.success)
    with Store(demo_db) as store:
        info = models.best_model_info(models.best_dir(store))
        assert models.best_is_current(store, models.best_dir(store))
    assert message.startswith(f"Trained the best matcher on {info['postings']:,} postings")
    assert f"out-of-fold F1 {info['oof_f1']:.3f}" in message
    assert any(c.startswith("Trained ") and "out-of-fold F1" in c for c in texts(app.caption))

    button(app, "Match now: best").click().run()
    assert not app.exception
    with Store(demo_db) as store:
        result = matching.stored_result(store, "best")
        f1 = evaluation.evaluate_result(store, result)["f1"]
        hash_only = matching.run_pipeline(store, "baseline", save=False)
        baseline_f1 = evaluation.evaluate_result(store, hash_only)["f1"]
    assert any(s.startswith(f"best: {len(result.pairs):,} pairs") for s in texts(app.success))
    # In-sample, so only a sanity bound: learning from the labels beats the fixed rules.
    assert f1 > baseline_f1


def test_browse_without_a_model_points_to_training(app, demo_db):
    open_page(app, "browse")
    app.selectbox(key="sidebar_pipeline").set_value("best").run()

    assert any("The best pipeline has no stored matches" in i for i in texts(app.info))
    assert texts(app.warning)[0].startswith(
        "**The best pipeline has no matches for this catalog yet — run it**"
    )
    assert any("Train the best matcher" in link.label for link in app.get("page_link"))


@pytest.mark.slow
def test_compare_scores_a_typed_title_with_the_trained_model(app, demo_with_best):
    with Store(demo_with_best) as store:
        row = store.postings().iloc[11]
    open_page(app, "compare")
    app.text_input(key="compare_title").set_value(row["title"])
    button(app, "Find matches").click().run()

    assert not app.exception
    assert not app.error, texts(app.error)
    # A trained model makes best the most accurate ready pipeline: it leads.
    assert any("says **Best" in s for s in texts(app.success))
    cards = card_ids(app)
    assert row["posting_id"] in cards
    evidence = [c for c in texts(app.caption) if "matched on" in c or "no rule passed" in c]
    sure = [
        int(re.search(r"(\d+)% likely the same product \(the learned", c).group(1))
        for c in evidence
    ]
    # The posting whose title was typed is matched, with a high probability.
    own = sure[cards.index(row["posting_id"])]
    assert own > 50 and "matched on learned model" in evidence[cards.index(row["posting_id"])]
    # Cards run from the most probable down; the most probable are the same product (other
    # sellers' postings of it may rank above the one whose title was typed).
    assert sure == sorted(sure, reverse=True)
    with Store(demo_with_best) as store:
        groups = store.postings().set_index("posting_id")["label_group"]
    assert (groups[cards[:3]] == row["label_group"]).all()
    open_tab(app, "compare_tab_0", "Compare pipelines")
    table = next(d.value for d in app.dataframe if "best" in d.value.columns)
    assert table.set_index("posting_id").at[row["posting_id"], "best"].startswith("✔")


@pytest.mark.slow
def test_evaluate_shows_best_metrics_as_in_sample(app, demo_with_best):
    with Store(demo_with_best) as store:
        expected = evaluation.evaluate_result(store, matching.run_pipeline(store, "best"))
    open_page(app, "evaluate")

    assert not app.exception
    assert any(m.value == f"{expected['f1']:.3f}" for m in app.metric)
    assert any("In-sample" in c for c in texts(app.caption))
    assert "Download best submission.csv" in [b.label for b in app.get("download_button")]
