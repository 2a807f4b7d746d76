"""Browse page: one posting, its matches from every pipeline side by side, its groups, reviews."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import streamlit as st

from core.matches import SCORE_COLUMNS, MatchResult
from core.matching import run_pipeline
from core.pipelines import Pipeline
from core.store import Store
from ui import common, resources

MAX_REVIEW_ROWS = 30
MAX_GALLERY = 36
MAX_OPTIONS = 2_000
GALLERY_COLUMNS = 6


def _save_review(db_path: str, left: str, right: str, verdict: str) -> None:
    # A callback runs before the rerun, in its own short-lived connection.
    with Store(db_path) as store:
        store.save_review(left, right, verdict)


def _verdicts(store: Store, pid: str) -> dict[str, str]:
    reviews = store.reviews()
    mine = reviews[(reviews["left_id"] == pid) | (reviews["right_id"] == pid)]
    return {
        (row.right_id if row.left_id == pid else row.left_id): row.verdict
        for row in mine.itertuples(index=False)
    }


def _run_button(store: Store, pipe: Pipeline) -> None:
    st.info(f"The {pipe.name} pipeline has no stored matches for this catalog yet.")
    settings = common.load_settings(store)
    readiness = pipe.readiness(store, settings)
    if not readiness.ready:
        st.caption(readiness.reason)
        st.page_link(
            "app_pages/embed.py",
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


def _pipeline_column(
    store: Store,
    pipe: Pipeline,
    result: MatchResult | None,
    pid: str,
    postings: pd.DataFrame,
    verdicts: dict[str, str],
) -> pd.DataFrame | None:
    pipeline = pipe.name
    st.subheader(pipe.title)
    if result is None:
        _run_button(store, pipe)
        return None
    note = common.stale_note(store, pipeline)
    if note:
        st.warning(note)
    common.show_run_notices(store, pipeline)
    common.in_sample_note(store, pipe)
    matches = result.matches_of(pid)
    if matches.empty:
        st.caption(f"{pipeline}: no match for this posting.")
        return matches
    info = postings.set_index("posting_id")
    own_label = info.at[pid, "label_group"]
    matches["title"] = info.loc[matches["posting_id"], "title"].to_numpy()
    matches["image_path"] = info.loc[matches["posting_id"], "image_path"].to_numpy()
    if isinstance(own_label, str):
        same = info.loc[matches["posting_id"], "label_group"].to_numpy() == own_label
        matches["same label"] = same
    matches["verdict"] = [verdicts.get(p, "") for p in matches["posting_id"]]
    rules = matches["rule"].value_counts()
    st.caption(
        f"{len(matches)} match(es) · rules fired: "
        + ", ".join(f"{rule} ×{n}" for rule, n in rules.items())
    )
    scores = [c for c in SCORE_COLUMNS if c in matches and matches[c].notna().any()]
    shown = resources.with_thumbnails(matches)
    # Rule and scores before the (long) title, so they are visible in a half-width column.
    columns = ["thumbnail", "posting_id", "rule", *scores]
    columns += [c for c in ("same label", "verdict") if c in shown] + ["title"]
    st.dataframe(
        shown[columns],
        hide_index=True,
        width="stretch",
        row_height=common.THUMB_ROW_HEIGHT,
        height=common.table_height(len(shown)),
        column_config=common.score_columns(shown),
    )
    return matches


def _review(store: Store, pid: str, suggested: dict[str, list[str]], verdicts: dict) -> None:
    st.subheader("Review suggested pairs")
    if not suggested:
        st.caption("Nothing to review: no pipeline matched this posting.")
        return
    info = resources.postings_of(store).set_index("posting_id")
    items = list(suggested.items())[:MAX_REVIEW_ROWS]
    for other, pipelines in items:
        image_col, text_col, verdict_col, same_col, diff_col = st.columns(
            [1, 5, 2, 1.2, 1.2], vertical_alignment="center"
        )
        image_col.image(resources.thumbnail(info.at[other, "image_path"]), width=56)
        text_col.markdown(
            f"**{other}** · {info.at[other, 'title']}  \n:gray[suggested by {', '.join(pipelines)}]"
        )
        verdict = verdicts.get(other)
        verdict_col.markdown(
            {"same": ":green[✔ same]", "different": ":red[✘ different]"}.get(
                verdict, ":gray[not reviewed]"
            )
        )
        args = (str(store.path), pid, other)
        same_col.button(
            "Same", key=f"same:{pid}:{other}", on_click=_save_review, args=(*args, "same")
        )
        diff_col.button(
            "Different",
            key=f"different:{pid}:{other}",
            on_click=_save_review,
            args=(*args, "different"),
        )
    if len(suggested) > MAX_REVIEW_ROWS:
        st.caption(f"Showing the first {MAX_REVIEW_ROWS} of {len(suggested)} suggestions.")


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


def _groups(store: Store, pid: str, postings: pd.DataFrame) -> None:
    st.subheader("Whole cluster")
    st.caption(
        "A cluster is the set of postings a pipeline takes for one product: postings join "
        "only when they match each other well on average, so one stray match never chains two "
        "products together."
    )
    info = postings.set_index("posting_id")
    tabs: list[tuple[str, list[str], str]] = []
    for pipe in common.pipelines():
        found = resources.clusters(store, pipe.name)
        if found is not None:
            cluster = found.cluster_of(pid)
            members = found.members(cluster)
            tabs.append((f"{pipe.name} cluster ({len(members)})", members, found.describe(cluster)))
    label = info.at[pid, "label_group"]
    if isinstance(label, str):
        members = postings.loc[postings["label_group"] == label, "posting_id"].tolist()
        tabs.append(
            (f"labelled group {label} ({len(members)})", members, "From the catalog's labels.")
        )
    if not tabs:
        st.caption("Run a pipeline to see the cluster this posting falls in.")
        return
    for tab, (_, members, how) in zip(st.tabs([t[0] for t in tabs]), tabs, strict=True):
        with tab:
            st.caption(how)
            _gallery(members, info)


def _options(postings: pd.DataFrame) -> list[str]:
    """Posting ids for the selectbox. A large catalog is narrowed by a search box first: every
    option travels to the browser on each rerun, and 30,000 of them make the page sluggish."""
    ids = postings["posting_id"]
    if len(postings) <= MAX_OPTIONS:
        return ids.tolist()
    query = st.text_input(
        "Search postings", key="browse_search", placeholder="id or words of the title"
    ).strip()
    shown = postings
    if query:
        needle = query.lower()
        shown = postings[
            postings["title"].str.lower().str.contains(needle, regex=False)
            | ids.str.lower().str.contains(needle, regex=False)
        ]
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
        postings = resources.postings_of(store)
        if postings.empty:
            st.info("This database is empty: import a catalog on the Catalog page.")
            return
        titles = dict(zip(postings["posting_id"], postings["title"], strict=True))
        pid = st.selectbox(
            "Posting (type to search ids and titles)",
            _options(postings),
            format_func=lambda p: f"{p} · {titles[p][:90]}",
            key="browse_posting",
        )
        if pid is None:
            return
        row = postings.set_index("posting_id").loc[pid]
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

        pipes = common.pipelines()
        results = {p.name: resources.stored_result(store, p.name) for p in pipes}
        verdicts = _verdicts(store, pid)
        suggested: dict[str, list[str]] = {}
        for column, pipe in zip(st.columns(len(pipes)), pipes, strict=True):
            with column:
                matches = _pipeline_column(store, pipe, results[pipe.name], pid, postings, verdicts)
            if matches is not None:
                for other in matches["posting_id"]:
                    suggested.setdefault(other, []).append(pipe.name)
        st.divider()
        _review(store, pid, suggested, verdicts)
        st.divider()
        _groups(store, pid, postings)


common.run_page(main)
