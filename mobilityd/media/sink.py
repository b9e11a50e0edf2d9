"""Audio sinks for received RTP: G.711 decode into a WAV recorder (or any PCM writer).

Packets are written in RTP-timestamp order as they come: a gap in timestamps (lost or
not yet arrived packets) is filled with silence up to ``max_gap_samples``; a packet
older than what was already written (late, duplicated) is dropped and counted. This is
a recorder for checks and demos, not a jitter buffer.
"""

from __future__ import annotations

from typing import Protocol

from mobilityd.media import g711
from mobilityd.media.errors import RtpParseError
from mobilityd.media.g711 import G711PayloadType
from mobilityd.media.rtp import RtpPacket

MAX_GAP_SAMPLES = 8000  # 1 s at 8 kHz


class PcmWriter(Protocol):
    def write_frame(self, pcm: bytes) -> None: ...


class G711Sink:
    """Decodes PCMU/PCMA RTP packets of one SSRC and writes PCM in timestamp order."""

    def __init__(self, writer: PcmWriter, max_gap_samples: int = MAX_GAP_SAMPLES) -> None:
        self.writer = writer
        self.max_gap_samples = max_gap_samples
        self.ssrc: int | None = None
        self._next_timestamp: int | None = None
        self.packets_written = 0
        self.late_or_duplicate = 0
        self.silence_samples = 0
        self.ignored = 0

    def __call__(self, rtp: bytes, source: object = None) -> None:
        """``on_rtp`` callback of :class:`~mobilityd.media.endpoint.MediaEndpoint`."""
        try:
            packet = RtpPacket.parse(rtp)
        except RtpParseError:
            self.ignored += 1
            return
        if packet.payload_type not in (G711PayloadType.PCMU, G711PayloadType.PCMA):
            self.ignored += 1
            return
        if self.ssrc is None:
            self.ssrc = packet.ssrc
        elif packet.ssrc != self.ssrc:
            self.ignored += 1
            return
        expected = self._next_timestamp
        if expected is not None:
            ahead = (packet.timestamp - expected) & 0xFFFFFFFF
            if ahead >= 1 << 31:  # behind what was written (RFC 3550 §5.1 modular time)
                self.late_or_duplicate += 1
                return
            gap = min(ahead, self.max_gap_samples)
            if gap:
                self.writer.write_frame(b"\x00\x00" * gap)
                self.silence_samples += gap
        pcm = g711.decode(packet.payload, G711PayloadType(packet.payload_type))
        self.writer.write_frame(pcm)
        self.packets_written += 1
        self._next_timestamp = (packet.timestamp + len(packet.payload)) & 0xFFFFFFFF
