"""Neighbour-table codecs (rtnetlink(7), ``linux/neighbour.h``): RTM_GETNEIGH for one
entry, RTM_NEWNEIGH / RTM_DELNEIGH parsed into typed states (RFC 4861 §7.3.2 states)."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mobilityd.net.errors import InvalidAddressError
from mobilityd.net.neighbors import (
    RESOLVED_STATES,
    NeighborQuery,
    NeighborRecord,
    NeighborState,
)
from mobilityd.net.rtnl import NetlinkMessage, NlMsgType, RtnlParseError, split_messages

NDMSG = struct.Struct("=BxxxiHBB")


def neighbour_message(address: str, ifindex: int, state: int,
                      kind: int = NlMsgType.RTM_NEWNEIGH) -> NetlinkMessage:
    parsed = ipaddress.ip_address(address)
    family = socket.AF_INET if parsed.version == 4 else socket.AF_INET6
    value = parsed.packed
    attr = struct.pack("=HH", 4 + len(value), 1) + value + b"\0" * (-len(value) % 4)
    lladdr = struct.pack("=HH", 10, 2) + b"\x02\0\0\0\0\x01" + b"\0\0"  # NDA_LLADDR
    return NetlinkMessage(kind, 0, 0, 0, NDMSG.pack(family, ifindex, state, 0, 1)
                          + lladdr + attr)


def test_query_layout() -> None:
    data = bytes(NeighborQuery("10.4.0.1", 3, 7))
    (message,) = split_messages(data)
    assert message.kind == NlMsgType.RTM_GETNEIGH and message.sequence == 7
    family, ifindex, state, flags, _ = NDMSG.unpack_from(message.body)
    assert (family, ifindex, state, flags) == (socket.AF_INET, 3, 0, 0)
    assert message.body[NDMSG.size + 4:] == bytes([10, 4, 0, 1])


def test_query_rejects_a_bad_address() -> None:
    with pytest.raises(InvalidAddressError):
        bytes(NeighborQuery("10.4.0.x", 3, 1))


@pytest.mark.parametrize("address", ["10.4.0.1", "fd00:4::1", "fe80::1"])
def test_record_round_trip(address: str) -> None:
    record = NeighborRecord.parse(neighbour_message(address, 5, NeighborState.REACHABLE))
    assert record == NeighborRecord(address, 5, NeighborState.REACHABLE, False)
    assert record.event().resolved


def test_deleted_entry_is_state_none() -> None:
    record = NeighborRecord.parse(neighbour_message("10.4.0.1", 5, NeighborState.STALE,
                                                    NlMsgType.RTM_DELNEIGH))
    assert record.deleted
    assert record.event().state is NeighborState.NONE
    assert not record.event().resolved


@pytest.mark.parametrize(("state", "resolved"), [
    (NeighborState.INCOMPLETE, False), (NeighborState.FAILED, False),
    (NeighborState.NONE, False), (NeighborState.REACHABLE, True),
    (NeighborState.STALE, True), (NeighborState.DELAY, True), (NeighborState.PROBE, True),
    (NeighborState.PERMANENT, True), (NeighborState.NOARP, True)])
def test_resolved_states(state: NeighborState, resolved: bool) -> None:
    assert bool(state & RESOLVED_STATES) is resolved


def test_bridge_fdb_entry_is_a_parse_error() -> None:
    """AF_BRIDGE neighbour messages carry no IP: typed error, skipped by the table."""
    message = NetlinkMessage(NlMsgType.RTM_NEWNEIGH, 0, 0, 0,
                             NDMSG.pack(7, 5, NeighborState.REACHABLE, 0, 1))
    with pytest.raises(RtnlParseError):
        NeighborRecord.parse(message)


def test_wrong_message_type_is_a_parse_error() -> None:
    with pytest.raises(RtnlParseError):
        NeighborRecord.parse(NetlinkMessage(NlMsgType.RTM_NEWROUTE, 0, 0, 0, b""))


@given(st.binary(max_size=64))
def test_garbage_is_a_typed_error(body: bytes) -> None:
    with contextlib.suppress(RtnlParseError):
        NeighborRecord.parse(NetlinkMessage(NlMsgType.RTM_NEWNEIGH, 0, 0, 0, body))
