"""RTCP report building and LSR/DLSR/RTT accounting (RFC 3550 §6.4, §6.3.1)."""

from __future__ import annotations

import math

import pytest

from mobilityd.media.reports import (
    RtcpReporter,
    SenderState,
    middle_32,
    ntp_timestamp,
    report_interval,
)
from mobilityd.media.rtcp import (
    ReceiverReport,
    SdesItemType,
    SenderReport,
    SourceDescription,
    parse_compound,
)
from mobilityd.media.srtp import Direction, SrtpKeys, SrtpSession
from mobilityd.media.stream import ReceptionStats


def test_ntp_timestamp() -> None:
    """RFC 3550 §4: seconds since 1900 in the high word, binary fraction in the low."""
    assert ntp_timestamp(0.0) == 2_208_988_800 << 32
    assert ntp_timestamp(1.5) & 0xFFFFFFFF == 1 << 31
    assert middle_32(0x1122334455667788) == 0x33445566


def test_sender_report_then_receiver_report_with_rtt() -> None:
    alice, bob = RtcpReporter(0xA, b"alice@example.org"), RtcpReporter(0xB, b"bob@example.org")
    bob_rx = ReceptionStats(0xA)
    for seq in range(100):
        if seq != 50:
            bob_rx.update(seq, seq * 160, seq * 0.02)
    wall0 = 1_800_000_000.25
    sr_wire = alice.build(10.0, wall0, SenderState(0xA, 100, 16000, 16000))
    sr, sdes = parse_compound(sr_wire)
    assert isinstance(sr, SenderReport) and isinstance(sdes, SourceDescription)
    assert (sr.ssrc, sr.packet_count, sr.octet_count, sr.rtp_timestamp) == (0xA, 100, 16000, 16000)
    assert sdes.chunks[0].items[0].item_type == SdesItemType.CNAME
    assert sdes.chunks[0].items[0].value == b"alice@example.org"

    bob.received(parse_compound(sr_wire), now=50.0, wall=wall0 + 0.010)  # 10 ms one way
    rr_wire = bob.build(50.25, wall0 + 0.260, None, [bob_rx])  # held 250 ms
    rr = parse_compound(rr_wire)[0]
    assert isinstance(rr, ReceiverReport) and len(rr.reports) == 1
    block = rr.reports[0]
    assert block.ssrc == 0xA and block.cumulative_lost == 1
    assert block.last_sr == middle_32(sr.ntp_timestamp)
    assert block.delay_since_last_sr == int(0.25 * 65536)

    alice.received(parse_compound(rr_wire), now=10.27, wall=wall0 + 0.270)  # 10 ms back
    assert alice.round_trip == pytest.approx(0.020, abs=0.001)


def test_reports_go_through_srtcp() -> None:
    keys = SrtpKeys(bytes(16), bytes(14))
    tx, rx = SrtpSession(keys, Direction.OUTBOUND), SrtpSession(keys, Direction.INBOUND)
    wire = RtcpReporter(0xC, b"c").build(0.0, 1e9, None)
    assert parse_compound(rx.unprotect_rtcp(tx.protect_rtcp(wire))) == parse_compound(wire)


def test_report_interval_bounds() -> None:
    low, high = (lambda n: b"\x00" * n), (lambda n: b"\xff" * n)
    assert report_interval(low) == pytest.approx(2.5 / (math.e - 1.5))
    assert report_interval(high) == pytest.approx(7.5 / (math.e - 1.5))
    assert report_interval(low, initial=True) == pytest.approx(1.25 / (math.e - 1.5))
