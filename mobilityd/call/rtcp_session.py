"""SRTCP reports of one call (RFC 3550 §6.4, RFC 3711 §3.4).

:class:`CallRtcp` keeps receiver statistics per remote SSRC (RFC 3550 §A.3, §A.8) from
the authenticated RTP the endpoint delivers, accounts received compounds (the peer's
SR for LSR/DLSR, round-trip time), and builds our SR (sender info from the paced
sender) + report blocks + SDES CNAME with :class:`mobilityd.media.reports.RtcpReporter`.
:meth:`CallRtcp.run` sends one compound per RFC 3550 §6.3.1 interval through the media
endpoint (SRTCP-protected there; muxed or on port + 1, RFC 5761). Times come in:
``now`` from the event loop (monotonic), ``wall`` Unix time for NTP timestamps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from mobilityd.media.endpoint import MediaEndpoint
from mobilityd.media.errors import RtcpParseError
from mobilityd.media.pacing import PacedRtpSender
from mobilityd.media.reports import RtcpReporter, SenderState, report_interval
from mobilityd.media.rtcp import parse_compound
from mobilityd.media.stream import ReceptionStats
from mobilityd.mikey.session import Rng

__all__ = ["CallRtcp"]

MAX_SOURCES = 8  # report blocks kept (one peer, a few SSRCs at most)


class CallRtcp:
    """Reports of one call (module docstring)."""

    def __init__(self, ssrc: int, cname: bytes, sender: PacedRtpSender | None = None) -> None:
        self.reporter = RtcpReporter(ssrc, cname)
        self.sender = sender
        self.sources: dict[int, ReceptionStats] = {}
        self.malformed = 0
        self.reports_sent = 0

    def rtp_received(self, plain: bytes, now: float) -> None:
        """Account an authenticated RTP packet (header already checked by SRTP/RTP)."""
        if len(plain) < 12:
            return
        ssrc = int.from_bytes(plain[8:12], "big")
        stats = self.sources.get(ssrc)
        if stats is None:
            if len(self.sources) >= MAX_SOURCES:
                return
            stats = self.sources[ssrc] = ReceptionStats(ssrc)
        stats.update(int.from_bytes(plain[2:4], "big"), int.from_bytes(plain[4:8], "big"), now)

    def rtcp_received(self, plain: bytes, now: float, wall: float) -> None:
        """Account an authenticated compound; an unparseable one is counted, dropped."""
        try:
            packets = parse_compound(plain)
        except RtcpParseError:
            self.malformed += 1
            return
        self.reporter.received(packets, now, wall)

    def build(self, now: float, wall: float) -> bytes:
        """Our compound: SR when we send media, else RR; SDES CNAME."""
        sent = None
        sender = self.sender
        if sender is not None and sender.packetizer.packets_sent:
            packetizer = sender.packetizer
            frame = sender.handle.frame if sender.handle is not None else 0
            sent = SenderState(packetizer.params.ssrc, packetizer.packets_sent,
                               packetizer.octets_sent, packetizer.timestamp_for_frame(frame))
        return self.reporter.build(now, wall, sent, self.sources.values())

    def send_report(self, endpoint: MediaEndpoint, now: float, wall: float) -> bool:
        sent = endpoint.send_rtcp(self.build(now, wall))
        self.reports_sent += int(sent)
        return sent

    async def run(self, endpoint: MediaEndpoint, rng: Rng, wall: Callable[[], float]) -> None:
        """Send reports at RFC 3550 §6.3.1 intervals until cancelled."""
        loop = asyncio.get_running_loop()
        initial = True
        while True:
            await asyncio.sleep(report_interval(rng, initial=initial))
            initial = False
            self.send_report(endpoint, loop.time(), wall())
