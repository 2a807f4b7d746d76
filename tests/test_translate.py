"""Title translation: cached in the database, and any failure falls back to the originals."""

from __future__ import annotations

import sys

import pytest

import core.translate as translate_module
from core.store import Store
from core.translate import BATCH, translate_titles

TITLES = ["kaos polos pria", "sepatu anak", "", "kaos polos pria", "tas wanita"]
ENGLISH = {"kaos polos pria": "plain men t-shirt", "sepatu anak": "kids shoes"}


class FakeTranslator:
    """Records every batch it is asked for; knows a few words, echoes the rest in capitals."""

    def __init__(self, fail_with: Exception | None = None) -> None:
        self.calls: list[list[str]] = []
        self.fail_with = fail_with

    def __call__(self, texts: list[str]) -> list[str]:
        self.calls.append(list(texts))
        if self.fail_with is not None:
            raise self.fail_with
        return [ENGLISH.get(t, t.upper()) for t in texts]


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    """The retry waits core.translate asks for (recorded, not slept). Other threads of the test
    process (a Spark gateway, HTTP pools) sleep as usual: ``time`` is one module for all."""
    waited: list[float] = []
    real_sleep = translate_module.time.sleep

    def sleep(seconds: float) -> None:
        if sys._getframe(1).f_globals.get("__name__") == translate_module.__name__:
            waited.append(seconds)
        else:
            real_sleep(seconds)

    monkeypatch.setattr(translate_module.time, "sleep", sleep)
    return waited


def test_translations_are_cached_and_reused(store: Store, sleeps) -> None:
    fake = FakeTranslator()

    first, notice = translate_titles(store, TITLES, translator=fake)

    assert notice is None
    # Translated titles are normalised like any other title (lower case, no punctuation).
    assert first == ["plain men t shirt", "kids shoes", "", "plain men t shirt", "tas wanita"]
    assert fake.calls == [["kaos polos pria", "sepatu anak", "tas wanita"]]  # unique, no blanks
    assert store.translations(TITLES, "en")["tas wanita"] == "TAS WANITA"

    again, notice = translate_titles(store, TITLES, translator=fake)

    assert again == first and notice is None
    assert len(fake.calls) == 1  # nothing asked the second time
    assert sleeps == []


def test_only_new_titles_are_sent_and_batches_are_bounded(store: Store) -> None:
    fake = FakeTranslator()
    translate_titles(store, ["kaos polos pria"], translator=fake)
    many = [f"barang {i}" for i in range(BATCH * 2 + 5)]
    progress: list[tuple[int, int]] = []

    result, _ = translate_titles(
        store,
        ["kaos polos pria", *many],
        translator=fake,
        progress=lambda d, t: progress.append((d, t)),
    )

    assert result[0] == "plain men t shirt"
    assert [len(c) for c in fake.calls] == [1, BATCH, BATCH, 5]
    assert progress[-1] == (len(many), len(many))


def test_connection_errors_fall_back_with_a_notice_after_bounded_retries(
    store: Store, sleeps
) -> None:
    fake = FakeTranslator(fail_with=ConnectionError("network is unreachable"))

    result, notice = translate_titles(store, TITLES, translator=fake, retries=2)

    assert result == TITLES
    assert len(fake.calls) == 3  # the first attempt and two retries, then it gives up
    assert sleeps == [0.5, 1.0]  # a pause between attempts, none after the last
    assert "Translation failed (no connection reaching the translation service" in notice
    assert "network is unreachable" in notice
    assert "3 titles used untranslated" in notice
    assert store.translations(TITLES, "en") == {}


def test_a_translator_answering_the_wrong_length_is_not_retried(store: Store, sleeps) -> None:
    calls = []

    def short(texts: list[str]) -> list[str]:
        calls.append(texts)
        return texts[:-1]

    result, notice = translate_titles(store, TITLES, translator=short)

    assert result == TITLES
    assert len(calls) == 1 and sleeps == []
    assert "different number of titles" in notice


def test_a_later_batch_failing_keeps_the_earlier_ones(store: Store, sleeps) -> None:
    answered = []

    def flaky(texts: list[str]) -> list[str]:
        if answered:
            raise TimeoutError("read timed out")
        answered.append(texts)
        return [t + " (en)" for t in texts]

    titles = [f"barang {i}" for i in range(BATCH + 3)]
    result, notice = translate_titles(store, titles, translator=flaky, retries=1)

    assert result[:BATCH] == [t + " en" for t in titles[:BATCH]]  # normalised: no brackets
    assert result[BATCH:] == titles[BATCH:]
    assert "3 titles used untranslated" in notice
    assert len(store.translations(titles, "en")) == BATCH


@pytest.mark.timeout(30)
def test_the_real_google_translator_offline_gives_a_notice_not_an_exception(
    store: Store, sleeps
) -> None:
    pytest.importorskip("deep_translator")

    result, notice = translate_titles(store, ["kaos polos pria", "sepatu anak"], retries=1)

    if notice is None:
        pytest.skip("translate.google.com answered: this machine is online")
    assert result == ["kaos polos pria", "sepatu anak"]
    assert "untranslated" in notice
    assert len(sleeps) <= 1


def test_the_batch_run_and_a_single_query_compare_the_same_translated_text(store: Store) -> None:
    """Compare translates when the setting is on, through the same cache and the same
    normalisation as the batch run: an upload titled like a catalog posting reads the same."""
    from core.matching import run_pipeline
    from core.pipelines import get_pipeline
    from core.query import NewItem, query_item, query_title
    from core.settings import MatchSettings

    store.upsert_postings(
        [
            {
                "posting_id": pid,
                "title": title,
                "title_norm": title,
                "image_status": "none",
                "source": "catalog",
            }
            for pid, title in (("a", "kaos polos pria"), ("b", "sepatu anak"), ("c", "tas wanita"))
        ]
    )
    fake = FakeTranslator()
    settings = MatchSettings(translate_titles=True)
    run_pipeline(store, "ensemble", settings, translate=fake, save=False)
    batches = len(fake.calls)

    item = NewItem(title="KAOS  polos pria!!")
    title, notice = query_title(store, item, get_pipeline("ensemble"), settings, fake)
    found = query_item(store, item, "ensemble", settings, translate=fake)

    assert notice is None and title == "plain men t shirt"
    assert len(fake.calls) == batches  # answered from the cache the batch run filled
    top = found.iloc[0]
    assert top["posting_id"] == "a" and top["text_ratio"] == 1.0 and top["matched"]
    untranslated = query_item(store, item, "ensemble", MatchSettings(), translate=fake)
    assert untranslated.iloc[0]["posting_id"] == "a" and untranslated.iloc[0]["text_ratio"] == 1.0
