"""RTCP reports, sans-I/O (RFC 3550 §6.4): build SR/RR + SDES CNAME compounds from our
counters and account received SRs for the LSR/DLSR fields and round-trip time.

Times come in: ``wall`` (Unix seconds, for the NTP timestamp of §4) and ``now``
(monotonic seconds, for delays). The report interval follows §6.2/§6.3.1 for a
two-party call (minimum 5 s, randomised 0.5..1.5, the first one halved) with the
randomness injected as ``rng(n) -> bytes``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from mobilityd.media.rtcp import (
    ReceiverReport,
    RtcpPacket,
    SdesChunk,
    SdesItem,
    SdesItemType,
    SenderReport,
    SourceDescription,
    build_compound,
)
from mobilityd.media.stream import ReceptionStats

NTP_UNIX_OFFSET = 2_208_988_800  # seconds from 1900-01-01 to 1970-01-01 (RFC 3550 §4)
MIN_INTERVAL = 5.0  # RFC 3550 §6.2 Tmin
COMPENSATION = math.e - 1.5  # RFC 3550 §6.3.1


def ntp_timestamp(wall: float) -> int:
    """64-bit NTP fixed-point timestamp of Unix time ``wall`` (RFC 3550 §4)."""
    seconds = int(wall) + NTP_UNIX_OFFSET
    fraction = int((wall - int(wall)) * (1 << 32)) & 0xFFFFFFFF
    return ((seconds & 0xFFFFFFFF) << 32) | fraction


def middle_32(ntp: int) -> int:
    """The LSR form of an NTP timestamp: its middle 32 bits (RFC 3550 §6.4.1)."""
    return (ntp >> 16) & 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class SenderState:
    """What we sent on one SSRC, for the SR sender info (RFC 3550 §6.4.1)."""

    ssrc: int
    packets: int
    octets: int
    rtp_timestamp: int


class RtcpReporter:
    """Builds our compound reports and remembers the peer's last SR per SSRC."""

    def __init__(self, ssrc: int, cname: bytes) -> None:
        self.ssrc = ssrc
        self.cname = cname
        self._last_sr: dict[int, tuple[int, float]] = {}  # ssrc -> (LSR, arrival)
        self.round_trip: float | None = None
        self.reports_built = 0

    def received(self, packets: Iterable[RtcpPacket], now: float, wall: float) -> None:
        """Account a received compound (already SRTCP-unprotected and parsed)."""
        for packet in packets:
            if isinstance(packet, SenderReport):
                self._last_sr[packet.ssrc] = (middle_32(packet.ntp_timestamp), now)
            if isinstance(packet, SenderReport | ReceiverReport):
                for block in packet.reports:
                    if block.ssrc == self.ssrc and block.last_sr:
                        arrival = middle_32(ntp_timestamp(wall))
                        rtt_units = (arrival - block.last_sr - block.delay_since_last_sr) & (
                            0xFFFFFFFF
                        )
                        if rtt_units < 1 << 31:
                            self.round_trip = rtt_units / 65536

    def build(
        self,
        now: float,
        wall: float,
        sent: SenderState | None,
        receptions: Iterable[ReceptionStats] = (),
    ) -> bytes:
        """SR (if we sent media) or RR, with one block per source, plus SDES CNAME."""
        blocks = []
        for stats in receptions:
            last = self._last_sr.get(stats.ssrc)
            lsr, dlsr = (0, 0) if last is None else (last[0], int((now - last[1]) * 65536))
            blocks.append(stats.report_block(lsr, dlsr & 0xFFFFFFFF))
        first: RtcpPacket
        if sent is not None and sent.packets:
            first = SenderReport(
                ssrc=self.ssrc,
                ntp_timestamp=ntp_timestamp(wall),
                rtp_timestamp=sent.rtp_timestamp & 0xFFFFFFFF,
                packet_count=sent.packets & 0xFFFFFFFF,
                octet_count=sent.octets & 0xFFFFFFFF,
                reports=tuple(blocks[:31]),
            )
        else:
            first = ReceiverReport(self.ssrc, tuple(blocks[:31]))
        sdes = SourceDescription(
            (SdesChunk(self.ssrc, (SdesItem(SdesItemType.CNAME, self.cname[:255]),)),)
        )
        self.reports_built += 1
        return build_compound([first, sdes])


def report_interval(rng: Callable[[int], bytes], *, initial: bool = False) -> float:
    """Seconds until the next report (RFC 3550 §6.3.1 for a two-member session:
    Tmin = 5 s, halved for the first report, times a uniform 0.5..1.5, divided by e-3/2)."""
    interval = MIN_INTERVAL / 2 if initial else MIN_INTERVAL
    uniform = int.from_bytes(rng(4), "big") / 0xFFFFFFFF
    return interval * (0.5 + uniform) / COMPENSATION
