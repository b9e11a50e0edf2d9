"""Ask the kernel which source address it would use toward a destination (RTM_GETROUTE).

The kernel's answer already respects policy routing rules, route metrics and VPN
routes; :mod:`mobilityd.net.preferences` is applied on top. Works for IPv4 and IPv6.

* :func:`source_address_for` -- the contract function: one lookup, one netlink socket.
* :class:`RouteResolver` -- keeps one socket per namespace for repeated lookups (the
  mobility layer re-evaluates every call on each network event), and builds the
  per-interface candidates needed for preferences.

A lookup constrained to one interface (``oif``) is answered by the IPv4 kernel even when
no route leaves through it ("assume the destination is on link", ``ip_route_output``):
such an answer is only accepted when it has a gateway or the destination really is
inside a prefix configured on that interface.
"""

from __future__ import annotations

import errno
import ipaddress
import os
from typing import Any

from pyroute2 import AsyncIPRoute
from pyroute2.netlink.exceptions import NetlinkError

from mobilityd.net.errors import InvalidAddressError, RouteLookupError
from mobilityd.net.preferences import RouteChoice, SourcePreferences, apply_preferences

_NO_ROUTE = frozenset({errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EACCES, errno.EPERM,
                       errno.ENODEV, errno.EINVAL, errno.ENETDOWN})
_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_destination(dest_ip: str) -> _IPAddress:
    """Validate a destination; :class:`InvalidAddressError` names what is wrong."""
    try:
        parsed = ipaddress.ip_address(dest_ip)
    except ValueError as exc:
        raise InvalidAddressError(f"not an IP address: {dest_ip!r}") from exc
    if parsed.is_unspecified or parsed.is_multicast:
        raise InvalidAddressError(f"{dest_ip} cannot be a call's peer address")
    return parsed


class RouteResolver:
    """Route lookups in one network namespace (``netns=None``: the current one)."""

    def __init__(self, *, netns: str | None = None) -> None:
        if netns is not None and not os.path.exists(f"/var/run/netns/{netns}"):
            raise RouteLookupError(f"network namespace {netns!r} does not exist")
        self.netns = netns
        self._ipr: Any = AsyncIPRoute(netns=netns, flags=0)

    def close(self) -> None:
        self._ipr.close()

    async def __aenter__(self) -> RouteResolver:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    async def _ask(self, dest: _IPAddress, oif: int | None) -> Any | None:
        kwargs: dict[str, Any] = {"dst": str(dest)}
        if oif is not None:
            kwargs["oif"] = oif
        try:
            answers = await self._ipr.route("get", **kwargs)
        except NetlinkError as exc:
            if exc.code in _NO_ROUTE:
                return None
            raise RouteLookupError(f"route lookup for {dest} failed: {exc}", exc.code) from exc
        except OSError as exc:
            raise RouteLookupError(f"route lookup for {dest} failed: {exc}", exc.errno) from exc
        for msg in answers:
            return msg
        return None

    async def _ifname(self, ifindex: int) -> str:
        try:
            for msg in await self._ipr.link("get", index=ifindex):
                return str(msg.get_attr("IFLA_IFNAME"))
        except NetlinkError:
            pass
        return f"if{ifindex}"

    async def lookup(self, dest_ip: str, *, oif: int | None = None) -> RouteChoice | None:
        """The kernel's route toward ``dest_ip`` (optionally only via link ``oif``)."""
        dest = parse_destination(dest_ip)
        msg = await self._ask(dest, oif)
        if msg is None:
            return None
        source = msg.get_attr("RTA_PREFSRC")
        out_ifindex = msg.get_attr("RTA_OIF")
        if source is None or out_ifindex is None:
            return None
        return RouteChoice(destination=str(dest), source=str(source), ifindex=int(out_ifindex),
                           ifname=await self._ifname(int(out_ifindex)),
                           gateway=msg.get_attr("RTA_GATEWAY"))

    async def source_address_for(self, dest_ip: str) -> str | None:
        """Source address the kernel would use toward ``dest_ip``; ``None``: no route."""
        choice = await self.lookup(dest_ip)
        return choice.source if choice is not None else None

    async def _connected_prefixes(self) -> dict[int, list[ipaddress.IPv4Network
                                                       | ipaddress.IPv6Network]]:
        prefixes: dict[int, list[ipaddress.IPv4Network | ipaddress.IPv6Network]] = {}
        async for msg in await self._ipr.get_addr():
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


async def source_address_for(dest_ip: str, *, netns: str | None = None) -> str | None:
    """Source address the kernel would use toward ``dest_ip`` (``None``: unreachable).

    Raises :class:`InvalidAddressError` for a malformed destination and
    :class:`RouteLookupError` when the kernel refuses for another reason.
    """
    parse_destination(dest_ip)
    resolver = RouteResolver(netns=netns)
    try:
        return await resolver.source_address_for(dest_ip)
    finally:
        resolver.close()
