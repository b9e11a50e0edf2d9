"""RTCP for one call (asyncio adapter): SR/RR + SDES over the endpoint at the RFC 3550
§6.3.1 interval, reception statistics from the RTP we receive, and the peer's reports
accounted (LSR/DLSR -> round-trip time). Reports go through SRTCP because the endpoint
protects everything it sends (RFC 3711 §3.4).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from mobilityd.media.endpoint import MediaEndpoint
from mobilityd.media.errors import RtcpParseError
from mobilityd.media.events import Address
from mobilityd.media.reports import RtcpReporter, SenderState, report_interval
from mobilityd.media.rtcp import Goodbye, ReceiverReport, SenderReport, build_compound
from mobilityd.media.rtcp import parse_compound as parse_rtcp
from mobilityd.media.stream import ReceptionStats

_MAX_SOURCES = 16  # a call has a handful of SSRCs; more is ignored, not tracked


class RtcpSession:
    """Periodic reports for ``endpoint`` (feed :meth:`on_rtp` / :meth:`on_rtcp` from the
    endpoint's callbacks). ``sender`` tells what we sent (None: receive only)."""

    def __init__(
        self,
        endpoint: MediaEndpoint,
        reporter: RtcpReporter,
        sender: Callable[[], SenderState | None],
        rng: Callable[[int], bytes],
        *,
        wall: Callable[[], float] = time.time,
        interval_scale: float = 1.0,
    ) -> None:
        self.endpoint = endpoint
        self.reporter = reporter
        self.sender = sender
        self.rng = rng
        self.wall = wall
        self.interval_scale = interval_scale
        self.receptions: dict[int, ReceptionStats] = {}
        self.reports_sent = 0
        self.reports_received = 0
        self.malformed = 0
        self.peer_reports: list[SenderReport | ReceiverReport] = []
        self.byes: list[Goodbye] = []
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def on_rtp(self, rtp: bytes, source: Address) -> None:
        """An authenticated RTP packet arrived (RFC 3550 §A.1, §A.8 statistics)."""
        ssrc = int.from_bytes(rtp[8:12], "big")
        stats = self.receptions.get(ssrc)
        if stats is None:
            if len(self.receptions) >= _MAX_SOURCES:
                return
            stats = self.receptions[ssrc] = ReceptionStats(ssrc)
        loop = self._loop or asyncio.get_running_loop()
        stats.update((rtp[2] << 8) | rtp[3], int.from_bytes(rtp[4:8], "big"), loop.time())

    def on_rtcp(self, rtcp: bytes, source: Address) -> None:
        """An authenticated RTCP compound arrived."""
        try:
            packets = parse_rtcp(rtcp)
        except RtcpParseError:
            self.malformed += 1
            return
        loop = self._loop or asyncio.get_running_loop()
        self.reporter.received(packets, loop.time(), self.wall())
        self.reports_received += 1
        for packet in packets:
            if isinstance(packet, SenderReport | ReceiverReport):
                self.peer_reports.append(packet)
            elif isinstance(packet, Goodbye):
                self.byes.append(packet)
        del self.peer_reports[:-8]

    def start(self) -> None:
        """First report after half the minimum interval (RFC 3550 §6.2), then periodic."""
        self._loop = asyncio.get_running_loop()
        self._arm(initial=True)

    def _arm(self, *, initial: bool = False) -> None:
        loop = self._loop or asyncio.get_running_loop()
        delay = report_interval(self.rng, initial=initial) * self.interval_scale
        self._timer = loop.call_later(delay, self._fire)

    def _fire(self) -> None:
        self.send_report()
        self._arm()

    def send_report(self) -> None:
        """Build and send one SR/RR + SDES compound now."""
        loop = self._loop or asyncio.get_running_loop()
        compound = self.reporter.build(
            loop.time(), self.wall(), self.sender(), self.receptions.values()
        )
        if self.endpoint.send_rtcp(compound):
            self.reports_sent += 1

    def stop(self, *, send_bye: bool = True, reason: bytes = b"") -> None:
        """Stop reporting; with ``send_bye`` a final report + BYE (RFC 3550 §6.6)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if send_bye:
            loop = self._loop or asyncio.get_running_loop()
            report = parse_rtcp(self.reporter.build(
                loop.time(), self.wall(), self.sender(), self.receptions.values()
            ))
            bye = Goodbye((self.reporter.ssrc,), reason)
            self.endpoint.send_rtcp(build_compound([*report, bye]))
