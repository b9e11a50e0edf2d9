"""Change links and routes through rtnetlink with the kernel's apply instant bracketed.

For the handover benchmark's detection time ("address usable -> daemon acts", issue 5):
``ip link set DEV down`` and ``ip route add`` are single rtnetlink requests
(RFC 3549 §2.3.3.1 RTM_NEWLINK / §2.3.3.2 RTM_NEWROUTE, acknowledged with NLMSG_ERROR
code 0 when NLM_F_ACK is set, RFC 3549 §2.3.2.2). Sending the very same request from
this process and stamping CLOCK_MONOTONIC right before ``send`` and right after the
acknowledgement arrives brackets the instant the kernel applied the change, without
the start-up of an ``ip`` process inside the measurement.

* :class:`LinkStateRequest` / :class:`DefaultRouteRequest`: pure codecs (``__bytes__``).
* :class:`NeighborUseRequest`: RTM_NEWNEIGH with NTF_USE (rtnetlink(7), the kernel's
  ``neigh_add``: "use" the entry, i.e. start ARP / neighbor discovery for it unless it
  is already valid) -- how the path monitor resolves the gateways of standby links
  before a move needs them.
* :class:`NetlinkChanger`: one rtnetlink socket in a namespace; :meth:`apply` returns
  an :class:`AppliedChange` (``sent_at``, ``acked_at``) or raises
  :class:`ChangeRefusedError` carrying the kernel's errno.
"""

from __future__ import annotations

import enum
import ipaddress
import itertools
import os
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

from pyroute2.netns import create_socket as netns_socket

from mobilityd.net.errors import InvalidAddressError, NetError
from mobilityd.net.rtnl import NlFlag, NlMsgType, RtAttr, RtnlParseError, error_code, split_messages

__all__ = ["AppliedChange", "ChangeRefusedError", "DefaultRouteRequest", "LinkState",
           "LinkStateRequest", "NeighborUseRequest", "NetlinkChanger"]

_NLMSGHDR = struct.Struct("=IHHII")
_IFINFOMSG = struct.Struct("=BxHiII")
_RTMSG = struct.Struct("=BBBBBBBBI")
_RTATTR = struct.Struct("=HH")
_U32 = struct.Struct("=I")
IFF_UP = 0x1
NLM_F_CREATE = 0x400
NLM_F_EXCL = 0x200
RT_TABLE_MAIN = 254
RTPROT_BOOT = 3
RT_SCOPE_UNIVERSE = 0
RTN_UNICAST = 1
ACK_TIMEOUT = 2.0


class ChangeRefusedError(NetError):
    """The kernel refused the change (``errno`` is its positive error number)."""

    def __init__(self, what: str, errno: int) -> None:
        super().__init__(f"{what}: kernel refused with errno {errno} ({os.strerror(errno)})")
        self.errno = errno


class LinkState(enum.Enum):
    UP = "up"
    DOWN = "down"


def _header(kind: NlMsgType, flags: int, sequence: int, body: bytes) -> bytes:
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(body), kind, flags,
                          sequence & 0xFFFFFFFF, 0) + body


def _attr(kind: int, value: bytes) -> bytes:
    length = _RTATTR.size + len(value)
    return _RTATTR.pack(length, kind) + value + b"\0" * (-length % 4)


@dataclass(frozen=True)
class LinkStateRequest:
    """RTM_NEWLINK setting IFF_UP on or off for link ``ifindex`` (``ip link set DEV
    up|down``; ``ifi_change`` = IFF_UP so no other flag moves, rtnetlink(7))."""

    ifindex: int
    state: LinkState
    sequence: int

    def __bytes__(self) -> bytes:
        flags = IFF_UP if self.state is LinkState.UP else 0
        body = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, self.ifindex, flags, IFF_UP)
        return _header(NlMsgType.RTM_NEWLINK, NlFlag.REQUEST | NlFlag.ACK, self.sequence,
                       body)


def _ip_and_family(text: str) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]:
    """The IP literal ``text`` and its address family, or :class:`InvalidAddressError`."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError as exc:
        raise InvalidAddressError(f"not an IP address: {text!r}") from exc
    return address, socket.AF_INET if address.version == 4 else socket.AF_INET6


@dataclass(frozen=True)
class DefaultRouteRequest:
    """RTM_NEWROUTE adding a default route via ``gateway`` on link ``ifindex`` with
    ``metric`` in the main table (``ip route add default via GW dev DEV metric M``)."""

    gateway: str
    ifindex: int
    metric: int
    sequence: int

    def __bytes__(self) -> bytes:
        gateway, family = _ip_and_family(self.gateway)
        body = _RTMSG.pack(family, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE,
                           RTN_UNICAST, 0)
        body += _attr(RtAttr.GATEWAY, gateway.packed)
        body += _attr(RtAttr.OIF, _U32.pack(self.ifindex))
        body += _attr(RtAttr.PRIORITY, _U32.pack(self.metric))
        flags = NlFlag.REQUEST | NlFlag.ACK | NLM_F_CREATE | NLM_F_EXCL
        return _header(NlMsgType.RTM_NEWROUTE, flags, self.sequence, body)


NDA_DST = 1
NTF_USE = 0x01
NUD_NONE = 0x00
NLM_F_REPLACE = 0x100
_NDMSG = struct.Struct("=BxxxiHBB")


@dataclass(frozen=True)
class NeighborUseRequest:
    """RTM_NEWNEIGH (create if missing) with NTF_USE for ``address`` on link
    ``ifindex``: the kernel resolves it (ARP, RFC 826; IPv6 neighbor discovery,
    RFC 4861 §7.2) without any packet of ours waiting for it."""

    address: str
    ifindex: int
    sequence: int

    def __bytes__(self) -> bytes:
        address, family = _ip_and_family(self.address)
        body = _NDMSG.pack(family, self.ifindex, NUD_NONE, NTF_USE, 0)
        body += _attr(NDA_DST, address.packed)
        flags = NlFlag.REQUEST | NlFlag.ACK | NLM_F_CREATE | NLM_F_REPLACE
        return _header(NlMsgType.RTM_NEWNEIGH, flags, self.sequence, body)


@dataclass(frozen=True)
class AppliedChange:
    """The kernel applied the change at some instant in [``sent_at``, ``acked_at``]."""

    sent_at: float
    acked_at: float


class NetlinkChanger:
    """One rtnetlink request socket in namespace ``netns`` (None: the current one)."""

    def __init__(self, netns: str | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if netns is not None and not os.path.exists(f"/var/run/netns/{netns}"):
            raise NetError(f"network namespace {netns!r} does not exist")
        try:
            self._sock: socket.socket = netns_socket(
                netns=netns, family=socket.AF_NETLINK, socket_type=socket.SOCK_RAW,
                proto=0, flags=0)
            self._sock.bind((0, 0))
            self._sock.settimeout(ACK_TIMEOUT)
        except OSError as exc:
            raise NetError(f"cannot open rtnetlink in netns {netns!r}: {exc}") from exc
        self._clock = clock
        self._sequence = itertools.count(1)

    def link(self, ifindex: int, state: LinkState) -> AppliedChange:
        """``ip link set <ifindex> up|down``."""
        return self.apply(LinkStateRequest(ifindex, state, next(self._sequence)))

    def add_default_route(self, gateway: str, ifindex: int, metric: int) -> AppliedChange:
        """``ip route add default via GATEWAY dev <ifindex> metric METRIC``."""
        return self.apply(DefaultRouteRequest(gateway, ifindex, metric,
                                              next(self._sequence)))

    def use_neighbor(self, address: str, ifindex: int) -> AppliedChange:
        """Start resolving neighbor ``address`` on link ``ifindex`` (NTF_USE)."""
        return self.apply(NeighborUseRequest(address, ifindex, next(self._sequence)))

    def apply(self, request: LinkStateRequest | DefaultRouteRequest | NeighborUseRequest
              ) -> AppliedChange:
        """Send ``request``, wait for its acknowledgement; stamp both ends."""
        data = bytes(request)
        sent_at = self._clock()
        self._sock.send(data)
        while True:
            try:
                reply = self._sock.recv(65536)
            except OSError as exc:  # includes the timeout
                raise NetError(f"no rtnetlink acknowledgement: {exc!r}") from exc
            acked_at = self._clock()
            try:
                messages = split_messages(reply)
            except RtnlParseError as exc:
                raise NetError(f"bad rtnetlink acknowledgement: {exc}") from exc
            for message in messages:
                if message.sequence == request.sequence and message.kind == NlMsgType.ERROR:
                    code = error_code(message)
                    if code:
                        raise ChangeRefusedError(type(request).__name__, code)
                    return AppliedChange(sent_at, acked_at)

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> NetlinkChanger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
