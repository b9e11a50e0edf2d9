"""asyncio adapter: network watcher + route lookups + move coalescer + grace periods.

The thin adapter of the sans-I/O engines (house style rule 2): it reads network events
from :class:`~mobilityd.net.watcher.NetlinkWatcher` in its own task, and after every
batch asks the kernel for each call's source address
(:class:`~mobilityd.net.route.RouteResolver`, preferences on top), feeds the answers to
:class:`~mobilityd.mobility.coalesce.MoveCoalescer`, passes the resulting decisions
through :class:`~mobilityd.mobility.grace.GracePeriods`, and re-arms one timer for the
earlier of the two engines' deadlines. Nothing here decides anything.

Standby paths are made ready before a move needs them: the gateway of every default
route through a link that is up is resolved once (ARP / neighbor discovery, RFC 4861
§7.2, through :meth:`~mobilityd.net.change.NetlinkChanger.use_neighbor`) when it
appears, after the batch that showed it was acted upon. Otherwise the first packets of a
move to a link never used before (the SRTCP announce, the re-INVITE) wait for address
resolution: one round trip of that link (measured 20-45 ms on the 10 ms emulated
link of the handover benchmark). The kernel keeps the entry (STALE entries are used at
once), so each gateway costs one request per appearance.

Usage::

    monitor = PathMonitor(netns=None, grace_period=30.0)
    await monitor.start()
    monitor.add_call(CallPath("call-1", local, remote_media, remote_signalling))
    while True:
        for decision in await monitor.next_decisions():
            ...  # CallPathChanged -> rebind + re-INVITE;
                 # GracePeriodExpired -> BYE (the monitor has forgotten the call)
    monitor.close()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from mobilityd.mobility.coalesce import DEFAULT_HOLD_DOWN, MoveCoalescer
from mobilityd.mobility.decision import CallPath, CallRoutes
from mobilityd.mobility.errors import MonitorNotStartedError
from mobilityd.mobility.events import GraceEvent, GracePeriodExpired, MoveEvent
from mobilityd.mobility.grace import DEFAULT_GRACE_PERIOD, GracePeriods
from mobilityd.net.addresses import UsabilityPolicy
from mobilityd.net.change import NetlinkChanger
from mobilityd.net.errors import NetError, RouteLookupError
from mobilityd.net.events import NetEvent
from mobilityd.net.preferences import RouteChoice, SourcePreferences
from mobilityd.net.route import RouteResolver, prefixes_of
from mobilityd.net.watcher import NetlinkWatcher

Decision = MoveEvent | GraceEvent
log = logging.getLogger(__name__)


class PathMonitor:
    """Turns network changes into per-call move and grace decisions."""

    def __init__(self, *, netns: str | None = None,
                 preferences: SourcePreferences | None = None,
                 usability: UsabilityPolicy | None = None,
                 hold_down: float = DEFAULT_HOLD_DOWN,
                 grace_period: float = DEFAULT_GRACE_PERIOD,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.preferences = preferences or SourcePreferences()
        self.watcher = NetlinkWatcher(netns=netns, policy=usability)
        self.coalescer = MoveCoalescer(hold_down=hold_down)
        self.grace = GracePeriods(grace_period=grace_period)
        self._netns = netns
        self._clock = clock
        self._resolver: RouteResolver | None = None
        self._net_events: asyncio.Queue[list[NetEvent] | NetError] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None
        self._expired: set[str] = set()
        self._neighbors: NetlinkChanger | None = None
        self._primed: set[tuple[str, int]] = set()

    async def start(self) -> None:
        """Start watching (initial dump) and open the route-lookup socket."""
        await self.watcher.start()
        state = self.watcher.state
        self._resolver = RouteResolver(
            netns=self._netns, link_names=state.ifname,
            local_prefixes=lambda: prefixes_of(state.usable_addresses()))
        try:
            self._neighbors = NetlinkChanger(self._netns)
        except NetError as exc:  # resolution then happens on first use, as before
            log.warning("no neighbor priming: %s", exc)
        self._prime_neighbors()
        self._reader = asyncio.create_task(self._read_network(), name="path-monitor-netlink")

    def _prime_neighbors(self) -> None:
        """Resolve the gateways of default routes that appeared (module doc)."""
        current = set(self.watcher.state.default_gateways())
        self._primed &= current  # a route that went away is primed again if it returns
        if self._neighbors is None:
            return
        for gateway, ifindex in current - self._primed:
            self._primed.add((gateway, ifindex))
            try:
                self._neighbors.use_neighbor(gateway, ifindex)
            except NetError as exc:
                log.info("priming neighbor %s on link %d: %s", gateway, ifindex, exc)

    async def _read_network(self) -> None:
        try:
            while True:
                batch = await self.watcher.next_events()
                if not batch:
                    return
                self._net_events.put_nowait(batch)
                # let the waiting next_decisions() act on this batch before the rest of
                # a burst is parsed (a link going down sends 4-8 datagrams, ~0.1 ms of
                # CPU each): the first real change acts at once (issue 5 detection)
                await asyncio.sleep(0)
                self._prime_neighbors()  # after the decision on this batch, not before
        except NetError as exc:
            self._net_events.put_nowait(exc)

    def add_call(self, path: CallPath) -> None:
        self._expired.discard(path.call_id)
        self.coalescer.add_call(path)
        self.grace.add_call(path.call_id)

    def remove_call(self, call_id: str) -> None:
        """Stop tracking a call (a call already forgotten after its grace period
        expired is accepted too)."""
        if call_id in self._expired:
            self._expired.discard(call_id)
            return
        self.coalescer.remove_call(call_id)
        self.grace.remove_call(call_id)

    def _forget(self, call_id: str) -> None:
        self.coalescer.remove_call(call_id)
        self.grace.remove_call(call_id)
        self._expired.add(call_id)

    def _next_deadline(self) -> float | None:
        deadlines = [d for d in (self.coalescer.get_timer(), self.grace.get_timer())
                     if d is not None]
        return min(deadlines) if deadlines else None

    async def next_decisions(self) -> list[Decision]:
        """Wait until something must be done; return the decisions (never empty).

        Raises the watcher's :class:`~mobilityd.net.errors.NetError` if it failed, and
        :class:`MonitorNotStartedError` before :meth:`start`.
        """
        if self._resolver is None:
            raise MonitorNotStartedError("PathMonitor.start() has not been awaited")
        while True:
            deadline = self._next_deadline()
            timeout = None if deadline is None else max(0.0, deadline - self._clock())
            batch: list[NetEvent] | NetError | None = None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):  # no extra task (unlike wait_for)
                    batch = await self._net_events.get()
            if isinstance(batch, NetError):
                raise batch
            now = self._clock()
            due = [c.call_id for c in self.coalescer.calls()] if batch else []
            due += [c for c in self.coalescer.handle_timer(now) if c not in due]
            decisions: list[Decision] = list(self.grace.handle_timer(now))
            if due:
                decisions += await self._evaluate(now, due)
            for decision in decisions:
                if isinstance(decision, GracePeriodExpired):
                    self._forget(decision.call_id)
            if decisions:
                return decisions

    async def _routes_for(self, resolver: RouteResolver, path: CallPath,
                          usable: set[str]) -> CallRoutes:
        media, media_remote = None, None
        first: tuple[RouteChoice, str] | None = None
        for remote in path.remote_candidates():  # current address first
            answer = await resolver.choose(remote, self.preferences)
            if answer is None:
                continue
            first = first or (answer, remote)
            # an answer from a source we cannot use (yet) does not stop the search for
            # another of the peer's addresses; if all are like that, decision.judge
            # says what the first one means (keep the call, or no path)
            if answer.source in usable or answer.source == path.local:
                media, media_remote = answer, remote
                break
        if media is None and first is not None:
            media, media_remote = first
        if media is not None and media_remote == path.remote_signalling:
            signalling: RouteChoice | None = media  # same peer address: same answer
        else:
            signalling = await resolver.choose(path.remote_signalling, self.preferences)
        return CallRoutes(media.source if media else None,
                          signalling.source if signalling else None, media_remote)

    async def _evaluate(self, now: float, call_ids: list[str]) -> list[Decision]:
        if self._resolver is None:
            raise MonitorNotStartedError("PathMonitor.start() has not been awaited")
        calls = {c.call_id: c for c in self.coalescer.calls()}
        routes: dict[str, CallRoutes] = {}
        usable = {u.address for u in self.watcher.state.usable_addresses()}
        for call_id in call_ids:
            try:
                routes[call_id] = await self._routes_for(self._resolver, calls[call_id],
                                                         usable)
            except RouteLookupError as exc:
                # an odd kernel refusal for one call: leave that call as it is
                log.warning("route lookup for call %s failed: %s", call_id, exc)
        decisions: list[Decision] = []
        for move in self.coalescer.evaluate(now, routes, usable):
            decisions.append(move)
            decisions.extend(self.grace.handle_event(move, now))
        return decisions

    def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        self.watcher.close()
        if self._resolver is not None:
            self._resolver.close()
        if self._neighbors is not None:
            self._neighbors.close()
            self._neighbors = None
