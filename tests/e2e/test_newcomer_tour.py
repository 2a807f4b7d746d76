"""A newcomer's first tour, in a real browser (issue 39, item 5).

A fresh data folder; the demo opens; then a catalog of real grocery photos is imported through
the Catalog page (all of ../shared/data/grocery, one photo of one product kept back), the
MobileNet 0.25 weights are chosen on the Settings page, the photos embedded and matched on the
Embed page, a posting browsed, a pair marked on Review, the kept-back photo compared, a
threshold changed (the banner says the matches are old, its button re-runs them) and the
matches downloaded from Browse. Each step asserts what a person reads there: the verdict words,
the pipeline's name, the banner, the export's columns.

A 1280×800 screenshot of each step goes to the test's tmp folder and, with
``SAMESAME_SCREENSHOTS=DIR`` set (``make test`` sets test-artifacts/tour), to DIR as well;
docs/screenshots/ holds the key ones, shown in the README's "A first tour".
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from core.exports import COLUMNS
from core.matching import stored_result
from core.pipelines import get_pipeline
from core.store import Store
from core.verdict_words import VERDICT_WORDS
from tests.conftest import GROCERY, MOBILENET_025, require
from tests.e2e.app_server import CHROMIUM, CHROMIUM_ARGS, AppDidNotStart, start_app, stop_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: The demo is drawn and imported before the first page opens (slow on a busy machine).
FIRST_START_MS = 300_000
STEP_MS = 60_000
#: Loading TensorFlow and embedding the photos.
EMBED_MS = 300_000
VIEWPORT = {"width": 1280, "height": 800}
#: The product one photo of which is kept out of the catalog, to be compared as a new item.
KEPT_BACK_FROM = "1041"
CATALOG_NAME = "grocery-tour"
WORDS = "|".join(VERDICT_WORDS)
BASELINE_TITLE = get_pipeline("baseline").title


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """The app on a data folder of its own, as after installing it: nothing prepared."""
    require(CHROMIUM.exists(), "Debian Chromium is not installed at /usr/bin/chromium")
    require((GROCERY / "catalog.csv").is_file(), f"real data not present: {GROCERY}")
    require(MOBILENET_025.is_file(), f"real weights not present: {MOBILENET_025}")
    home = tmp_path_factory.mktemp("tour_home")
    try:
        process, url = start_app(home, home.parent / "tour-streamlit.log", seconds=120)
    except AppDidNotStart as exc:
        pytest.fail(str(exc))
    try:
        yield url, home
    finally:
        stop_app(process)


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
        tab = context.new_page()
        tab.set_default_timeout(STEP_MS)
        yield tab
        context.close()
        browser.close()


class Shots:
    """Screenshots of the viewport, numbered in the tour's order, into the test's tmp folder
    and the folder named by SAMESAME_SCREENSHOTS (CI keeps it as an artifact)."""

    def __init__(self, page, tmp_path: Path) -> None:
        self.page = page
        self.folders = [tmp_path / "tour"]
        extra = os.environ.get("SAMESAME_SCREENSHOTS", "").strip()
        if extra:
            self.folders.append(Path(extra).expanduser())
        for folder in self.folders:
            folder.mkdir(parents=True, exist_ok=True)
        self.count = 0

    def __call__(self, name: str, focus=None) -> None:
        """The viewport, scrolled to the top of the page or, given ``focus``, to that
        element's top (the page header may leave the view)."""
        self.page.evaluate(
            'document.querySelectorAll(\'[data-testid="stMain"], '
            '[data-testid="stAppViewContainer"]\').forEach(e => e.scrollTo(0, 0))'
        )
        if focus is not None:
            focus.evaluate("e => e.scrollIntoView({block: 'start'})")
        self.page.wait_for_timeout(800)  # images and data grids paint after scrolling
        self.count += 1
        for folder in self.folders:
            self.page.screenshot(path=str(folder / f"{self.count:02d}-{name}.png"))


def _settle(page) -> None:
    """Wait until Streamlit has finished the current run and replaced every stale element."""
    page.wait_for_timeout(300)  # let a just-triggered rerun start
    page.wait_for_selector(
        '[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=STEP_MS
    )
    page.wait_for_function(
        "document.querySelectorAll('[data-stale=\"true\"]').length === 0", timeout=STEP_MS
    )
    page.wait_for_timeout(500)


def _no_exception(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0


def _go(page, title: str, heading: str) -> None:
    menu = page.get_by_test_id("stSidebar").get_by_test_id("stPageLink-NavLink")
    menu.get_by_text(title, exact=True).click()
    page.get_by_role("heading", name=heading, exact=True).wait_for()
    _settle(page)
    _no_exception(page)


def _main(page):
    return page.get_by_test_id("stMain")


def _pipeline_named(page, title: str) -> None:
    """The line at the top of every page names the pipeline the page answers with."""
    line = _main(page).get_by_text("Pipeline:", exact=False).first
    assert f"Pipeline: {title}" in line.inner_text()


def _keyed(page, key: str):
    """A settings widget by its key (the Settings page adds a token to each)."""
    return page.locator(f'[class*="st-key-s_{key}_"]')


def _choose(page, selectbox, option: str) -> None:
    """Pick an option of a selectbox (a click made while the page redraws can close it)."""
    for attempt in range(3):
        selectbox.click()
        choice = page.get_by_role("option", name=option, exact=True)
        try:
            choice.wait_for(timeout=10_000)
        except PlaywrightTimeout:
            if attempt == 2:
                raise
            page.keyboard.press("Escape")
            continue
        choice.click()
        _settle(page)
        return


def _tour_catalog(folder: Path) -> tuple[Path, Path]:
    """The tour's CSV (the whole shared catalog but one photo) and the photo kept back."""
    rows = pd.read_csv(GROCERY / "catalog.csv", dtype=str, keep_default_na=False)
    kept = rows[rows["label_group"] == KEPT_BACK_FROM].iloc[-1]
    csv_file = folder / f"{CATALOG_NAME}.csv"
    rows.drop(index=kept.name).to_csv(csv_file, index=False)
    photo = folder / "my-new-photo.jpg"  # a name of the newcomer's, not the catalog's
    shutil.copyfile(GROCERY / "images" / kept["image"], photo)
    return csv_file, photo


def _busiest_posting(db: Path) -> str:
    """The posting with the most baseline matches (it shows the most cards)."""
    with Store(db) as store:
        sets = stored_result(store, "baseline").match_sets()
    return max(sorted(sets), key=lambda p: len(sets[p]))


def _labels(csv_file: Path) -> dict[str, str]:
    """Each posting's product (what the newcomer sees in the photos)."""
    rows = pd.read_csv(csv_file, dtype=str)
    return dict(zip(rows["posting_id"], rows["label_group"], strict=True))


def _reviews(db: Path) -> list[tuple[set[str], str]]:
    with Store(db) as store:
        reviews = store.reviews()
    return [({a, b}, v) for a, b, v in reviews[["left_id", "right_id", "verdict"]].values]


def test_newcomer_tour(page, server, tmp_path):
    url, home = server
    shot = Shots(page, tmp_path)
    csv_file, new_photo = _tour_catalog(tmp_path)
    catalog_rows = len(pd.read_csv(csv_file))

    # 1. First start: the demo is prepared, then the Catalog page opens with the next steps.
    page.goto(url)
    page.get_by_role("heading", name="Catalog", exact=True).wait_for(timeout=FIRST_START_MS)
    _settle(page)
    _no_exception(page)
    assert _main(page).get_by_text("Next steps").count() == 1

    # 2. Import the grocery catalog: upload its CSV, name the folder its photos are in.
    page.locator('input[type="file"]').set_input_files(str(csv_file))
    page.get_by_text(csv_file.name).first.wait_for()
    page.get_by_role("textbox", name="Image folder on this machine (optional)").fill(
        str(GROCERY / "images")
    )
    page.get_by_role("button", name="Import uploaded CSV", exact=True).click()
    imported = (
        f"Imported {csv_file.name}: {catalog_rows} postings added or changed, "
        f"from {catalog_rows} rows."
    )
    page.get_by_text(imported).wait_for(timeout=EMBED_MS)
    _settle(page)
    _no_exception(page)
    db = home / "catalogs" / f"{CATALOG_NAME}.db"
    assert db.is_file()
    sidebar = page.get_by_test_id("stSidebar")
    assert sidebar.get_by_text(f"{catalog_rows} postings", exact=False).count() == 1
    assert _main(page).get_by_test_id("stMetricValue").first.inner_text() == str(catalog_rows)
    # An image-only catalog: said once, as something good to know, not as a failure.
    untitled = f"{catalog_rows} postings without a title: matched by image only"
    assert _main(page).get_by_text(untitled, exact=False).count() >= 1
    shot("catalog-imported", focus=_main(page).get_by_text("Next steps"))

    # 3. Settings: the small MobileNet whose weights this computer has, and where they are.
    _go(page, "Settings", "Settings")
    _choose(page, _keyed(page, "image_alpha").get_by_test_id("stSelectbox"), "0.25")
    weights = _keyed(page, "weights_dir").locator("input")
    weights.fill(str(MOBILENET_025.parent))
    weights.press("Enter")  # Enter does not save: only the button does
    page.get_by_role("button", name="Save settings").click()
    page.get_by_text("Settings saved (changed:", exact=False).wait_for()
    _settle(page)
    _no_exception(page)

    # 4. Embed the photos, then match them with the pipeline that can run (the baseline: the
    # others learn from the catalog first).
    _go(page, "Embed", "Embed and match")
    assert _main(page).get_by_text("mobilenet-a0.25-224", exact=False).count() >= 1
    page.get_by_role("button", name="Embed images", exact=True).click()
    page.get_by_text(re.compile(rf"^Embedded {catalog_rows} new images")).wait_for(timeout=EMBED_MS)
    _settle(page)
    page.get_by_role("button", name="Match now: baseline", exact=True).click()
    matched = page.get_by_text(re.compile(r"^baseline: [\d,]+ pairs in .* · F1 "))
    matched.wait_for(timeout=EMBED_MS)
    _settle(page)
    _no_exception(page)
    # A newcomer is told why the untrained rule scores low here.
    assert _main(page).get_by_text("untrained", exact=False).count() >= 1
    shot("embed-and-match", focus=page.get_by_role("heading", name="Match the whole catalog"))

    # 5. Browse: the pipeline that ran is the one every page answers with; a posting's matches
    # are cards, each led by its verdict word.
    _go(page, "Browse", "Browse matches")
    _pipeline_named(page, BASELINE_TITLE)
    assert _main(page).get_by_text("Matches are from", exact=False).count() == 0
    pid = _busiest_posting(db)
    selectbox = _main(page).get_by_test_id("stSelectbox").first
    selectbox.click()
    page.keyboard.type(pid)
    page.keyboard.press("Enter")
    _main(page).get_by_text(pid, exact=True).first.wait_for()
    _settle(page)
    _no_exception(page)
    summary = _main(page).get_by_text(re.compile(r"^\d+ match\(es\)"))
    assert re.search(rf" · \d+ ({WORDS})", summary.inner_text()), summary.inner_text()
    cards = _main(page).get_by_role("heading").filter(has_text=re.compile(rf"^({WORDS})"))
    assert cards.count() >= 1
    assert page.get_by_role("button", name="Same", exact=True).count() >= cards.count()
    shot("browse", focus=page.get_by_role("tab", name=re.compile(r"^Matches \(")))
    # The same product in both photos: "Same" on its card (a card is the innermost block
    # holding the posting's id and the buttons).
    labels = _labels(csv_file)
    ids = _main(page).locator("code").all_inner_texts()
    same = next(i for i in ids if i != pid and labels.get(i) == labels[pid])
    card = (
        _main(page)
        .get_by_test_id("stVerticalBlock")
        .filter(has=page.get_by_text(same, exact=True))
        .filter(has=page.get_by_role("button", name="Same", exact=True))
        .last
    )
    card.get_by_role("button", name="Same", exact=True).click()
    _settle(page)
    _no_exception(page)
    assert _reviews(db) == [({pid, same}, "same")]

    # 6. Review: the most telling pair first, each pipeline's answer in words; S and D are
    # keys, and buttons.
    _go(page, "Review", "Review pairs")
    _pipeline_named(page, BASELINE_TITLE)
    page.get_by_text("Why this pair:").wait_for()
    answer = _main(page).get_by_role("heading").filter(has_text=re.compile(rf"^({WORDS})"))
    assert answer.count() == 1
    assert _main(page).get_by_test_id("stImage").count() == 2
    shot("review", focus=page.get_by_text("Why this pair:"))
    page.get_by_text(re.compile(r"^1 verdict\(s\) so far")).wait_for()
    # The newcomer answers what the photos show (the products' labels).
    left, right = re.findall(r"\bgd\d{5}\b", _main(page).inner_text().split("Why this pair:")[1])[
        :2
    ]
    verdict = "same" if labels[left] == labels[right] else "different"
    button = {"same": "Same product", "different": "Different"}[verdict]
    page.get_by_role("button", name=re.compile(f"^{button}")).click()
    page.get_by_text(re.compile(r"^2 verdict\(s\) so far")).wait_for()
    _settle(page)
    _no_exception(page)
    assert _reviews(db)[1] == ({left, right}, verdict)

    # 7. Compare: the photo kept out of the catalog, uploaded as a new item.
    _go(page, "Compare", "Compare a new item")
    _pipeline_named(page, BASELINE_TITLE)
    page.locator('input[type="file"]').set_input_files(str(new_photo))
    page.get_by_text(new_photo.name).first.wait_for()
    page.get_by_role("button", name="Find matches", exact=True).click()
    result = page.get_by_role("heading", name=new_photo.name, exact=True)
    result.wait_for(timeout=EMBED_MS)
    _settle(page)
    _no_exception(page)
    said = _main(page).get_by_text(
        re.compile(r"(are the same product, says|No catalog posting passes the baseline)")
    )
    assert said.count() >= 1
    cards = _main(page).get_by_role("heading").filter(has_text=re.compile(rf"^({WORDS})"))
    assert cards.count() >= 1
    shot("compare", focus=result)

    # 8. A threshold changed on Settings: the pages say the matches are from the old settings,
    # in the Settings page's words, and the banner's button runs the pipeline again.
    _go(page, "Settings", "Settings")
    threshold = _keyed(page, "baseline_image_cosine").locator("input")
    threshold.fill("0.8")
    threshold.press("Tab")
    page.get_by_role("button", name="Save settings").click()
    page.get_by_text("Settings saved (changed:", exact=False).wait_for()
    _settle(page)
    _go(page, "Browse", "Browse matches")
    banner = page.locator('[class*="st-key-stale_banner"]')
    banner.get_by_text("Matches are from the old settings — re-run").wait_for()
    assert "Photo cosine ≥ 0.85 → 0.8" in banner.inner_text()
    shot("settings-changed-banner")
    banner.get_by_role("button", name="Re-run baseline").click()
    page.get_by_text(re.compile(r"^baseline: [\d,]+ pairs in")).wait_for(timeout=EMBED_MS)
    _settle(page)
    _no_exception(page)
    assert page.locator('[class*="st-key-stale_banner"]').count() == 0

    # 9. Download results: the matches as CSV, with the columns a shop reads.
    expander = _main(page).get_by_test_id("stExpander").filter(has_text="Download results")
    expander.get_by_text("Download results").click()
    button = page.locator('[class*="st-key-browse_exports_matches_csv"] button')
    button.wait_for()
    shot("download-results", focus=expander)
    with page.expect_download(timeout=STEP_MS) as download:
        button.click()
    assert download.value.suggested_filename == f"{CATALOG_NAME}-baseline-matches.csv"
    matches = pd.read_csv(download.value.path(), dtype={"left_id": str, "right_id": str})
    assert tuple(matches.columns) == COLUMNS["matches"]
    assert len(matches) > 0
    assert set(matches["verdict"]) <= set(VERDICT_WORDS), set(matches["verdict"])
    assert matches["probability"].between(0, 1).all()
    assert set(matches["left_id"]) | set(matches["right_id"]) <= set(
        pd.read_csv(csv_file, dtype=str)["posting_id"]
    )
    # The pairs said the same are marked as checked by a person; a pair said different is
    # no match.
    person = matches[matches["reviewed_by_person"].astype(bool)]
    said_same = [pair for pair, said in _reviews(db) if said == "same"]
    assert sorted(map(sorted, (set(p) for p in person[["left_id", "right_id"]].values))) == sorted(
        map(sorted, said_same)
    )
    assert set(person["verdict"]) == {"Same"}
    pairs = [set(p) for p in matches[["left_id", "right_id"]].values]
    assert all(pair not in pairs for pair, said in _reviews(db) if said == "different")
