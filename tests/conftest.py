"""Shared fixtures: paths to the real data in ../shared, per-test data folders and stores."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from core.store import Store

PROJECT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
SHARED = PROJECT.parent / "shared"
SHOPEE = SHARED / "data" / "shopee"
GROCERY = SHARED / "data" / "grocery"
WEIGHTS = SHARED / "weights"
MOBILENET_025 = WEIGHTS / "mobilenet_2_5_224_tf_no_top.h5"


def require(condition: bool, message: str) -> None:
    """Skip a test whose real data or tool is missing, but fail it in CI (``CI=true``): there,
    a missing data set is a broken set-up, not a reason to test less."""
    if condition:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI=true: required)")
    pytest.skip(message)


def _need(path: Path) -> Path:
    require(path.exists(), f"real data not present: {path}")
    return path


@pytest.fixture(scope="session")
def shopee_csv() -> Path:
    return _need(SHOPEE / "train.csv")


@pytest.fixture(scope="session")
def shopee_images() -> Path:
    return _need(SHOPEE / "images")


@pytest.fixture(scope="session")
def grocery_dir() -> Path:
    return _need(GROCERY)


@pytest.fixture(scope="session")
def weights_dir() -> Path:
    """Folder with the real ImageNet MobileNet alpha-0.25 weights (offline)."""
    _need(MOBILENET_025)
    return WEIGHTS


@pytest.fixture(autouse=True)
def samesame_home(tmp_path_factory, monkeypatch) -> Path:
    """Every test gets its own data folder, so nothing touches the user's real one."""
    home = tmp_path_factory.mktemp("samesame_home")
    monkeypatch.setenv("SAMESAME_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def demo_catalog(tmp_path_factory) -> Path:
    """The built-in demo catalog, generated once per session (CSV path)."""
    from core.demo import build_demo_catalog

    return build_demo_catalog(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def demo_store(demo_catalog: Path, tmp_path_factory) -> Store:
    """The demo catalog imported into a database of its own, once per test module."""
    from core.catalog import import_catalog

    store = Store(tmp_path_factory.mktemp("demo_store") / "demo.db")
    import_catalog(store, demo_catalog, demo_catalog.parent / "images")
    yield store
    store.close()


@pytest.fixture
def store(tmp_path) -> Store:
    with Store(tmp_path / "test.db") as opened:
        yield opened


@pytest.fixture
def copy_demo(tmp_path, demo_catalog) -> Path:
    """A private, writable copy of the demo catalog folder (CSV path)."""
    target = tmp_path / "demo_copy"
    shutil.copytree(demo_catalog.parent, target)
    return target / "catalog.csv"
