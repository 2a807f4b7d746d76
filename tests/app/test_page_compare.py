"""Compare page: uploaded photos and typed titles against the catalog, errors, adding items."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from core.store import Store
from tests.app.helpers import button, card_ids, open_page, open_tab, texts


def _pipelines_table(at):
    """The "Compare pipelines" tab: one row per posting, a "✔ Same" column per pipeline."""
    open_tab(at, "compare_tab_0", "Compare pipelines")
    [table] = [d.value for d in at.dataframe if "baseline" in d.value.columns]
    return table.set_index("posting_id")


def _evidence(at) -> list[str]:
    return [c for c in texts(at.caption) if "matched on" in c or "no rule passed" in c]


def _photo(db: Path) -> tuple[str, str, bytes]:
    with Store(db) as store:
        row = store.postings().iloc[7]
    return row["posting_id"], row["title"], Path(row["image_path"]).read_bytes()


def test_uploaded_photo_finds_its_own_posting(app, demo_db):
    pid, _, jpeg = _photo(demo_db)
    # Re-encoded as PNG: a different file, the same picture.
    png = io.BytesIO()
    Image.open(io.BytesIO(jpeg)).save(png, format="PNG")
    open_page(app, "compare")
    app.file_uploader(key="compare_files").set_value(("shelf.png", png.getvalue(), "image/png"))
    button(app, "Find matches").click().run()

    assert not app.exception
    assert not app.error, texts(app.error)
    # The ensemble (the most accurate pipeline without a trained model) leads.
    assert card_ids(app)[0] == pid
    assert "matched on photo hash" in _evidence(app)[0]
    # The evidence in words: the photo (hash) very alike, no title typed so no title words.
    assert _evidence(app)[0].startswith("photos very similar  \n")
    assert "title" not in _evidence(app)[0].split("matched on")[0]
    assert [m.value for m in app.markdown if m.value.startswith("### :")][0] == (
        "### :green-badge[Same]"
    )
    table = _pipelines_table(app)
    assert table.index[0] == pid
    assert table.loc[pid, "baseline"].startswith("✔")
    assert table.loc[pid, "ensemble"].startswith("✔")
    # No embeddings in the fresh demo: the page says the hash is the image evidence.
    assert any("perceptual hash is the image evidence" in c.value for c in app.caption)
    assert any(m.value == "#### shelf.png" for m in app.markdown)


def test_typed_title_matches_by_text(app, demo_db):
    pid, title, _ = _photo(demo_db)
    open_page(app, "compare")
    app.text_input(key="compare_title").set_value(title)
    button(app, "Find matches").click().run()

    assert not app.exception
    assert card_ids(app)[0] == pid
    assert "titles nearly the same" in _evidence(app)[0]
    assert "title" in _evidence(app)[0].split("matched on")[1]
    table = _pipelines_table(app)
    assert table.loc[pid, "baseline"] == "✔ Same"
    assert table.loc[pid, "ensemble"] == "✔ Same"


def test_bad_inputs_show_errors_naming_the_file(app):
    open_page(app, "compare")
    button(app, "Find matches").click().run()
    assert not app.exception
    assert "give an image or a title" in texts(app.error)[0]

    huge = io.BytesIO()
    Image.new("1", (8000, 6000)).save(huge, format="PNG")  # 48 Mpx, a few kB on disk
    app.file_uploader(key="compare_files").set_value(
        [
            ("broken.jpg", b"\xff\xd8\xff\xe0 this is not really a jpeg", "image/jpeg"),
            ("empty.png", b"", "image/png"),
            ("huge.png", huge.getvalue(), "image/png"),
        ]
    )
    button(app, "Find matches").click().run()
    assert not app.exception
    errors = texts(app.error)
    assert len(errors) == 3
    assert errors[0].startswith("broken.jpg: ")
    assert errors[1] == "empty.png: the file is empty (0 bytes); choose the photo again"
    assert errors[2].startswith("huge.png: ") and "8000x6000 pixels" in errors[2]


def test_add_to_catalog_stores_the_upload(app, demo_db, samesame_home):
    _, _, jpeg = _photo(demo_db)
    with Store(demo_db) as store:
        before = store.count_postings()
    open_page(app, "compare")
    app.file_uploader(key="compare_files").set_value(("new.jpg", jpeg, "image/jpeg"))
    app.text_input(key="compare_title").set_value("Minyak Goreng Baru 2L")
    button(app, "Find matches").click().run()
    button(app, "Add to catalog").click().run()

    assert not app.exception
    [message] = [s for s in texts(app.success) if s.startswith("Added new.jpg")]
    posting_id = message.split(" as ")[1].split(".")[0]
    with Store(demo_db) as store:
        assert store.count_postings() == before + 1
        added = store.posting(posting_id)
    assert added["title"] == "Minyak Goreng Baru 2L"
    assert added["source"] == "upload"
    assert Path(added["image_path"]).parent == samesame_home / "uploads"


def test_a_photo_already_in_the_catalog_is_named_before_the_results(app, demo_db):
    pid, _, jpeg = _photo(demo_db)
    open_page(app, "compare")
    app.file_uploader(key="compare_files").set_value(("again.jpg", jpeg, "image/jpeg"))
    button(app, "Find matches").click().run()

    assert not app.exception
    [warning] = [w.value for w in app.warning if "already in the catalog" in w.value]
    assert f"**{pid}** (identical perceptual hash)" in warning


def test_a_new_photo_gets_no_copy_warning(app, demo_db):
    picture = io.BytesIO()
    Image.new("RGB", (200, 200), (10, 200, 30)).save(picture, format="JPEG")
    open_page(app, "compare")
    app.file_uploader(key="compare_files").set_value(
        ("green.jpg", picture.getvalue(), "image/jpeg")
    )
    button(app, "Find matches").click().run()

    assert not app.exception
    assert card_ids(app)  # the query ran: the closest postings are listed
    assert not [w.value for w in app.warning if "already in the catalog" in w.value]


def test_another_catalog_is_linked_posting_by_posting(app, demo_db, samesame_home):
    """The demo linked with a second catalog made of 80 of its own postings: each of those
    finds its copy, and the links come as a CSV with this catalog's ids."""
    from core.catalog import import_catalog
    from tests.app.helpers import demo_rows, open_tab, write_catalog

    rows = demo_rows(samesame_home, 80)
    for row in rows:
        row["posting_id"] = "other_" + row["posting_id"]
    csv = write_catalog(samesame_home / "other.csv", rows)
    with Store(samesame_home / "catalogs" / "other.db") as other:
        import_catalog(other, csv, samesame_home / "demo" / "images")
    open_page(app, "compare")
    open_tab(app, "compare_mode", "Another catalog")
    assert app.selectbox(key="link_against").value == samesame_home / "catalogs" / "other.db"
    app.selectbox(key="link_pipeline").set_value("baseline")
    button(app, "Link the catalogs").click().run()

    assert not app.exception
    assert not app.error, texts(app.error)
    [message] = [s for s in texts(app.success) if "have a match in other" in s]
    assert int(message.split()[0].replace(",", "")) >= 80  # at least the 80 copies
    [links] = [d.value for d in app.dataframe if "matches" in d.value.columns]
    found = dict(zip(links["posting_id"], links["matches"], strict=True))
    copies = [r["posting_id"].removeprefix("other_") for r in rows]
    assert all(f"other_{pid}" in found.get(pid, "").split() for pid in copies[:40])
    assert all(m.startswith("other_") for ms in found.values() for m in ms.split())
    assert "Download links.csv" in [b.label for b in app.get("download_button")]


def test_linking_needs_a_second_catalog(app, demo_db):
    from tests.app.helpers import open_tab

    open_page(app, "compare")
    open_tab(app, "compare_mode", "Another catalog")
    assert "Import a second catalog" in texts(app.info)[0]
