"""Timerfd wake-ups (timerfd_create(2), CLOCK_MONOTONIC, TFD_TIMER_ABSTIME) on a real
event loop, and the call_at fallback. No timing assertions beyond "never early"."""

from __future__ import annotations

import asyncio
import gc
import os
import select
import time

import pytest

from mobilityd.media.errors import MediaLocalError
from mobilityd.media.pacing import CALL_AT_EARLY_TOLERANCE, FrameScheduler
from mobilityd.media.timerfd import (
    CallAtWakeup,
    TimerFd,
    TimerFdWakeup,
    make_wakeup,
)


def test_timerfd_expires_at_an_absolute_deadline_and_is_acknowledged() -> None:
    timer = TimerFd()
    try:
        assert timer.acknowledge() == 0  # not armed: nothing to read
        deadline = time.monotonic() + 0.005
        timer.arm_monotonic(deadline)
        assert select.select([timer.fd], [], [], 5.0)[0] == [timer.fd]
        assert time.monotonic() >= deadline
        assert timer.acknowledge() == 1
        assert timer.acknowledge() == 0
        timer.arm_monotonic(time.monotonic() - 1.0)  # in the past: expires at once
        assert select.select([timer.fd], [], [], 5.0)[0] == [timer.fd]
        timer.arm_monotonic(time.monotonic() + 0.001)
        timer.disarm()
        assert select.select([timer.fd], [], [], 0.02)[0] == []
    finally:
        timer.close()


async def test_wakeup_fires_once_never_early_and_rearming_replaces() -> None:
    loop = asyncio.get_running_loop()
    fired: list[float] = []
    wakeup = TimerFdWakeup(loop, lambda: fired.append(loop.time()))
    try:
        first = loop.time() + 0.5
        wakeup.arm(first)
        second = loop.time() + 0.01
        wakeup.arm(second)  # replaces the first
        await asyncio.sleep(0.05)
        assert len(fired) == 1 and fired[0] >= second
        wakeup.arm(loop.time() + 0.01)
        wakeup.cancel()
        await asyncio.sleep(0.03)
        assert len(fired) == 1
    finally:
        wakeup.close()
    wakeup.close()  # closing twice is harmless


async def test_make_wakeup_prefers_timerfd_and_falls_back_to_call_at() -> None:
    loop = asyncio.get_running_loop()
    precise = make_wakeup(loop, lambda: None)
    fallback = make_wakeup(loop, lambda: None, precise=False)
    try:
        assert isinstance(precise, TimerFdWakeup) and precise.precise
        assert isinstance(fallback, CallAtWakeup) and not fallback.precise
    finally:
        precise.close()
        fallback.close()


async def test_loop_without_readers_gets_the_call_at_fallback() -> None:
    class NoReaders(asyncio.SelectorEventLoop):
        def add_reader(self, *args: object, **kwargs: object) -> None:
            raise NotImplementedError

    loop = NoReaders()
    try:
        assert isinstance(make_wakeup(loop, lambda: None), CallAtWakeup)
    finally:
        loop.close()


@pytest.mark.parametrize("precise", [True, False])
async def test_frame_scheduler_on_a_real_loop_sends_every_frame_in_order(
    precise: bool,
) -> None:
    loop = asyncio.get_running_loop()
    scheduler = FrameScheduler(loop, period=0.005, record_lateness=True, precise=precise,
                               max_burst=1000)  # a stalled loop sends late, skips none
    assert scheduler.precise is precise
    assert scheduler.early_tolerance == (0.0 if precise else CALL_AT_EARLY_TOLERANCE)
    frames: dict[int, list[int]] = {n: [] for n in range(3)}
    start = loop.time() + 0.005
    for n in range(3):
        scheduler.add(frames[n].append, start=start + n * 0.001)
    await asyncio.sleep(0.005 * 12)
    scheduler.close()
    for got in frames.values():
        assert got[:8] == list(range(8))
    assert scheduler.lateness is not None
    if precise:  # armed at the deadline itself: never early
        assert min(scheduler.lateness) >= 0.0


async def test_a_closed_scheduler_refuses_new_streams() -> None:
    scheduler = FrameScheduler(asyncio.get_running_loop())
    scheduler.add(lambda frame: None)
    scheduler.close()
    scheduler.close()
    with pytest.raises(MediaLocalError):
        scheduler.add(lambda frame: None)


def test_a_timerfd_never_closed_is_released_when_collected() -> None:
    timer = TimerFd()
    fd = timer.fd
    os.fstat(fd)
    del timer
    gc.collect()
    with pytest.raises(OSError):
        os.fstat(fd)
