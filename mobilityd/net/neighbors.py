"""The kernel's neighbour table: is a next hop resolved, and tell me when it is.

A make-before-break move (issue 5) should not send its first packets toward a gateway
whose link-layer address is still unknown: they would wait in the kernel's queue for
address resolution (ARP, RFC 826; IPv6 neighbor discovery, RFC 4861 §7.2), one round
trip of the new link. The path monitor therefore asks the kernel to resolve the next
hop (:meth:`mobilityd.net.change.NetlinkChanger.use_neighbor`, NTF_USE) and waits for
the entry to become valid, which this module reports.

Wire format (``linux/neighbour.h``, rtnetlink(7)): ``ndmsg`` = family u8, 3 pad bytes,
ifindex i32, state u16 (``NUD_*``), flags u8, type u8; then ``rtattr``s, ``NDA_DST``
(type 1) the neighbour's IP address.

* :class:`NeighborState`: ``NUD_*`` flags; :data:`RESOLVED_STATES` are those in which
  the kernel sends at once (RFC 4861 §7.3.2: REACHABLE, and STALE / DELAY / PROBE
  which use the cached address while it is re-confirmed).
* :class:`NeighborQuery` (RTM_GETNEIGH for one entry) and :class:`NeighborRecord`
  (RTM_NEWNEIGH / RTM_DELNEIGH, ``parse()``): pure codecs.
* :class:`NeighborStateChanged`: the typed event.
* :class:`NeighborTable`: the asyncio adapter -- a query socket (:meth:`state_of`,
  answered synchronously by the kernel inside ``send``) and a socket subscribed to
  RTNLGRP_NEIGH (:meth:`next_change`).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import errno
import ipaddress
import itertools
import logging
import os
import socket
import struct
from dataclasses import dataclass

from pyroute2.netns import create_socket as netns_socket

from mobilityd.net.errors import InvalidAddressError, NetError
from mobilityd.net.rtnl import (
    NetlinkMessage,
    NlFlag,
    NlMsgType,
    RtnlParseError,
    error_code,
    parse_attrs,
    split_messages,
)

__all__ = ["RESOLVED_STATES", "NeighborQuery", "NeighborRecord", "NeighborState",
           "NeighborStateChanged", "NeighborTable", "NeighborTableError"]

log = logging.getLogger(__name__)

_NLMSGHDR = struct.Struct("=IHHII")
_NDMSG = struct.Struct("=BxxxiHBB")
_RTATTR = struct.Struct("=HH")
NDA_DST = 1
RTMGRP_NEIGH = 1 << (3 - 1)  # RTNLGRP_NEIGH = 3 (linux/rtnetlink.h)
QUERY_TIMEOUT = 1.0
RECV_SIZE = 65536
_DST_ONLY = frozenset({NDA_DST})


class NeighborTableError(NetError):
    """The neighbour table could not be read or watched."""


class NeighborState(enum.IntFlag):
    """``NUD_*`` neighbour states (``linux/neighbour.h``)."""

    NONE = 0x00
    INCOMPLETE = 0x01
    REACHABLE = 0x02
    STALE = 0x04
    DELAY = 0x08
    PROBE = 0x10
    FAILED = 0x20
    NOARP = 0x40
    PERMANENT = 0x80


#: states in which a packet toward the neighbour leaves at once (RFC 4861 §7.3.2)
RESOLVED_STATES = (NeighborState.REACHABLE | NeighborState.STALE | NeighborState.DELAY
                   | NeighborState.PROBE | NeighborState.NOARP | NeighborState.PERMANENT)


def _packed(address: str) -> tuple[int, bytes]:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError as exc:
        raise InvalidAddressError(f"not an IP address: {address!r}") from exc
    return (socket.AF_INET if parsed.version == 4 else socket.AF_INET6), parsed.packed


@dataclass(frozen=True)
class NeighborQuery:
    """RTM_GETNEIGH for the entry of ``address`` on link ``ifindex`` (not a dump)."""

    address: str
    ifindex: int
    sequence: int

    def __bytes__(self) -> bytes:
        family, packed = _packed(self.address)
        body = _NDMSG.pack(family, self.ifindex, 0, 0, 0)
        attr_len = _RTATTR.size + len(packed)
        body += _RTATTR.pack(attr_len, NDA_DST) + packed + b"\0" * (-attr_len % 4)
        return _NLMSGHDR.pack(_NLMSGHDR.size + len(body), NlMsgType.RTM_GETNEIGH,
                              NlFlag.REQUEST, self.sequence & 0xFFFFFFFF, 0) + body


@dataclass(frozen=True)
class NeighborStateChanged:
    """The kernel announced a neighbour entry's state (``NONE`` after a deletion)."""

    address: str
    ifindex: int
    state: NeighborState

    @property
    def resolved(self) -> bool:
        return bool(self.state & RESOLVED_STATES)


@dataclass(frozen=True)
class NeighborRecord:
    """One RTM_NEWNEIGH / RTM_DELNEIGH message (``parse`` raises RtnlParseError only)."""

    address: str
    ifindex: int
    state: NeighborState
    deleted: bool

    @classmethod
    def parse(cls, message: NetlinkMessage) -> NeighborRecord:
        if message.kind not in (NlMsgType.RTM_NEWNEIGH, NlMsgType.RTM_DELNEIGH):
            raise RtnlParseError(f"not a neighbour message: type {message.kind}")
        body = message.body
        if len(body) < _NDMSG.size:
            raise RtnlParseError(f"truncated ndmsg ({len(body)} bytes)")
        family, ifindex, state, _flags, _kind = _NDMSG.unpack_from(body)
        value = parse_attrs(body, _NDMSG.size, _DST_ONLY).get(NDA_DST)
        want = {socket.AF_INET: 4, socket.AF_INET6: 16}.get(family)
        if want is None or value is None or len(value) != want:
            raise RtnlParseError(f"neighbour message without a usable NDA_DST "
                                 f"(family {family})")
        address = str(ipaddress.ip_address(value))
        return cls(address, ifindex, NeighborState(state),
                   message.kind == NlMsgType.RTM_DELNEIGH)

    def event(self) -> NeighborStateChanged:
        state = NeighborState.NONE if self.deleted else self.state
        return NeighborStateChanged(self.address, self.ifindex, state)


def _socket(netns: str | None, groups: int) -> socket.socket:
    if netns is not None and not os.path.exists(f"/var/run/netns/{netns}"):
        raise NeighborTableError(f"network namespace {netns!r} does not exist")
    try:
        sock: socket.socket = netns_socket(netns=netns, family=socket.AF_NETLINK,
                                           socket_type=socket.SOCK_RAW, proto=0, flags=0)
        sock.bind((0, groups))
    except OSError as exc:
        raise NeighborTableError(f"cannot open rtnetlink in {netns!r}: {exc}") from exc
    return sock


class NeighborTable:
    """The neighbour table of one namespace (``netns=None``: the current one).

    Subscribes at construction, so a change after any :meth:`state_of` answer is
    reported by :meth:`next_change` (attach with :meth:`start` in a running loop).
    """

    def __init__(self, netns: str | None = None) -> None:
        self._query = _socket(netns, 0)
        self._query.settimeout(QUERY_TIMEOUT)
        try:
            self._watch = _socket(netns, RTMGRP_NEIGH)
        except NeighborTableError:
            self._query.close()
            raise
        self._watch.setblocking(False)
        self._sequence = itertools.count(1)
        self._changes: asyncio.Queue[list[NeighborStateChanged] | NetError] = \
            asyncio.Queue()
        self._attached = False

    def start(self) -> None:
        """Deliver the kernel's neighbour notifications to :meth:`next_change`."""
        asyncio.get_running_loop().add_reader(self._watch.fileno(), self._on_readable)
        self._attached = True

    def state_of(self, address: str, ifindex: int) -> NeighborState:
        """The entry's state now (``NONE``: no entry)."""
        request = NeighborQuery(address, ifindex, next(self._sequence))
        try:
            self._query.send(bytes(request))
            while True:
                for message in split_messages(self._query.recv(RECV_SIZE)):
                    if message.sequence != request.sequence:
                        continue
                    if message.kind == NlMsgType.ERROR:
                        code = error_code(message)
                        if code == errno.ENOENT:
                            return NeighborState.NONE
                        raise NeighborTableError(
                            f"neighbour query for {address} refused: {os.strerror(code)}")
                    return NeighborRecord.parse(message).state
        except RtnlParseError as exc:
            raise NeighborTableError(f"neighbour query for {address}: {exc}") from exc
        except OSError as exc:
            raise NeighborTableError(f"neighbour query for {address}: {exc}") from exc

    def _on_readable(self) -> None:
        while True:
            try:
                data = self._watch.recv(RECV_SIZE)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:  # lost notifications: waits end at the cap
                    log.warning("neighbour notifications overran the socket buffer")
                    continue
                self._changes.put_nowait(NeighborTableError(f"neighbour socket: {exc}"))
                return
            try:
                messages = split_messages(data)
            except RtnlParseError as exc:
                log.warning("skipping malformed neighbour datagram: %s", exc)
                continue
            changes: list[NeighborStateChanged] = []
            for message in messages:
                if message.kind not in (NlMsgType.RTM_NEWNEIGH, NlMsgType.RTM_DELNEIGH):
                    continue
                try:
                    changes.append(NeighborRecord.parse(message).event())
                except RtnlParseError as exc:  # e.g. a bridge FDB entry (no IP)
                    log.debug("skipping neighbour message: %s", exc)
            if changes:
                self._changes.put_nowait(changes)

    async def next_change(self) -> list[NeighborStateChanged]:
        """The next batch of neighbour changes (raises :class:`NeighborTableError` if
        the socket failed)."""
        item = await self._changes.get()
        if isinstance(item, NetError):
            raise item
        return item

    def close(self) -> None:
        if self._attached:
            with contextlib.suppress(RuntimeError):
                asyncio.get_running_loop().remove_reader(self._watch.fileno())
            self._attached = False
        self._watch.close()
        self._query.close()
