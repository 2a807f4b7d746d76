"""Helpers shared by the AppTest modules (kept out of conftest.py so they import by name)."""

from __future__ import annotations

import csv
import functools
import re
from pathlib import Path

from streamlit.testing.v1 import AppTest

from core import matching
from core.store import Store

PROJECT = Path(__file__).resolve().parents[2]
APP = PROJECT / "app.py"
WEIGHTS = PROJECT.parent / "shared" / "weights"
MOBILENET_025 = WEIGHTS / "mobilenet_2_5_224_tf_no_top.h5"
#: Page runs read a 600-posting catalog; loading a model takes longer than the 3 s default.
TIMEOUT = 60


@functools.cache
def _component_registry():
    from streamlit.components.v2.component_manager import BidiComponentManager

    registry = BidiComponentManager()
    registry.discover_and_register_components(start_file_watching=False)
    return registry


def new_app(timeout: float = TIMEOUT) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=timeout)
    # Each new AppTest scans every installed package for custom components (1–3 s here); the
    # answer cannot change during a test session, so all of them share one scan.
    if hasattr(at, "_bidi_component_manager"):
        at._bidi_component_manager = _component_registry()
    return at


def open_page(at: AppTest, page: str) -> AppTest:
    at.switch_page(f"pages/{page}.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def run_pipelines(db: Path, *pipelines: str) -> None:
    """Store matches the quick way (perceptual hashes + titles), as the CLI would."""
    with Store(db) as store:
        for pipeline in pipelines or ("baseline", "ensemble"):
            matching.run_pipeline(store, pipeline)


def demo_rows(home: Path, n: int) -> list[dict[str, str]]:
    with (home / "demo" / "catalog.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))[:n]


def write_catalog(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def texts(elements) -> list[str]:
    return [str(e.value) for e in elements]


def button(at: AppTest, label: str):
    """The one button with this label (buttons inside forms included)."""
    found = [b for b in at.button if b.label == label]
    assert len(found) == 1, (
        f"{len(found)} buttons labelled {label!r}: {[b.label for b in at.button]}"
    )
    return found[0]


def card_ids(at: AppTest) -> list[str]:
    """Posting ids on the match cards, in rank order (a card reads "**1.** `id`  \ntitle")."""
    return [m.value.split("`")[1] for m in at.markdown if re.match(r"\*\*\d+\.\*\* `", m.value)]


def open_tab(at: AppTest, key: str, label: str) -> AppTest:
    """Choose the tab of ``st.tabs(key=key)`` whose label starts with ``label`` and rerun: a
    page draws only its open tab."""
    [chosen] = [t.label for t in at.tabs if t.label.startswith(label)][:1] or [label]
    at.session_state[key] = chosen
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def import_small_catalog(home: Path, db: Path, rows: list[dict[str, str]]) -> Path:
    """A catalog of ``rows`` (demo rows, changed as a test needs) with the demo's photos,
    imported into a database of its own."""
    from core.catalog import import_catalog

    csv_path = write_catalog(db.with_suffix(".csv"), rows)
    with Store(db) as store:
        import_catalog(store, csv_path, home / "demo" / "images")
    return db


def table_columns(element) -> dict[str, dict]:
    """A shown table's column settings (label, width, type) by column name."""
    import json

    return json.loads(element.proto.columns or "{}")


#: Pixels of the page's main column at a 1440-px window with the sidebar open: a table whose
#: columns add up to more is cut off at the right (scrolled sideways).
MAIN_COLUMN = 980
_NAMED_WIDTHS = {"small": 75, "medium": 200, "large": 400}


def assert_table_fits(element, photo_pixels: int = 120) -> dict[str, dict]:
    """A table with one photo column of at least ``photo_pixels``, whose columns fit the
    page; returns its columns."""
    columns = {k: v for k, v in table_columns(element).items() if not v.get("hidden")}
    photos = [name for name, c in columns.items() if c["type_config"]["type"] == "image"]
    assert len(photos) == 1, columns
    assert element.proto.row_height >= photo_pixels
    assert columns[photos[0]]["width"] >= photo_pixels
    widths = [_NAMED_WIDTHS.get(c.get("width"), c.get("width")) for c in columns.values()]
    assert None not in widths and sum(widths) <= MAIN_COLUMN, columns
    return columns
