"""Ask the kernel which source address it would use toward a destination (RTM_GETROUTE).

The kernel's answer already respects policy routing rules, route metrics and VPN
routes; :mod:`mobilityd.net.preferences` is applied on top. Works for IPv4 and IPv6.

* :func:`source_address_for` -- the contract function: one lookup, one netlink socket.
* :class:`RouteResolver` -- keeps one socket per namespace for repeated lookups (the
  mobility layer re-evaluates every call on each network event), and builds the
  per-interface candidates needed for preferences. The lookup itself is encoded by
  :mod:`mobilityd.net.rtnl` (tens of microseconds instead of pyroute2's ~1.5 ms).

A lookup constrained to one interface (``oif``) is answered by the IPv4 kernel even when
no route leaves through it ("assume the destination is on link", ``ip_route_output``):
such an answer is only accepted when it has a gateway or the destination really is
inside a prefix configured on that interface.
"""

from __future__ import annotations

import errno
import functools
import ipaddress
import itertools
import os
import socket
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pyroute2 import AsyncIPRoute
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netns import create_socket as netns_socket

from mobilityd.net.errors import InvalidAddressError, RouteLookupError
from mobilityd.net.preferences import RouteChoice, SourcePreferences, apply_preferences
from mobilityd.net.rtnl import (
    RouteAnswer,
    RouteQuery,
    RtnlParseError,
    RtnlRefusedError,
    resequenced,
)
from mobilityd.net.state import UsableAddress

NETLINK_ROUTE = 0
LOOKUP_TIMEOUT = 1.0
RECV_SIZE = 65536
MAX_CACHED_QUERIES = 64

_NO_ROUTE = frozenset({errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EACCES, errno.EPERM,
                       errno.ENODEV, errno.EINVAL, errno.ENETDOWN})
_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def prefixes_of(addresses: Iterable[UsableAddress]) -> dict[int, list[_Network]]:
    """Per-link prefixes of a watcher's usable addresses (for ``local_prefixes``)."""
    prefixes: dict[int, list[_Network]] = {}
    for usable in addresses:
        net = ipaddress.ip_network(f"{usable.address}/{usable.prefixlen}", strict=False)
        prefixes.setdefault(usable.ifindex, []).append(net)
    return prefixes


@functools.lru_cache(maxsize=256)
def parse_destination(dest_ip: str) -> _IPAddress:
    """Validate a destination; :class:`InvalidAddressError` names what is wrong.

    Cached (a call's few peer addresses are looked up on every network event, on the
    move decision's critical path); errors are not cached."""
    try:
        parsed = ipaddress.ip_address(dest_ip)
    except ValueError as exc:
        raise InvalidAddressError(f"not an IP address: {dest_ip!r}") from exc
    if parsed.is_unspecified or parsed.is_multicast:
        raise InvalidAddressError(f"{dest_ip} cannot be a call's peer address")
    return parsed


class RouteResolver:
    """Route lookups in one network namespace (``netns=None``: the current one).

    ``link_names`` (e.g. ``NetworkState.ifname`` of a running watcher) names links
    without another netlink request, and ``local_prefixes`` (e.g.
    :func:`prefixes_of` a watcher's state) gives the prefixes configured per link;
    without them both are asked from the kernel (pyroute2, milliseconds).
    """

    def __init__(self, *, netns: str | None = None,
                 link_names: Callable[[int], str] | None = None,
                 local_prefixes: Callable[[], Mapping[int, list[_Network]]] | None = None
                 ) -> None:
        if netns is not None and not os.path.exists(f"/var/run/netns/{netns}"):
            raise RouteLookupError(f"network namespace {netns!r} does not exist")
        self.netns = netns
        self._link_names = link_names
        self._local_prefixes = local_prefixes
        self._sequence = itertools.count(1)
        #: encoded queries per (destination, oif), re-sequenced for each lookup
        self._queries: dict[tuple[_IPAddress, int | None], bytes] = {}
        try:
            self._sock = netns_socket(netns=netns, family=socket.AF_NETLINK,
                                      socket_type=socket.SOCK_RAW,
                                      proto=NETLINK_ROUTE, flags=0)
            self._sock.settimeout(LOOKUP_TIMEOUT)
            self._sock.bind((0, 0))
        except OSError as exc:
            raise RouteLookupError(f"cannot open rtnetlink in {netns!r}: {exc}",
                                   exc.errno) from exc
        self._ipr: Any = None  # pyroute2, only for link names and address dumps

    def _pyroute2(self) -> Any:
        if self._ipr is None:
            self._ipr = AsyncIPRoute(netns=self.netns, flags=0)
        return self._ipr

    def close(self) -> None:
        self._sock.close()
        if self._ipr is not None:
            self._ipr.close()

    async def __aenter__(self) -> RouteResolver:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    def _ask(self, dest: _IPAddress, oif: int | None) -> RouteAnswer | None:
        # The kernel answers RTM_GETROUTE synchronously inside send(), so the answer
        # is already queued when recv() runs: no waiting in the event loop.
        sequence = next(self._sequence) & 0xFFFFFFFF
        encoded = self._queries.get((dest, oif))
        if encoded is None:
            if len(self._queries) >= MAX_CACHED_QUERIES:
                self._queries.clear()
            encoded = self._queries[(dest, oif)] = bytes(RouteQuery(dest, 0, oif))
        try:
            self._sock.send(resequenced(encoded, sequence))
            while True:
                data = self._sock.recv(RECV_SIZE)
                try:
                    answer = RouteAnswer.parse(data)
                except RtnlRefusedError as exc:
                    if exc.errno in _NO_ROUTE:
                        return None
                    raise RouteLookupError(f"route lookup for {dest} refused: "
                                           f"{os.strerror(exc.errno)}", exc.errno) from exc
                if answer.sequence == sequence:
                    return answer
        except RtnlParseError as exc:
            raise RouteLookupError(f"route lookup for {dest}: bad answer: {exc}") from exc
        except OSError as exc:
            raise RouteLookupError(f"route lookup for {dest} failed: {exc}", exc.errno) from exc

    async def _ifname(self, ifindex: int) -> str:
        if self._link_names is not None:
            return self._link_names(ifindex)
        try:
            for msg in await self._pyroute2().link("get", index=ifindex):
                return str(msg.get_attr("IFLA_IFNAME"))
        except NetlinkError:
            pass
        return f"if{ifindex}"

    async def lookup(self, dest_ip: str, *, oif: int | None = None) -> RouteChoice | None:
        """The kernel's route toward ``dest_ip`` (optionally only via link ``oif``)."""
        dest = parse_destination(dest_ip)
        answer = self._ask(dest, oif)
        if answer is None or answer.prefsrc is None or answer.oif is None:
            return None
        return RouteChoice(destination=str(dest), source=answer.prefsrc, ifindex=answer.oif,
                           ifname=await self._ifname(answer.oif), gateway=answer.gateway)

    def source_for(self, dest_ip: str) -> str | None:
        """Source address the kernel would use toward ``dest_ip``; ``None``: no route.

        Synchronous and without link names: the fast path for a single answer.
        """
        answer = self._ask(parse_destination(dest_ip), None)
        return answer.prefsrc if answer is not None else None

    async def source_address_for(self, dest_ip: str) -> str | None:
        """Async spelling of :meth:`source_for`."""
        return self.source_for(dest_ip)

    async def _connected_prefixes(self) -> Mapping[int, list[_Network]]:
        if self._local_prefixes is not None:
            return self._local_prefixes()
        prefixes: dict[int, list[_Network]] = {}
        async for msg in await self._pyroute2().get_addr():
            address = msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS")
            if address is None:
                continue
            net = ipaddress.ip_network(f"{address}/{msg['prefixlen']}", strict=False)
            prefixes.setdefault(int(msg["index"]), []).append(net)
        return prefixes

    async def candidates(self, dest_ip: str) -> list[RouteChoice]:
        """One answer per link that really reaches ``dest_ip`` (lookup with ``oif``)."""
        dest = parse_destination(dest_ip)
        prefixes = await self._connected_prefixes()
        found: list[RouteChoice] = []
        for ifindex in sorted(prefixes):
            choice = await self.lookup(str(dest), oif=ifindex)
            if choice is None or choice.ifindex != ifindex:
                continue
            on_link = any(dest in net for net in prefixes.get(ifindex, ()))
            if choice.gateway is None and not on_link:
                continue  # the kernel only assumed the destination is on this link
            found.append(choice)
        return found

    async def choose(self, dest_ip: str, prefs: SourcePreferences) -> RouteChoice | None:
        """The route to use toward ``dest_ip``: kernel choice with ``prefs`` on top."""
        kernel = await self.lookup(dest_ip)
        if prefs.is_neutral:
            return kernel
        return apply_preferences(kernel, await self.candidates(dest_ip), prefs)


def source_address_for(dest_ip: str, *, netns: str | None = None) -> str | None:
    """Source address the kernel would use toward ``dest_ip`` (``None``: unreachable).

    Synchronous (the kernel answers RTM_GETROUTE within the send call); opens one
    netlink socket per call -- use :class:`RouteResolver` for repeated lookups.
    Raises :class:`InvalidAddressError` for a malformed destination and
    :class:`RouteLookupError` when the kernel refuses for another reason.
    """
    dest = parse_destination(dest_ip)
    resolver = RouteResolver(netns=netns)
    try:
        return resolver.source_for(str(dest))
    finally:
        resolver.close()
