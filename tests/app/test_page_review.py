"""Review page: the most telling pair first, verdicts with buttons (keys S/D/N/U), undo, a
random sample of matches and the precision it estimates."""

from __future__ import annotations

from core.review_queue import review_queue
from core.store import Store
from tests.app.helpers import (
    button,
    demo_rows,
    import_small_catalog,
    open_page,
    run_pipelines,
    texts,
)


def _shown_pair(app) -> tuple[str, str]:
    ids = [m.value.split("`")[1] for m in app.markdown if m.value.startswith("**`")]
    assert len(ids) == 2, [m.value for m in app.markdown]
    return ids[0], ids[1]


def test_without_matches_the_page_says_what_to_do(app, demo_db):
    open_page(app, "review")
    assert "nothing to review" in texts(app.info)[0]


def test_verdicts_skip_and_undo_walk_the_queue(app, demo_db):
    run_pipelines(demo_db)
    with Store(demo_db) as store:
        queue = review_queue(store)
    first = tuple(queue.iloc[0][["left", "right"]])
    second = tuple(queue.iloc[1][["left", "right"]])
    open_page(app, "review")
    assert _shown_pair(app) == first
    assert any(m.value.startswith("**Why this pair:** ") for m in app.markdown)
    assert [b.proto.shortcut.upper() for b in app.button if b.label == "Same product"] == ["S"]

    button(app, "Different").click().run()
    assert not app.exception
    with Store(demo_db) as store:
        reviews = store.reviews()
    assert reviews[["left_id", "right_id", "verdict", "chosen"]].values.tolist() == [
        [*sorted(first), "different", "queue"]
    ]
    assert _shown_pair(app) == second
    assert any("1 verdict(s) so far" in c for c in texts(app.caption))

    button(app, "Undo").click().run()
    with Store(demo_db) as store:
        assert store.reviews().empty
    assert _shown_pair(app) == first

    button(app, "Skip").click().run()
    assert _shown_pair(app) == second
    with Store(demo_db) as store:
        assert store.reviews().empty


def test_a_random_sample_estimates_precision(app, demo_db):
    run_pipelines(demo_db)
    open_page(app, "review")
    app.segmented_control(key="review_mode").set_value("Random sample of matches").run()
    with Store(demo_db) as store:
        labels = store.postings().set_index("posting_id")["label_group"]
    for _ in range(5):
        left, right = _shown_pair(app)
        verdict = "Same product" if labels[left] == labels[right] else "Different"
        button(app, verdict).click().run()
        assert not app.exception
    with Store(demo_db) as store:
        assert store.reviews()["chosen"].tolist() == ["sample"] * 5
    assert any(m.label == "ensemble precision" for m in app.metric)
    assert any("from 5 reviewed match(es)" in c for c in texts(app.caption))


def test_unsure_pairs_come_first_with_their_answer_in_words(app, demo_db):
    run_pipelines(demo_db)
    with Store(demo_db) as store:
        queue = review_queue(store)
    first = queue.iloc[0]
    assert first["priority"] == 4  # the demo has Unsure pairs: they lead
    open_page(app, "review")
    assert _shown_pair(app) == (first["left"], first["right"])
    assert any(
        m.value.startswith("**Why this pair:** the answer is Unsure: ") for m in app.markdown
    )
    # The most accurate pipeline that matched the pair answers first, in words.
    [lead] = [m.value for m in app.markdown if m.value.startswith("### :")]
    assert lead.startswith("### :orange-badge[Unsure]  \n**photos ")
    answered = (
        "ensemble" if first["ensemble_similarity"] == first["ensemble_similarity"] else "baseline"
    )
    assert "titles" in lead and f"the {answered} pipeline" in lead
    details = [c for c in texts(app.caption) if "likely the same product" in c]
    assert details[0].endswith("(calibrated on labelled pairs)")
    assert any(f"{answered}: Unsure (" in c for c in texts(app.caption))


def test_a_pair_with_an_untitled_posting_highlights_nothing(app, samesame_home, tmp_path):
    # The same photo twice, one posting without a title: every word of the other title used
    # to be highlighted as "not in the other title".
    first = demo_rows(samesame_home, 1)[0]
    rows = [
        {**first, "posting_id": "titled", "title": "Sabun cuci piring jeruk nipis 800ml"},
        {**first, "posting_id": "untitled", "title": ""},
    ]
    db = import_small_catalog(samesame_home, tmp_path / "untitled.db", rows)
    run_pipelines(db, "baseline")
    app.session_state["db_path"] = str(db)
    open_page(app, "review")

    assert not app.exception
    shown = [m.value for m in app.markdown if m.value.startswith("**`")]
    assert sorted(shown) == [
        "**`titled`**  \nSabun cuci piring jeruk nipis 800ml",
        "**`untitled`**  \n(no title)",
    ]
    assert not any("-background[" in m for m in shown)
    assert "A posting without a title: no title words to compare, nothing highlighted." in texts(
        app.caption
    )
    assert not any("Highlighted" in c for c in texts(app.caption))
