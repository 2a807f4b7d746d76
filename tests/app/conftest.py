"""AppTest fixtures: the demo catalog is generated and imported once, by the app itself, and each
test gets a private data folder that starts from that prepared state."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import workspace
from tests.app.helpers import new_app
from ui import demo, resources

#: The first run generates 600 postings' photos and imports them: far past AppTest's 3 s default.
FIRST_RUN_TIMEOUT = 180


@dataclass
class PreparedHome:
    """A data folder the app has set up on its first start, plus what that first run showed."""

    path: Path
    first_run: list[str]
    titles: list[str]
    errors: list[str]
    exceptions: list[str]


@pytest.fixture(scope="session")
def prepared_home(tmp_path_factory) -> PreparedHome:
    """First start of the app in an empty data folder: it generates and imports the demo."""
    home = tmp_path_factory.mktemp("app_home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SAMESAME_HOME", str(home))
        at = new_app(timeout=FIRST_RUN_TIMEOUT)
        at.run()
        first_run = [e.value for e in at.markdown] + [p.value for p in at.get("progress")]
        # The demo is prepared in a background thread; each run shows its progress until then.
        demo.preparation().wait(timeout=FIRST_RUN_TIMEOUT)
        at.run()
        # The app imports TensorFlow in a background thread (device badge). Let that finish
        # now, so no later test (here or in tests/ outside the app) imports it concurrently.
        resources.device_probe().wait(timeout=300)
        return PreparedHome(
            path=home,
            first_run=[str(v) for v in first_run],
            titles=[t.value for t in at.title],
            errors=[e.value for e in at.error],
            exceptions=[e.value for e in at.exception],
        )


@pytest.fixture(autouse=True)
def samesame_home(prepared_home: PreparedHome, tmp_path: Path, monkeypatch) -> Path:
    """Overrides tests/conftest.py's empty per-test folder with a private copy of the prepared
    one: the database is copied (tests write to it), the demo's images are shared read-only."""
    home = tmp_path / "samesame_home"
    home.mkdir()
    for item in prepared_home.path.iterdir():
        if item.name.startswith("demo.db"):
            shutil.copy2(item, home / item.name)
        elif item.name == "demo":
            (home / "demo").symlink_to(item, target_is_directory=True)
    monkeypatch.setenv("SAMESAME_HOME", str(home))
    return home


@pytest.fixture
def demo_db(samesame_home: Path) -> Path:
    return workspace.demo_db_path()


@pytest.fixture
def app(samesame_home: Path) -> AppTest:
    """The app after its first run in this test's data folder (the demo catalog is current)."""
    at = new_app()
    at.run()
    assert not at.exception
    return at
