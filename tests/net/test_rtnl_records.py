"""Link / address / route notifications decoded into records. The inputs are datagrams
recorded from this kernel (tests/net/data/*.bin, captured in a namespace while running
``ip addr add``, ``ip route add default``, ``ip link set down``); each is checked field
by field, cut at every length, and fuzzed: only RtnlParseError may escape."""

from __future__ import annotations

import contextlib
import os
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mobilityd.net.events import AddressFamily, AddressFlag, LinkFlag
from mobilityd.net.records import AddressRecord, LinkRecord, RouteRecord
from mobilityd.net.rtnl import (
    DumpRequest,
    NetlinkMessage,
    NlFlag,
    NlMsgType,
    RtnlParseError,
    split_messages,
)
from mobilityd.net.rtnl_records import record_from


def examples(default: int) -> int:
    """Hypothesis examples: ``default``, or 20x that in the slow tier (MOBILITYD_SLOW=1)."""
    return default * 20 if os.environ.get("MOBILITYD_SLOW") == "1" else default

DATA = Path(__file__).parent / "data"
V4, V6 = AddressFamily.INET, AddressFamily.INET6
PERM = AddressFlag.PERMANENT


def only_record(name: str) -> object:
    messages = split_messages((DATA / name).read_bytes())
    assert len(messages) == 1
    return record_from(messages[0])


def test_newaddr_v4() -> None:
    assert only_record("rtm_newaddr_v4.bin") == AddressRecord(2, "10.7.0.2", 24, V4, PERM)


def test_newaddr_v6_nodad() -> None:
    assert only_record("rtm_newaddr_v6_nodad.bin") == AddressRecord(
        2, "fd00:7::2", 64, V6, PERM | AddressFlag.NODAD)


def test_deladdr_v6() -> None:
    assert only_record("rtm_deladdr_v6.bin") == AddressRecord(
        2, "fd00:7::2", 64, V6, PERM | AddressFlag.NODAD, deleted=True)


def test_newroute_default() -> None:
    assert only_record("rtm_newroute_default_v4.bin") == RouteRecord(
        V4, 0, 254, "10.7.0.1", 2, 0)


def test_delroute_v6() -> None:
    assert only_record("rtm_delroute_v6.bin") == RouteRecord(V6, 64, 254, None, 2, 256,
                                                           deleted=True)


def test_newlink_down() -> None:
    """A 1500-byte RTM_NEWLINK full of attributes we skip by their length."""
    record = only_record("rtm_newlink_down.bin")
    assert record == LinkRecord(2, "h0", LinkFlag.NONE)


ALL = sorted(p.name for p in DATA.glob("*.bin"))


@pytest.mark.parametrize("name", ALL)
def test_cut_at_every_length(name: str) -> None:
    data = (DATA / name).read_bytes()
    for cut in range(1, len(data)):
        with pytest.raises(RtnlParseError):
            for message in split_messages(data[:cut]):
                record_from(message)


@pytest.mark.parametrize("name", ALL)
def test_two_messages_in_one_datagram(name: str) -> None:
    data = (DATA / name).read_bytes()
    messages = split_messages(data + data)
    assert len(messages) == 2 and record_from(messages[0]) == record_from(messages[1])


def test_body_too_short_for_its_struct() -> None:
    for kind in (NlMsgType.RTM_NEWLINK, NlMsgType.RTM_NEWADDR, NlMsgType.RTM_NEWROUTE):
        with pytest.raises(RtnlParseError):
            record_from(NetlinkMessage(kind, 0, 0, 0, b"\x02\x00"))


def test_other_kinds_are_ignored() -> None:
    assert record_from(NetlinkMessage(NlMsgType.DONE, 0, 1, 0, bytes(4))) is None


def test_dump_request_encoding() -> None:
    data = bytes(DumpRequest(NlMsgType.RTM_GETADDR, 9))
    length, kind, flags, seq, port = struct.unpack_from("=IHHII", data)
    assert (length, kind, seq, port) == (24, NlMsgType.RTM_GETADDR, 9, 0)
    assert flags == NlFlag.REQUEST | NlFlag.DUMP
    with pytest.raises(ValueError):
        bytes(DumpRequest(NlMsgType.RTM_NEWLINK, 1))


@settings(max_examples=examples(400), deadline=None)
@given(st.sampled_from(ALL), st.data())
def test_fuzz_mutations(name: str, data: st.DataObject) -> None:
    raw = bytearray((DATA / name).read_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    with contextlib.suppress(RtnlParseError):
        for message in split_messages(bytes(raw)):
            record_from(message)


@settings(max_examples=examples(300), deadline=None)
@given(st.binary(max_size=120), st.sampled_from([16, 17, 20, 21, 24, 25]))
def test_fuzz_bodies(body: bytes, kind: int) -> None:
    with contextlib.suppress(RtnlParseError):
        record_from(NetlinkMessage(kind, 0, 0, 0, body))
