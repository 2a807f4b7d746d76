"""Browse page: one posting and its matches under the most accurate ready pipeline (cards with
the evidence in words, a side-by-side view, review buttons), the pipelines compared, its
cluster."""

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
from ui import common, exports_view, match_view, resources

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
        resources.best_threshold(store, pipe),
        store=store,
        own_title=own_title if isinstance(own_title, str) else "",
    )


def _notes(store: Store, pipe: Pipeline) -> None:
    note = common.stale_note(store, pipe.name)
    if note:
        st.warning(note)
    common.show_run_notices(store, pipe.name)
    common.in_sample_note(store, pipe)


def _lead(store: Store, pipe: Pipeline, matches: pd.DataFrame, pid: str) -> None:
    st.caption(
        f"Found by **{pipe.title}**, the most accurate pipeline with matches for this "
        "catalog (the others are under *Compare pipelines*). Each card leads with the answer "
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


def _compare_pipelines(store: Store, answers: dict[str, pd.DataFrame]) -> None:
    st.caption(
        "Each pipeline's verdict on the postings any of them matched. Pipelines without "
        "matches for this catalog can be run from here."
    )
    match_view.pipelines_table(answers)
    for pipe in common.pipelines():
        if pipe.name not in answers:
            _run_button(store, pipe)


def _gallery(members: list[str], info: pd.DataFrame) -> None:
    shown = members[:MAX_GALLERY]
    rows = math.ceil(len(shown) / GALLERY_COLUMNS)
    for r in range(rows):
        columns = st.columns(GALLERY_COLUMNS)
        for column, pid in zip(
            columns, shown[r * GALLERY_COLUMNS : (r + 1) * GALLERY_COLUMNS], strict=False
        ):
            path = info.at[pid, "image_path"]
            title = str(info.at[pid, "title"])
            caption = f"{pid} · {title[:40]}{'…' if len(title) > 40 else ''}"
            if isinstance(path, str) and Path(path).is_file():
                column.image(path, caption=caption, width="stretch")
            else:
                column.image(
                    resources.placeholder(), caption=f"(no photo) {caption}", width="stretch"
                )
    if len(members) > MAX_GALLERY:
        st.caption(f"Showing {MAX_GALLERY} of {len(members)} postings.")


def _groups(store: Store, pid: str, view: resources.CatalogView) -> None:
    st.caption(
        "A cluster is the set of postings a pipeline takes for one product: postings join "
        "only when they match each other well on average, so one stray match never chains two "
        "products together."
    )
    tabs: list[tuple[str, list[str], str]] = []
    for pipe in common.pipelines():
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
    for tab, (_, members, how) in zip(st.tabs([t[0] for t in tabs]), tabs, strict=True):
        with tab:
            st.caption(how)
            _gallery(members, info)


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


def main() -> None:
    st.title("Browse matches")
    common.show_flashes()
    with common.open_store() as store:
        view = resources.catalog_view(store)
        if not len(view):
            st.info("This database is empty: import a catalog on the Catalog page.")
            return
        options = _options(view)
        titles = view.titles_of(options)
        pid = st.selectbox(
            "Posting (type to search ids and titles)",
            options,
            format_func=lambda p: f"{p} · {titles[p][:90]}",
            key="browse_posting",
        )
        if pid is None:
            return
        info = view.by_id
        row = info.loc[pid]
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

        runs = {p.name: store.match_run(p.name) for p in common.pipelines()}
        ready = [p for p in most_accurate_first() if runs.get(p.name) is not None]
        if not ready:
            st.subheader("No matches yet")
            for pipe in common.pipelines():
                _run_button(store, pipe)
            return
        verdicts = verdicts_of(store.reviews(), pid)
        answers = {
            p.name: _matches(
                store, p, MatchSettings.from_dict(runs[p.name]["settings"]), pid, info, verdicts
            )
            for p in ready
        }
        lead = ready[0]
        lead_matches = answers[lead.name]
        # Only the open tab is drawn (the others rerun when chosen): what every click costs
        # the server and the browser is one tab's content, not four.
        matches_tab, side_tab, pipelines_tab, cluster_tab = st.tabs(
            [
                f"Matches ({int(lead_matches['matched'].sum())})",
                "Side by side",
                "Compare pipelines",
                "Cluster",
            ],
            key="browse_tab",
            on_change="rerun",
        )
        if matches_tab.open:
            with matches_tab:
                _lead(store, lead, lead_matches, pid)
        if side_tab.open:
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
                _compare_pipelines(
                    store,
                    {p.name: answers[p.name] for p in common.pipelines() if p.name in answers},
                )
        if cluster_tab.open:
            with cluster_tab:
                _groups(store, pid, view)
        with st.expander("Download results (CSV, Excel)", icon=":material/download:"):
            exports_view.export_buttons(store, lead.name, key="browse_exports")


common.run_page(main)
