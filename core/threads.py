"""Spreading independent blocks of array work over this machine's cores, in threads.

The blocks are sparse products, rapidfuzz batches and numpy sums, which let go of Python's
lock while they run, so threads share the memory they read instead of copying it per
process. Results come back in order, so a threaded result is the serial one exactly.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


def cores() -> int:
    """Cores this process may run on (its affinity, not the machine's count)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


#: Most threads one call uses, whatever the core count (``SAMESAME_THREADS``): each running
#: block holds its temporaries, so memory grows with the threads, not only the time shrinks.
MAX_THREADS = int(os.environ.get("SAMESAME_THREADS", "4") or 4)

_local = threading.local()


def workers() -> int:
    """Threads `map_in_threads` runs: the cores, at most `MAX_THREADS`, 1 within `one_thread`."""
    if getattr(_local, "single", False):
        return 1
    return max(1, min(cores(), MAX_THREADS))


@contextmanager
def one_thread() -> Iterator[None]:
    """Blocks run serially here (a Spark task: the executor already runs one per core)."""
    before = getattr(_local, "single", False)
    _local.single = True
    try:
        yield
    finally:
        _local.single = before


def map_in_threads(fn: Callable[[Item], Result], items: Iterable[Item]) -> Iterator[Result]:
    """``fn`` of each item, in order, `workers` at once; at most two blocks per thread are
    in flight, so memory holds a few blocks' results, not all of them. A block that fails
    cancels those not started and raises here."""
    count = workers()
    pending = list(items)
    if count == 1 or len(pending) <= 1:
        yield from map(fn, pending)
        return
    with ThreadPoolExecutor(max_workers=count) as pool:
        ahead = 2 * count
        futures = [pool.submit(fn, item) for item in pending[:ahead]]
        try:
            for number in range(len(pending)):
                result = futures[number].result()
                futures[number] = None  # type: ignore[call-overload]
                if number + ahead < len(pending):
                    futures.append(pool.submit(fn, pending[number + ahead]))
                yield result
        finally:
            for future in futures:
                if future is not None:
                    future.cancel()
