"""What the kernel's links, addresses and default routes look like (sans-I/O).

:class:`NetworkState` is fed :mod:`mobilityd.net.records` (from the initial dump and
then from rtnetlink notifications) and answers with :mod:`mobilityd.net.events`. It
owns the deduplication that keeps no-op notifications from reaching the mobility layer:

* an RTM_NEWADDR for an address already known usable (a DHCP renew refreshing the
  lifetimes, a flag that does not matter) yields nothing;
* a tentative IPv6 address yields nothing until DAD ends (RFC 4862 §5.4), then one
  :class:`AddressAdded`; an address turning ``deprecated`` or ``dadfailed`` yields
  :class:`AddressRemoved`;
* repeated RTM_NEWLINK with the same up/down state yields nothing;
* :class:`AllAddressesLost` is emitted when the last usable address on a link that is
  up goes away (link down, address deleted or deprecated).

IPv4 routes through a device that goes administratively down are flushed by the
kernel without RTM_DELROUTE, so that also forgets the default routes through that
link; on carrier loss the kernel keeps them (flagged ``linkdown``) and so does this.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from mobilityd.net.addresses import UsabilityPolicy, is_usable
from mobilityd.net.events import (
    AddressAdded,
    AddressFamily,
    AddressRemoved,
    AllAddressesLost,
    DefaultRouteChanged,
    LinkDown,
    LinkFlag,
    LinkUp,
    NetEvent,
)
from mobilityd.net.records import AddressRecord, LinkRecord, RouteRecord

Record = LinkRecord | AddressRecord | RouteRecord


@dataclass(frozen=True)
class UsableAddress:
    """An address that can carry a call, with the link it sits on."""

    ifindex: int
    ifname: str
    address: str
    prefixlen: int
    family: AddressFamily


_RouteKey = tuple[str | None, int | None, int]  # gateway, oif, priority


class NetworkState:
    """Tracks links, usable addresses and default routes; returns events on change."""

    def __init__(self, policy: UsabilityPolicy | None = None) -> None:
        self._policy = policy or UsabilityPolicy()
        self._links: dict[int, LinkRecord] = {}
        self._usable: dict[tuple[int, str], AddressRecord] = {}
        self._defaults: dict[AddressFamily, dict[_RouteKey, RouteRecord]] = {
            family: {} for family in AddressFamily
        }
        self._best_default: dict[AddressFamily, _RouteKey | None] = {
            family: None for family in AddressFamily
        }

    # ------------------------------------------------------------------ queries
    def ifname(self, ifindex: int) -> str:
        """Name of link ``ifindex`` (``"if<N>"`` while the link is not known yet)."""
        link = self._links.get(ifindex)
        return link.ifname if link is not None else f"if{ifindex}"

    def link_is_up(self, ifindex: int) -> bool:
        """Up with carrier; a link not seen yet counts as up (no false loss)."""
        link = self._links.get(ifindex)
        return link is None or link.is_up

    def usable_addresses(self) -> list[UsableAddress]:
        """Usable addresses on links that are up, in the order they appeared."""
        return [
            UsableAddress(rec.ifindex, self.ifname(rec.ifindex), rec.address,
                          rec.prefixlen, rec.family)
            for rec in self._usable.values()
            if self.link_is_up(rec.ifindex)
        ]

    def has_usable_address(self) -> bool:
        return any(self.link_is_up(rec.ifindex) for rec in self._usable.values())

    def default_gateways(self) -> list[tuple[str, int]]:
        """(gateway, ifindex) of every main-table default route through a link that is
        up, best first per family (standby paths included)."""
        gateways: list[tuple[str, int]] = []
        for table in self._defaults.values():
            for gateway, oif, _ in sorted(table, key=lambda k: k[2]):
                if gateway is not None and oif is not None and self.link_is_up(oif):
                    gateways.append((gateway, oif))
        return gateways

    def default_route(self, family: AddressFamily) -> DefaultRouteChanged:
        """The current best default route of ``family`` in event form."""
        key = self._best_default[family]
        if key is None:
            return DefaultRouteChanged(family, None, None, None)
        gateway, oif, _ = key
        return DefaultRouteChanged(family, gateway, oif,
                                   self.ifname(oif) if oif is not None else None)

    # ------------------------------------------------------------------ input
    def handle(self, record: Record) -> list[NetEvent]:
        """Apply one record; return the events it causes (often none)."""
        had_address = self.has_usable_address()
        if isinstance(record, LinkRecord):
            events = self._handle_link(record)
        elif isinstance(record, AddressRecord):
            events = self._handle_address(record)
        else:
            events = self._handle_route(record)
        if had_address and not self.has_usable_address():
            events.append(AllAddressesLost())
        return events

    def resync(self, records: Iterable[Record]) -> list[NetEvent]:
        """Replace everything with a fresh dump; return the differences as events.

        Used after the netlink socket overran (ENOBUFS): notifications were lost, so
        the only truth is a new dump. Events for what changed meanwhile are returned
        as if they had been seen one by one.
        """
        fresh = NetworkState(self._policy)
        for record in records:
            fresh.handle(record)
        events: list[NetEvent] = []
        old_up = {i for i, link in self._links.items() if link.is_up}
        new_up = {i for i, link in fresh._links.items() if link.is_up}
        for ifindex in sorted(old_up - new_up):
            events.append(LinkDown(ifindex, self.ifname(ifindex)))
        for ifindex in sorted(new_up - old_up):
            events.append(LinkUp(ifindex, fresh.ifname(ifindex)))
        for key in [k for k in self._usable if k not in fresh._usable]:
            rec = self._usable[key]
            events.append(AddressRemoved(rec.ifindex, self.ifname(rec.ifindex), rec.address,
                                         rec.prefixlen, rec.family, rec.flags))
        for key in [k for k in fresh._usable if k not in self._usable]:
            rec = fresh._usable[key]
            events.append(AddressAdded(rec.ifindex, fresh.ifname(rec.ifindex), rec.address,
                                       rec.prefixlen, rec.family, rec.flags))
        for family in AddressFamily:
            if fresh._best_default[family] != self._best_default[family]:
                events.append(fresh.default_route(family))
        had_address = self.has_usable_address()
        self._links, self._usable = fresh._links, fresh._usable
        self._defaults, self._best_default = fresh._defaults, fresh._best_default
        if had_address and not self.has_usable_address():
            events.append(AllAddressesLost())
        return events

    def _handle_link(self, record: LinkRecord) -> list[NetEvent]:
        previous = self._links.get(record.ifindex)
        was_up = previous is not None and previous.is_up
        if record.deleted:
            self._links.pop(record.ifindex, None)
            for key in [k for k in self._usable if k[0] == record.ifindex]:
                del self._usable[key]
        else:
            self._links[record.ifindex] = record
        events: list[NetEvent] = []
        if record.is_up and not was_up:
            events.append(LinkUp(record.ifindex, record.ifname))
        elif was_up and not record.is_up:
            events.append(LinkDown(record.ifindex, record.ifname))
        if record.deleted or not record.flags & LinkFlag.UP:
            # Administratively down: the kernel flushed the IPv4 routes through it
            # without RTM_DELROUTE. (On carrier loss they stay, marked linkdown.)
            events.extend(self._forget_routes_via(record.ifindex))
        return events

    def _handle_address(self, record: AddressRecord) -> list[NetEvent]:
        key = (record.ifindex, record.address)
        link = self._links.get(record.ifindex)
        usable = not record.deleted and is_usable(
            record,
            on_loopback_link=link is not None and link.is_loopback,
            policy=self._policy,
        )
        known = self._usable.get(key)
        if usable:
            self._usable[key] = record
            if known is None:
                return [AddressAdded(record.ifindex, self.ifname(record.ifindex),
                                     record.address, record.prefixlen, record.family,
                                     record.flags)]
            return []
        if known is None:
            return []
        del self._usable[key]
        return [AddressRemoved(record.ifindex, self.ifname(record.ifindex), record.address,
                               record.prefixlen, record.family, record.flags)]

    def _handle_route(self, record: RouteRecord) -> list[NetEvent]:
        if not record.is_main_default:
            return []
        table = self._defaults[record.family]
        key: _RouteKey = (record.gateway, record.oif, record.priority)
        if record.deleted:
            table.pop(key, None)
        else:
            table[key] = record
        return self._recompute_default(record.family)

    def _forget_routes_via(self, ifindex: int) -> list[NetEvent]:
        events: list[NetEvent] = []
        for family, table in self._defaults.items():
            for key in [k for k in table if k[1] == ifindex]:
                del table[key]
            events.extend(self._recompute_default(family))
        return events

    def _recompute_default(self, family: AddressFamily) -> list[NetEvent]:
        table = self._defaults[family]
        best = min(table, key=lambda k: k[2]) if table else None
        if best == self._best_default[family]:
            return []
        self._best_default[family] = best
        return [self.default_route(family)]
