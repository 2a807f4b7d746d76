"""Review page: one pair at a time, the pairs a verdict teaches the most first (or matches
drawn at random, to estimate precision without bias): both photos large, the words the titles
do not share highlighted, same / different / skip / undo with the keys S, D, N and U, how far
the reviewing has come and what the verdicts say about each pipeline's precision."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from core.pair_answers import pair_answers
from core.pipelines import Pipeline, most_accurate_first
from core.review_estimates import review_estimates
from core.review_queue import QUEUE_LIMIT
from core.settings import MatchSettings
from core.store import Store
from core.verdicts import pair_key, reviewed_pairs, without_pairs
from ui import common, match_view, pipeline_bar, resources, review_cache

MOST_TELLING = "Most telling first"
RANDOM_SAMPLE = "Random sample of matches"
HISTORY_KEY = "review_history"
SKIPPED_KEY = "review_skipped"


def _verdict(db_path: str, left: str, right: str, verdict: str, chosen: str) -> None:
    with Store(db_path) as store:
        store.save_review(left, right, verdict, chosen=chosen)
    st.session_state.setdefault(HISTORY_KEY, []).append((left, right))


def _skip(left: str, right: str) -> None:
    st.session_state.setdefault(SKIPPED_KEY, set()).add(pair_key(left, right))


def _undo(db_path: str) -> None:
    history = st.session_state.get(HISTORY_KEY, [])
    if history:
        left, right = history.pop()
        with Store(db_path) as store:
            store.delete_review(left, right)
        st.session_state.get(SKIPPED_KEY, set()).discard(pair_key(left, right))


def _estimates(store: Store) -> None:
    found = {p.name: review_estimates(store, p.name) for p in common.pipelines()}
    found = {name: figures for name, figures in found.items() if figures}
    if not found:
        return
    columns = st.columns(len(found))
    for column, (name, figures) in zip(columns, found.items(), strict=True):
        precision = figures["precision"]
        if not precision.reviewed:
            column.caption(f"**{name}**: none of its matches reviewed yet.")
            continue
        column.metric(
            f"{name} precision",
            f"{precision.value:.0%}",
            help="Share of its matches you said are the same product, with a 95 % interval. "
            "A random sample of its matches estimates it without bias; the most telling "
            "pairs are the hard ones, so an estimate from those alone is pessimistic.",
        )
        column.caption(
            f"{precision.low:.0%}–{precision.high:.0%} from {precision.reviewed} reviewed "
            + ("match(es)" if precision.unbiased else "hard pair(s) (pessimistic)")
            + (f" · {precision.more_needed} more for ±5 points" if precision.more_needed else "")
        )


def _stored_pair(store: Store, pipeline: str, left: str, right: str) -> pd.DataFrame:
    """The pair's stored row under a pipeline's run (empty: it did not match them)."""
    for one, other in ((left, right), (right, left)):
        found = store.matches_of(pipeline, one)
        found = found[found["posting_id"] == other]
        if len(found):
            return found.head(1).reset_index(drop=True)
    return pd.DataFrame()


def _answers(store: Store, left: str, right: str, titled: bool, chosen: Pipeline) -> None:
    """Each pipeline's answer on the pair, the chosen one's first and largest (then the most
    accurate first): the verdict word, how likely (details line and hover) and the evidence
    in words."""
    said = []
    others = [p for p in most_accurate_first() if p.name != chosen.name]
    for pipe in [chosen, *others]:
        run = store.match_run(pipe.name)
        if run is None:
            continue
        stored = _stored_pair(store, pipe.name, left, right)
        if stored.empty:
            said.append(f"{pipe.name}: not a match")
            continue
        settings = MatchSettings.from_dict(run["settings"])
        answer = pair_answers(stored, pipe.name, settings, store, np.array([titled]))
        answer = answer.iloc[0].to_dict()
        details = match_view.answer_details(answer)
        if not said or all(text.endswith("not a match") for text in said):
            st.markdown(
                f"### {match_view.answer_badge(answer['answer'])}  \n"
                f"**{answer['evidence']}** — the {pipe.name} pipeline",
                help=details,
            )
            st.caption(details)
        said.append(f"{pipe.name}: {answer['answer']} ({details.split(' likely')[0]})")
    if len(said) > 1:
        st.caption(" · ".join(said))


def _has_title(title) -> bool:
    return isinstance(title, str) and bool(title.strip())


def _pair(store: Store, row, chosen: str, pipe: Pipeline) -> None:
    view = resources.catalog_view(store).by_id
    left, right = row["left"], row["right"]
    a, b = view.loc[left], view.loc[right]
    st.markdown(f"**Why this pair:** {row['reason']}")
    titled = _has_title(a["title"]) and _has_title(b["title"])
    _answers(store, left, right, titled, pipe)
    first, second = st.columns(2)
    for column, pid, posting, other in ((first, left, a, b), (second, right, b, a)):
        with column.container(border=True):
            path = posting["image_path"] if posting["image_status"] == "ok" else None
            st.image(resources.thumbnail(path, 640), width="stretch")
            st.markdown(
                f"**`{pid}`**  \n"
                + match_view.highlight_different(posting["title"], other["title"] or "")
            )
    if titled:
        st.caption(":orange-background[Highlighted]: words the other title does not have.")
    else:
        st.caption("A posting without a title: no title words to compare, nothing highlighted.")
    db = str(store.path)
    actions = [
        ("Same product", "same", "S", _verdict, (db, left, right, "same", chosen)),
        ("Different", "different", "D", _verdict, (db, left, right, "different", chosen)),
        ("Skip", "skip", "N", _skip, (left, right)),
        ("Undo", "undo", "U", _undo, (db,)),
    ]
    for column, (label, name, key, action, args) in zip(st.columns(4), actions, strict=True):
        column.button(
            label,
            key=f"review_{name}",
            shortcut=key,
            type="primary" if name == "same" else "secondary",
            width="stretch",
            disabled=name == "undo" and not st.session_state.get(HISTORY_KEY),
            on_click=action,
            args=args,
        )


def main() -> None:
    st.title("Review pairs")
    st.caption(
        "Say whether two postings are the same product. Each verdict overrules every "
        "pipeline at once (matches, exports, and clusters when a pipeline runs again) and "
        "estimates how precise each pipeline is. Keys: **S** same · **D** different · "
        "**N** skip · **U** undo."
    )
    with common.open_store() as store:
        pipe = pipeline_bar.header(store)
        ran = [p.name for p in common.pipelines() if store.match_run(p.name) is not None]
        if not ran:
            st.info("No pipeline has matched this catalog yet: there is nothing to review.")
            st.page_link("pages/browse.py", label="Run one on the Browse page", icon="🔎")
            return
        mode = st.segmented_control(
            "Which pairs",
            [MOST_TELLING, RANDOM_SAMPLE],
            default=MOST_TELLING,
            key="review_mode",
            required=True,
            help="Most telling: pairs whose answer is Unsure (40–60 % likely the same), then "
            "where the pipelines disagree, close calls, matches that join two clusters. "
            f"Random sample: matches of the chosen pipeline ({pipe.name}) drawn at "
            "random, which estimate its precision without bias.",
        )
        if mode == RANDOM_SAMPLE:
            queue, chosen = resources.match_sample(store, pipe.name), "sample"
        else:
            queue, chosen = review_cache.review_queue(store), "queue"
        reviews = store.reviews()
        done = reviewed_pairs(reviews) | st.session_state.get(SKIPPED_KEY, set())
        pending = without_pairs(queue, done)
        waiting = f"{len(pending):,}" + (" or more" if len(queue) >= QUEUE_LIMIT else "")
        st.caption(f"{len(reviews):,} verdict(s) so far · {waiting} pair(s) waiting in this list")
        _estimates(store)
        st.divider()
        if pending.empty:
            st.success("Nothing left to review in this list.")
            return
        _pair(store, pending.iloc[0], chosen, pipe)


common.run_page(main)
