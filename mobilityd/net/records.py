"""Plain records of what one rtnetlink message said (no pyroute2 types beyond here).

The watcher converts each RTM_NEWLINK/DELLINK, RTM_NEWADDR/DELADDR and
RTM_NEWROUTE/DELROUTE message into one of these and feeds it to
:class:`mobilityd.net.state.NetworkState`, which is sans-I/O and tested with records
alone.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from mobilityd.net.events import AddressFamily, AddressFlag, LinkFlag, check_address

MAIN_TABLE = 254
"""``RT_TABLE_MAIN`` (``linux/rtnetlink.h``)."""
_UP_WITH_CARRIER = int(LinkFlag.UP | LinkFlag.LOWER_UP)


@dataclass(frozen=True)
class LinkRecord:
    """RTM_NEWLINK / RTM_DELLINK: one network device."""

    ifindex: int
    ifname: str
    flags: LinkFlag
    deleted: bool = False

    @functools.cached_property
    def is_up(self) -> bool:
        """Administratively up with carrier: the link can carry packets.

        Computed once per record (plain int arithmetic: ``IntFlag`` operators go through
        ``enum`` in Python), since the state asks it of every link on each notification."""
        return not self.deleted and (int(self.flags) & _UP_WITH_CARRIER) == _UP_WITH_CARRIER

    @property
    def is_loopback(self) -> bool:
        return bool(self.flags & LinkFlag.LOOPBACK)


@dataclass(frozen=True)
class AddressRecord:
    """RTM_NEWADDR / RTM_DELADDR: one interface address and its ``IFA_F_*`` flags.

    Validates itself: :class:`NetEventError` for an address that does not parse, does
    not match ``family`` or has an impossible prefix length.
    """

    ifindex: int
    address: str
    prefixlen: int
    family: AddressFamily
    flags: AddressFlag
    deleted: bool = False

    def __post_init__(self) -> None:
        check_address(self.address, self.family, self.prefixlen)


@dataclass(frozen=True)
class RouteRecord:
    """RTM_NEWROUTE / RTM_DELROUTE: only the fields a default-route watch needs."""

    family: AddressFamily
    dst_len: int
    table: int
    gateway: str | None
    oif: int | None
    priority: int
    deleted: bool = False

    @property
    def is_main_default(self) -> bool:
        return self.dst_len == 0 and self.table == MAIN_TABLE
