"""Decode rtnetlink link / address / route messages into :mod:`mobilityd.net.records`.

Struct layouts (``linux/rtnetlink.h``, ``linux/if_link.h``, ``linux/if_addr.h``;
native byte order), each followed by ``rtattr``\\s:

* ``ifinfomsg`` (RTM_NEWLINK / RTM_DELLINK): family u8, pad u8, type u16, index i32,
  flags u32, change u32; ``IFLA_IFNAME`` (3) is a NUL-terminated name;
* ``ifaddrmsg`` (RTM_NEWADDR / RTM_DELADDR): family u8, prefixlen u8, flags u8,
  scope u8, index u32; ``IFA_ADDRESS`` (1), ``IFA_LOCAL`` (2, the local end on
  point-to-point links), ``IFA_FLAGS`` (8, all 32 flag bits);
* ``rtmsg`` (RTM_NEWROUTE / RTM_DELROUTE): see :mod:`mobilityd.net.rtnl`.

:func:`record_from` raises only :class:`~mobilityd.net.rtnl.RtnlParseError`.
"""

from __future__ import annotations

import ipaddress
import socket
import struct

from mobilityd.net.errors import NetEventError
from mobilityd.net.events import AddressFamily, AddressFlag, LinkFlag
from mobilityd.net.records import AddressRecord, LinkRecord, RouteRecord
from mobilityd.net.rtnl import (
    NetlinkMessage,
    NlMsgType,
    RtAttr,
    RtnlParseError,
    RtType,
    parse_attrs,
)

_IFINFOMSG = struct.Struct("=BxHiII")
_IFADDRMSG = struct.Struct("=BBBBI")
_RTMSG = struct.Struct("=BBBBBBBBI")
_U32 = struct.Struct("=I")
IFLA_IFNAME = 3
IFA_ADDRESS, IFA_LOCAL, IFA_FLAGS = 1, 2, 8
_LINK_FLAGS = int(LinkFlag.UP | LinkFlag.LOOPBACK | LinkFlag.RUNNING | LinkFlag.LOWER_UP)
_FAMILIES = {socket.AF_INET: AddressFamily.INET, socket.AF_INET6: AddressFamily.INET6}
#: the attributes each record reads (the others are length-checked, not copied)
_LINK_ATTRS = frozenset({IFLA_IFNAME})
_ADDRESS_ATTRS = frozenset({IFA_ADDRESS, IFA_LOCAL, IFA_FLAGS})
_ROUTE_ATTRS = frozenset({RtAttr.TABLE, RtAttr.GATEWAY, RtAttr.OIF, RtAttr.PRIORITY})

Record = LinkRecord | AddressRecord | RouteRecord


def _u32(attrs: dict[int, bytes], kind: int) -> int | None:
    value = attrs.get(kind)
    if value is None:
        return None
    if len(value) != _U32.size:
        raise RtnlParseError(f"attribute {kind} of {len(value)} bytes, want 4")
    return int(_U32.unpack(value)[0])


def _ip(family: AddressFamily, value: bytes) -> str:
    if family is AddressFamily.INET and len(value) == 4:
        return socket.inet_ntop(socket.AF_INET, value)  # same text as ipaddress, faster
    try:
        if family is AddressFamily.INET:
            return str(ipaddress.IPv4Address(value))
        return str(ipaddress.IPv6Address(value))
    except ipaddress.AddressValueError as exc:
        raise RtnlParseError(f"{family.name} address of {len(value)} bytes") from exc


def _link(message: NetlinkMessage) -> LinkRecord:
    if len(message.body) < _IFINFOMSG.size:
        raise RtnlParseError("truncated ifinfomsg")
    _family, _type, index, flags, _change = _IFINFOMSG.unpack_from(message.body)
    attrs = parse_attrs(message.body, _IFINFOMSG.size, _LINK_ATTRS)
    raw_name = attrs.get(IFLA_IFNAME, b"").split(b"\0", 1)[0]
    name = raw_name.decode("utf-8", "replace") or f"if{index}"
    return LinkRecord(index, name, LinkFlag(flags & _LINK_FLAGS),
                      deleted=message.kind == NlMsgType.RTM_DELLINK)


def _address(message: NetlinkMessage) -> AddressRecord | None:
    if len(message.body) < _IFADDRMSG.size:
        raise RtnlParseError("truncated ifaddrmsg")
    family_code, prefixlen, flags8, _scope, index = _IFADDRMSG.unpack_from(message.body)
    attrs = parse_attrs(message.body, _IFADDRMSG.size, _ADDRESS_ATTRS)
    family = _FAMILIES.get(family_code)
    if family is None:
        return None
    value = attrs.get(IFA_LOCAL) or attrs.get(IFA_ADDRESS)
    if value is None:
        return None
    flags32 = _u32(attrs, IFA_FLAGS)
    flags = (flags32 if flags32 is not None else flags8) & 0xFFF
    try:
        return AddressRecord(index, _ip(family, value), prefixlen, family, AddressFlag(flags),
                             deleted=message.kind == NlMsgType.RTM_DELADDR)
    except NetEventError as exc:
        raise RtnlParseError(str(exc)) from exc


def _route(message: NetlinkMessage) -> RouteRecord | None:
    if len(message.body) < _RTMSG.size:
        raise RtnlParseError("truncated rtmsg")
    family_code, dst_len, _sl, _tos, table8, _proto, _scope, rtype, _flags = \
        _RTMSG.unpack_from(message.body)
    attrs = parse_attrs(message.body, _RTMSG.size, _ROUTE_ATTRS)
    family = _FAMILIES.get(family_code)
    if family is None or rtype != RtType.UNICAST:
        return None
    table = _u32(attrs, RtAttr.TABLE)
    gateway = attrs.get(RtAttr.GATEWAY)
    return RouteRecord(family=family, dst_len=dst_len,
                       table=table if table is not None else table8,
                       gateway=_ip(family, gateway) if gateway is not None else None,
                       oif=_u32(attrs, RtAttr.OIF),
                       priority=_u32(attrs, RtAttr.PRIORITY) or 0,
                       deleted=message.kind == NlMsgType.RTM_DELROUTE)


def record_from(message: NetlinkMessage) -> Record | None:
    """The record a link / address / route message describes (``None``: other kinds,
    families or route types)."""
    if message.kind in (NlMsgType.RTM_NEWLINK, NlMsgType.RTM_DELLINK):
        return _link(message)
    if message.kind in (NlMsgType.RTM_NEWADDR, NlMsgType.RTM_DELADDR):
        return _address(message)
    if message.kind in (NlMsgType.RTM_NEWROUTE, NlMsgType.RTM_DELROUTE):
        return _route(message)
    return None
