"""Browse page: a posting's matches from both pipelines, running a missing one, reviews, groups."""

from __future__ import annotations

from core import matching
from core.store import Store
from core.text import display_title
from tests.app.helpers import button, open_page, run_pipelines, texts


def _posting_with_matches(db) -> tuple[str, dict[str, set[str]]]:
    """A posting both pipelines matched with something, and each pipeline's matches of it."""
    with Store(db) as store:
        results = {p: matching.stored_result(store, p) for p in ("baseline", "ensemble")}
    sets = {p: r.match_sets() for p, r in results.items()}
    pid = next(
        p for p in sets["baseline"] if len(sets["baseline"][p]) > 1 and len(sets["ensemble"][p]) > 1
    )
    return pid, {p: s[pid] - {pid} for p, s in sets.items()}


def _match_tables(at):
    return [d.value for d in at.dataframe if "rule" in d.value.columns]


def test_selected_posting_shows_both_pipelines_matches(app, demo_db):
    run_pipelines(demo_db)
    pid, expected = _posting_with_matches(demo_db)
    open_page(app, "browse")
    app.selectbox(key="browse_posting").set_value(pid).run()

    assert not app.exception
    baseline, ensemble = _match_tables(app)
    assert set(baseline["posting_id"]) == expected["baseline"]
    assert set(ensemble["posting_id"]) == expected["ensemble"]
    # Per-pair scores and the rule that fired come from the stored pairs.
    assert {"tfidf_cosine", "hash_distance"} <= set(baseline.columns)
    assert {"text_ratio", "hash_distance"} <= set(ensemble.columns)
    assert set(baseline["rule"]) <= {"hash", "text", "hash+text", "image", "image+text"}
    with Store(demo_db) as store:
        title = display_title(store.posting(pid)["title"])
        label = store.posting(pid)["label_group"]
    assert any(title in m.value for m in app.markdown)
    # Gallery tabs: each pipeline's cluster (how it was formed, in words) plus the labels.
    labels = [t.label for t in app.tabs]
    assert any(t.startswith("baseline cluster (") for t in labels)
    assert any("postings" in c or "No other posting" in c for c in texts(app.caption))
    assert any(t.startswith(f"labelled group {label} (") for t in labels)


def test_missing_matches_offer_a_run_button(app, demo_db):
    open_page(app, "browse")
    assert "The baseline pipeline has no stored matches" in texts(app.info)[0]
    button(app, "Run baseline now").click().run()

    assert not app.exception
    assert "baseline:" in texts(app.success)[0]
    with Store(demo_db) as store:
        pairs = store.match_counts()["baseline"]
    assert f"{pairs:,} pairs" in texts(app.success)[0]
    assert len(_match_tables(app)) + len(app.info) >= 1  # a table, or "no match" for this one


def test_review_buttons_store_a_verdict(app, demo_db):
    run_pipelines(demo_db)
    pid, expected = _posting_with_matches(demo_db)
    other = sorted(expected["baseline"])[0]
    open_page(app, "browse")
    app.selectbox(key="browse_posting").set_value(pid).run()

    app.button(key=f"same:{pid}:{other}").click().run()
    assert not app.exception
    with Store(demo_db) as store:
        reviews = store.reviews()
    assert reviews[["left_id", "right_id", "verdict"]].values.tolist() == [
        [*sorted((pid, other)), "same"]
    ]
    assert any("✔ same" in m.value for m in app.markdown)
    baseline = _match_tables(app)[0]
    assert baseline.set_index("posting_id").at[other, "verdict"] == "same"

    app.button(key=f"different:{pid}:{other}").click().run()
    with Store(demo_db) as store:
        assert store.reviews()["verdict"].tolist() == ["different"]


def test_large_catalog_is_narrowed_by_a_search_first(app, samesame_home):
    big = samesame_home / "catalogs" / "big.db"
    with Store(big) as store:
        store.upsert_postings(
            [
                {
                    "posting_id": f"p{i:05d}",
                    "title": f"Kopi bubuk {i} gram",
                    "title_norm": f"kopi bubuk {i} gram",
                    "image_status": "none",
                    "source": "catalog",
                }
                for i in range(2_500)
            ]
        )
    app.run()
    app.sidebar.selectbox(key="sidebar_catalog").set_value(str(big)).run()
    open_page(app, "browse")
    assert len(app.selectbox(key="browse_posting").options) == 2_000
    assert "2,500 postings match" in " ".join(texts(app.caption))

    app.text_input(key="browse_search").set_value("bubuk 1234 ").run()
    assert not app.exception
    assert app.selectbox(key="browse_posting").options == ["p01234 · Kopi bubuk 1234 gram"]
    assert any("Kopi bubuk 1234 gram" in m.value for m in app.markdown)
