"""How long the app's pages take in a real browser on a large catalog (issue: fast on big
catalogs).

Imports the labelled Shopee dev split (27k postings: titles and perceptual hashes) into a fresh
data folder, stores the baseline and ensemble matches, starts ``streamlit run app.py`` and
drives headless Chromium: each page opened from the sidebar (click to the end of the run),
picking a posting on Browse, a typed title on Compare, and Compare queries from several browser
sessions at once. Every figure is the median (and worst) of a few repeats, after one warm-up.

    python benchmarks/bench_pages.py [--catalog ../shared/data/shopee/train.csv] [--sessions 4]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import ROOT, SHARED, machine_lines, markdown_table, verdict

from tests.e2e.app_server import CHROMIUM, CHROMIUM_ARGS, start_app, stop_app

APP = '[data-testid="stApp"]'
GOALS = {"page": 1.5, "compare": 1.0}


def _prepare(home: Path, catalog: Path) -> Path:
    """Import the catalog and store both pipelines' matches, as a user would from the CLI."""
    env = {**os.environ, "SAMESAME_HOME": str(home)}
    db = home / "catalogs" / "shopee.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "core", "--db", str(db), "import", str(catalog)],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    code = (
        "from core.store import Store; from core import matching\n"
        f"with Store({str(db)!r}) as s:\n"
        "    for p in ('baseline', 'ensemble'): matching.run_pipeline(s, p)\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True)
    (home / "app_state.json").write_text(f'{{"last_db": "{db}"}}', encoding="utf-8")
    return db


WATCH = """() => {
    const app = document.querySelector('[data-testid="stApp"]');
    const run = window.__samesame = {t0: performance.now(), end: null};
    if (window.__samesameObserver) window.__samesameObserver.disconnect();
    // Each record keeps the state it replaced: a run that starts and ends between two
    // callbacks still shows as a record leaving "running".
    window.__samesameObserver = new MutationObserver(records => {
        for (const r of records) {
            if (r.oldValue === 'running') run.end = performance.now();
        }
    });
    window.__samesameObserver.observe(
        app, {attributeOldValue: true, attributeFilter: ['data-test-script-state']}
    );
}"""


def _watch(page) -> None:
    """Start watching the app's run state: call just before the action to time."""
    page.evaluate(WATCH)


def _run_ends(page) -> float | None:
    """Seconds from `_watch` until the run the action started has finished (the browser's
    clock: the app marks its state on the stApp element, a MutationObserver sees each change).
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(
            f"window.__samesame.end !== null || document.querySelector('{APP}')"
            ".getAttribute('data-test-script-state') === 'running'",
            timeout=10_000,
        )
    except PlaywrightTimeout:
        return None  # the action changed nothing (e.g. the same search twice): no run
    page.wait_for_selector(f'{APP}[data-test-script-state="notRunning"]', timeout=120_000)
    page.wait_for_function("window.__samesame.end !== null", timeout=10_000)
    return page.evaluate("(window.__samesame.end - window.__samesame.t0) / 1000")


def _settled(page) -> None:
    """The run is over and TensorFlow's background import too (the sidebar badge polls until
    then, and each poll is a short run of its own that would be timed instead)."""
    page.get_by_text("Detecting compute device").wait_for(state="detached", timeout=180_000)
    page.wait_for_timeout(500)
    page.wait_for_selector(f'{APP}[data-test-script-state="notRunning"]', timeout=120_000)


def _open(page, title: str) -> float:
    _watch(page)
    menu = page.get_by_test_id("stSidebar").get_by_test_id("stPageLink-NavLink")
    menu.get_by_text(title, exact=True).click()
    return _run_ends(page)


def _pick_posting(page, words: str) -> tuple[float | None, float | None]:
    """(search, choice) seconds: a large catalog lists postings after a search by id or title
    words (the first match shows at once); then the second match is chosen from the list."""
    search = page.get_by_role("textbox", name="Search postings", exact=True)
    search.fill(words)
    _watch(page)
    search.press("Enter")
    searched = _run_ends(page)
    page.locator('[data-testid="stMain"] [data-testid="stSelectbox"]').first.click()
    page.keyboard.press("ArrowDown")
    _watch(page)
    page.keyboard.press("Enter")
    return searched, _run_ends(page)


def _compare_title(page, title: str) -> float:
    page.get_by_role("textbox", name="Title", exact=True).fill(title)
    _watch(page)
    page.get_by_role("button", name="Find matches", exact=True).click()
    return _run_ends(page)


def _summary(times: list[float | None]) -> tuple[str, str, float]:
    times = [t for t in times if t is not None] or [float("nan")]
    return f"{statistics.median(times):.2f}", f"{max(times):.2f}", statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", type=Path, default=SHARED / "data" / "shopee" / "train.csv")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sessions", type=int, default=4)
    parser.add_argument(
        "--db",
        type=Path,
        help="a database made from --catalog that already holds matches (a 1M catalog takes "
        "minutes to import and match): used as it is instead of importing",
    )
    args = parser.parse_args()

    import pandas as pd
    from playwright.sync_api import sync_playwright

    sample = pd.read_csv(args.catalog, usecols=["posting_id", "title"]).sample(
        args.repeats * (args.sessions + 2), random_state=0
    )
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        started = time.perf_counter()
        if args.db:
            state = {"last_db": str(args.db.resolve())}
            (home / "app_state.json").write_text(json.dumps(state), encoding="utf-8")
        else:
            _prepare(home, args.catalog)
        prepared = time.perf_counter() - started
        run_log = home / "runs.tsv"
        server, url = start_app(
            home, home / "streamlit.log", env={"SAMESAME_RUN_LOG": str(run_log)}
        )
        rows = []
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
                )
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.goto(f"{url}/")
                page.get_by_role("heading", name="Catalog", exact=True).wait_for(timeout=180_000)
                _settled(page)
                for title in ("Browse", "Review", "Evaluate", "Compare", "Catalog"):
                    # The first open after the server starts reads the catalog into the caches.
                    first = _open(page, title)
                    met = verdict(first <= GOALS["page"])
                    rows.append([f"first open of {title} (cold)", f"{first:.2f}", "", met])
                for title in ("Catalog", "Browse", "Review", "Evaluate", "Compare"):
                    times = []
                    for _ in range(args.repeats):
                        _open(page, "Settings")
                        times.append(_open(page, title))
                    median, worst, value = _summary(times)
                    rows.append([f"open {title}", median, worst, verdict(value <= GOALS["page"])])
                    print(rows[-1], file=sys.stderr, flush=True)
                _open(page, "Browse")
                # Two title words: a search with several matches, as a person would type.
                words = [" ".join(t.split()[:2]).lower() for t in sample["title"]]
                picks = [_pick_posting(page, w) for w in words[: args.repeats]]
                for step, times in (
                    ("Browse: search postings", [p[0] for p in picks]),
                    ("Browse: pick a posting", [p[1] for p in picks]),
                ):
                    median, worst, value = _summary(times)
                    rows.append([step, median, worst, verdict(value <= GOALS["page"])])
                _open(page, "Compare")
                titles = sample["title"].tolist()
                times = [_compare_title(page, t) for t in titles[: args.repeats]]
                median, worst, value = _summary(times)
                rows.append(["Compare: a typed title", median, worst, verdict(value <= 1.0)])
                browser.close()
            # What the server spent on each of those runs, without the browsers' drawing (all
            # four Chromiums share the server's two cores here).
            concurrent, on_server = _concurrent_compare(
                url, titles[args.repeats :], args.sessions, run_log
            )
            for what, times in (("in the browser", concurrent), ("on the server", on_server)):
                median, worst, _ = _summary(times)
                p95 = _p95(times)
                rows.append(
                    [
                        f"Compare: {args.sessions} sessions at once, {what} (p95 {p95:.2f} s)",
                        median,
                        worst,
                        verdict(p95 <= GOALS["compare"]),
                    ]
                )
        finally:
            stop_app(server)
    print("\n".join(machine_lines()))
    size = len(pd.read_csv(args.catalog, usecols=["posting_id"]))
    print(f"catalog: {args.catalog} ({size:,} postings)")
    if args.db:
        print(f"database: {args.db} (prepared beforehand)\n")
    else:
        print(f"import + baseline + ensemble matches: {prepared:.0f} s\n")
    print(markdown_table(["step", "median s", "worst s", "goal"], rows))


def _p95(times: list[float]) -> float:
    return sorted(times)[max(0, int(len(times) * 0.95) - 1)] if times else float("nan")


def _server_times(log: Path, page: str) -> list[float]:
    """Seconds of each run of ``page`` on the server, from the app's SAMESAME_RUN_LOG."""
    if not log.is_file():
        return []
    lines = [line.split("\t") for line in log.read_text(encoding="utf-8").splitlines()]
    return [float(seconds) for name, seconds in lines if name == page]


def _concurrent_compare(
    url: str, titles: list[str], sessions: int, run_log: Path
) -> tuple[list[float], list[float]]:
    """Each session in its own browser types titles on Compare, all at once: seconds per
    query in the browsers, and on the server for the runs after every session was ready."""
    from playwright.sync_api import sync_playwright

    times: list[float] = []
    lock = threading.Lock()
    per_session = max(1, len(titles) // sessions)

    def session(batch: list[str]) -> None:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{url}/compare")
            page.get_by_role("heading", name="Compare a new item").wait_for(timeout=120_000)
            _settled(page)
            barrier.wait()
            for title in batch:
                took = _compare_title(page, title)
                if took is not None:
                    with lock:
                        times.append(took)
            browser.close()

    ready: list[int] = []
    barrier = threading.Barrier(
        sessions, action=lambda: ready.append(len(_server_times(run_log, "Compare")))
    )
    workers = [
        threading.Thread(target=session, args=(titles[i * per_session : (i + 1) * per_session],))
        for i in range(sessions)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return times, _server_times(run_log, "Compare")[ready[0] :]


if __name__ == "__main__":
    main()
