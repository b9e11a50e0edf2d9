"""An in-process event bus from the call machinery to ``subscribe`` clients (asyncio).

:meth:`EventBus.publish` never blocks and never fails: it hands the event synchronously
to every attached :class:`Subscriber` whose name filter matches. Subscribers must not
block either: a control connection queues the line for its writer (so events published
while a request is handled reach that client before the reply), and a subscriber that
does not keep up loses events (counted, then reported as ``events-lost``) instead of
slowing calls down.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from mobilityd.service.events import ServiceEvent

DEFAULT_QUEUE = 256


class Subscriber(Protocol):
    """Receives events synchronously; ``names`` filters by wire name (None: all)."""

    names: frozenset[str] | None

    def offer(self, seq: int, event: ServiceEvent) -> None: ...


@dataclass(frozen=True)
class EventsLost:
    """``count`` events were dropped because this subscriber's queue was full."""

    count: int


class Subscription:
    """A queue-backed subscriber read with :meth:`next` (used inside the daemon)."""

    def __init__(self, bus: EventBus, names: frozenset[str] | None, maxsize: int) -> None:
        self._bus = bus
        self.names = names
        self._queue: asyncio.Queue[tuple[int, ServiceEvent]] = asyncio.Queue(maxsize)
        self._lost = 0

    def offer(self, seq: int, event: ServiceEvent) -> None:
        try:
            self._queue.put_nowait((seq, event))
        except asyncio.QueueFull:
            self._lost += 1

    async def next(self) -> tuple[int, ServiceEvent] | EventsLost:
        """The next event with its sequence number, or a report of lost events."""
        if self._lost and self._queue.empty():
            lost, self._lost = self._lost, 0
            return EventsLost(lost)
        return await self._queue.get()

    def close(self) -> None:
        self._bus.detach(self)


class EventBus:
    """Fan-out of :class:`ServiceEvent` to subscribers; events are numbered from 1."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self._seq = 0

    def attach(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    def detach(self, subscriber: Subscriber) -> None:
        if subscriber in self._subscribers:
            self._subscribers.remove(subscriber)

    def subscribe(self, names: Iterable[str] | None = None,
                  maxsize: int = DEFAULT_QUEUE) -> Subscription:
        """Attach a new queue-backed :class:`Subscription`."""
        sub = Subscription(self, None if names is None else frozenset(names), maxsize)
        self.attach(sub)
        return sub

    def publish(self, event: ServiceEvent) -> int:
        """Hand ``event`` to every matching subscriber; return its sequence number."""
        self._seq += 1
        name = event.wire_name()
        for sub in list(self._subscribers):
            if sub.names is None or name in sub.names:
                sub.offer(self._seq, event)
        return self._seq

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)
