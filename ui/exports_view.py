"""Download buttons for the exports a shop takes away (`core.exports`): one pipeline's matches,
clusters and the Kaggle file, and the reviewer's verdicts, each as CSV and Excel. A file is
built only when its button is clicked (a large catalog's matches are megabytes)."""

from __future__ import annotations

import functools

import streamlit as st

from core import exports
from core.store import Store

#: What each export holds, in a line a shop owner reads.
EXPORT_LINES = {
    "matches": "Matches: one row per pair (both postings' ids, titles and image files, "
    "probability, verdict, reviewed by a person or not)",
    "clusters": "Clusters: the postings taken for one product (cluster id, members, strength)",
    "verdicts": "Your verdicts: each pair you marked same or different",
    "kaggle": "Kaggle file: posting_id,matches (the competition's layout)",
}
_FORMAT_LABELS = {"csv": "CSV", "xlsx": "Excel"}


def _export_bytes(db_path: str, what: str, fmt: str, pipeline: str) -> bytes:
    with Store(db_path) as store:
        return exports.export_bytes(store, what, fmt, pipeline)


def export_buttons(store: Store, pipeline: str, key: str = "exports") -> None:
    """A row per export with its CSV and Excel buttons, for ``pipeline``'s stored run."""
    if store.path is None or store.match_run(pipeline) is None:
        st.caption(f"Run the {pipeline} pipeline to export its matches.")
        return
    stem = store.path.stem
    st.caption(
        f"From the {pipeline} pipeline's stored matches, with your verdicts counted. "
        "Or on the command line: python -m core export --what matches --format xlsx "
        f"--pipeline {pipeline} --out FILE"
    )
    for what, line in EXPORT_LINES.items():
        text, *buttons = st.columns([4, 1, 1], vertical_alignment="center")
        text.markdown(line)
        name = stem if what == "verdicts" else f"{stem}-{pipeline}"
        for column, (fmt, label) in zip(buttons, _FORMAT_LABELS.items(), strict=True):
            column.download_button(
                label,
                data=functools.partial(_export_bytes, str(store.path), what, fmt, pipeline),
                file_name=f"{name}-{what}.{fmt}",
                mime=exports.mime_type(fmt),
                key=f"{key}_{what}_{fmt}",
                on_click="ignore",
                icon=":material/download:",
            )
