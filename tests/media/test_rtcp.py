"""RTCP codecs: SR/RR (RFC 3550 §6.4), SDES (§6.5), BYE (§6.6), compound (§6.1, §A.2)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mobilityd.media.errors import RtcpParseError
from mobilityd.media.rtcp import (
    Goodbye,
    OpaqueRtcp,
    ReceiverReport,
    ReportBlock,
    RtcpPacket,
    SdesChunk,
    SdesItem,
    SdesItemType,
    SenderReport,
    SourceDescription,
    build_compound,
    parse_compound,
)

BLOCK = ReportBlock(
    ssrc=0x11111111, fraction_lost=25, cumulative_lost=-3, highest_sequence=0x0001FFFF,
    jitter=17, last_sr=0xAABBCCDD, delay_since_last_sr=65536,
)
SR = SenderReport(0xCAFEBABE, 0xE1234567_80000000, 160000, 1000, 160000, (BLOCK,))
RR = ReceiverReport(0xCAFEBABE, (BLOCK, BLOCK))
SDES = SourceDescription(
    (SdesChunk(0xCAFEBABE, (SdesItem(SdesItemType.CNAME, b"alice@10.0.0.1"),)),
     SdesChunk(1, (SdesItem(SdesItemType.NAME, b"A"), SdesItem(SdesItemType.TOOL, b"mob")))),
)
BYE = Goodbye((0xCAFEBABE,), b"roaming")

# Hand-assembled wire form of SR + SDES(CNAME "ab") + BYE with padding, RFC 3550 §6.4.1,
# §6.5, §6.6, checked field by field below.
WIRE = bytes.fromhex(
    "80c80006" "cafebabe" "e123456780000000" "00027100" "000003e8" "00027100"
    "81ca0003" "cafebabe" "0102" "6162" "00000000"
    "a1cb0003" "cafebabe" "0178" "0000" "00000004"
)


def test_wire_fields() -> None:
    sr, sdes, bye = parse_compound(WIRE)
    assert isinstance(sr, SenderReport)
    assert sr.ssrc == 0xCAFEBABE and sr.ntp_timestamp == 0xE123456780000000
    assert (sr.rtp_timestamp, sr.packet_count, sr.octet_count) == (160000, 1000, 160000)
    assert sr.reports == ()
    assert isinstance(sdes, SourceDescription)
    assert sdes.chunks == (SdesChunk(0xCAFEBABE, (SdesItem(SdesItemType.CNAME, b"ab"),)),)
    assert isinstance(bye, Goodbye)
    assert bye.ssrcs == (0xCAFEBABE,) and bye.reason == b"x"
    assert bye.padding == b"\x00\x00\x00\x04"
    assert build_compound([sr, sdes, bye]) == WIRE


@pytest.mark.parametrize("packet", [SR, RR, SDES, BYE], ids=["sr", "rr", "sdes", "bye"])
def test_round_trip(packet: SenderReport | ReceiverReport | SourceDescription | Goodbye) -> None:
    first = RR if not isinstance(packet, SenderReport | ReceiverReport) else packet
    items = [first, packet] if first is not packet else [packet]
    wire = build_compound(items)
    assert parse_compound(wire) == tuple(items)
    assert build_compound(list(parse_compound(wire))) == wire


def test_report_block_signed_loss() -> None:
    parsed = ReportBlock.parse(bytes(BLOCK))
    assert parsed == BLOCK and parsed.cumulative_lost == -3


def test_truncation_at_every_length() -> None:
    """Cuts at packet boundaries give the prefix; every other cut raises RtcpParseError."""
    parts: list[RtcpPacket] = [SR, SDES, BYE]
    wire = build_compound(parts)
    boundaries = {len(build_compound(parts[:n])): n for n in (1, 2)}
    for length in range(len(wire)):
        if length in boundaries:
            assert parse_compound(wire[:length]) == tuple(parts[: boundaries[length]])
            continue
        with pytest.raises(RtcpParseError):
            parse_compound(wire[:length])


def test_compound_rules() -> None:
    with pytest.raises(RtcpParseError, match="SR or RR"):
        parse_compound(bytes(BYE))
    assert parse_compound(bytes(BYE), require_report_first=False) == (BYE,)
    with pytest.raises(RtcpParseError, match="not the last"):
        parse_compound(bytes(Goodbye((1,), padding=b"\x00\x00\x00\x04")) + bytes(RR),
                       require_report_first=False)
    with pytest.raises(RtcpParseError, match="version"):
        parse_compound(b"\x40" + bytes(RR)[1:])


def test_unknown_type_kept_opaque() -> None:
    app = OpaqueRtcp(204, 3, b"nameDATA")
    wire = build_compound([RR, app])
    assert parse_compound(wire)[1] == app


@given(st.binary(max_size=120))
def test_fuzz_only_typed_error_escapes(data: bytes) -> None:
    try:
        packets = parse_compound(data, require_report_first=False)
    except RtcpParseError:
        return
    assert build_compound(list(packets)) == data
