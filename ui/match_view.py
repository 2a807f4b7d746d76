"""How Browse and Compare show one answer: ranked match cards with the evidence in words, a
side-by-side view of two postings, and a compact table comparing the pipelines.

Frames passed in carry one row per match: ``posting_id``, ``title``, ``image_path``, the score
columns, ``rule`` and ``similarity``; optional ``same_label`` (bool) and ``verdict`` (the
reviewer's). `annotate` adds the answer: the verdict word shown first, the probability in a
details line (and on hover), the evidence in words.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable

import numpy as np
import pandas as pd
import streamlit as st

from core.evidence import rule_text, shared_words, title_words
from core.pair_answers import ANSWER_COLUMNS, pair_answers, probability_words
from core.pipelines import Pipeline
from core.settings import MatchSettings
from core.store import Store
from core.text import display_title
from core.verdict_words import DIFFERENT, PROBABLY_SAME, SAME, UNSURE
from ui import common, resources

CARD_COLUMNS = 4
CARD_PIXELS = 320
PAGE_SIZE = 12
VERDICT_MARKS = {
    "same": ":green[✔ you said same]",
    "different": ":red[✘ you said different: not counted as a match]",
}
_WORD = re.compile(r"(\w+)", re.UNICODE)


def annotate(
    matches: pd.DataFrame,
    pipe: Pipeline,
    settings: MatchSettings,
    threshold: float | None = None,
    without: tuple[str, ...] = (),
    store: Store | None = None,
    own_title: str | None = None,
) -> pd.DataFrame:
    """The matches with their answer (`core.pair_answers`: ``answer``, ``probability``,
    ``probability_from``, ``evidence`` in words) and ``close_call`` (passed only narrowly).

    ``without``: score columns left out (a title score when no title was given);
    ``own_title``: the title the matches were matched against ("" or None with ``without``:
    no title evidence); ``store``: whose own calibration applies."""
    out = matches.copy()
    has_titles = None
    if "title" in out:
        theirs = out["title"].fillna("").astype(str).str.strip().to_numpy() != ""
        has_titles = theirs & bool((own_title or "").strip() or not without)
    if without and has_titles is None:
        has_titles = np.zeros(len(out), bool)
    reviews = out["verdict"].to_numpy(object) if "verdict" in out else None
    answers = pair_answers(out, pipe.name, settings, store, has_titles, reviews)
    for name in ANSWER_COLUMNS:
        out[name] = answers[name].to_numpy()
    out["close_call"] = (
        pipe.close_calls(out, settings, threshold) if len(out) else np.zeros(0, bool)
    )
    return out


#: How each verdict word is marked: a coloured badge.
WORD_COLOURS = {SAME: "green", PROBABLY_SAME: "blue", UNSURE: "orange", DIFFERENT: "red"}


def answer_badge(answer: str) -> str:
    """The verdict word as a coloured badge (a person's answer with its mark)."""
    word = answer.split(" (")[0]
    icon = ":material/person_check: " if "(" in answer else ""
    return f":{WORD_COLOURS.get(word, 'gray')}-badge[{icon}{answer}]"


def answer_details(row: dict) -> str:
    """The details line under the word: the probability and where it came from."""
    probability = row.get("probability")
    if probability is not None and probability != probability:
        probability = None
    return probability_words(probability, str(row.get("probability_from") or ""))


def save_review(db_path: str, left: str, right: str, verdict: str) -> None:
    # A button callback runs before the rerun, in its own short-lived connection.
    with Store(db_path) as store:
        store.save_review(left, right, verdict)


def _review_buttons(container, db_path: str, pid: str, other: str, place: str = "") -> None:
    for column, (label, verdict) in zip(
        container.columns(2), (("Same", "same"), ("Different", "different")), strict=True
    ):
        column.button(
            label,
            key=f"{place}{verdict}:{pid}:{other}",
            on_click=save_review,
            args=(db_path, pid, other, verdict),
            width="stretch",
        )


def _badges(row: dict) -> str:
    marks = []
    if row.get("matched", True) is False and row.get("verdict") != "different":
        marks.append(":gray-badge[closest, not a match]")
    elif row.get("close_call"):
        marks.append(":orange-badge[:material/help: close call]")
    same_label = row.get("same_label")
    if same_label is True:
        marks.append(":green-badge[same label]")
    elif same_label is False:
        marks.append(":red-badge[other label]")
    verdict = row.get("verdict")
    if verdict in VERDICT_MARKS:
        marks.append(VERDICT_MARKS[verdict])
    return " ".join(marks)


def match_cards(
    matches: pd.DataFrame,
    key: str,
    review: tuple[str, str] | None = None,
) -> None:
    """Ranked cards, ``PAGE_SIZE`` at a time ("Show more" for the rest).

    Args:
        matches: annotated matches (see `annotate`), best first.
        key: unique per place on the page (remembers how many are shown).
        review: (database path, posting id) to offer same/different buttons for that posting.
    """
    shown_key = f"{key}_shown"
    shown = st.session_state.get(shown_key, PAGE_SIZE)
    rows = matches.head(shown).to_dict("records")
    for start in range(0, len(rows), CARD_COLUMNS):
        columns = st.columns(CARD_COLUMNS)
        for rank, (column, row) in enumerate(
            zip(columns, rows[start : start + CARD_COLUMNS], strict=False), start=start + 1
        ):
            with column.container(border=True):
                st.image(resources.thumbnail(row.get("image_path"), CARD_PIXELS), width="stretch")
                title = display_title(row.get("title") or "") or "(no title)"
                st.markdown(f"### {answer_badge(row['answer'])}", help=answer_details(row))
                st.markdown(f"**{rank}.** `{row['posting_id']}`  \n{html.escape(title[:90])}")
                st.caption(
                    f"{row['evidence']}  \n{answer_details(row)} · {rule_text(row.get('rule'))}"
                )
                badges = _badges(row)
                if badges:
                    st.markdown(badges)
                if review is not None:
                    _review_buttons(st, review[0], review[1], row["posting_id"])
    if len(matches) > shown:
        st.button(
            f"Show {min(PAGE_SIZE, len(matches) - shown)} more of {len(matches) - shown}",
            key=f"{key}_more",
            on_click=lambda: st.session_state.__setitem__(shown_key, shown + PAGE_SIZE),
        )


def _highlight(title: str, marked: Callable[[str], bool], colour: str, bold: bool = False) -> str:
    """Markdown of a title with the words ``marked`` picks on a ``colour`` background."""
    pieces = []
    for piece in _WORD.split(display_title(title or "")):
        text = html.escape(piece).replace("[", "\\[").replace("]", "\\]")
        if _WORD.fullmatch(piece) and marked(piece.casefold()):
            pieces.append(f":{colour}-background[{f'**{text}**' if bold else text}]")
        else:
            pieces.append(text.replace("*", "\\*").replace("_", "\\_"))
    return "".join(pieces) or "(no title)"


def highlight_shared(title: str, shared: set[str]) -> str:
    """Markdown of a title with the words the other title shares highlighted."""
    return _highlight(title, lambda word: word in shared, "green")


def highlight_different(title: str, other: str) -> str:
    """Markdown of a title with the words the other title lacks highlighted (the review
    page: what tells two postings apart); nothing is highlighted when either posting has no
    title (there is nothing to compare it with)."""
    theirs = title_words(other or "")
    if not theirs or not title_words(title or ""):
        return _highlight(title, lambda word: False, "orange")
    return _highlight(title, lambda word: word not in theirs, "orange", bold=True)


def side_by_side(
    left: dict,
    matches: pd.DataFrame,
    key: str,
    review: tuple[str, str] | None = None,
) -> None:
    """The chosen posting (or new item) next to one of its matches: both photos large, the
    words their titles share highlighted, the evidence in words.

    Args:
        left: ``label``, ``title`` and ``image`` (a path, bytes or None) of the left side.
    """
    if matches.empty:
        st.caption("No match to put side by side.")
        return
    ids = matches["posting_id"].tolist()
    titles = dict(zip(ids, matches["title"], strict=True))
    other = st.selectbox(
        "Match",
        ids,
        key=f"{key}_pick",
        format_func=lambda p: (
            f"{ids.index(p) + 1}. "
            + common.posting_label(p, display_title(titles.get(p) or ""), width=80)
        ),
    )
    row = matches.set_index("posting_id").loc[other].to_dict()
    row["posting_id"] = other
    shared = shared_words(left.get("title") or "", row.get("title") or "")
    st.markdown(
        f"### {answer_badge(row['answer'])}  \n**{row['evidence']}**", help=answer_details(row)
    )
    st.caption(
        f"{answer_details(row)} · {rule_text(row.get('rule'))}"
        + (f" · {len(shared)} shared title word(s) highlighted" if shared else "")
    )
    badges = _badges(row)
    if badges:
        st.markdown(badges)
    left_column, right_column = st.columns(2)
    with left_column.container(border=True):
        image = left.get("image")
        st.image(
            image if isinstance(image, bytes) else resources.thumbnail(image, 640), width="stretch"
        )
        st.markdown(f"**{left['label']}**  \n{highlight_shared(left.get('title') or '', shared)}")
    with right_column.container(border=True):
        st.image(resources.thumbnail(row.get("image_path"), 640), width="stretch")
        st.markdown(f"**`{other}`**  \n{highlight_shared(row.get('title') or '', shared)}")
    if review is not None:
        _review_buttons(st, review[0], review[1], other, place="side-")


def pipelines_table(answers: dict[str, pd.DataFrame]) -> None:
    """One row per posting any pipeline matched, one narrow column per pipeline ("✔ Same"
    matched, "· Unsure" listed as a near miss, blank: not listed): fits 1400 px, no scrolling.
    Titles and photos come from the answers themselves (each has ``title``, ``image_path``)."""
    ids: list[str] = []
    titles: dict[str, object] = {}
    images: dict[str, object] = {}
    for frame in answers.values():
        ids += [p for p in frame["posting_id"] if p not in titles]
        titles.update(zip(frame["posting_id"], frame["title"], strict=True))
        images.update(zip(frame["posting_id"], frame["image_path"], strict=True))
    if not ids:
        st.caption("No pipeline lists a match.")
        return
    table = pd.DataFrame({"posting_id": ids})
    table["image_path"] = [images.get(p) for p in ids]
    for name, frame in answers.items():
        marks = {}
        for row in frame.to_dict("records"):
            matched = row.get("matched", True)
            word = str(row["answer"]).split(" (")[0]  # a person's mark shows on the cards
            marks[row["posting_id"]] = f"{'✔' if matched else '·'} {word}"
        table[name] = [marks.get(p, "") for p in ids]
    table["title"] = [display_title(titles.get(p) or "") for p in ids]
    shown = resources.with_thumbnails(table)
    config: dict = {
        name: st.column_config.TextColumn(
            name,
            width="small",
            help=f"✔: the {name} pipeline calls it a match; ·: listed as one of the closest, "
            "no match; then how sure it is: Same (90 % likely or more), Probably same (60 %), "
            "Unsure (40 %), Different; blank: not listed.",
        )
        for name in answers
    }
    config["thumbnail"] = st.column_config.ImageColumn("photo", width=common.THUMB_ROW_HEIGHT)
    config["posting_id"] = st.column_config.TextColumn("posting", width=110)
    config["title"] = st.column_config.TextColumn("title", width="large")
    st.dataframe(
        shown[["thumbnail", "posting_id", *answers, "title"]],
        hide_index=True,
        width="stretch",
        row_height=common.THUMB_ROW_HEIGHT,
        height=common.table_height(len(shown)),
        column_config=config,
    )
