"""An in-process event bus from the call machinery to ``subscribe`` clients (asyncio).

:meth:`EventBus.publish` never blocks and never fails: a subscriber that does not keep
up loses events (counted) instead of slowing calls down; its next read reports how many
were lost (:class:`EventsLost`), so a client can tell its view is incomplete.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass

from mobilityd.service.events import ServiceEvent

DEFAULT_QUEUE = 256


@dataclass(frozen=True)
class EventsLost:
    """``count`` events were dropped because this subscriber's queue was full."""

    count: int


class Subscription:
    """One subscriber's queue; ``names`` filters by wire name (``None``: everything)."""

    def __init__(self, bus: EventBus, names: frozenset[str] | None, maxsize: int) -> None:
        self._bus = bus
        self.names = names
        self._queue: asyncio.Queue[tuple[int, ServiceEvent]] = asyncio.Queue(maxsize)
        self._lost = 0

    def offer(self, seq: int, event: ServiceEvent) -> None:
        if self.names is not None and event.wire_name() not in self.names:
            return
        try:
            self._queue.put_nowait((seq, event))
        except asyncio.QueueFull:
            self._lost += 1

    async def next(self) -> tuple[int, ServiceEvent] | EventsLost:
        """The next event with its sequence number, or a report of lost events."""
        if self._lost and self._queue.empty():
            lost, self._lost = self._lost, 0
            return EventsLost(lost)
        item = await self._queue.get()
        return item

    def close(self) -> None:
        self._bus.unsubscribe(self)


class EventBus:
    """Fan-out of :class:`ServiceEvent` to subscriptions; events are numbered from 1."""

    def __init__(self) -> None:
        self._subscriptions: list[Subscription] = []
        self._seq = 0

    def subscribe(self, names: Iterable[str] | None = None,
                  maxsize: int = DEFAULT_QUEUE) -> Subscription:
        sub = Subscription(self, None if names is None else frozenset(names), maxsize)
        self._subscriptions.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subscriptions:
            self._subscriptions.remove(sub)

    def publish(self, event: ServiceEvent) -> int:
        """Hand ``event`` to every subscriber; return its sequence number."""
        self._seq += 1
        for sub in self._subscriptions:
            sub.offer(self._seq, event)
        return self._seq

    @property
    def subscriber_count(self) -> int:
        return len(self._subscriptions)
