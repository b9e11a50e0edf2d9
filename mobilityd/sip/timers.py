"""SIP timer values and a deadline heap for sans-I/O engines.

RFC 3261 §17.1.1.1 and Table 4 (§A): T1 is the RTT estimate (500 ms default), T2 the
maximum retransmit interval for non-INVITE requests and INVITE responses (4 s), T4 the
maximum time a message stays in the network (5 s).  Every timer of §17 (A-K) is derived
from these; the engines never read a clock, they receive ``now`` from their caller.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import deque
from dataclasses import dataclass
from enum import Enum
from typing import Generic, TypeVar


@dataclass(frozen=True, slots=True)
class TimerConfig:
    """T1/T2/T4 of RFC 3261 Table 4 plus the §17.2.1 100-Trying delay (seconds)."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    trying_delay: float = 0.2

    def __post_init__(self) -> None:
        if not (0 < self.t1 <= self.t2) or self.t4 <= 0 or self.trying_delay < 0:
            raise ValueError(f"invalid SIP timer values {self}")

    @property
    def timeout(self) -> float:
        """64*T1: Timers B, F, H, J (unreliable) and L/M (RFC 6026)."""
        return 64 * self.t1


class TimerName(Enum):
    """The §17 transaction timers (RFC 3261 Table 4; L and M from RFC 6026 §8.4, §8.7)."""

    __hash__ = object.__hash__  # members are singletons: identity hash, in C

    A = "A"  # INVITE request retransmit (client, unreliable)
    B = "B"  # INVITE transaction timeout (client)
    D = "D"  # wait for response retransmits (INVITE client, Completed)
    E = "E"  # non-INVITE request retransmit (client, unreliable)
    F = "F"  # non-INVITE transaction timeout (client)
    G = "G"  # INVITE final response retransmit (server, unreliable)
    H = "H"  # wait for ACK (INVITE server, Completed)
    I = "I"  # wait for ACK retransmits (INVITE server, Confirmed)  # noqa: E741
    J = "J"  # wait for request retransmits (non-INVITE server, Completed)
    K = "K"  # wait for response retransmits (non-INVITE client, Completed)
    L = "L"  # wait for INVITE retransmits after 2xx (INVITE server, Accepted)
    M = "M"  # wait for 2xx retransmits (INVITE client, Accepted)
    TRYING = "TRYING"  # send 100 Trying if the TU has not answered (§17.2.1)


T = TypeVar("T")


class TimerHeap(Generic[T]):
    """Deadlines of many owners, kept in one FIFO lane per timer key plus a heap.

    ``schedule(owner, key, deadline)`` replaces any earlier deadline of the same
    ``(owner, key)``; cancelled or replaced entries stay where they are and are skipped
    when they surface (lazy cancellation: ``cancel`` is O(1) and marks the entry dead,
    so that the entries in front are checked by a flag, not a table lookup).

    Why lanes: most SIP timers of one key have one duration (Timer J, H, L, 64*T1 are
    32 s; Timer I is T4; the UA's ACK wait 64*T1 ...), and the engines' ``now`` does not
    go backwards, so the deadlines of one key arrive in order: appending to a deque
    and popping from its left keeps them sorted at O(1).  A deadline earlier than its
    lane's last one (Timer A, E and G double their interval; a caller whose clock
    stepped back) goes to the heap instead, which orders it as before.  Under SIPp
    load a UAS holds one entry per transaction timer for 32 s (over 100,000 at a few
    thousand calls per second), where each binary-heap push and pop compares ~17
    tuples; a lane's cost does not grow with its length.  What is due comes out in
    (deadline, scheduling order), exactly as from a single heap.
    """

    __slots__ = ("_active", "_counter", "_earliest_since_mark", "_heap", "_lanes")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, _Timer[T]]] = []
        self._lanes: dict[object, deque[_Timer[T]]] = {}
        self._active: dict[tuple[int, object], _Timer[T]] = {}
        self._counter = itertools.count()
        self._earliest_since_mark = math.inf

    def __len__(self) -> int:
        return len(self._active)

    def schedule(self, owner: T, key: object, deadline: float) -> None:
        if deadline < self._earliest_since_mark:  # noqa: PLR1730 - no builtin call per timer
            self._earliest_since_mark = deadline
        ident = (id(owner), key)
        active = self._active
        earlier = active.get(ident)
        if earlier is not None:
            earlier.live = False
        timer = _Timer(deadline, next(self._counter), owner, key)
        active[ident] = timer
        lane = self._lanes.get(key)
        if lane is None:
            self._lanes[key] = deque((timer,))
        elif not lane or lane[-1].deadline <= deadline:
            lane.append(timer)
        else:
            heapq.heappush(self._heap, (deadline, timer.seq, timer))

    def cancel(self, owner: T, key: object) -> None:
        timer = self._active.pop((id(owner), key), None)
        if timer is not None:
            timer.live = False

    def cancel_all(self, owner: T, keys: tuple[object, ...]) -> None:
        active = self._active
        oid = id(owner)
        for key in keys:
            timer = active.pop((oid, key), None)
            if timer is not None:
                timer.live = False

    def is_scheduled(self, owner: T, key: object) -> bool:
        return (id(owner), key) in self._active

    def earliest_since_mark(self) -> float:
        """The earliest deadline scheduled since the last :meth:`mark` (``inf`` when
        none was).  Cancelling and firing only make the next deadline later, so a
        wake-up armed at :meth:`next_deadline` (or earlier) and marked then is still
        early enough while this stays at or after it: the adapter skips the exact
        look, which walks every lane, once per batch of datagrams."""
        return self._earliest_since_mark

    def mark(self) -> None:
        """Start a new :meth:`earliest_since_mark` window (after an exact look)."""
        self._earliest_since_mark = math.inf

    def next_deadline(self) -> float | None:
        """The earliest live deadline (dropping the dead entries in front of it)."""
        best: float | None = None
        for lane in self._lanes.values():
            while lane:
                timer = lane[0]
                if timer.live:
                    if best is None or timer.deadline < best:
                        best = timer.deadline
                    break
                lane.popleft()
        heap = self._heap
        while heap:
            timer = heap[0][2]
            if timer.live:
                if best is None or timer.deadline < best:
                    best = timer.deadline
                break
            heapq.heappop(heap)
        return best

    def pop_due(self, now: float) -> list[tuple[T, object]]:
        """Remove and return every live ``(owner, key)`` whose deadline is ``<= now``,
        earliest first (ties in the order they were scheduled)."""
        due: list[_Timer[T]] = []
        for lane in self._lanes.values():
            while lane and lane[0].deadline <= now:
                timer = lane.popleft()
                if timer.live:
                    due.append(timer)
        heap = self._heap
        while heap and heap[0][0] <= now:
            timer = heapq.heappop(heap)[2]
            if timer.live:
                due.append(timer)
        if len(due) > 1:
            due.sort(key=_deadline_then_seq)
        active = self._active
        fired: list[tuple[T, object]] = []
        for timer in due:
            timer.live = False
            del active[(id(timer.owner), timer.key)]
            fired.append((timer.owner, timer.key))
        return fired


class _Timer(Generic[T]):
    """One scheduled deadline; ``live`` turns false when it is cancelled, replaced or
    fired (the entry itself stays in its lane or the heap until it surfaces)."""

    __slots__ = ("deadline", "key", "live", "owner", "seq")

    def __init__(self, deadline: float, seq: int, owner: T, key: object) -> None:
        self.deadline = deadline
        self.seq = seq
        self.owner = owner
        self.key = key
        self.live = True


def _deadline_then_seq(timer: _Timer[T]) -> tuple[float, int]:
    return timer.deadline, timer.seq
