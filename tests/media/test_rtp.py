"""RTP codec (RFC 3550 §5.1, §5.3.1) and RTP/RTCP demux (RFC 5761 §4)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mobilityd.media.errors import RtpParseError
from mobilityd.media.rtp import HeaderExtension, RtpPacket, build_rtp, is_rtcp

# A PCMU packet: V=2, M=1, PT=0, seq 0x1234, ts 0x01020304, SSRC 0xdeadbeef, 4-octet payload.
SIMPLE = bytes.fromhex("8080123401020304deadbeef") + b"\xff\x7f\x00\x80"
# V=2 P=1 X=1 CC=2, PT=96, two CSRCs, extension profile 0xBEDE with one word, 3 octets
# payload and 4 octets of padding (last octet = 4), RFC 3550 §5.1 / §5.3.1.
FULL = (
    bytes.fromhex("b260ffff00000001cafebabe")
    + bytes.fromhex("0000000100000002")
    + bytes.fromhex("bede0001" "11223344")
    + b"abc"
    + b"\x00\x00\x00\x04"
)


def test_simple_packet_fields() -> None:
    packet = RtpPacket.parse(SIMPLE)
    assert packet.payload_type == 0
    assert packet.marker is True
    assert packet.sequence_number == 0x1234
    assert packet.timestamp == 0x01020304
    assert packet.ssrc == 0xDEADBEEF
    assert packet.payload == b"\xff\x7f\x00\x80"
    assert packet.csrcs == () and packet.extension is None and packet.padding == b""
    assert bytes(packet) == SIMPLE


def test_full_packet_fields_and_round_trip() -> None:
    packet = RtpPacket.parse(FULL)
    assert packet.payload_type == 96 and not packet.marker
    assert packet.sequence_number == 0xFFFF
    assert packet.csrcs == (1, 2)
    assert packet.extension == HeaderExtension(0xBEDE, bytes.fromhex("11223344"))
    assert packet.payload == b"abc"
    assert packet.padding == b"\x00\x00\x00\x04"
    assert bytes(packet) == FULL


@pytest.mark.parametrize("packet", [SIMPLE, FULL], ids=["simple", "full"])
def test_truncation_at_every_length(packet: bytes) -> None:
    """Every cut either parses to a shorter valid packet or raises RtpParseError."""
    for length in range(len(packet)):
        cut = packet[:length]
        try:
            parsed = RtpPacket.parse(cut)
        except RtpParseError:
            continue
        assert bytes(parsed) == cut
    for length in range(12):
        with pytest.raises(RtpParseError):
            RtpPacket.parse(packet[:length])


def test_bad_version_and_padding() -> None:
    with pytest.raises(RtpParseError, match="version"):
        RtpPacket.parse(b"\x40" + SIMPLE[1:])
    with pytest.raises(RtpParseError, match="padding"):
        RtpPacket.parse(b"\xa0" + SIMPLE[1:-1] + b"\x00")
    with pytest.raises(RtpParseError, match="padding"):
        RtpPacket.parse(b"\xa0" + SIMPLE[1:-1] + b"\x20")


def test_build_rtp_matches_dataclass_and_wraps() -> None:
    fast = build_rtp(0, 0x1234, 0x01020304, 0xDEADBEEF, b"\xff\x7f\x00\x80", marker=True)
    assert fast == SIMPLE
    wrapped = RtpPacket.parse(build_rtp(8, 65536 + 5, (1 << 32) + 7, 1, b""))
    assert (wrapped.sequence_number, wrapped.timestamp) == (5, 7)
    with pytest.raises(RtpParseError):
        build_rtp(128, 0, 0, 0, b"")


def test_field_validation() -> None:
    with pytest.raises(RtpParseError):
        RtpPacket(payload_type=0, sequence_number=70000, timestamp=0, ssrc=0)
    with pytest.raises(RtpParseError):
        HeaderExtension(1, b"abc")


def test_rfc5761_demux() -> None:
    """RFC 5761 §4: second octet 192..223 is RTCP; PT 0 and 96 with or without M are RTP."""
    assert not is_rtcp(SIMPLE)
    assert not is_rtcp(FULL)
    assert not is_rtcp(build_rtp(96, 1, 1, 1, b"", marker=True))  # 0xE0 = 224
    for packet_type in (200, 201, 202, 203, 204):
        assert is_rtcp(bytes((0x80, packet_type, 0, 1)))
    assert not is_rtcp(b"\x80")


@given(st.binary(max_size=80))
def test_fuzz_only_typed_error_escapes(data: bytes) -> None:
    try:
        packet = RtpPacket.parse(data)
    except RtpParseError:
        return
    assert bytes(packet) == data
