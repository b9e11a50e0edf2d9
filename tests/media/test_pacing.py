"""Packetizer (RFC 3550 §5.1), reception statistics (§A.3, §A.8) and the frame
scheduler, driven by a hand-advanced clock (no timing assertions)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

import pytest

from mobilityd.media.errors import MediaLocalError
from mobilityd.media.pacing import FrameScheduler, G711Encoder, PacedRtpSender, RepeatingPayloads
from mobilityd.media.rtp import RtpPacket
from mobilityd.media.srtp import Direction, SrtpKeys, SrtpSession
from mobilityd.media.stream import ReceptionStats, RtpPacketizer, StreamParams
from mobilityd.media.tone import ToneGenerator


class HandClock:
    """The two loop methods FrameScheduler uses, with time advanced by the test."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.timers: list[tuple[float, Callable[[], None], Handle]] = []

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[[], None]) -> Handle:
        handle = Handle()
        self.timers.append((when, callback, handle))
        return handle

    def run_until(self, until: float, lateness: float = 0.0) -> None:
        """Fire timers in order; each fires ``lateness`` seconds after its deadline."""
        while True:
            live = [t for t in self.timers if not t[2].cancelled]
            if not live:
                return
            when, callback, handle = min(live, key=lambda t: t[0])
            if when > until:
                return
            self.timers.remove((when, callback, handle))
            self.now = max(self.now, when + lateness)
            callback()


class Handle:
    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


def scheduler(clock: HandClock, **kwargs: Any) -> FrameScheduler:
    """A scheduler on the hand clock, woken by its call_at (the timerfd wake-up is
    tested on a real loop in test_timerfd.py)."""
    return FrameScheduler(cast(asyncio.AbstractEventLoop, clock), precise=False, **kwargs)


def test_packetizer_wraps_sequence_and_derives_timestamp() -> None:
    packetizer = RtpPacketizer(StreamParams(ssrc=7, first_sequence=65534, first_timestamp=100))
    packets = [RtpPacket.parse(packetizer.packet(n, b"x" * 160, marker=n == 0)) for n in range(4)]
    assert [p.sequence_number for p in packets] == [65534, 65535, 0, 1]
    assert [p.timestamp for p in packets] == [100, 260, 420, 580]
    assert [p.marker for p in packets] == [True, False, False, False]
    skipped = RtpPacket.parse(packetizer.packet(10, b""))
    assert (skipped.sequence_number, skipped.timestamp) == (2, 1700)
    with pytest.raises(MediaLocalError):
        StreamParams(ssrc=1 << 32)


def test_reception_stats_loss_jitter_and_report() -> None:
    stats = ReceptionStats(ssrc=9)
    for n, seq in enumerate([65533, 65534, 0, 1, 3]):  # 65535 and 2 lost
        stats.update(seq, 160 * (seq if seq > 100 else seq + 65536), 0.02 * n)
    assert stats.expected == 7 and stats.received == 5 and stats.cumulative_lost == 2
    block = stats.report_block()
    assert block.ssrc == 9 and block.cumulative_lost == 2
    assert block.highest_sequence == (1 << 16) | 3
    assert block.fraction_lost == (2 << 8) // 7
    assert stats.jitter > 0
    assert stats.report_block().fraction_lost == 0  # nothing new since the last report


def test_absolute_deadlines_do_not_drift() -> None:
    """Every tick fires 0.3 ms late, yet tick n stays due at start + n * 20 ms."""
    clock = HandClock()
    frames: list[tuple[int, float]] = []
    sched = scheduler(clock, record_lateness=True, early_tolerance=0.0)
    sched.add(lambda n: frames.append((n, clock.now)), start=1000.0)
    clock.run_until(1000.0 + 0.02 * 999, lateness=0.0003)
    assert [n for n, _ in frames] == list(range(1000))
    assert all(abs(at - (1000.0 + 0.02 * n + 0.0003)) < 1e-9 for n, at in frames)
    assert sched.lateness is not None
    assert max(sched.lateness) == pytest.approx(0.0003)


def test_early_tolerance_centres_the_error() -> None:
    """The timer is armed 0.5 ms early; a wake-up anywhere within +-0.5 ms of the
    deadline sends the frame (epoll rounds waits up to whole ms)."""
    clock = HandClock()
    sched = scheduler(clock, record_lateness=True)
    frames: list[int] = []
    sched.add(frames.append, start=1000.0)
    assert min(when for when, _, _ in clock.timers) == pytest.approx(1000.0 - 0.0005)
    clock.run_until(1000.0 + 0.02 * 9, lateness=0.0008)  # wakes 0.3 ms after deadlines
    assert frames == list(range(10))
    assert sched.lateness is not None
    assert all(x == pytest.approx(0.0003) for x in sched.lateness)
    clock.run_until(1000.0 + 0.02 * 19, lateness=0.0)  # wakes 0.5 ms before deadlines
    assert frames == list(range(20))
    assert all(x == pytest.approx(-0.0005) for x in sched.lateness[10:])


def test_many_streams_one_timer() -> None:
    clock = HandClock()
    sched = scheduler(clock, early_tolerance=0.0)
    seen: dict[int, list[int]] = {i: [] for i in range(50)}
    for i in range(50):
        sched.add(seen[i].append, start=1000.0 + i * 0.0004)
    clock.run_until(1000.0 + 0.02 * 9 + 0.02)
    assert all(frames == list(range(10)) for frames in seen.values())
    assert sum(not h.cancelled for _, _, h in clock.timers) == 1


def test_late_loop_bursts_then_skips() -> None:
    clock = HandClock()
    sched = scheduler(clock, max_burst=3)
    frames: list[int] = []
    sched.add(frames.append, start=1000.0)
    clock.run_until(1000.0)
    clock.now = 1000.0 + 0.02 * 10 + 0.001  # the loop was blocked for 10 periods
    clock.run_until(clock.now)
    assert frames[0] == 0
    assert frames[1:] == [8, 9, 10]
    assert sched.skipped_frames == 7


def test_removed_and_failing_streams() -> None:
    clock = HandClock()
    sched = scheduler(clock)
    good: list[int] = []
    errors: list[BaseException] = []
    sched.on_tick_error = errors.append

    def bad(n: int) -> None:
        raise RuntimeError("boom")

    sched.add(bad, start=1000.0)
    handle = sched.add(good.append, start=1000.0)
    clock.run_until(1000.04)
    sched.remove(handle)
    clock.run_until(1000.2)
    assert good == [0, 1, 2]
    assert sched.tick_errors == len(errors) >= 10
    sched.close()
    assert all(h.cancelled for _, _, h in clock.timers)


def test_paced_sender_protects_with_continuing_index() -> None:
    clock = HandClock()
    sched = scheduler(clock)
    keys = SrtpKeys(bytes(16), bytes(14))
    tx = SrtpSession(keys, Direction.OUTBOUND, keep_index_history=True)
    rx = SrtpSession(keys, Direction.INBOUND)
    received: list[RtpPacket] = []
    params = StreamParams(ssrc=0xABC, first_sequence=65530)
    sender = PacedRtpSender(
        params, G711Encoder(ToneGenerator(1000)),
        lambda data: received.append(RtpPacket.parse(rx.unprotect(data))), tx,
    )
    sender.start(sched, start=1000.0)
    clock.run_until(1000.0 + 0.02 * 19)
    sender.stop(sched)
    clock.run_until(1001.0)
    assert [p.sequence_number for p in received] == [(65530 + n) % 65536 for n in range(20)]
    assert tx.get_roc(0xABC) == 1 and rx.get_roc(0xABC) == 1
    assert tx.index_history is not None and len(tx.index_history) == 20
    assert all(len(p.payload) == 160 for p in received)


def test_repeating_payloads() -> None:
    source = RepeatingPayloads([b"a", b"b"])
    assert [source.read_payload() for _ in range(3)] == [b"a", b"b", b"a"]


def test_realtime_scheduling_round_trip() -> None:
    """As root (CI) SCHED_FIFO is granted and given back; elsewhere it says no."""
    import os

    from mobilityd.media.pacing import disable_realtime_scheduling, enable_realtime_scheduling

    granted = enable_realtime_scheduling()
    try:
        if granted:
            assert os.sched_getscheduler(0) == os.SCHED_FIFO
    finally:
        disable_realtime_scheduling()
    assert os.sched_getscheduler(0) == os.SCHED_OTHER
    assert granted or os.geteuid() != 0
