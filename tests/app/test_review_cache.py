"""The review queue worked out in the background once a page has run, so Review opens at once."""

from __future__ import annotations

import pandas as pd
import pytest

from core import review_queue as core_queue
from core.store import Store
from tests.app.helpers import open_page, run_pipelines
from ui import review_cache


@pytest.fixture
def counted(monkeypatch) -> list[str]:
    """Each time the queue is worked out (the database it was read from)."""
    calls: list[str] = []
    real = core_queue.review_queue

    def counting(store: Store, *args, **kwargs) -> pd.DataFrame:
        calls.append(str(store.path))
        return real(store, *args, **kwargs)

    monkeypatch.setattr(core_queue, "review_queue", counting)
    return calls


def test_a_page_run_prefetches_the_queue_review_then_reads_it(app, demo_db, counted):
    run_pipelines(demo_db)
    open_page(app, "browse")
    key = review_cache._runs_key(Store(demo_db))
    entry = review_cache._entries[key]
    assert entry.done.wait(timeout=60)
    assert counted == [str(demo_db)]

    open_page(app, "review")
    assert not app.exception
    assert counted == [str(demo_db)]  # Review used the prefetched queue, not a second pass
    with Store(demo_db) as store:
        expected = core_queue.review_queue(store)
        shown = review_cache.review_queue(store)
    pd.testing.assert_frame_equal(shown, expected)


def test_a_new_run_orders_the_queue_again(app, demo_db, counted):
    run_pipelines(demo_db, "baseline")
    with Store(demo_db) as store:
        before = review_cache.review_queue(store)
        assert review_cache.review_queue(store) is not before  # a copy each time, same rows
        pd.testing.assert_frame_equal(review_cache.review_queue(store), before)
    assert len(counted) == 1
    run_pipelines(demo_db, "ensemble")
    with Store(demo_db) as store:
        after = review_cache.review_queue(store)
    assert len(counted) == 2
    assert {"baseline_similarity", "ensemble_similarity"} <= set(after.columns)
    assert "ensemble_similarity" not in before.columns


def test_nothing_is_prefetched_before_any_run(app, demo_db, counted):
    with Store(demo_db) as store:
        review_cache.prefetch(store)
    assert counted == []


def test_a_failure_is_shown_once_and_tried_again_next_time(app, demo_db, monkeypatch):
    run_pipelines(demo_db, "baseline")
    real = core_queue.review_queue
    monkeypatch.setattr(core_queue, "review_queue", _broken)
    with Store(demo_db) as store, pytest.raises(OSError, match="disk I/O error"):
        review_cache.review_queue(store)
    monkeypatch.setattr(core_queue, "review_queue", real)
    with Store(demo_db) as store:
        assert len(review_cache.review_queue(store)) > 0


def _broken(store: Store, *args, **kwargs) -> pd.DataFrame:
    raise OSError("disk I/O error")
