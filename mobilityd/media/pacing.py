"""Paced sending: one asyncio timer drives every 20 ms stream against absolute deadlines.

Frame ``n`` of a stream started at ``t0`` is due at ``t0 + n * period`` (never
``sleep(period)`` accumulation, so there is no drift). A single heap of deadlines and
one ``loop.call_at`` serve all streams (a timer wheel rather than a task per stream).
If the loop falls behind, due frames are sent back to back up to ``max_burst`` per
stream; older ones are skipped (the RTP timestamp still follows the frame number).

Timer granularity: asyncio's epoll selector rounds every wait *up* to a whole
millisecond, so a ``loop.call_at`` timer armed for the deadline fires 0..1 ms late
(uniformly), which alone puts the p99 jitter near 1 ms. The scheduler therefore wakes
through a Linux timerfd watched by the loop (:mod:`mobilityd.media.timerfd`: µs
precision, still an ordinary asyncio program) and arms it at the deadline itself.
Where there is no timerfd (or with ``precise=False``) it falls back to ``call_at``
armed ``early_tolerance`` (0.5 ms) before the first deadline, sending every frame due
within that tolerance: the error becomes -0.5..+0.5 ms instead of 0..1 ms.
The signed error of every tick (actual - deadline) can be recorded for the benchmark.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import os
from collections.abc import Callable
from typing import Protocol

from mobilityd.media import g711
from mobilityd.media.errors import MediaLocalError
from mobilityd.media.g711 import G711PayloadType
from mobilityd.media.srtp import SrtpSession
from mobilityd.media.stream import RtpPacketizer, StreamParams
from mobilityd.media.timerfd import Wakeup, make_wakeup

FRAME_PERIOD = 0.020
#: with the call_at fallback: wake this much before a deadline (module docstring)
CALL_AT_EARLY_TOLERANCE = 0.0005
REALTIME_PRIORITY = 10


def enable_realtime_scheduling(priority: int = REALTIME_PRIORITY) -> bool:
    """Ask Linux for SCHED_FIFO at ``priority`` for the calling thread (the event loop).

    On a busy machine the ordinary scheduler preempts the loop for several ms, which is
    what dominates pacing jitter; a low real-time priority (as audio servers use through
    rtkit) removes that. The kernel's RT throttling keeps 5% for others. Returns False
    when not permitted (no CAP_SYS_NICE / RLIMIT_RTPRIO) or not on Linux.
    """
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except (AttributeError, OSError):
        return False
    return True


def disable_realtime_scheduling() -> None:
    """Back to SCHED_OTHER for the calling thread."""
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))

FrameTick = Callable[[int], None]


class AudioSource(Protocol):
    """Anything giving 20 ms of 16-bit PCM per call (ToneGenerator, WavPlayer)."""

    def read_frame(self) -> bytes: ...


class PayloadSource(Protocol):
    """Anything giving one encoded RTP payload per call."""

    def read_payload(self) -> bytes: ...


class G711Encoder:
    """Adapts an :class:`AudioSource` to a :class:`PayloadSource` (ITU-T G.711)."""

    def __init__(self, source: AudioSource, law: G711PayloadType = G711PayloadType.PCMU) -> None:
        self.source = source
        self.law = law
        g711.encode_table(law)  # build the table now, not inside the first paced tick

    def read_payload(self) -> bytes:
        return g711.encode(self.source.read_frame(), self.law)


class RepeatingPayloads:
    """Cycles through pre-encoded payloads (cheap generation for load tests)."""

    def __init__(self, payloads: list[bytes]) -> None:
        self._cycle = itertools.cycle(payloads)

    def read_payload(self) -> bytes:
        return next(self._cycle)


class ScheduledStream:
    """Handle of one stream in a :class:`FrameScheduler`."""

    __slots__ = ("active", "frame", "start", "tick")

    def __init__(self, tick: FrameTick, start: float) -> None:
        self.tick = tick
        self.start = start
        self.frame = 0
        self.active = True


class FrameScheduler:
    """Calls each registered ``tick(frame_number)`` at ``start + n * period``."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop | None = None,
        period: float = FRAME_PERIOD,
        *,
        max_burst: int = 3,
        record_lateness: bool = False,
        early_tolerance: float | None = None,
        precise: bool = True,
    ) -> None:
        self._loop = loop or asyncio.get_running_loop()
        self.period = period
        self.max_burst = max_burst
        self._wakeup: Wakeup = make_wakeup(self._loop, self._fire, precise=precise)
        #: True when woken by a timerfd (µs precision), False with the call_at fallback
        self.precise = self._wakeup.precise
        if early_tolerance is None:
            early_tolerance = 0.0 if self.precise else CALL_AT_EARLY_TOLERANCE
        self.early_tolerance = early_tolerance
        self._heap: list[tuple[float, int, ScheduledStream]] = []
        self._order = itertools.count()
        self._armed_for: float | None = None
        self._closed = False
        self.lateness: list[float] | None = [] if record_lateness else None
        self.skipped_frames = 0
        self.tick_errors = 0
        self.on_tick_error: Callable[[BaseException], None] | None = None

    def add(self, tick: FrameTick, start: float | None = None) -> ScheduledStream:
        """Schedule ``tick(0)`` at ``start`` (default: now), then every period."""
        if self._closed:
            raise MediaLocalError("add() on a closed FrameScheduler")
        stream = ScheduledStream(tick, self._loop.time() if start is None else start)
        self._push(stream)
        return stream

    def remove(self, stream: ScheduledStream) -> None:
        stream.active = False  # dropped lazily when it reaches the top of the heap

    def close(self) -> None:
        """Stop every stream and release the wake-up (its timerfd); final."""
        self._closed = True
        self._wakeup.close()
        self._armed_for = None
        for _, _, stream in self._heap:
            stream.active = False
        self._heap.clear()

    def _push(self, stream: ScheduledStream) -> None:
        deadline = stream.start + stream.frame * self.period
        heapq.heappush(self._heap, (deadline, next(self._order), stream))
        if self._armed_for is None or deadline < self._armed_for:
            self._arm(deadline)

    def _arm(self, deadline: float) -> None:
        self._armed_for = deadline
        self._wakeup.arm(deadline - self.early_tolerance)

    def _fire(self) -> None:
        self._armed_for = None
        now = self._loop.time()
        horizon = now + self.early_tolerance
        heap = self._heap
        lateness = self.lateness
        period = self.period
        while heap and heap[0][0] <= horizon:
            deadline, _, stream = heapq.heappop(heap)
            if not stream.active:
                continue
            behind = int((now - deadline) / period) if now > deadline else 0
            if behind >= self.max_burst:
                skip = behind - self.max_burst + 1
                stream.frame += skip
                self.skipped_frames += skip
                deadline += skip * period
            if lateness is not None:
                lateness.append(now - deadline)
            try:
                stream.tick(stream.frame)
            except Exception as exc:  # one stream's failure must not stop the others
                self.tick_errors += 1
                if self.on_tick_error is not None:
                    self.on_tick_error(exc)
            stream.frame += 1
            if stream.active:
                heapq.heappush(
                    heap, (stream.start + stream.frame * period, next(self._order), stream)
                )
        while heap and not heap[0][2].active:
            heapq.heappop(heap)
        if heap:
            self._arm(heap[0][0])


class PacedRtpSender:
    """One outgoing stream: payload source -> RTP (RFC 3550) -> SRTP (optional) -> send."""

    def __init__(
        self,
        params: StreamParams,
        payloads: PayloadSource,
        send: Callable[[bytes], object],
        srtp: SrtpSession | None = None,
    ) -> None:
        self.packetizer = RtpPacketizer(params)
        self.payloads = payloads
        self.send = send
        self.srtp = srtp
        self.handle: ScheduledStream | None = None

    def tick(self, frame: int) -> None:
        packet = self.packetizer.packet(frame, self.payloads.read_payload(), marker=frame == 0)
        if self.srtp is not None:
            packet = self.srtp.protect(packet)
        self.send(packet)

    def start(self, scheduler: FrameScheduler, start: float | None = None) -> None:
        self.handle = scheduler.add(self.tick, start)

    def stop(self, scheduler: FrameScheduler) -> None:
        if self.handle is not None:
            scheduler.remove(self.handle)
            self.handle = None

