"""A minimal rtnetlink codec for route lookups: RTM_GETROUTE and its answer.

pyroute2 spends about 1.5 ms of Python per request on this machine; a call move needs
one lookup per call right after a network event, so the lookup is encoded here with
``struct``: a whole lookup, kernel included, took 32 us (median) here. Only what a
source-address lookup needs is decoded; every other attribute is skipped by its length.

Wire format (``linux/netlink.h``, ``linux/rtnetlink.h``; native byte order):

* ``nlmsghdr``: length u32, type u16, flags u16, sequence u32, port id u32;
* ``rtmsg``: family, dst_len, src_len, tos, table, protocol, scope, type (u8 each),
  flags u32;
* attributes: length u16, type u16, value, padded to 4 bytes (``RTA_ALIGN``);
* ``NLMSG_ERROR``: error i32 (``-errno``, 0 = ack) followed by the request's header.

:class:`RtnlParseError` is the only exception :meth:`RouteAnswer.parse` raises.
"""

from __future__ import annotations

import enum
import ipaddress
import socket
import struct
from dataclasses import dataclass

from mobilityd.net.errors import NetError


class RtnlParseError(NetError):
    """An rtnetlink answer that cannot be decoded (truncated, bad lengths, bad family)."""


class RtnlRefusedError(NetError):
    """The kernel answered NLMSG_ERROR; ``errno`` is the positive error number."""

    def __init__(self, errno: int) -> None:
        super().__init__(f"kernel refused the request: errno {errno}")
        self.errno = errno


_NLMSGHDR = struct.Struct("=IHHII")
_RTMSG = struct.Struct("=BBBBBBBBI")
_RTATTR = struct.Struct("=HH")
_U32 = struct.Struct("=I")
_I32 = struct.Struct("=i")


class NlMsgType(enum.IntEnum):
    """Netlink message types used here."""

    NOOP = 1
    ERROR = 2
    DONE = 3
    OVERRUN = 4
    RTM_NEWLINK = 16
    RTM_DELLINK = 17
    RTM_GETLINK = 18
    RTM_NEWADDR = 20
    RTM_DELADDR = 21
    RTM_GETADDR = 22
    RTM_NEWROUTE = 24
    RTM_DELROUTE = 25
    RTM_GETROUTE = 26
    RTM_NEWNEIGH = 28


class NlFlag(enum.IntFlag):
    NONE = 0
    REQUEST = 0x1
    MULTI = 0x2
    ACK = 0x4
    ECHO = 0x8
    DUMP_INTR = 0x10  # the dump changed while it was read: read it again
    ROOT = 0x100
    MATCH = 0x200
    DUMP = ROOT | MATCH


@dataclass(frozen=True)
class NetlinkMessage:
    """One message of a datagram: header fields and the bytes after the header."""

    kind: int
    flags: int
    sequence: int
    port: int
    body: bytes


def split_messages(data: bytes) -> list[NetlinkMessage]:
    """The messages of one netlink datagram (each ``NLMSG_ALIGN``-ed, linux/netlink.h)."""
    messages: list[NetlinkMessage] = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < _NLMSGHDR.size:
            raise RtnlParseError(f"{len(data) - offset} stray bytes after the messages")
        length, kind, flags, sequence, port = _NLMSGHDR.unpack_from(data, offset)
        if length < _NLMSGHDR.size or offset + length > len(data):
            raise RtnlParseError(f"netlink length {length} at offset {offset}")
        messages.append(NetlinkMessage(kind, flags, sequence, port,
                                       data[offset + _NLMSGHDR.size:offset + length]))
        offset += length + (-length % 4)
    return messages


def parse_attrs(data: bytes, offset: int,
                wanted: frozenset[int] | None = None) -> dict[int, bytes]:
    """``rtattr`` list from ``offset`` to the end (first of each type kept).

    With ``wanted``, only those types are copied out; every attribute's length is still
    checked. An RTM_NEWLINK carries ~50 attributes of which the watcher reads one, and
    it is the first message a move decision parses (issue 5 detection)."""
    attrs: dict[int, bytes] = {}
    end = len(data)
    header = _RTATTR.size
    unpack = _RTATTR.unpack_from
    while offset + header <= end:
        attr_len, attr_type = unpack(data, offset)
        if attr_len < header or offset + attr_len > end:
            raise RtnlParseError(f"attribute length {attr_len} at offset {offset}")
        attr_type &= 0x3FFF
        if (wanted is None or attr_type in wanted) and attr_type not in attrs:
            attrs[attr_type] = data[offset + header:offset + attr_len]
        offset += (attr_len + 3) & ~3
    if offset < end:
        raise RtnlParseError(f"{end - offset} stray bytes after the attributes")
    return attrs


def error_code(message: NetlinkMessage) -> int:
    """The positive errno of an NLMSG_ERROR message (0 for an acknowledgement)."""
    if len(message.body) < _I32.size:
        raise RtnlParseError("truncated NLMSG_ERROR")
    (error,) = _I32.unpack_from(message.body)
    return int(-error if error < 0 else error)


@dataclass(frozen=True)
class DumpRequest:
    """RTM_GETLINK / RTM_GETADDR / RTM_GETROUTE with NLM_F_DUMP for all families."""

    kind: NlMsgType
    sequence: int

    def __bytes__(self) -> bytes:
        if self.kind is NlMsgType.RTM_GETLINK:
            body = bytes(16)  # ifinfomsg, AF_UNSPEC
        elif self.kind is NlMsgType.RTM_GETADDR:
            body = bytes(8)  # ifaddrmsg, AF_UNSPEC
        elif self.kind is NlMsgType.RTM_GETROUTE:
            body = bytes(12)  # rtmsg, AF_UNSPEC: both families on current kernels
        else:
            raise ValueError(f"{self.kind!r} is not a dump request")
        header = _NLMSGHDR.pack(_NLMSGHDR.size + len(body), self.kind,
                                NlFlag.REQUEST | NlFlag.DUMP, self.sequence & 0xFFFFFFFF, 0)
        return header + body


class RtAttr(enum.IntEnum):
    """``RTA_*`` route attributes."""

    DST = 1
    SRC = 2
    IIF = 3
    OIF = 4
    GATEWAY = 5
    PRIORITY = 6
    PREFSRC = 7
    TABLE = 15


class RtType(enum.IntEnum):
    """``RTN_*`` route types."""

    UNSPEC = 0
    UNICAST = 1
    LOCAL = 2
    BROADCAST = 3
    ANYCAST = 4
    MULTICAST = 5
    BLACKHOLE = 6
    UNREACHABLE = 7
    PROHIBIT = 8
    THROW = 9
    NAT = 10


def _attr(kind: int, value: bytes) -> bytes:
    length = _RTATTR.size + len(value)
    return _RTATTR.pack(length, kind) + value + b"\0" * (-length % 4)


@dataclass(frozen=True)
class RouteQuery:
    """RTM_GETROUTE for one destination, optionally only via link ``oif``."""

    destination: ipaddress.IPv4Address | ipaddress.IPv6Address
    sequence: int
    oif: int | None = None

    def __bytes__(self) -> bytes:
        family = socket.AF_INET if self.destination.version == 4 else socket.AF_INET6
        body = _RTMSG.pack(family, self.destination.max_prefixlen, 0, 0, 0, 0, 0, 0, 0)
        body += _attr(RtAttr.DST, self.destination.packed)
        if self.oif is not None:
            body += _attr(RtAttr.OIF, _U32.pack(self.oif))
        header = _NLMSGHDR.pack(_NLMSGHDR.size + len(body), NlMsgType.RTM_GETROUTE,
                                NlFlag.REQUEST, self.sequence & 0xFFFFFFFF, 0)
        return header + body


_SEQUENCE = struct.Struct("=I")
_SEQUENCE_OFFSET = 8  # nlmsghdr: length u32, type u16, flags u16, then the sequence


def resequenced(request: bytes, sequence: int) -> bytes:
    """An encoded request (e.g. ``bytes(RouteQuery(...))``) with another sequence
    number: lookups repeated toward the same destination reuse their encoding."""
    if len(request) < _NLMSGHDR.size:
        raise ValueError(f"not a netlink request: {len(request)} bytes")
    return (request[:_SEQUENCE_OFFSET] + _SEQUENCE.pack(sequence & 0xFFFFFFFF)
            + request[_SEQUENCE_OFFSET + _SEQUENCE.size:])


def _address(family: int, value: bytes) -> str:
    if family == socket.AF_INET and len(value) == 4:
        return socket.inet_ntop(socket.AF_INET, value)  # same text, a tenth of the cost
    try:
        if family == socket.AF_INET:
            return str(ipaddress.IPv4Address(value))
        return str(ipaddress.IPv6Address(value))
    except ipaddress.AddressValueError as exc:
        raise RtnlParseError(f"address attribute of {len(value)} bytes") from exc


_ROUTE_TYPES: dict[int, RtType] = {int(t): t for t in RtType}
_ANSWER_ATTRS = frozenset({RtAttr.TABLE, RtAttr.DST, RtAttr.PREFSRC, RtAttr.OIF,
                           RtAttr.GATEWAY})


@dataclass(frozen=True)
class RouteAnswer:
    """The decoded RTM_NEWROUTE answer to a :class:`RouteQuery`."""

    sequence: int
    family: int
    route_type: RtType | int
    table: int
    destination: str | None
    prefsrc: str | None
    oif: int | None
    gateway: str | None

    @classmethod
    def parse(cls, data: bytes) -> RouteAnswer:
        """Decode one answer datagram; :class:`RtnlRefusedError` for NLMSG_ERROR."""
        if len(data) < _NLMSGHDR.size:
            raise RtnlParseError(f"netlink message of {len(data)} bytes")
        length, kind, _flags, sequence, _port = _NLMSGHDR.unpack_from(data)
        if not _NLMSGHDR.size <= length <= len(data):
            raise RtnlParseError(f"netlink length {length} for {len(data)} bytes")
        if kind == NlMsgType.ERROR:
            if length < _NLMSGHDR.size + _I32.size:
                raise RtnlParseError("truncated NLMSG_ERROR")
            (error,) = _I32.unpack_from(data, _NLMSGHDR.size)
            raise RtnlRefusedError(-error if error < 0 else error)
        if kind != NlMsgType.RTM_NEWROUTE:
            raise RtnlParseError(f"unexpected netlink message type {kind}")
        if length < _NLMSGHDR.size + _RTMSG.size:
            raise RtnlParseError("truncated rtmsg")
        family, _dl, _sl, _tos, table, _proto, _scope, rtype, _f = _RTMSG.unpack_from(
            data, _NLMSGHDR.size)
        if family not in (socket.AF_INET, socket.AF_INET6):
            raise RtnlParseError(f"address family {family} in a route answer")
        attrs = parse_attrs(data[:length], _NLMSGHDR.size + _RTMSG.size, _ANSWER_ATTRS)

        def u32(kind: RtAttr) -> int | None:
            value = attrs.get(kind)
            if value is None:
                return None
            if len(value) != _U32.size:
                raise RtnlParseError(f"{kind.name} of {len(value)} bytes")
            return int(_U32.unpack(value)[0])

        def addr(kind: RtAttr) -> str | None:
            value = attrs.get(kind)
            return None if value is None else _address(family, value)

        table_attr = u32(RtAttr.TABLE)
        route_type: RtType | int = _ROUTE_TYPES.get(rtype, rtype)
        return cls(sequence=sequence, family=family, route_type=route_type,
                   table=table_attr if table_attr is not None else table,
                   destination=addr(RtAttr.DST), prefsrc=addr(RtAttr.PREFSRC),
                   oif=u32(RtAttr.OIF), gateway=addr(RtAttr.GATEWAY))
