"""The link emulator's due-time wake-up (tests/net/linkemu.py): a timerfd armed at the
earliest frame's due time, so frames leave when due rather than at the next whole ms."""

from __future__ import annotations

import select
import time

from tests.net.linkemu import _DueTimer


def test_due_timer_wakes_at_an_armed_time_and_disarms() -> None:
    due_timer = _DueTimer()
    assert due_timer.timer is not None  # Linux: the project's timerfd binding is used
    fd = due_timer.timer.fd
    due_timer.arm(time.monotonic() + 0.002)
    readable, _, _ = select.select([fd], [], [], 5.0)
    assert readable == [fd]
    due_timer.fired()
    assert due_timer.armed_for is None
    due_timer.arm(time.monotonic() + 0.002)
    due_timer.arm(None)  # nothing pending any more: disarmed, never fires
    readable, _, _ = select.select([fd], [], [], 0.05)
    assert readable == []
    due_timer.timer.close()
