"""Network events seen by the watcher (frozen dataclasses, past-tense names).

The code points are those of the Linux rtnetlink ABI (``linux/if_addr.h``,
``linux/if.h``, ``linux/socket.h``); they are kept as ``IntEnum`` / ``IntFlag`` so that a
value read from the kernel prints as a name.

Only addresses that can carry a call reach these events (see
:mod:`mobilityd.net.addresses`): an IPv6 address is announced once Duplicate Address
Detection has ended (RFC 4862 §5.4, a later RTM_NEWADDR without ``IFA_F_TENTATIVE``).
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass

from mobilityd.net.errors import NetEventError


class AddressFamily(enum.IntEnum):
    """``AF_*`` values used on rtnetlink (``linux/socket.h``)."""

    INET = 2
    INET6 = 10


class AddressFlag(enum.IntFlag):
    """``IFA_F_*`` address flags (``linux/if_addr.h``)."""

    NONE = 0
    SECONDARY = 0x01  # also IFA_F_TEMPORARY for IPv6 privacy addresses
    NODAD = 0x02
    OPTIMISTIC = 0x04
    DADFAILED = 0x08
    HOMEADDRESS = 0x10
    DEPRECATED = 0x20
    TENTATIVE = 0x40
    PERMANENT = 0x80
    MANAGETEMPADDR = 0x100
    NOPREFIXROUTE = 0x200
    MCAUTOJOIN = 0x400
    STABLE_PRIVACY = 0x800


class LinkFlag(enum.IntFlag):
    """``IFF_*`` device flags (``linux/if.h``) that the watcher looks at."""

    NONE = 0
    UP = 0x1
    LOOPBACK = 0x8
    RUNNING = 0x40
    LOWER_UP = 0x10000


def check_address(address: str, family: AddressFamily, prefixlen: int) -> None:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError as exc:
        raise NetEventError(f"not an IP address: {address!r}") from exc
    want = 4 if family is AddressFamily.INET else 6
    if parsed.version != want:
        raise NetEventError(f"{address} is not an {family.name} address")
    if not 0 <= prefixlen <= parsed.max_prefixlen:
        raise NetEventError(f"prefix length {prefixlen} out of range for {address}")


@dataclass(frozen=True)
class AddressAdded:
    """A usable address appeared (or became usable, e.g. DAD ended)."""

    ifindex: int
    ifname: str
    address: str
    prefixlen: int
    family: AddressFamily
    flags: AddressFlag

    def __post_init__(self) -> None:
        check_address(self.address, self.family, self.prefixlen)


@dataclass(frozen=True)
class AddressRemoved:
    """A usable address disappeared (deleted, or became deprecated / DAD-failed)."""

    ifindex: int
    ifname: str
    address: str
    prefixlen: int
    family: AddressFamily
    flags: AddressFlag

    def __post_init__(self) -> None:
        check_address(self.address, self.family, self.prefixlen)


@dataclass(frozen=True)
class LinkUp:
    """A link became administratively up with carrier (IFF_UP and IFF_LOWER_UP)."""

    ifindex: int
    ifname: str


@dataclass(frozen=True)
class LinkDown:
    """A link lost IFF_UP or its carrier, or was deleted."""

    ifindex: int
    ifname: str


@dataclass(frozen=True)
class DefaultRouteChanged:
    """The best default route of one family (main table) changed.

    ``gateway`` / ``ifindex`` are ``None`` when that family has no default route left.
    """

    family: AddressFamily
    gateway: str | None
    ifindex: int | None
    ifname: str | None


@dataclass(frozen=True)
class AllAddressesLost:
    """No usable address is left on any link that is up: no call can be carried."""


NetEvent = (
    AddressAdded | AddressRemoved | LinkUp | LinkDown | DefaultRouteChanged | AllAddressesLost
)
