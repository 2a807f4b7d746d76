"""The real app in a real browser: `streamlit run` on a free port, driven by headless Chromium.

First start (demo generated and imported by the app), Browse (run both pipelines, pick a
posting, see its matches), Compare (upload a photo, see its posting come first), and a
screenshot of every page in test-artifacts/screenshots/ for a human to look at.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core import matching
from core.store import Store
from core.text import display_title
from tests.conftest import require
from tests.e2e.app_server import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PROJECT,
    AppDidNotStart,
    start_app,
    stop_app,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCREENSHOTS = PROJECT / "test-artifacts" / "screenshots"
#: First start draws ~600 demo photos and imports them before the first page shows.
FIRST_START_MS = 240_000
STEP_MS = 60_000
MOBILENET_025 = PROJECT.parent / "shared" / "weights" / "mobilenet_2_5_224_tf_no_top.h5"
PAGE_TITLES = ["Catalog", "Embed", "Browse", "Review", "Compare", "Evaluate", "Settings"]


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """`streamlit run app.py` with an empty data folder of its own; yields (url, data folder)."""
    require(
        CHROMIUM.exists(),
        "Debian Chromium is not installed at /usr/bin/chromium (apt-get install chromium)",
    )
    home = tmp_path_factory.mktemp("e2e_home")
    try:
        process, url = start_app(home, home.parent / "streamlit.log")
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
        context = browser.new_context(viewport={"width": 1440, "height": 1000})
        tab = context.new_page()
        tab.set_default_timeout(STEP_MS)
        yield tab
        context.close()
        browser.close()


def _settle(page) -> None:
    """Wait until Streamlit has finished the current run and replaced every stale element."""
    page.wait_for_timeout(300)  # let a just-triggered rerun start
    page.wait_for_selector(
        '[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=STEP_MS
    )
    page.wait_for_function(
        "document.querySelectorAll('[data-stale=\"true\"]').length === 0", timeout=STEP_MS
    )
    page.wait_for_timeout(500)  # images and data grids paint after the run ends


def _no_exception(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0


def _screenshot(page, name: str) -> None:
    """The whole page: Streamlit scrolls inside its main container, not the document, so the
    viewport is stretched to the content's height for the shot."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # Actions scroll the page; the shot starts at its top.
    page.evaluate(
        'document.querySelectorAll(\'[data-testid="stMain"], [data-testid="stAppViewContainer"]\')'
        ".forEach(e => e.scrollTo(0, 0))"
    )
    size = page.viewport_size
    height = size["height"]
    for _ in range(4):  # stretching can reflow the page; repeat until the height holds
        content = page.evaluate(
            "Math.ceil(document.querySelector('[data-testid=\"stMainBlockContainer\"]')"
            ".getBoundingClientRect().bottom) + 80"
        )
        if content <= height:
            break
        height = min(content, 8000)
        page.set_viewport_size({"width": size["width"], "height": height})
        page.wait_for_timeout(800)  # data grids and images redraw for the new size
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    page.set_viewport_size(size)


def _no_sideways_scrolling(page) -> None:
    """No data grid on the page is wider than its box (a column hidden behind a scrollbar)."""
    widths = page.evaluate(
        """Array.from(document.querySelectorAll('[data-testid="stDataFrame"] .dvn-scroller'))
            .filter(e => e.offsetParent !== null).map(e => [e.scrollWidth, e.clientWidth])"""
    )
    assert all(scroll <= box + 1 for scroll, box in widths), widths


#: Records, from before the first paint, every link the sidebar ever shows (its last line: the
#: icon's name comes first) and whether Streamlit's own page navigation ever appeared (it lists
#: the file names in pages/ until st.navigation has run).
WATCH_SIDEBAR = """
window.__sidebarSeen = {links: [], streamlitNav: false};
new MutationObserver(() => {
  if (document.querySelector('[data-testid="stSidebarNav"]')) {
    window.__sidebarSeen.streamlitNav = true;
  }
  const sidebar = document.querySelector('[data-testid="stSidebar"]');
  for (const link of sidebar ? sidebar.querySelectorAll('a') : []) {
    const text = link.innerText.trim().split('\\n').pop().trim();
    if (!window.__sidebarSeen.links.includes(text)) window.__sidebarSeen.links.push(text);
  }
}).observe(document, {childList: true, subtree: true, characterData: true});
"""


def _menu(page):
    """The app's page links in the sidebar (ui.navigation.sidebar_menu)."""
    return page.get_by_test_id("stSidebar").get_by_test_id("stPageLink-NavLink")


def _go(page, title: str, heading: str) -> None:
    _menu(page).get_by_text(title, exact=True).click()
    page.get_by_role("heading", name=heading, exact=True).wait_for()
    _settle(page)
    _no_exception(page)


def _posting_matched_by_both(home: Path) -> tuple[str, str, set[str]]:
    """A posting both pipelines matched: (id, title, ids the ensemble, which leads, matched)."""
    with Store(home / "demo.db") as store:
        results = {p: matching.stored_result(store, p) for p in ("baseline", "ensemble")}
        titles = store.postings().set_index("posting_id")["title"].map(display_title)
    sets = {p: r.match_sets() for p, r in results.items()}
    pid = next(
        p for p in sets["baseline"] if len(sets["baseline"][p]) > 1 and len(sets["ensemble"][p]) > 1
    )
    return pid, titles[pid], sets["ensemble"][pid] - {pid}


def _progress_count(page) -> int:
    """Items done in the demo preparation's progress bar ("…: 120 of 600 · …"), 0 if none."""
    # all_inner_texts does not wait: the bar may vanish between two calls.
    text = " ".join(page.get_by_test_id("stProgress").all_inner_texts())
    found = re.search(r": ([\d,]+) of ", text)
    return int(found.group(1).replace(",", "")) if found else 0


def _sample_first_start(page) -> None:
    """Every second until the first page opens: the sidebar lists the app's pages and nothing
    else, and a click on another page while the demo is prepared does not start it again."""
    nav = _menu(page)
    heading = page.get_by_role("heading", name=re.compile("^(Browse matches|Settings)$"))
    deadline = time.monotonic() + FIRST_START_MS / 1000
    samples, clicked, before_click = 0, False, 0
    while not heading.count() and time.monotonic() < deadline:
        shown = [n.strip().splitlines()[-1] for n in nav.all_inner_texts()]
        assert set(shown) <= set(PAGE_TITLES), f"the sidebar listed {shown}"
        samples += 1
        done = _progress_count(page)
        if clicked and done:
            assert done >= before_click, f"the preparation restarted: {before_click} -> {done}"
        elif done and not clicked and shown:
            _screenshot(page, "first-start")
            before_click = done
            nav.filter(has_text="Settings").click()
            clicked = True
        page.wait_for_timeout(1000)
    assert samples >= 2, "the first page opened before the preparation could be watched"
    # The click landed on Settings; the test goes on from the Catalog page.
    if clicked:
        page.get_by_role("heading", name="Settings", exact=True).wait_for()
        _menu(page).get_by_text("Catalog", exact=True).click()


def test_first_start_browse_and_compare(page, server, tmp_path):
    url, home = server
    # A deep link as the server's very first request, while the demo is still being prepared.
    page.add_init_script(WATCH_SIDEBAR)
    page.goto(f"{url}/browse")
    _sample_first_start(page)
    page.get_by_role("heading", name="Catalog", exact=True).wait_for(timeout=FIRST_START_MS)
    _settle(page)
    _no_exception(page)
    assert [n.strip().splitlines()[-1] for n in _menu(page).all_inner_texts()] == PAGE_TITLES
    # At no moment of the first start did the sidebar list a file name (pages/browse.py shows
    # as "browse" in Streamlit's own navigation) or anything but the pages' titles.
    seen = page.evaluate("window.__sidebarSeen")
    assert not seen["streamlitNav"], "Streamlit's own page navigation appeared"
    raw = {"app", "app_pages", "pages", "catalog", "embed", "browse", "review", "compare"}
    assert not raw & set(seen["links"]), f"the sidebar listed file names: {seen['links']}"
    assert set(seen["links"]) <= set(PAGE_TITLES), f"the sidebar listed {seen['links']}"
    with Store(home / "demo.db") as store:
        postings = store.count_postings()
    assert page.get_by_test_id("stMetricValue").first.inner_text() == f"{postings:,}"
    page.get_by_test_id("stDataFrame").first.wait_for()
    _screenshot(page, "catalog")

    # Embed with progress: MobileNet 0.25 (the weights this machine has), set for the machine.
    require(MOBILENET_025.is_file(), f"real weights not present: {MOBILENET_025}")
    (home / "machine_settings.json").write_text(
        json.dumps({"image_alpha": 0.25, "weights_dir": str(MOBILENET_025.parent)})
    )
    _go(page, "Embed", "Embed and match")
    page.get_by_role("button", name="Embed images", exact=True).click()
    page.get_by_test_id("stProgress").filter(has_text="Embedding").first.wait_for(timeout=STEP_MS)
    _screenshot(page, "embed-progress")
    page.get_by_text(re.compile(r"^Embedded [\d,]+ new images")).wait_for(timeout=300_000)
    _settle(page)
    _no_exception(page)
    _screenshot(page, "embed")

    # Browse: no matches yet. The chosen pipeline (the most accurate that can run: the
    # ensemble, no best model) runs from the banner at the top, which then goes away; the
    # baseline runs from the pipelines' comparison.
    _go(page, "Browse", "Browse matches")
    page.get_by_text("The ensemble pipeline has no matches for this catalog yet").wait_for()
    page.get_by_role("button", name="Run ensemble now", exact=True).click()
    page.get_by_text(re.compile(r"^ensemble: [\d,]+ pairs in")).wait_for()
    _settle(page)
    page.get_by_text("Pipeline: Ensemble: Siamese + title ratio").first.wait_for()
    page.get_by_role("tab", name="Compare pipelines").click()
    page.get_by_role("button", name="Run baseline now", exact=True).click()
    page.get_by_text(re.compile(r"^baseline: [\d,]+ pairs in")).wait_for()
    _settle(page)
    _no_exception(page)

    pid, title, matched = _posting_matched_by_both(home)
    selectbox = page.locator('[data-testid="stMain"] [data-testid="stSelectbox"]').first
    selectbox.click()
    page.keyboard.type(pid)
    page.keyboard.press("Enter")
    page.get_by_role("heading", name=title.strip(), exact=True).wait_for()
    _settle(page)
    _no_exception(page)
    # The lead pipeline's cards: one per match, its id and the evidence in words.
    page.get_by_role("tab", name=re.compile(r"^Matches \(")).click()
    _settle(page)
    for other in matched:
        assert page.get_by_text(other, exact=True).count() > 0, f"{other} not shown"
    assert page.get_by_text("matched on", exact=False).count() >= len(matched)
    assert page.get_by_role("button", name="Same").count() >= len(matched)
    _no_sideways_scrolling(page)
    _screenshot(page, "browse")
    page.get_by_role("tab", name="Side by side").click()
    _settle(page)
    side = page.get_by_role("tabpanel", name="Side by side")
    assert side.get_by_test_id("stImage").count() == 2
    assert side.get_by_text("(this posting)").count() == 1
    _screenshot(page, "browse-side-by-side")
    page.get_by_role("tab", name="Compare pipelines").click()
    _settle(page)
    _no_sideways_scrolling(page)
    _screenshot(page, "browse-compare-pipelines")

    # Review: the most telling pair, both photos; the S key says "same product".
    _go(page, "Review", "Review pairs")
    page.get_by_text("Why this pair:").wait_for()
    assert page.get_by_test_id("stMain").get_by_test_id("stImage").count() == 2
    _no_sideways_scrolling(page)
    _screenshot(page, "review")
    # Keys go to the page, not to a text box.
    page.get_by_role("heading", name="Review pairs", exact=True).click()
    page.keyboard.press("s")
    page.get_by_text(re.compile(r"^1 verdict\(s\) so far")).wait_for()
    _settle(page)
    with Store(home / "demo.db") as store:
        assert store.reviews()[["verdict", "chosen"]].values.tolist() == [["same", "queue"]]
    _screenshot(page, "review-after-a-verdict")

    # Compare: a catalog photo under another name comes back first; a broken and an empty
    # file get errors naming them, above the results.
    with Store(home / "demo.db") as store:
        row = store.posting(pid)
    upload = tmp_path / "my-photo.jpg"
    shutil.copyfile(row["image_path"], upload)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    _go(page, "Compare", "Compare a new item")
    page.locator('input[type="file"]').set_input_files([str(upload), str(broken), str(empty)])
    page.get_by_text("my-photo.jpg").first.wait_for()
    page.get_by_role("button", name="Find matches", exact=True).click()
    page.get_by_role("heading", name="my-photo.jpg", exact=True).wait_for()
    page.get_by_text("are the same product, says", exact=False).first.wait_for()
    _settle(page)
    _no_exception(page)
    errors = page.get_by_test_id("stAlertContentError").all_inner_texts()
    assert any(e.startswith("broken.jpg: ") for e in errors), errors
    assert any(e.startswith("empty.png: ") for e in errors), errors
    error_top = page.get_by_test_id("stAlertContentError").first.bounding_box()["y"]
    result_top = page.get_by_role("heading", name="my-photo.jpg").bounding_box()["y"]
    assert error_top < result_top, "the errors must come before the results"
    main = page.get_by_test_id("stMain")
    assert main.get_by_text("already in the catalog as", exact=False).count() == 1
    first_card = main.get_by_text(re.compile(r"^1\. ")).first
    assert pid in first_card.locator("xpath=..").inner_text()
    assert page.get_by_role("button", name="Add to catalog").count() == 1
    _screenshot(page, "compare")

    # Evaluate: the image-cosine curve from the stored vectors agrees with the stored matches.
    _go(page, "Evaluate", "Evaluate")
    assert page.get_by_test_id("stMetricLabel").first.inner_text().strip() == "F1"
    threshold = page.locator('[data-testid="stSelectbox"]').filter(has_text="Threshold")
    threshold.click()
    page.keyboard.type("Photo cosine")
    page.keyboard.press("Enter")
    _settle(page)
    assert page.get_by_text("no image vectors", exact=False).count() == 0
    page.get_by_role("button", name="Draw the curve", exact=True).click()
    caption = page.get_by_text("Best F1", exact=False)
    caption.wait_for(timeout=300_000)
    _settle(page)
    assert "the same as the stored matches" in caption.inner_text()
    with page.expect_download() as download:
        page.get_by_role("button", name="Download baseline submission.csv", exact=True).click()
    lines = Path(download.value.path()).read_text().splitlines()
    assert lines[0] == "posting_id,matches"
    assert len(lines) == postings + 1
    assert any(line.startswith(f"{pid},{pid} ") for line in lines)  # a matched posting
    _no_sideways_scrolling(page)
    _screenshot(page, "evaluate")

    _go(page, "Settings", "Settings")
    _screenshot(page, "settings")


def _has_colour_emoji_font() -> bool:
    try:
        families = subprocess.run(
            ["fc-list", ":", "family"], capture_output=True, text=True, check=False
        ).stdout
    except OSError:
        return False
    return "color emoji" in families.lower()


def test_emoji_in_titles_render_in_colour(page, server):
    """Demo and Shopee titles carry emoji: in the app's font stack they draw as colour glyphs,
    not as grey boxes (scripts/install-chromium.sh installs the font)."""
    import io

    from PIL import Image

    require(
        _has_colour_emoji_font(), "no colour emoji font (apt-get install fonts-noto-color-emoji)"
    )
    url, _ = server
    page.goto(url)
    page.get_by_role("heading", name="Catalog", exact=True).wait_for(timeout=FIRST_START_MS)
    _settle(page)
    # Text inside the app's main block inherits the theme font, as a posting's title does.
    page.evaluate(
        """() => {
            const probe = document.createElement('span');
            probe.id = 'emoji-probe';
            probe.textContent = '\\u{1F525} \\u2764\\uFE0F';
            probe.style.fontSize = '48px';
            document.querySelector('[data-testid="stMainBlockContainer"]').prepend(probe);
        }"""
    )
    shot = Image.open(io.BytesIO(page.locator("#emoji-probe").screenshot())).convert("HSV")
    saturated = sum(1 for _, s, v in shot.getdata() if s > 120 and v > 80)

    assert saturated > 200, f"only {saturated} colour pixels: emoji drew as boxes"


def test_training_best_on_embedded_photos_learns_the_image_head(page, server, monkeypatch):
    """The demo's photos were embedded by the first test: training the best matcher from the
    Embed page then also learns its Siamese head on their vectors, and says which photos."""
    from core import models

    url, home = server
    page.goto(url)
    page.get_by_role("heading", name="Catalog", exact=True).wait_for(timeout=FIRST_START_MS)
    _settle(page)
    _go(page, "Embed", "Embed and match")
    assert page.get_by_text("also learns a Siamese head", exact=False).count() == 1
    page.get_by_role("button", name="Train best matcher", exact=True).click()
    page.get_by_text(re.compile(r"^Trained the best matcher on [\d,]+ postings")).wait_for(
        timeout=300_000
    )
    _settle(page)
    _no_exception(page)
    assert page.get_by_text("image evidence: mobilenet-a0.25-224", exact=False).count() == 1
    _screenshot(page, "embed-best-trained")
    monkeypatch.setenv("SAMESAME_HOME", str(home))  # the app's data folder, not this test's
    with Store(home / "demo.db") as store:
        folder = models.best_dir(store)
    assert (folder / "image_head" / "image_head.keras").is_file()
    assert any(
        n.startswith("image_head_")
        for n in json.loads((folder / "best.json").read_text())["features_stage1"]
    )


def test_import_from_a_path(page, server, tmp_path):
    """A CSV and an image folder on this machine, typed in as paths, become a new catalog that
    every page then works on."""
    url, home = server
    page.goto(url)  # on its own, this test waits for the demo the first start prepares
    page.get_by_role("heading", name="Catalog", exact=True).wait_for(timeout=FIRST_START_MS)
    _settle(page)
    rows = (home / "demo" / "catalog.csv").read_text(encoding="utf-8").splitlines()[:21]
    csv_file = tmp_path / "shop-export.csv"
    csv_file.write_text("\n".join(rows) + "\n", encoding="utf-8")
    page.get_by_role("tab", name="CSV and images on this machine").click()
    page.get_by_label("CSV path", exact=True).fill(str(csv_file))
    page.get_by_label("Image folder", exact=True).fill(str(home / "demo" / "images"))
    page.get_by_role("button", name="Import from path", exact=True).click()
    page.get_by_text(
        re.compile(r"^Imported shop-export\.csv: 20 postings added or changed, from 20 rows")
    ).wait_for()
    _settle(page)
    _no_exception(page)
    sidebar = page.get_by_test_id("stSidebar")
    assert sidebar.get_by_text("20 postings", exact=False).count() == 1
    assert (home / "catalogs" / "shop-export.db").is_file()
    _no_sideways_scrolling(page)
    _screenshot(page, "catalog-imported")

    # Compare → Another catalog: the 20 imported postings linked with the demo they came from.
    _go(page, "Compare", "Compare a new item")
    page.get_by_role("tab", name="Another catalog").click()
    _settle(page)
    page.get_by_role("button", name="Link the catalogs", exact=True).click()
    page.get_by_text(re.compile(r"^20 of 20 postings of shop-export have a match in")).wait_for()
    _settle(page)
    _no_exception(page)
    assert page.get_by_role("button", name="Download links.csv").count() == 1
    _no_sideways_scrolling(page)
    _screenshot(page, "compare-link-catalogs")
