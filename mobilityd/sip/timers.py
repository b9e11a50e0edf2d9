"""SIP timer values and a deadline heap for sans-I/O engines.

RFC 3261 §17.1.1.1 and Table 4 (§A): T1 is the RTT estimate (500 ms default), T2 the
maximum retransmit interval for non-INVITE requests and INVITE responses (4 s), T4 the
maximum time a message stays in the network (5 s).  Every timer of §17 (A-K) is derived
from these; the engines never read a clock, they receive ``now`` from their caller.
"""

from __future__ import annotations

import heapq
import itertools
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
    """Deadlines of many owners in one binary heap with lazy cancellation.

    ``schedule(owner, key, deadline)`` replaces any earlier deadline of the same
    ``(owner, key)``; cancelled or replaced entries stay in the heap and are skipped
    when they surface, so scheduling and cancelling are O(log n) / O(1).
    """

    __slots__ = ("_active", "_counter", "_heap")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, T, object]] = []
        self._active: dict[tuple[int, object], int] = {}
        self._counter = itertools.count()

    def __len__(self) -> int:
        return len(self._active)

    def schedule(self, owner: T, key: object, deadline: float) -> None:
        seq = next(self._counter)
        self._active[(id(owner), key)] = seq
        heapq.heappush(self._heap, (deadline, seq, owner, key))

    def cancel(self, owner: T, key: object) -> None:
        self._active.pop((id(owner), key), None)

    def cancel_all(self, owner: T, keys: tuple[object, ...]) -> None:
        active = self._active
        oid = id(owner)
        for key in keys:
            active.pop((oid, key), None)

    def is_scheduled(self, owner: T, key: object) -> bool:
        return (id(owner), key) in self._active

    def next_deadline(self) -> float | None:
        heap = self._heap
        active = self._active
        while heap:
            deadline, seq, owner, key = heap[0]
            if active.get((id(owner), key)) == seq:
                return deadline
            heapq.heappop(heap)
        return None

    def pop_due(self, now: float) -> list[tuple[T, object]]:
        """Remove and return every live ``(owner, key)`` whose deadline is ``<= now``."""
        heap = self._heap
        active = self._active
        due: list[tuple[T, object]] = []
        while heap and heap[0][0] <= now:
            _deadline, seq, owner, key = heapq.heappop(heap)
            ident = (id(owner), key)
            if active.get(ident) == seq:
                del active[ident]
                due.append((owner, key))
        return due
