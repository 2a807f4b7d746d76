"""Catalog page: what the database holds, importing catalogs, and a searchable postings table."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from core.catalog import ImportReport, import_catalog, scan_catalog, summarize_problems
from core.errors import CatalogError, SameSameError
from core.pipeline_choice import current_runs
from core.store import Store
from core.workspace import demo_db_path
from ui import common, pipeline_bar, resources

PAGE_SIZE = 25
IMPORT_TARGETS = {"new": "A new database", "current": "The current database"}


def _counts(info: dict) -> None:
    images = info["images"]
    row = st.columns(6)
    row[0].metric("Postings", f"{info['postings']:,}")
    row[1].metric("Label groups", f"{info['label_groups']:,}")
    row[2].metric("Images ok", f"{images['ok']:,}")
    row[3].metric(
        "Images unusable",
        f"{images['missing'] + images['corrupt'] + images['refused']:,}",
        help=(
            f"missing {images['missing']:,} · corrupt {images['corrupt']:,} · "
            f"refused {images['refused']:,} · no image given {images['none']:,}"
        ),
    )
    row[4].metric("Perceptual hashes", f"{info['hashes']:,}")
    row[5].metric("Reviews", f"{info['reviews']:,}")
    st.caption(
        f"Images: {images['ok']:,} ok · {images['missing']:,} missing · "
        f"{images['corrupt']:,} corrupt · {images['refused']:,} refused · "
        f"{images['none']:,} without image"
    )
    left, right = st.columns(2)
    with left:
        embeddings = info["embeddings"]
        if embeddings:
            st.dataframe(
                pd.DataFrame({"model": list(embeddings), "embeddings": list(embeddings.values())}),
                hide_index=True,
                width="stretch",
            )
        else:
            st.caption("No image embeddings yet: run them on the Embed page.")
    with right:
        matches = info["matches"]
        if matches:
            st.dataframe(
                pd.DataFrame({"pipeline": list(matches), "matched pairs": list(matches.values())}),
                hide_index=True,
                width="stretch",
            )
        else:
            st.caption("No stored matches yet: run a pipeline on the Embed or Browse page.")


def _next_steps(store: Store, info: dict) -> None:
    """What to do next, in three steps, each ticked once done for this catalog as it is now
    (a catalog change makes the matches and the checks of them to do again); gone when all
    are done."""
    current = current_runs(store)
    matched = bool(current)
    reviews = store.reviews()["reviewed_at"] if matched and info["reviews"] else None
    checked = reviews is not None and bool((reviews >= min(current.values())).any())
    steps = [
        (
            info["postings"] > 0,
            "Load a catalog: the demo is ready to explore, or import your own CSV below "
            "(posting_id, image, title).",
            None,
        ),
        (
            matched,
            "Embed the photos and match the catalog.",
            ("pages/embed.py", "Embed and match", ":material/memory:"),
        ),
        (
            checked,
            "Check the matches: browse a posting's matches and mark pairs same or different, "
            "or compare a new item with the catalog.",
            ("pages/browse.py", "Browse matches", ":material/view_comfy:"),
        ),
    ]
    if all(done for done, _, _ in steps):
        return
    with st.container(border=True):
        st.markdown("**Next steps**")
        for number, (done, text, link) in enumerate(steps, start=1):
            mark = ":green[:material/check_circle:]" if done else f"**{number}.**"
            text_col, link_col = st.columns([4, 1], vertical_alignment="center")
            text_col.markdown(f"{mark} :gray[{text}]" if done else f"{mark} {text}")
            if link and not done:
                link_col.page_link(link[0], label=link[1], icon=link[2])


def _target_database(kind: str, name: str) -> Path:
    if kind == "current":
        return common.current_db()
    return common.new_catalog_path(name)


def _run_import(source: bytes | Path, label: str, image_folder: str, kind: str, name: str) -> None:
    """Validate first, then write: a bad file never creates a new database or switches to it."""
    image_root = Path(image_folder.strip()).expanduser() if image_folder.strip() else None
    if image_root is not None and not image_root.is_dir():
        raise CatalogError(
            f"Image folder {image_root} does not exist or is not a folder. Give the folder the "
            "catalog's image column refers to, or leave it empty to import titles and hashes only."
        )
    scan_catalog(source, label)  # file-level problems raise CatalogError before any write
    target = _target_database(kind, name.strip() or common.default_catalog_name(label))
    created = not target.exists()
    store = Store(target)
    try:
        report: ImportReport = import_catalog(
            store, source, image_root, name=label, progress=common.ProgressBar(f"Importing {label}")
        )
    except BaseException:
        store.close()
        if created:
            target.unlink(missing_ok=True)
        raise
    store.close()
    st.session_state["import_report"] = {
        "label": label,
        "database": str(target),
        "rows": report.rows,
        "changed": report.changed,
        "problems": report.problems_frame,
    }
    if kind == "new":
        common.set_current_db(target)
    st.rerun()  # the sidebar and counts show the imported catalog


def _import_here(source: bytes | Path, label: str, folder: str, kind: str, name: str) -> None:
    """Run the import; a problem is said inside the form that caused it, and the rest of the
    page (the postings already stored) stays."""
    try:
        _run_import(source, label, folder, kind, name)
    except (CatalogError, SameSameError) as exc:
        st.error(f"The catalog was not imported: {exc}")


def _import_section() -> None:
    st.subheader("Import a catalog")
    st.caption(
        "CSV columns: posting_id, image, title, and optionally image_phash and label_group "
        "(the Shopee layout). Image names are looked up inside the image folder."
    )
    kind = st.radio(
        f"Import into (the current database is {common.catalog_label(common.current_db())})",
        ["new", "current"],
        format_func=IMPORT_TARGETS.get,
        horizontal=True,
        key="import_target",
    )
    name = ""
    if kind == "new":
        name = st.text_input(
            "New catalog name",
            key="import_name",
            placeholder="defaults to the CSV's file name",
            help="Letters, digits, '-' and '_'. Left empty, the CSV's file name is used.",
        )
    upload_tab, path_tab = st.tabs(["Upload a CSV", "CSV and images on this machine"])
    with upload_tab:
        with st.form("import_upload"):
            uploaded = st.file_uploader("Catalog CSV", type=["csv"], key="import_csv")
            folder = st.text_input(
                "Image folder on this machine (optional)",
                key="import_upload_images",
                help="Without it, only titles and the CSV's image_phash are used.",
            )
            if st.form_submit_button("Import uploaded CSV", type="primary"):
                if uploaded is None:
                    st.error("Choose a CSV file to upload first.")
                else:
                    _import_here(uploaded.getvalue(), uploaded.name, folder, kind, name)
    with path_tab:
        with st.form("import_path"):
            csv_path = st.text_input("CSV path", key="import_csv_path")
            folder = st.text_input("Image folder", key="import_path_images")
            if st.form_submit_button("Import from path", type="primary"):
                if not csv_path.strip():
                    st.error("Type the path of a catalog CSV file.")
                else:
                    path = Path(csv_path.strip()).expanduser()
                    _import_here(path, path.name, folder, kind, name)


def _import_outcome(report: dict) -> None:
    """What the import did first, in plain words; what to know about some rows second."""
    added = report["changed"]
    noun = "posting" if added == 1 else "postings"
    st.success(
        f"Imported {report['label']}: {added:,} {noun} added or changed, from "
        f"{report['rows']:,} rows."
        if added
        else f"Imported {report['label']}: {report['rows']:,} rows read, all already here "
        "unchanged."
    )
    groups = summarize_problems(report["problems"])
    if groups:
        unusable = any(not group.usable for group in groups)
        (st.warning if unusable else st.caption)(
            ("Some rows could not be used" if unusable else "Good to know")
            + ": "
            + "; ".join(group.sentence for group in groups)
            + ". The details are under *Import problems* below."
        )


def _last_report(store: Store) -> None:
    report = st.session_state.get("import_report")
    if report and report["database"] == str(store.path):
        _import_outcome(report)
    problems = store.import_problems()
    groups = summarize_problems(problems)
    if not groups:
        return
    affected = problems["posting_id"].nunique()
    unusable = [g for g in groups if not g.usable]
    noun = "posting" if affected == 1 else "postings"
    label = f"Import problems: {affected:,} {noun}, " + (
        "some can match nothing" if unusable else "all still usable"
    )
    # Open only when some postings can match nothing; otherwise it is a summary to look into.
    with st.expander(label, expanded=bool(unusable), icon=":material/report:"):
        for group in groups:
            icon = ":material/block:" if not group.usable else ":material/info:"
            st.markdown(f"{icon} **{group.sentence}**.")
            st.dataframe(
                group.examples,
                hide_index=True,
                width="stretch",
                column_config={"row": st.column_config.NumberColumn("CSV row", format="%d")},
            )
        st.download_button(
            f"Download all {len(problems):,} row problems (CSV)",
            problems.to_csv(index=False),
            file_name="import-problems.csv",
            mime="text/csv",
            icon=":material/download:",
        )


def _postings_table(store: Store) -> None:
    st.subheader("Postings")
    view = resources.catalog_view(store)
    search_col, status_col = st.columns([3, 1])
    query = search_col.text_input(
        "Search titles and ids", key="catalog_search", placeholder="e.g. shampoo"
    )
    status = status_col.selectbox(
        "Image status", ["all", "ok", "missing", "corrupt", "refused", "none"], key="catalog_status"
    )
    shown = view.search(query)
    if status != "all":
        shown = shown[shown["image_status"] == status]
    if shown.empty:
        st.info("No posting matches this search.")
        return
    pages = max(1, -(-len(shown) // PAGE_SIZE))
    # A new search starts on page 1: the page widget's key changes with the filter.
    page = st.pagination(pages, key=f"catalog_page:{query}:{status}") if pages > 1 else 1
    visible = shown.iloc[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    st.caption(
        f"{len(shown):,} postings · showing {(page - 1) * PAGE_SIZE + 1:,}–"
        f"{(page - 1) * PAGE_SIZE + len(visible):,}"
    )
    table = resources.with_thumbnails(visible)
    # One photo column: the picture; the file's name beside it says when it is unusable.
    status = table["image_status"].fillna("none")
    table["image"] = table["image"].fillna("").astype(str).where(status != "none", "")
    table["image"] = table["image"].where(status == "ok", table["image"] + " (" + status + ")")
    table["image"] = table["image"].str.strip()
    table = table[["thumbnail", "posting_id", "title", "label_group", "image", "image_phash"]]
    text = st.column_config.TextColumn
    # Unlabelled postings and missing hashes read as a dash, not as "None".
    table = table.fillna({"label_group": "—", "image_phash": "—"})
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        row_height=common.THUMB_ROW_HEIGHT,
        height=common.table_height(len(table), max_rows=PAGE_SIZE),
        # Fixed widths that add up to less than the page at 1400 px: no sideways scrolling;
        # a long title wraps in its row.
        column_config={
            **common.score_columns(table),
            "posting_id": text("posting", width=110),
            "title": text("title", width=320),
            "label_group": text("label", width=90),
            "image": text(
                "photo file",
                width=150,
                help="The image file; (missing), (corrupt) or (refused) when it cannot be used, "
                "(none) when the posting names no image.",
            ),
            "image_phash": text("photo hash", width=140),
        },
    )


def main() -> None:
    st.title("Catalog")
    db = common.current_db()
    st.caption(f"{common.catalog_label(db)} · `{db}`")
    with common.open_store() as store:
        pipeline_bar.header(store)
        info = store.info()  # counts over the whole catalog: read once per run
        _next_steps(store, info)
        _counts(info)
        if not common.is_demo(db):
            if st.button("Switch back to the demo catalog", icon=":material/undo:"):
                common.set_current_db(demo_db_path())
                st.rerun()
        _last_report(store)
        st.divider()
        _import_section()
        st.divider()
        if store.count_postings():
            _postings_table(store)
        else:
            st.info("This database is empty: import a catalog above.")


def _guarded() -> None:
    try:
        main()
    except CatalogError as exc:
        st.error(f"The catalog was not imported: {exc}")


common.run_page(_guarded)
