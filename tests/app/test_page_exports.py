"""Browse page: the results a shop takes away, each as CSV and Excel, from the pipeline the
page shows; the files the buttons send open in pandas."""

from __future__ import annotations

import io

import pandas as pd

from core.exports import COLUMNS
from tests.app.helpers import open_page, run_pipelines, texts
from ui import exports_view


def test_browse_offers_every_export_as_csv_and_excel(app, demo_db):
    run_pipelines(demo_db)
    open_page(app, "browse")

    buttons = app.get("download_button")
    labels = [b.label for b in buttons]
    assert labels == ["CSV", "Excel"] * len(exports_view.EXPORT_LINES)
    assert any(line in texts(app.markdown) for line in exports_view.EXPORT_LINES.values())
    assert any("ensemble pipeline's stored matches" in c for c in texts(app.caption))
    # What the Excel matches button sends, built as its click builds it.
    data = exports_view._export_bytes(str(demo_db), "matches", "xlsx", "ensemble")
    frame = pd.read_excel(io.BytesIO(data))
    assert frame.columns.tolist() == list(COLUMNS["matches"]) and len(frame) > 100
    assert set(frame["verdict"]) <= {"Same", "Probably same", "Unsure", "Different"}
