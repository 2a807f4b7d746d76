"""Catalog page: counts, importing catalogs (upload and path), errors, search, demo switch."""

from __future__ import annotations

from core import workspace
from core.store import Store
from tests.app.helpers import (
    assert_table_fits,
    button,
    demo_rows,
    import_small_catalog,
    open_page,
    texts,
    write_catalog,
)


def _metric(at, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_counts_come_from_the_database(app, demo_db):
    open_page(app, "catalog")
    with Store(demo_db) as store:
        info = store.info()
    assert _metric(app, "Postings") == f"{info['postings']:,}"
    assert _metric(app, "Label groups") == f"{info['label_groups']:,}"
    assert _metric(app, "Images ok") == f"{info['images']['ok']:,}"
    assert _metric(app, "Perceptual hashes") == f"{info['hashes']:,}"


def test_upload_imports_a_small_catalog_into_a_new_database(app, samesame_home, tmp_path):
    rows = demo_rows(samesame_home, 5)
    rows[4] = {**rows[4], "image": "no_such_photo.jpg"}  # one row problem to report
    csv_path = write_catalog(tmp_path / "small.csv", rows)
    open_page(app, "catalog")

    app.radio(key="import_target").set_value("new")
    app.run()
    app.text_input(key="import_name").set_value("small")
    app.file_uploader(key="import_csv").set_value(("small.csv", csv_path.read_bytes(), "text/csv"))
    app.text_input(key="import_upload_images").set_value(str(samesame_home / "demo" / "images"))
    button(app, "Import uploaded CSV").click().run()

    assert not app.exception
    assert not app.error, texts(app.error)
    target = samesame_home / "catalogs" / "small.db"
    assert app.sidebar.selectbox(key="sidebar_catalog").value == str(target)
    # What was imported first; the row that needs a look second, in words.
    assert texts(app.success)[0] == "Imported small.csv: 5 postings added or changed, from 5 rows."
    [note] = [c for c in texts(app.caption) if c.startswith("Good to know: ")]
    assert note.startswith(
        "Good to know: 1 posting naming an image file that is not in the image folder: "
        "matched by title"
    )
    assert note.endswith(". The details are under *Import problems* below.")
    assert _metric(app, "Postings") == "5"
    assert _metric(app, "Images ok") == "4"
    problems = next(d.value for d in app.dataframe if "problem" in d.value.columns)
    assert problems["posting_id"].tolist() == [rows[4]["posting_id"]]
    assert "no_such_photo.jpg" in problems["problem"].iloc[0]
    # Said in words, grouped by kind; the posting still matches by title, so it is a summary.
    assert any(
        "1 posting naming an image file that is not in the image folder: matched by title"
        in m.value
        for m in app.markdown
    )
    [summary] = [e for e in app.expander if e.label.startswith("Import problems")]
    assert summary.label == "Import problems: 1 posting, all still usable"
    with Store(target) as store:
        assert sorted(store.postings()["posting_id"]) == sorted(r["posting_id"] for r in rows)


def test_import_by_path_into_the_current_database(app, samesame_home, tmp_path, demo_db):
    rows = [
        {**r, "posting_id": f"extra_{i}", "title": f"Produk tambahan {i} 250ml"}
        for i, r in enumerate(demo_rows(samesame_home, 3))
    ]
    csv_path = write_catalog(tmp_path / "extra.csv", rows)
    with Store(demo_db) as store:
        before = store.count_postings()
    open_page(app, "catalog")
    app.radio(key="import_target").set_value("current").run()
    app.text_input(key="import_csv_path").set_value(str(csv_path))
    app.text_input(key="import_path_images").set_value(str(samesame_home / "demo" / "images"))
    button(app, "Import from path").click().run()

    assert not app.exception
    assert not app.error, texts(app.error)
    assert _metric(app, "Postings") == f"{before + 3:,}"
    assert app.sidebar.selectbox(key="sidebar_catalog").value == str(demo_db)


def test_bad_csv_shows_an_error_and_creates_nothing(app, samesame_home):
    open_page(app, "catalog")
    app.radio(key="import_target").set_value("new").run()
    app.text_input(key="import_name").set_value("broken")
    app.file_uploader(key="import_csv").set_value(("prices.csv", b"sku,price\n1,2\n", "text/csv"))
    button(app, "Import uploaded CSV").click().run()

    assert not app.exception
    [error] = texts(app.error)
    assert "missing required column(s) posting_id, image, title" in error
    assert "prices.csv" in error
    assert not (samesame_home / "catalogs" / "broken.db").exists()
    assert app.sidebar.selectbox(key="sidebar_catalog").value == str(workspace.demo_db_path())


def test_missing_image_folder_and_bad_name_are_explained(app, tmp_path, samesame_home):
    csv_path = write_catalog(tmp_path / "c.csv", demo_rows(samesame_home, 2))
    open_page(app, "catalog")
    app.radio(key="import_target").set_value("new").run()
    app.text_input(key="import_name").set_value("../escape")
    app.text_input(key="import_csv_path").set_value(str(csv_path))
    button(app, "Import from path").click().run()
    assert "is not usable" in texts(app.error)[0]

    app.text_input(key="import_name").set_value("fine")
    app.text_input(key="import_path_images").set_value(str(tmp_path / "nope"))
    button(app, "Import from path").click().run()
    assert not app.exception
    assert "does not exist or is not a folder" in texts(app.error)[0]


def test_search_filters_the_postings_table_with_thumbnails(app, demo_db):
    with Store(demo_db) as store:
        postings = store.postings()
    word = postings["title"].iloc[0].split()[0].lower()
    expected = postings["title"].str.lower().str.contains(word, regex=False).sum()
    open_page(app, "catalog")
    app.text_input(key="catalog_search").set_value(word).run()

    assert not app.exception
    table = next(d.value for d in app.dataframe if "thumbnail" in d.value.columns)
    assert len(table) == min(expected, 25)
    assert table["title"].str.lower().str.contains(word, regex=False).all()
    assert table["thumbnail"].str.startswith("data:image/jpeg;base64,").all()
    assert f"{expected:,} postings" in " ".join(texts(app.caption))


def test_switch_back_to_the_demo(app, samesame_home):
    other = samesame_home / "catalogs" / "empty.db"
    Store(other).close()
    app.run()
    app.sidebar.selectbox(key="sidebar_catalog").set_value(str(other)).run()
    open_page(app, "catalog")
    assert "This database is empty" in texts(app.info)[0]
    button(app, "Switch back to the demo catalog").click().run()
    assert app.sidebar.selectbox(key="sidebar_catalog").value == str(workspace.demo_db_path())


def test_a_bad_csv_with_a_bad_name_gets_the_csv_error_and_the_table_stays(app, samesame_home):
    open_page(app, "catalog")
    app.radio(key="import_target").set_value("new").run()
    app.text_input(key="import_name").set_value("../escape")
    app.file_uploader(key="import_csv").set_value(("prices.csv", b"sku,price\n1,2\n", "text/csv"))
    button(app, "Import uploaded CSV").click().run()

    assert not app.exception
    [error] = texts(app.error)
    assert "missing required column(s) posting_id, image, title" in error
    assert "is not usable" not in error
    # The postings already stored are still listed below the failed import.
    assert any("thumbnail" in d.value.columns for d in app.dataframe)


def test_an_empty_name_takes_the_csv_file_name(app, samesame_home, tmp_path):
    csv_path = write_catalog(tmp_path / "shop items.csv", demo_rows(samesame_home, 2))
    (samesame_home / "catalogs").mkdir(exist_ok=True)
    (samesame_home / "catalogs" / "shop-items.db").write_bytes(b"")  # that name is taken
    open_page(app, "catalog")
    app.radio(key="import_target").set_value("new").run()
    app.text_input(key="import_csv_path").set_value(str(csv_path))
    button(app, "Import from path").click().run()

    assert not app.exception
    assert not app.error, texts(app.error)
    target = samesame_home / "catalogs" / "shop-items-2.db"
    assert app.sidebar.selectbox(key="sidebar_catalog").value == str(target)
    assert _metric(app, "Postings") == "2"


def test_next_steps_tick_off_what_this_catalog_has_done(app, demo_db):
    from core import matching

    open_page(app, "catalog")
    steps = [m.value for m in app.markdown if "Embed the photos" in m.value or "Load a" in m.value]
    assert steps[0].startswith(":green[:material/check_circle:]")  # the demo is loaded
    assert steps[1].startswith("**2.** Embed the photos")
    assert "Embed and match" in [link.label for link in app.get("page_link")]

    with Store(demo_db) as store:
        matching.run_pipeline(store, "baseline")
    open_page(app, "catalog")
    steps = [m.value for m in app.markdown if "Embed the photos" in m.value]
    assert steps[0].startswith(":green[:material/check_circle:]")
    assert "Embed and match" not in [link.label for link in app.get("page_link")]
    assert any(m.value.startswith("**3.** Check the matches") for m in app.markdown)


def test_an_import_that_worked_leads_with_what_was_imported(app, samesame_home, tmp_path):
    # Like the grocery photos: every row without a title (549 "row problems" was the headline).
    rows = [{**r, "title": ""} for r in demo_rows(samesame_home, 6)]
    csv_path = write_catalog(tmp_path / "photos only.csv", rows)
    open_page(app, "catalog")
    app.text_input(key="import_csv_path").set_value(str(csv_path))
    app.text_input(key="import_path_images").set_value(str(samesame_home / "demo" / "images"))
    button(app, "Import from path").click().run()

    assert not app.exception
    assert texts(app.success) == [
        "Imported photos only.csv: 6 postings added or changed, from 6 rows."
    ]
    assert not any("problem" in s for s in texts(app.success))
    assert (
        "Good to know: 6 postings without a title: matched by image only. The details are "
        "under *Import problems* below."
    ) in texts(app.caption)
    assert not app.warning or not any("could not be used" in w for w in texts(app.warning))


def test_an_empty_file_is_said_to_be_empty(app, samesame_home, tmp_path):
    open_page(app, "catalog")
    app.file_uploader(key="import_csv").set_value(("empty.csv", b"", "text/csv"))
    button(app, "Import uploaded CSV").click().run()
    assert not app.exception
    assert texts(app.error) == [
        "The catalog was not imported: empty.csv: the file is empty; expected a CSV with a "
        "header row"
    ]
    # Saved by an editor as "UTF-8 with BOM", an empty file is three bytes: still empty.
    bom_only = tmp_path / "blank.csv"
    bom_only.write_bytes(b"\xef\xbb\xbf\r\n")
    app.text_input(key="import_csv_path").set_value(str(bom_only))
    button(app, "Import from path").click().run()
    assert "blank.csv: the file is empty" in texts(app.error)[0]


def test_next_steps_start_over_when_the_catalog_changes(app, demo_db, samesame_home, tmp_path):
    from core import matching
    from core.catalog import import_catalog

    with Store(demo_db) as store:
        matching.run_pipeline(store, "baseline")
        pair = store.load_match_pairs("baseline").iloc[0]
        store.save_review(pair["left"], pair["right"], "same")
    open_page(app, "catalog")
    assert not any("Next steps" in m.value for m in app.markdown)  # all three done

    extra = [{**demo_rows(samesame_home, 1)[0], "posting_id": "new_1", "title": "Teh celup"}]
    with Store(demo_db) as store:
        import_catalog(store, write_catalog(tmp_path / "more.csv", extra), None)
    open_page(app, "catalog")
    steps = [m.value for m in app.markdown if m.value.startswith(("**2.**", "**3.**"))]
    assert steps == [
        "**2.** Embed the photos and match the catalog.",
        "**3.** Check the matches: browse a posting's matches and mark pairs same or "
        "different, or compare a new item with the catalog.",
    ]


def test_the_postings_table_shows_one_photo_large_enough_and_fits(app, samesame_home, tmp_path):
    rows = demo_rows(samesame_home, 3)
    rows[2] = {**rows[2], "image": "no_such_photo.jpg"}
    db = import_small_catalog(samesame_home, tmp_path / "three.db", rows)
    app.session_state["db_path"] = str(db)
    open_page(app, "catalog")

    table = next(d for d in app.dataframe if "thumbnail" in d.value.columns)
    columns = assert_table_fits(table)
    # One photo column (it was "image" twice: the picture and its status), the file beside it.
    assert [columns[name]["label"] for name in table.value.columns] == [
        "photo",
        "posting",
        "title",
        "label",
        "photo file",
        "photo hash",
    ]
    assert table.value["image"].tolist() == [
        rows[0]["image"],
        rows[1]["image"],
        "no_such_photo.jpg (missing)",
    ]
    photo = resources_decode(table.value["thumbnail"].iloc[0])
    assert max(photo.size) >= 120  # was 96 px, drawn in a 50-px cell


def resources_decode(uri: str):
    import base64
    import io

    from PIL import Image

    return Image.open(io.BytesIO(base64.b64decode(uri.partition(";base64,")[2])))
