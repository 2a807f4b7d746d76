"""The built-in demo catalog, prepared in the background on a first start.

Drawing 600 photos and importing them takes about 20 s on two cores. Doing it inside a page run
would freeze the app, and any click (a page in the sidebar) would stop the run and start the
drawing again from zero. A thread per data folder does the work once; every session only shows
its progress until it is done.
"""

from __future__ import annotations

import logging
import threading
import time

import streamlit as st

from core.demo import DEMO_FOLDER, DEMO_VERSION, VERSION_FILE, build_demo_catalog
from core.errors import SameSameError
from core.settings import data_dir
from core.workspace import open_demo
from ui.progress import format_seconds

logger = logging.getLogger(__name__)

#: How long a page run waits for a preparation that is about to finish (an already prepared
#: demo is only checked) before it shows the progress panel instead.
QUICK_CHECK_SECONDS = 1.0


class DemoPreparation:
    """Generates (first start only) and imports the demo catalog in a thread of its own."""

    def __init__(self, home: str) -> None:
        self.home = home
        self.stage = "Checking the demo catalog"
        self.done_items = 0
        self.total_items = 0
        self.error: str | None = None
        self.started = time.perf_counter()
        # Not a daemon: stopping the server halfway through an import must not kill it mid-write
        # (the import is transactional, the thread just finishes its batch).
        self._thread = threading.Thread(target=self._run, name="samesame-demo-preparation")
        self._thread.start()

    def _progress(self, stage: str):
        def report(done: int, total: int) -> None:
            self.stage, self.done_items, self.total_items = stage, done, total

        return report

    def _run(self) -> None:
        demo_dir = data_dir() / DEMO_FOLDER
        try:
            try:
                version = (demo_dir / VERSION_FILE).read_text(encoding="utf-8").strip()
            except OSError:
                version = None
            if version != str(DEMO_VERSION):
                build_demo_catalog(demo_dir, progress=self._progress("Drawing demo product photos"))
            open_demo(progress=self._progress("Importing the demo catalog")).close()
        except (SameSameError, OSError) as exc:
            logger.warning("the demo catalog could not be prepared: %s", exc)
            self.error = str(exc)

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> DemoPreparation:
        self._thread.join(timeout)
        return self

    def describe(self) -> tuple[float, str]:
        """(fraction done, a line for people) of the stage now running."""
        elapsed = format_seconds(time.perf_counter() - self.started)
        if not self.total_items:
            return 0.0, f"{self.stage}… · {elapsed} elapsed"
        fraction = min(1.0, self.done_items / self.total_items)
        return fraction, (
            f"{self.stage}: {self.done_items:,} of {self.total_items:,} · {elapsed} elapsed"
        )


@st.cache_resource(show_spinner=False)
def _preparation(home: str) -> DemoPreparation:
    return DemoPreparation(home)


def preparation() -> DemoPreparation:
    """This data folder's preparation (started on first call; one per server process)."""
    return _preparation(str(data_dir()))


def retry() -> None:
    _preparation.clear()


def ready() -> bool:
    """Whether the demo catalog can be opened; shows what is happening when it cannot yet."""
    job = preparation().wait(QUICK_CHECK_SECONDS)
    if job.done and job.error is None:
        return True
    st.title("Welcome to SameSame")
    if job.done:
        st.error(f"The demo catalog could not be prepared: {job.error}")
        st.button("Try again", on_click=retry, icon=":material/refresh:")
        return False
    st.markdown(
        "SameSame is preparing a **demo catalog** of 600 postings to show what it does. "
        "This happens once, on the first start; the pages in the sidebar open as soon as "
        "it is ready (moving between them does not interrupt it)."
    )
    _progress_panel(job)
    return False


def _progress_panel(job: DemoPreparation) -> None:
    @st.fragment(run_every=1.0)
    def panel() -> None:
        if job.done:
            st.rerun()  # the whole app: the pages can open now
        fraction, text = job.describe()
        st.progress(fraction, text=text)

    panel()
