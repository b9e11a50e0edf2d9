"""An in-memory network for sans-I/O SIP engines: a hand-advanced clock, a fixed
one-way delay and seeded, deterministic datagram loss.

Used by the scenario tests (two or more ``UserAgent``s talking) and by the in-memory
micro-benchmark.  It plays the asyncio adapter's role: deliver datagrams, fire timers
when due, drain events to the application handler of each UA.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from mobilityd.sip.events import Event
from mobilityd.sip.transaction.outbound import Addr, TransportKind
from mobilityd.sip.useragent import UserAgent

Handler = Callable[["Node", Event, float], None]


@dataclass(eq=False)
class Node:
    """One UA on the network, the events it produced, and its application logic."""

    address: Addr
    ua: UserAgent
    handler: Handler | None = None
    events: list[Event] = field(default_factory=list)
    sent: int = 0
    received: int = 0

    def of_type(self, kind: type[Event]) -> list[Event]:
        return [e for e in self.events if isinstance(e, kind)]


class MemoryNetwork:
    """Deliver datagrams between nodes; ``loss`` is the drop probability per datagram,
    drawn from ``random.Random(seed)`` so a run is reproducible."""

    def __init__(self, *, loss: float = 0.0, seed: int = 0, delay: float = 0.01,
                 drop: Callable[[bytes, Addr, Addr], bool] | None = None) -> None:
        self.now = 0.0
        self.loss = loss
        self.delay = delay
        self.dropped = 0
        self._random = random.Random(seed)
        self._drop = drop
        self._nodes: dict[Addr, Node] = {}
        self._flight: list[tuple[float, int, Addr, Addr, bytes]] = []
        self._seq = itertools.count()

    def attach(self, address: Addr, ua: UserAgent, handler: Handler | None = None) -> Node:
        node = Node(address, ua, handler)
        self._nodes[address] = node
        return node

    def move(self, node: Node, new_address: Addr) -> None:
        """The node's address changed (roaming); datagrams to the old one are lost."""
        del self._nodes[node.address]
        node.address = new_address
        self._nodes[new_address] = node

    def flush(self) -> None:
        """Put every queued outgoing datagram in flight (or drop it) and drain events."""
        for node in list(self._nodes.values()):
            self._collect(node)

    def _collect(self, node: Node) -> None:
        for out in node.ua.datagrams_to_send():
            node.sent += 1
            assert out.transport is TransportKind.UDP
            lost = (self._drop is not None and self._drop(out.data, node.address,
                                                          out.destination))
            if not lost and self.loss and self._random.random() < self.loss:
                lost = True
            if lost:
                self.dropped += 1
                continue
            heapq.heappush(self._flight, (self.now + self.delay, next(self._seq),
                                          node.address, out.destination, out.data))
        ua = node.ua
        while (event := ua.next_event()) is not None:
            node.events.append(event)
            if node.handler is not None:
                node.handler(node, event, self.now)
                self._collect(node)

    def next_time(self) -> float | None:
        times = [t for n in self._nodes.values() if (t := n.ua.get_timer()) is not None]
        if self._flight:
            times.append(self._flight[0][0])
        return min(times) if times else None

    def step(self) -> bool:
        """Advance to the next delivery or timer and process it; False when idle."""
        self.flush()
        when = self.next_time()
        if when is None:
            return False
        self.now = max(self.now, when)
        while self._flight and self._flight[0][0] <= self.now:
            _t, _s, source, destination, data = heapq.heappop(self._flight)
            node = self._nodes.get(destination)
            if node is not None:
                node.received += 1
                node.ua.receive(data, source, self.now)
                self._collect(node)
        for node in list(self._nodes.values()):
            deadline = node.ua.get_timer()
            if deadline is not None and deadline <= self.now:
                node.ua.handle_timer(self.now)
                self._collect(node)
        return True

    def run(self, until: Callable[[], bool] | None = None, *, max_time: float = 600.0
            ) -> None:
        """Step until ``until()`` holds, nothing is left to do, or ``max_time``."""
        while self.now <= max_time:
            if until is not None and until():
                return
            if not self.step():
                return
        if until is not None and not until():
            raise TimeoutError(f"condition not reached by t={self.now:.1f}s")

    def advance(self, seconds: float) -> None:
        """Run everything due in the next ``seconds`` of simulated time."""
        end = self.now + seconds
        while True:
            self.flush()
            when = self.next_time()
            if when is None or when > end:
                break
            self.step()
        self.now = max(self.now, end)
