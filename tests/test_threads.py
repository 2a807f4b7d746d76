"""Blocks of array work spread over threads (`core.threads`): the serial result, in order."""

from __future__ import annotations

import time

import pytest

from core import threads


def test_results_come_back_in_order_whichever_block_finishes_first(monkeypatch):
    monkeypatch.setattr(threads, "cores", lambda: 3)

    def slow_for_early_items(item: int) -> int:
        time.sleep(0.002 * (20 - item))
        return item * item

    assert list(threads.map_in_threads(slow_for_early_items, range(20))) == [
        i * i for i in range(20)
    ]


def test_a_failing_block_raises_and_the_blocks_not_started_are_cancelled(monkeypatch):
    monkeypatch.setattr(threads, "cores", lambda: 2)
    ran: list[int] = []

    def fails_at_three(item: int) -> int:
        ran.append(item)
        if item == 3:
            raise ValueError("block 3")
        time.sleep(0.01)
        return item

    with pytest.raises(ValueError, match="block 3"):
        list(threads.map_in_threads(fails_at_three, range(200)))
    assert len(ran) < 20  # the other 180-odd blocks never ran


def test_threads_are_capped_and_one_thread_runs_serially(monkeypatch):
    monkeypatch.setattr(threads, "cores", lambda: 64)
    monkeypatch.setattr(threads, "MAX_THREADS", 4)
    assert threads.workers() == 4
    with threads.one_thread():
        assert threads.workers() == 1
        seen = set()
        list(
            threads.map_in_threads(
                lambda i: seen.add(__import__("threading").get_ident()), range(8)
            )
        )
        assert seen == {__import__("threading").get_ident()}
    assert threads.workers() == 4
