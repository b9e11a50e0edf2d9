"""asyncio netlink watcher: initial dump, then typed network events (pyroute2).

A thin adapter around :class:`mobilityd.net.state.NetworkState`: it subscribes to the
rtnetlink link, IPv4/IPv6 address and IPv4/IPv6 route groups *before* dumping, so
nothing that changes during the dump is lost (a notification that repeats the dump is
deduplicated by the state), converts each message into a
:mod:`mobilityd.net.records` record and yields the events the state returns.

Usage::

    async with NetlinkWatcher(netns="bob") as watcher:
        initial = watcher.initial_events      # what the dump found
        async for event in watcher:           # then changes, as they happen
            ...

``AsyncIPRoute.get()`` yields the notifications available now, so the reader loops over
it; an RTM_NEWADDR arrives within about a millisecond of ``ip addr add``.

If the socket's receive buffer overruns (ENOBUFS: a burst of changes while the loop
was busy) notifications are lost; the watcher then opens a new socket, dumps again
and returns the differences (:meth:`NetworkState.resync`), counted in ``resyncs``.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

from pyroute2 import AsyncIPRoute
from pyroute2.netlink.rtnl import (
    RTMGRP_IPV4_IFADDR,
    RTMGRP_IPV4_ROUTE,
    RTMGRP_IPV6_IFADDR,
    RTMGRP_IPV6_ROUTE,
    RTMGRP_LINK,
)

from mobilityd.net.addresses import UsabilityPolicy
from mobilityd.net.errors import NetEventError, WatcherError
from mobilityd.net.events import AddressFamily, AddressFlag, LinkFlag, NetEvent
from mobilityd.net.records import AddressRecord, LinkRecord, RouteRecord
from mobilityd.net.state import NetworkState, Record

WATCHED_GROUPS = (
    RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE
)
RTN_UNICAST = 1
log = logging.getLogger(__name__)
_FAMILIES = {int(f) for f in AddressFamily}


def record_from_message(msg: Any) -> Record | None:
    """Convert one pyroute2 rtnetlink message into a record (``None``: not of interest,
    or a message whose values cannot be right -- logged and skipped)."""
    try:
        return _record_from_message(msg)
    except (NetEventError, KeyError, TypeError, ValueError) as exc:
        log.warning("skipping malformed rtnetlink message %s: %s", msg.get("event"), exc)
        return None


def _record_from_message(msg: Any) -> Record | None:
    event = msg.get("event")
    if event in ("RTM_NEWLINK", "RTM_DELLINK"):
        return LinkRecord(
            ifindex=int(msg["index"]),
            ifname=str(msg.get_attr("IFLA_IFNAME") or f"if{msg['index']}"),
            flags=LinkFlag(int(msg["flags"]) & int(LinkFlag.UP | LinkFlag.LOOPBACK
                                                    | LinkFlag.RUNNING | LinkFlag.LOWER_UP)),
            deleted=event == "RTM_DELLINK",
        )
    if event in ("RTM_NEWADDR", "RTM_DELADDR"):
        if msg["family"] not in _FAMILIES:
            return None
        # IFA_LOCAL is the local end on point-to-point links; IFA_ADDRESS otherwise.
        address = msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS")
        if address is None:
            return None
        flags = msg.get_attr("IFA_FLAGS")
        return AddressRecord(
            ifindex=int(msg["index"]),
            address=str(address),
            prefixlen=int(msg["prefixlen"]),
            family=AddressFamily(msg["family"]),
            flags=AddressFlag(int(flags if flags is not None else msg["flags"]) & 0xFFF),
            deleted=event == "RTM_DELADDR",
        )
    if event in ("RTM_NEWROUTE", "RTM_DELROUTE"):
        if msg["family"] not in _FAMILIES or msg["type"] != RTN_UNICAST:
            return None
        table = msg.get_attr("RTA_TABLE")
        oif = msg.get_attr("RTA_OIF")
        return RouteRecord(
            family=AddressFamily(msg["family"]),
            dst_len=int(msg["dst_len"]),
            table=int(table if table is not None else msg["table"]),
            gateway=msg.get_attr("RTA_GATEWAY"),
            oif=int(oif) if oif is not None else None,
            priority=int(msg.get_attr("RTA_PRIORITY") or 0),
            deleted=event == "RTM_DELROUTE",
        )
    return None


class NetlinkWatcher:
    """Watches one network namespace (``netns=None``: the current one)."""

    def __init__(self, *, netns: str | None = None,
                 policy: UsabilityPolicy | None = None, rcvbuf: int | None = None) -> None:
        self.netns = netns
        self.resyncs = 0
        self._rcvbuf = rcvbuf
        self.state = NetworkState(policy)
        self.initial_events: list[NetEvent] = []
        self._ipr: Any = None
        self._closed = False

    async def _open(self) -> list[Record]:
        """A new subscribed socket and a full dump of links, addresses and routes."""
        if self.netns is not None and not os.path.exists(f"/var/run/netns/{self.netns}"):
            raise WatcherError(f"network namespace {self.netns!r} does not exist")
        kwargs: dict[str, Any] = {"netns": self.netns, "flags": 0}  # never create a netns
        if self._rcvbuf is not None:
            kwargs["rcvbuf"] = self._rcvbuf
        try:
            self._ipr = AsyncIPRoute(**kwargs)
            await self._ipr.bind(groups=WATCHED_GROUPS)
            records: list[Record] = []
            for dump in (self._ipr.get_links(), self._ipr.get_addr(),
                         self._ipr.get_routes()):
                async for msg in await dump:
                    record = record_from_message(msg)
                    if record is not None:
                        records.append(record)
        except OSError as exc:
            self.close()
            raise WatcherError(f"cannot watch netns {self.netns!r}: {exc}") from exc
        return records

    async def start(self) -> list[NetEvent]:
        """Subscribe, dump links, addresses and routes; return the dump's events."""
        if self._ipr is not None:
            raise WatcherError("watcher already started")
        events: list[NetEvent] = []
        for record in await self._open():
            events.extend(self.state.handle(record))
        self.initial_events = events
        return events

    def _overran(self) -> bool:
        error = self._ipr.status.get("error")
        return isinstance(error, OSError) and error.errno == errno.ENOBUFS

    async def _resync(self) -> list[NetEvent]:
        # After ENOBUFS notifications are lost and pyroute2's socket object refuses
        # further use: open a new one, dump again and report the differences.
        self.resyncs += 1
        self._ipr.close()
        return self.state.resync(await self._open())

    def _feed(self, msg: Any) -> list[NetEvent]:
        record = record_from_message(msg)
        return self.state.handle(record) if record is not None else []

    async def next_events(self) -> list[NetEvent]:
        """Wait for the next batch of notifications that changed something.

        Returns an empty list only once the watcher is closed.
        """
        if self._ipr is None:
            raise WatcherError("watcher not started")
        while not self._closed:
            events: list[NetEvent] = []
            received = False
            try:
                async for msg in self._ipr.get():
                    received = True
                    events.extend(self._feed(msg))
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    raise WatcherError(f"netlink socket failed: {exc}") from exc
                events.extend(await self._resync())
                received = True
            else:
                if self._overran():
                    events.extend(await self._resync())
            if events:
                return events
            if not received:
                break  # terminator from close()
        return []

    async def __aiter__(self) -> AsyncIterator[NetEvent]:
        while True:
            batch = await self.next_events()
            if not batch:
                return
            for event in batch:
                yield event

    def close(self) -> None:
        """Stop watching; a pending :meth:`next_events` returns ``[]``."""
        self._closed = True
        if self._ipr is not None:
            self._ipr.close()

    async def __aenter__(self) -> NetlinkWatcher:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()
        await asyncio.sleep(0)
