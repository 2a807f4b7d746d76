"""Browse page: a posting's matches under the most accurate ready pipeline, the pipelines
compared, running a missing one, reviews, close calls, side by side, clusters."""

from __future__ import annotations

import re

from core import matching
from core.pair_answers import pair_answers
from core.settings import MatchSettings
from core.store import Store
from core.text import display_title
from core.verdict_words import VERDICT_WORDS
from tests.app.helpers import (
    assert_table_fits,
    button,
    card_ids,
    demo_rows,
    import_small_catalog,
    open_page,
    open_tab,
    run_pipelines,
    texts,
)


def _posting_with_matches(db) -> tuple[str, dict[str, set[str]]]:
    """A posting both pipelines matched with something, and each pipeline's matches of it."""
    with Store(db) as store:
        results = {p: matching.stored_result(store, p) for p in ("baseline", "ensemble")}
    sets = {p: r.match_sets() for p, r in results.items()}
    pid = next(
        p for p in sets["baseline"] if len(sets["baseline"][p]) > 1 and len(sets["ensemble"][p]) > 1
    )
    return pid, {p: s[pid] - {pid} for p, s in sets.items()}


def _pipelines_table(at):
    """The "Compare pipelines" tab's table: one row per posting, one column per pipeline (a
    photo column large enough to see, no column cut off at the right)."""
    open_tab(at, "browse_tab", "Compare pipelines")
    shown = next(d for d in at.dataframe if "baseline" in d.value.columns)
    assert_table_fits(shown)
    return shown.value


def test_selected_posting_leads_with_the_most_accurate_pipeline(app, demo_db):
    run_pipelines(demo_db)
    pid, expected = _posting_with_matches(demo_db)
    open_page(app, "browse")
    app.selectbox(key="browse_posting").set_value(pid).run()

    assert not app.exception
    # No best model here: the ensemble (more accurate than the baseline) leads, one card each.
    assert set(card_ids(app)) == expected["ensemble"]
    assert app.tabs[0].label == f"Matches ({len(expected['ensemble'])})"
    assert any("Found by **Ensemble" in c for c in texts(app.caption))
    # Each card leads with its answer in words, then the evidence in words on one scale and
    # how likely, never a raw score ("title 0.62", "hash 3 bits apart").
    evidence = [c for c in texts(app.caption) if "matched on" in c]
    assert len(evidence) == len(expected["ensemble"])
    assert all(
        re.match(r"photos [a-z ]+ · titles [a-z ]+  \n\d+% likely the same", c) for c in evidence
    )
    assert all("calibrated on labelled pairs" in c for c in evidence)
    assert not any(re.search(r"\d\.\d|bits apart", c) for c in evidence)
    badges = [m.value for m in app.markdown if m.value.startswith("### :")]
    assert len(badges) == len(expected["ensemble"])
    words = [re.search(r"-badge\[(.+)\]", b).group(1) for b in badges]
    assert set(words) <= set(VERDICT_WORDS)
    # The words are the stored pairs' calibrated answers, card by card.
    with Store(demo_db) as store:
        stored = store.matches_of("ensemble", pid)
        settings = MatchSettings.from_dict(store.match_run("ensemble")["settings"])
        answers = pair_answers(stored, "ensemble", settings, store)
    by_id = dict(zip(stored["posting_id"], answers["answer"], strict=True))
    assert words == [by_id[c] for c in card_ids(app)]
    # Compare pipelines: a ✔ wherever a pipeline matched, in a column of its own.
    table = _pipelines_table(app).set_index("posting_id")
    for pipeline in ("baseline", "ensemble"):
        ticked = {p for p, mark in table[pipeline].items() if mark.startswith("✔")}
        assert ticked == expected[pipeline]
        marks = {mark[2:] for mark in table[pipeline] if mark}
        assert marks <= set(VERDICT_WORDS)  # the word, not a similarity
    with Store(demo_db) as store:
        title = display_title(store.posting(pid)["title"])
        label = store.posting(pid)["label_group"]
    assert any(title in m.value for m in app.markdown)
    # Cluster tab: each pipeline's cluster (how it was formed, in words) plus the labels.
    open_tab(app, "browse_tab", "Cluster")
    labels = [t.label for t in app.tabs]
    assert any(t.startswith("baseline cluster (") for t in labels)
    assert any("postings" in c or "No other posting" in c for c in texts(app.caption))
    assert any(t.startswith(f"labelled group {label} (") for t in labels)


def test_close_calls_are_marked(app, demo_db):
    from core.pipelines import get_pipeline
    from core.settings import MatchSettings

    run_pipelines(demo_db)
    with Store(demo_db) as store:
        result = matching.stored_result(store, "ensemble")
    close = get_pipeline("ensemble").close_calls(result.pairs, MatchSettings())
    assert 0 < close.sum() < len(close)  # the demo has both kinds
    pair = result.pairs[close].iloc[0]
    open_page(app, "browse")
    app.selectbox(key="browse_posting").set_value(pair["left"]).run()
    assert any("close call" in m.value for m in app.markdown)


def test_missing_matches_offer_a_run_button(app, demo_db):
    open_page(app, "browse")
    # Nothing ran: the chosen pipeline is the most accurate one that can run (no best model).
    assert "The ensemble pipeline has no stored matches" in texts(app.info)[0]
    assert texts(app.warning)[0].startswith(
        "**The ensemble pipeline has no matches for this catalog yet — run it**"
    )
    button(app, "Run ensemble now").click().run()

    assert not app.exception
    assert "ensemble:" in texts(app.success)[0]
    with Store(demo_db) as store:
        pairs = store.match_counts()["ensemble"]
    assert f"{pairs:,} pairs" in texts(app.success)[0]
    assert any("Found by **Ensemble" in c for c in texts(app.caption))
    assert not app.warning  # the matches are current: no banner
    # The others run from the pipelines' comparison.
    open_tab(app, "browse_tab", "Compare pipelines")
    button(app, "Run baseline now").click().run()
    assert "baseline:" in texts(app.success)[0]


def test_review_buttons_store_a_verdict(app, demo_db):
    run_pipelines(demo_db)
    pid, expected = _posting_with_matches(demo_db)
    other = sorted(expected["ensemble"])[0]
    open_page(app, "browse")
    app.selectbox(key="browse_posting").set_value(pid).run()

    app.button(key=f"same:{pid}:{other}").click().run()
    assert not app.exception
    with Store(demo_db) as store:
        reviews = store.reviews()
    assert reviews[["left_id", "right_id", "verdict"]].values.tolist() == [
        [*sorted((pid, other)), "same"]
    ]
    assert any("you said same" in m.value for m in app.markdown)

    app.button(key=f"different:{pid}:{other}").click().run()
    with Store(demo_db) as store:
        assert store.reviews()["verdict"].tolist() == ["different"]
    assert any("you said different" in m.value for m in app.markdown)
    # A verdict overrules the pipeline at once: no longer counted, its card last.
    assert app.tabs[0].label == f"Matches ({len(expected['ensemble']) - 1})"
    assert card_ids(app)[-1] == other
    assert any("1 you said are different (not counted)" in c for c in texts(app.caption))
    open_tab(app, "browse_tab", "Cluster")
    assert any("1 verdict(s) were given since" in c for c in texts(app.caption))


def test_side_by_side_highlights_the_shared_title_words(app, demo_db):
    run_pipelines(demo_db)
    pid, expected = _posting_with_matches(demo_db)
    open_page(app, "browse")
    app.selectbox(key="browse_posting").set_value(pid).run()
    open_tab(app, "browse_tab", "Side by side")
    first = app.selectbox(key=f"browse_side_{pid}_pick").value
    assert first in expected["ensemble"]
    assert any(f"`{pid}` (this posting)" in m.value for m in app.markdown)
    assert any(":green-background[" in m.value and f"`{first}`" in m.value for m in app.markdown)


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


def test_an_image_only_catalog_shows_photo_words_and_no_title_scores(app, grocery_dir, tmp_path):
    from core.catalog import import_catalog

    db = tmp_path / "grocery.db"
    with Store(db) as store:
        import_catalog(store, grocery_dir / "catalog.csv", grocery_dir / "images")
        matching.run_pipeline(store, "baseline", MatchSettings(hash_max_distance=16))
        pid = store.load_match_pairs("baseline")["left"].iloc[0]
    app.session_state["db_path"] = str(db)
    open_page(app, "browse")
    app.selectbox(key="browse_posting").set_value(pid).run()

    assert not app.exception
    # No titles in this catalog: the evidence is the photos' alone, in words ("title 0.00"
    # would read as evidence against), and each card still leads with its answer.
    evidence = [c for c in texts(app.caption) if "matched on" in c]
    assert evidence and all(
        re.match(r"photos [a-z ]+  \n\d+% likely the same", c) for c in evidence
    )
    assert not any("title" in c for c in evidence)
    badges = [m.value for m in app.markdown if m.value.startswith("### :")]
    assert len(badges) == len(evidence)
    assert all(re.search(r"-badge\[(Same|Probably same|Unsure|Different)\]", b) for b in badges)


def test_postings_without_a_title_read_no_title_not_a_dangling_dot(app, samesame_home, tmp_path):
    first = demo_rows(samesame_home, 1)[0]
    rows = [{**first, "posting_id": f"gd0001{i}", "title": ""} for i in range(3)]
    db = import_small_catalog(samesame_home, tmp_path / "photos.db", rows)
    run_pipelines(db, "baseline")
    app.session_state["db_path"] = str(db)
    open_page(app, "browse")

    posting = app.selectbox(key="browse_posting")
    assert posting.options == ["gd00010 (no title)", "gd00011 (no title)", "gd00012 (no title)"]
    assert not any(o.rstrip().endswith("·") for o in posting.options)
    open_tab(app, "browse_tab", "Side by side")
    assert app.selectbox(key="browse_side_gd00010_pick").options == [
        "1. gd00011 (no title)",
        "2. gd00012 (no title)",
    ]


def test_a_large_cluster_is_shown_a_page_at_a_time(app, samesame_home, tmp_path):
    rows = [{**r, "label_group": "one"} for r in demo_rows(samesame_home, 43)]
    db = import_small_catalog(samesame_home, tmp_path / "big.db", rows)
    app.session_state["db_path"] = str(db)
    open_page(app, "browse")
    open_tab(app, "browse_tab", "Cluster")

    pid = rows[0]["posting_id"]
    assert [t.label for t in app.tabs][4] == "labelled group one (43)"
    assert "Showing 1–36 of 43 postings; the other page(s) show the rest." in texts(app.caption)
    app.session_state[f"browse_cluster_{pid}_0_page"] = 2
    app.run()
    assert not app.exception
    assert "Showing 37–43 of 43 postings; the other page(s) show the rest." in texts(app.caption)
