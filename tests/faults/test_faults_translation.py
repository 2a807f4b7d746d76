"""A translation service that fails or hangs never blocks matching: bounded waiting, the cache,
and a fallback to the untranslated titles with a notice."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

import core.translate as translate_module
from core import matching
from core.catalog import import_catalog
from core.store import Store


@pytest.fixture
def demo_store(tmp_path: Path, demo_catalog: Path) -> Store:
    with Store(tmp_path / "demo.db") as store:
        import_catalog(store, demo_catalog, demo_catalog.parent / "images")
        yield store


def _pairs(result) -> set[tuple[str, str]]:
    return set(zip(result.pairs["left"], result.pairs["right"], strict=True))


def test_a_hanging_service_falls_back_within_the_deadline(demo_store: Store, monkeypatch) -> None:
    release = threading.Event()

    def hangs(texts: list[str]) -> list[str]:
        release.wait(60)  # a request that never comes back
        return texts

    monkeypatch.setattr(translate_module, "BATCH_TIMEOUT", 0.5)
    settings = demo_store.load_settings().replace(translate_titles=True)
    plain = matching.run_pipeline(
        demo_store, "ensemble", settings.replace(translate_titles=False), save=False
    )

    started = time.monotonic()
    result = matching.run_pipeline(demo_store, "ensemble", settings, translate=hangs, save=False)
    waited = time.monotonic() - started
    release.set()

    assert waited < 0.5 * 3 + plain.seconds + 10  # one deadline, no retries on a timeout
    assert any("did not answer in 0.5 s" in n for n in result.notices)
    assert _pairs(result) == _pairs(plain)  # matched exactly as without translation


def test_a_failing_service_retries_a_bounded_number_of_times(demo_store: Store) -> None:
    calls: list[int] = []

    def refuses(texts: list[str]) -> list[str]:
        calls.append(len(texts))
        raise ConnectionError("no route to host")

    settings = demo_store.load_settings().replace(translate_titles=True)
    result = matching.run_pipeline(demo_store, "ensemble", settings, translate=refuses, save=False)

    assert len(calls) == 3  # the first try and two retries, then the fallback
    assert any("no route to host" in n and "untranslated" in n for n in result.notices)
    assert len(result.pairs) > 0
