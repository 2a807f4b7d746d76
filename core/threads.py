"""Spreading independent blocks of array work over this machine's cores, in threads.

The blocks are sparse products, rapidfuzz batches and numpy sums, which let go of Python's
lock while they run, so threads share the memory they read instead of copying it per
process. Results come back in order, so a threaded result is the serial one exactly.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


def cores() -> int:
    """Cores this process may run on (its affinity, not the machine's count)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def map_in_threads(fn: Callable[[Item], Result], items: Iterable[Item]) -> Iterator[Result]:
    """``fn`` of each item, in order, up to `cores` at once; at most two blocks per thread
    are in flight, so memory holds a few blocks' results, not all of them."""
    workers = cores()
    pending = list(items)
    if workers == 1 or len(pending) <= 1:
        yield from map(fn, pending)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        ahead = 2 * workers
        futures = [pool.submit(fn, item) for item in pending[:ahead]]
        for number in range(len(pending)):
            result = futures[number].result()
            futures[number] = None  # type: ignore[call-overload]
            if number + ahead < len(pending):
                futures.append(pool.submit(fn, pending[number + ahead]))
            yield result
