"""mobilityd.service.heap: how the daemon settles its heap after start-up."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from mobilityd.service.heap import GENERATION0_THRESHOLD, settle_heap


@pytest.fixture
def restored_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.set_threshold(*thresholds)
    gc.unfreeze()


def test_settle_heap_freezes_what_is_alive_and_raises_the_thresholds(restored_gc: None) -> None:
    alive = [object() for _ in range(10)]
    settle_heap()
    assert gc.get_freeze_count() > len(alive)
    assert gc.get_threshold()[0] == GENERATION0_THRESHOLD
    # cycles made after it are still collected
    cycle: list[object] = []
    cycle.append(cycle)
    del cycle
    assert gc.collect() >= 1
