"""Browse page: one posting and its matches under the chosen pipeline (cards with the evidence
in words, a side-by-side view, review buttons), the pipelines compared, its cluster."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import streamlit as st

from core.matching import run_pipeline
from core.pipelines import Pipeline, most_accurate_first
from core.settings import MatchSettings
from core.store import Store
from core.verdict_words import VERDICT_WORDS
from core.verdicts import posting_matches_with_verdicts, verdicts_of
from ui import common, exports_view, match_view, pipeline_bar, resources

MAX_GALLERY = 36
MAX_OPTIONS = 2_000
GALLERY_COLUMNS = 6


def _run_button(store: Store, pipe: Pipeline) -> None:
    st.info(f"The {pipe.name} pipeline has no stored matches for this catalog yet.")
    settings = common.load_settings(store)
    readiness = pipe.readiness(store, settings)
    if not readiness.ready:
        st.caption(readiness.reason)
        st.page_link(
            "pages/embed.py",
            label=readiness.action or "Prepare it on the Embed page",
            icon=":material/model_training:",
        )
        return
    if st.button(f"Run {pipe.name} now", key=f"browse_run_{pipe.name}", type="primary"):
        with st.spinner(f"Matching the catalog with the {pipe.name} pipeline…"):
            result = run_pipeline(store, pipe.name, settings)
        common.flash(
            "success", f"{pipe.name}: {len(result.pairs):,} pairs in {result.seconds:.1f} s"
        )
        st.rerun()


def _matches(
    store: Store,
    pipe: Pipeline,
    settings: MatchSettings,
    pid: str,
    info: pd.DataFrame,
    verdicts: dict[str, str],
) -> pd.DataFrame:
    """The posting's stored matches under one pipeline and the reviewer's verdicts, with
    titles, photos, labels and words (postings removed from the catalog since the run left
    out)."""
    matches = posting_matches_with_verdicts(store.matches_of(pipe.name, pid), verdicts)
    # get_indexer: a hash lookup of the few ids; Series.isin on Arrow strings walks the catalog.
    known = info.index.get_indexer(matches["posting_id"]) >= 0
    matches = matches[known].reset_index(drop=True)
    others = matches["posting_id"]
    matches["title"] = info.loc[others, "title"].to_numpy()
    matches["image_path"] = info.loc[others, "image_path"].to_numpy()
    own_label = info.at[pid, "label_group"]
    if isinstance(own_label, str):
        matches["same_label"] = info.loc[others, "label_group"].to_numpy() == own_label
    matches["verdict"] = [verdicts.get(p, "") for p in others]
    own_title = info.at[pid, "title"]
    return match_view.annotate(
        matches,
        pipe,
        settings,
        pipe.decision_threshold(store),
        store=store,
        own_title=own_title if isinstance(own_title, str) else "",
    )


def _notes(store: Store, pipe: Pipeline) -> None:
    common.show_run_notices(store, pipe.name)
    common.in_sample_note(store, pipe)


def _lead(store: Store, pipe: Pipeline, matches: pd.DataFrame, pid: str) -> None:
    st.caption(
        f"Found by **{pipe.title}**, the chosen pipeline (named at the top; the others are "
        "under *Compare pipelines*). Each card leads with the answer "
        "(**Same**, **Probably same**, **Unsure** or **Different**: how likely the two are one "
        "product), then the evidence in words; **close call** marks a match that passed its "
        "threshold only narrowly: worth a look."
    )
    _notes(store, pipe)
    if matches.empty:
        st.info(f"The {pipe.name} pipeline matched this posting with no other posting.")
        return
    close = int((matches["close_call"] & matches["matched"]).sum())
    rejected = int((~matches["matched"]).sum())
    words = matches.loc[matches["matched"], "answer"].str.split(" [(]").str[0].value_counts()
    st.caption(
        f"{int(matches['matched'].sum())} match(es)"
        + "".join(f" · {words[w]} {w}" for w in VERDICT_WORDS if w in words)
        + (f" · {close} close call(s)" if close else "")
        + (f" · {rejected} you said are different (not counted)" if rejected else "")
    )
    match_view.match_cards(matches, key=f"browse_cards_{pid}", review=(str(store.path), pid))


def _compare_pipelines(store: Store, answers: dict[str, pd.DataFrame], chosen: str) -> None:
    st.caption(
        "Each pipeline's verdict on the postings any of them matched. Pipelines without "
        "matches for this catalog can be run from here."
    )
    match_view.pipelines_table(answers)
    for pipe in common.pipelines():
        if pipe.name not in answers and pipe.name != chosen:  # the banner offers the chosen
            _run_button(store, pipe)


def _gallery(members: list[str], info: pd.DataFrame, key: str) -> None:
    """The members' photos, ``MAX_GALLERY`` a page, with pages to see the rest."""
    pages = math.ceil(len(members) / MAX_GALLERY)
    page = 1
    if pages > 1:
        text, pager = st.columns([3, 2], vertical_alignment="center")
        with pager:
            page = st.pagination(pages, key=f"{key}_page")
        first = (page - 1) * MAX_GALLERY
        text.caption(
            f"Showing {first + 1}–{min(first + MAX_GALLERY, len(members))} of "
            f"{len(members)} postings; the other page(s) show the rest."
        )
    shown = members[(page - 1) * MAX_GALLERY : page * MAX_GALLERY]
    for start in range(0, len(shown), GALLERY_COLUMNS):
        row = shown[start : start + GALLERY_COLUMNS]
        for column, pid in zip(st.columns(GALLERY_COLUMNS), row, strict=False):
            path = info.at[pid, "image_path"]
            caption = common.posting_label(pid, info.at[pid, "title"], width=40)
            if isinstance(path, str) and Path(path).is_file():
                column.image(path, caption=caption, width="stretch")
            else:
                column.image(
                    resources.placeholder(), caption=f"(no photo) {caption}", width="stretch"
                )


def _groups(store: Store, pid: str, view: resources.CatalogView, chosen: Pipeline) -> None:
    st.caption(
        "A cluster is the set of postings a pipeline takes for one product: postings join "
        "only when they match each other well on average, so one stray match never chains two "
        "products together."
    )
    tabs: list[tuple[str, list[str], str]] = []
    # The chosen pipeline's cluster first (the tab shown), then the others'.
    order = [chosen, *(p for p in most_accurate_first() if p.name != chosen.name)]
    for pipe in order:
        found = resources.cluster_of(store, pipe.name, pid)
        if found is not None:
            members, how = found
            tabs.append((f"{pipe.name} cluster ({len(members)})", members, how))
    info = view.by_id
    label = info.at[pid, "label_group"]
    if isinstance(label, str):
        members = view.frame.loc[view.frame["label_group"] == label, "posting_id"].tolist()
        tabs.append(
            (f"labelled group {label} ({len(members)})", members, "From the catalog's labels.")
        )
    if not tabs:
        st.caption("Run a pipeline to see the cluster this posting falls in.")
        return
    _reviews_since_clustering(store)
    for number, (tab, (_, members, how)) in enumerate(
        zip(st.tabs([t[0] for t in tabs]), tabs, strict=True)
    ):
        with tab:
            st.caption(how)
            _gallery(members, info, key=f"browse_cluster_{pid}_{number}")


def _reviews_since_clustering(store: Store) -> None:
    runs = [store.match_run(p.name) for p in common.pipelines()]
    oldest = min((run["computed_at"] for run in runs if run is not None), default=None)
    reviews = store.reviews()
    since = int((reviews["reviewed_at"] > oldest).sum()) if oldest is not None else 0
    if since:
        st.caption(
            f":material/info: {since} verdict(s) were given since these clusters were formed: "
            "they count in the matches and exports now, and in the clusters once the pipeline "
            "runs again."
        )


def _options(view: resources.CatalogView) -> list[str]:
    """Posting ids for the selectbox. A large catalog is narrowed by a search box first: every
    option travels to the browser on each rerun, and 30,000 of them make the page sluggish."""
    if len(view) <= MAX_OPTIONS:
        return view.frame["posting_id"].tolist()
    query = st.text_input(
        "Search postings", key="browse_search", placeholder="id or words of the title"
    )
    shown = view.search(query)
    options = shown["posting_id"].head(MAX_OPTIONS).tolist()
    if len(shown) > MAX_OPTIONS:
        st.caption(f"{len(shown):,} postings match; the first {MAX_OPTIONS:,} are listed.")
    if not options:
        st.info("No posting matches this search.")
    return options


def _posting(view: resources.CatalogView, pid: str) -> pd.Series:
    """The chosen posting's photo, title and details; returns its row."""
    row = view.by_id.loc[pid]
    picture, details = st.columns([1, 3])
    if row["image_status"] == "ok" and isinstance(row["image_path"], str):
        picture.image(row["image_path"], width="stretch")
    else:
        picture.image(resources.placeholder(), width="stretch")
        picture.caption(f"No usable image ({row['image_status']}).")
    details.markdown(f"### {row['title'] or '(no title)'}")
    details.markdown(
        f"`{pid}` · label group **{row['label_group'] or '—'}** · "
        f"image {row['image_status']} · pHash `{row['image_phash'] or '—'}`"
    )
    return row


def _answers(store: Store, pid: str, info: pd.DataFrame, runs: dict) -> dict[str, pd.DataFrame]:
    """Each pipeline with stored matches: the posting's matches with the verdicts, in words."""
    verdicts = verdicts_of(store.reviews(), pid)
    return {
        p.name: _matches(
            store, p, MatchSettings.from_dict(runs[p.name]["settings"]), pid, info, verdicts
        )
        for p in common.pipelines()
        if runs.get(p.name) is not None
    }


def _tabs(
    store: Store, view: resources.CatalogView, pid: str, row: pd.Series, lead: Pipeline
) -> None:
    """The chosen pipeline's matches, side by side, every pipeline compared, the cluster."""
    runs = {p.name: store.match_run(p.name) for p in common.pipelines()}
    answers = _answers(store, pid, view.by_id, runs)
    lead_matches = answers.get(lead.name)
    count = "" if lead_matches is None else f" ({int(lead_matches['matched'].sum())})"
    # Only the open tab is drawn (the others rerun when chosen): what every click costs
    # the server and the browser is one tab's content, not four.
    matches_tab, side_tab, pipelines_tab, cluster_tab = st.tabs(
        [f"Matches{count}", "Side by side", "Compare pipelines", "Cluster"],
        key="browse_tab",
        on_change="rerun",
    )
    if lead_matches is None:
        if matches_tab.open or side_tab.open:
            (matches_tab if matches_tab.open else side_tab).info(
                f"The {lead.name} pipeline has no stored matches for this catalog yet: run it "
                "with the button at the top, or choose another pipeline in the sidebar."
            )
    elif matches_tab.open:
        with matches_tab:
            _lead(store, lead, lead_matches, pid)
    elif side_tab.open:
        with side_tab:
            match_view.side_by_side(
                {
                    "label": f"`{pid}` (this posting)",
                    "title": row["title"],
                    "image": row["image_path"] if row["image_status"] == "ok" else None,
                },
                lead_matches,
                key=f"browse_side_{pid}",
                review=(str(store.path), pid),
            )
    if pipelines_tab.open:
        with pipelines_tab:
            _compare_pipelines(store, answers, lead.name)
    if cluster_tab.open:
        with cluster_tab:
            _groups(store, pid, view, lead)


def main() -> None:
    st.title("Browse matches")
    common.show_flashes()
    with common.open_store() as store:
        lead = pipeline_bar.header(store)
        view = resources.catalog_view(store)
        if not len(view):
            st.info("This database is empty: import a catalog on the Catalog page.")
            return
        options = _options(view)
        titles = view.titles_of(options)
        pid = st.selectbox(
            "Posting (type to search ids and titles)",
            options,
            format_func=lambda p: common.posting_label(p, titles[p]),
            key="browse_posting",
        )
        if pid is None:
            return
        row = _posting(view, pid)
        _tabs(store, view, pid, row, lead)
        with st.expander("Download results (CSV, Excel)", icon=":material/download:"):
            exports_view.export_buttons(store, lead.name, key="browse_exports")


common.run_page(main)
