"""The review queue, worked out once per set of stored runs and shared by every browser session.

Ordering a large catalog's pairs takes a while (27k Shopee postings: about 1.5 s, nearly all
of it reading their 180k stored pairs), so `prefetch` starts it in a background thread as soon
as any page of the app has run: by the time a person opens Review, it is ready. The cache is
our own rather than ``st.cache_data`` because it is filled outside a script run, and a page
asking while the thread works waits for that thread instead of starting a second one.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict

import pandas as pd
import streamlit as st

from core import review_queue as queue
from core.pipelines import pipeline_names
from core.store import Store

logger = logging.getLogger(__name__)

#: Queues kept at once (catalogs × sets of runs); each is at most `queue.QUEUE_LIMIT` rows.
MAX_ENTRIES = 4

_RunsKey = tuple[str, tuple[tuple[str, float | None], ...]]


class _Entry:
    """One queue being worked out or ready: whoever waits on ``done`` then reads the result."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.queue: pd.DataFrame | None = None
        self.error: BaseException | None = None

    def compute(self, db_path: str) -> None:
        try:
            with Store(db_path) as store:
                self.queue = queue.review_queue(store)
        except BaseException as exc:  # handed to the page that asks: it shows the message
            self.error = exc
        finally:
            self.done.set()


_lock = threading.Lock()
_entries: OrderedDict[_RunsKey, _Entry] = OrderedDict()


def _runs_key(store: Store) -> _RunsKey:
    """The catalog and when each pipeline last ran: a new run reorders the queue."""
    runs = tuple(
        (name, (store.match_run(name) or {}).get("computed_at")) for name in pipeline_names()
    )
    return str(store.path), runs


def _claim(key: _RunsKey) -> tuple[_Entry, bool]:
    """The entry for ``key`` and whether the caller must compute it (it is new)."""
    with _lock:
        entry = _entries.get(key)
        if entry is not None:
            _entries.move_to_end(key)
            return entry, False
        entry = _entries[key] = _Entry()
        while len(_entries) > MAX_ENTRIES:
            _entries.popitem(last=False)
        return entry, True


def _forget(key: _RunsKey, entry: _Entry) -> None:
    with _lock:
        if _entries.get(key) is entry:
            del _entries[key]


def prefetch(store: Store) -> None:
    """Start ordering the catalog's review queue in the background, once per set of runs
    (nothing to do before any pipeline has run)."""
    key = _runs_key(store)
    if all(computed_at is None for _, computed_at in key[1]):
        return
    entry, new = _claim(key)
    if new:
        thread = threading.Thread(
            target=entry.compute, args=(key[0],), name="samesame-review-queue", daemon=True
        )
        thread.start()


def review_queue(store: Store) -> pd.DataFrame:
    """The most telling pairs to review (`core.review_queue.review_queue`), kept until a
    pipeline runs again; pairs reviewed since are still in it (pages leave them out)."""
    key = _runs_key(store)
    entry, new = _claim(key)
    if not entry.done.is_set():
        with st.spinner("Ordering the pairs to review…"):
            if new:
                entry.compute(key[0])
            else:
                entry.done.wait()
    if entry.error is not None:
        _forget(key, entry)  # the next visit tries again (the problem may be fixed by then)
        raise entry.error
    assert entry.queue is not None
    return entry.queue.copy()  # pages filter it; the cached frame stays as it was
