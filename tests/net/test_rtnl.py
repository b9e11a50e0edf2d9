"""The RTM_GETROUTE codec: encoding field by field, answers recorded from this kernel
(Linux 6.x, Bob of the roaming topology) decoded field by field, cut at every length,
and a fuzz check that only the codec's own errors escape."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mobilityd.net.rtnl import (
    NlFlag,
    NlMsgType,
    RouteAnswer,
    RouteQuery,
    RtAttr,
    RtnlParseError,
    RtnlRefusedError,
    RtType,
    parse_attrs,
    resequenced,
)


def examples(default: int) -> int:
    """Hypothesis examples: ``default``, or 20x that in the slow tier (MOBILITYD_SLOW=1)."""
    return default * 20 if os.environ.get("MOBILITYD_SLOW") == "1" else default

# `ip route get` answers captured from the kernel with tests.netns.build_roaming
ANSWER_V4 = bytes.fromhex(
    "700000001800000007000000de6a000002200000fe0000010002000008000f00fe000000080001000a01"
    "00020800040003000000080007000a040002080005000a040001080019000000000024000c0002000000"
    "00000000000000000000000000000000000000000000000000000000")
ANSWER_V6 = bytes.fromhex(
    "b00000001800000007000000de6a00000a808000fe0300010000000008000f00fe00000014000100fd00"
    "0001000000000000000000000002140002000000000000000000000000000000000014000700fd000004"
    "000000000000000000000002080006006400000014000500fd00000400000000000000000000000108000"
    "4000300000024000c0002000000000000000000000000000000000000000000000000000000000000000"
    "500140000000000")
ANSWER_UNREACHABLE = bytes.fromhex(
    "380000000200000007000000de6a00009bffffff240000001a000100070000000000000002200000000000"
    "000000000008000100c0000201")


def test_query_encoding_v4() -> None:
    data = bytes(RouteQuery(ipaddress.ip_address("10.1.0.2"), 7, oif=3))
    length, kind, flags, seq, port = struct.unpack_from("=IHHII", data)
    assert (length, kind, flags, seq, port) == (len(data), NlMsgType.RTM_GETROUTE,
                                                NlFlag.REQUEST, 7, 0)
    family, dst_len = data[16], data[17]
    assert (family, dst_len) == (socket.AF_INET, 32)
    # RTA_DST then RTA_OIF, 4-byte aligned
    assert data[28:36] == struct.pack("=HH", 8, RtAttr.DST) + bytes([10, 1, 0, 2])
    assert data[36:44] == struct.pack("=HHI", 8, RtAttr.OIF, 3)
    assert len(data) == 44


def test_query_encoding_v6() -> None:
    data = bytes(RouteQuery(ipaddress.ip_address("fd00:1::2"), 2**32 + 5))
    assert struct.unpack_from("=I", data, 8)[0] == 5  # sequence wraps to 32 bits
    assert (data[16], data[17]) == (socket.AF_INET6, 128)
    assert data[28:48] == struct.pack("=HH", 20, RtAttr.DST) + \
        ipaddress.IPv6Address("fd00:1::2").packed


def test_recorded_v4_answer() -> None:
    answer = RouteAnswer.parse(ANSWER_V4)
    assert answer == RouteAnswer(sequence=7, family=socket.AF_INET, route_type=RtType.UNICAST,
                                 table=254, destination="10.1.0.2", prefsrc="10.4.0.2", oif=3,
                                 gateway="10.4.0.1")


def test_recorded_v6_answer() -> None:
    answer = RouteAnswer.parse(ANSWER_V6)
    assert (answer.prefsrc, answer.oif, answer.gateway, answer.destination) == (
        "fd00:4::2", 3, "fd00:4::1", "fd00:1::2")
    assert answer.family == socket.AF_INET6 and answer.table == 254


def test_recorded_refusal() -> None:
    with pytest.raises(RtnlRefusedError) as info:
        RouteAnswer.parse(ANSWER_UNREACHABLE)
    assert info.value.errno == 101  # ENETUNREACH


@pytest.mark.parametrize("recorded", [ANSWER_V4, ANSWER_V6])
def test_cut_at_every_length(recorded: bytes) -> None:
    for cut in range(len(recorded)):
        with pytest.raises(RtnlParseError):
            RouteAnswer.parse(recorded[:cut])


@pytest.mark.parametrize("recorded", [ANSWER_V4, ANSWER_V6])
def test_trailing_data_after_the_message_is_ignored(recorded: bytes) -> None:
    assert RouteAnswer.parse(recorded + b"\xff" * 8) == RouteAnswer.parse(recorded)


def test_bad_attribute_length() -> None:
    broken = bytearray(ANSWER_V4)
    struct.pack_into("=H", broken, 28, 2)  # first attribute claims 2 bytes
    with pytest.raises(RtnlParseError):
        RouteAnswer.parse(bytes(broken))
    wrong_oif = bytearray(ANSWER_V4)
    struct.pack_into("=H", wrong_oif, 44, 6)  # RTA_OIF of 2 bytes
    with pytest.raises(RtnlParseError):
        RouteAnswer.parse(bytes(wrong_oif))


@settings(max_examples=examples(500), deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_only_codec_errors(data: bytes) -> None:
    with contextlib.suppress(RtnlParseError, RtnlRefusedError):
        RouteAnswer.parse(data)


@settings(max_examples=examples(300), deadline=None)
@given(st.integers(0, len(ANSWER_V6) - 1), st.integers(0, 255))
def test_fuzz_mutated_recording(position: int, value: int) -> None:
    mutated = bytearray(ANSWER_V6)
    mutated[position] = value
    with contextlib.suppress(RtnlParseError, RtnlRefusedError):
        RouteAnswer.parse(bytes(mutated))


# -- parse_attrs with ``wanted`` (the watcher's and the route answer's fast path) --------

def _attrs(*pairs: tuple[int, bytes]) -> bytes:
    out = b""
    for kind, value in pairs:
        length = 4 + len(value)
        out += struct.pack("=HH", length, kind) + value + b"\0" * (-length % 4)
    return out


def test_wanted_attributes_are_those_of_the_full_parse() -> None:
    data = _attrs((3, b"eth0\0"), (4, b"\x01\x02\x03\x04"), (3, b"second\0"), (7, b"x"))
    everything = parse_attrs(data, 0)
    assert everything == {3: b"eth0\0", 4: b"\x01\x02\x03\x04", 7: b"x"}  # first kept
    assert parse_attrs(data, 0, frozenset({3, 9})) == {3: b"eth0\0"}
    assert parse_attrs(data, 0, frozenset()) == {}


def test_an_unwanted_attribute_is_still_length_checked() -> None:
    bad_length = _attrs((3, b"eth0\0")) + struct.pack("=HH", 40, 7) + b"short"
    with pytest.raises(RtnlParseError):
        parse_attrs(bad_length, 0, frozenset({3}))
    stray = _attrs((3, b"eth0\0")) + b"\x01\x02"
    with pytest.raises(RtnlParseError):
        parse_attrs(stray, 0, frozenset({3}))


@settings(max_examples=examples(200), deadline=None)
@given(st.binary(max_size=120), st.frozensets(st.integers(0, 20), max_size=4))
def test_fuzz_wanted_is_a_subset_of_the_full_parse(data: bytes, wanted: frozenset[int]) -> None:
    try:
        everything = parse_attrs(data, 0)
    except RtnlParseError:
        with pytest.raises(RtnlParseError):
            parse_attrs(data, 0, wanted)
        return
    assert parse_attrs(data, 0, wanted) == {k: v for k, v in everything.items() if k in wanted}


@settings(max_examples=examples(200), deadline=None)
@given(st.binary(min_size=4, max_size=4))
def test_answer_ipv4_text_is_the_ipaddress_text(packed: bytes) -> None:
    """The answer's IPv4 addresses are written by inet_ntop: the very text ipaddress
    gives (the rest of the code compares them with ipaddress-made strings)."""
    data = bytearray(ANSWER_V4)
    offset = data.find(bytes.fromhex("0a040002"))  # RTA_PREFSRC 10.4.0.2 of the recording
    data[offset:offset + 4] = packed
    assert RouteAnswer.parse(bytes(data)).prefsrc == str(ipaddress.IPv4Address(packed))


@settings(max_examples=examples(100), deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.none() | st.integers(1, 2**31))
def test_resequenced_query_is_the_query_with_that_sequence(first: int, second: int,
                                                           oif: int | None) -> None:
    """The resolver encodes a destination's query once and re-sequences it (RFC 3549
    §2.3.2: the sequence number is the only field that differs between lookups)."""
    dest = ipaddress.ip_address("10.1.0.2")
    assert resequenced(bytes(RouteQuery(dest, first, oif)), second) == bytes(
        RouteQuery(dest, second, oif))


def test_resequenced_refuses_what_is_not_a_request() -> None:
    with pytest.raises(ValueError):
        resequenced(b"\x00" * 8, 1)
