"""RTP stream state, sans-I/O: the sender's packetizer and the receiver's statistics.

:class:`RtpPacketizer` numbers packets (RFC 3550 §5.1: sequence +1 per packet from a
configurable start, e.g. near 65535 to exercise the SRTP ROC wrap; timestamp on the
8 kHz media clock derived from the frame number, so it never drifts and a skipped
frame leaves a timestamp gap, not a sequence gap). :class:`ReceptionStats` keeps the
receiver-side figures of an RR report block (RFC 3550 §6.4.1, §A.3, §A.8).
"""

from __future__ import annotations

from dataclasses import dataclass

from mobilityd.media.errors import MediaLocalError
from mobilityd.media.rtcp import ReportBlock
from mobilityd.media.rtp import build_rtp
from mobilityd.media.stats import HALF_SEQ
from mobilityd.media.tone import FRAME_SAMPLES, SAMPLE_RATE


@dataclass(frozen=True, slots=True)
class StreamParams:
    """Fixed parameters of one outgoing RTP stream."""

    ssrc: int
    payload_type: int = 0
    first_sequence: int = 0
    first_timestamp: int = 0
    samples_per_frame: int = FRAME_SAMPLES
    clock_rate: int = SAMPLE_RATE

    def __post_init__(self) -> None:
        if not 0 <= self.ssrc <= 0xFFFFFFFF or not 0 <= self.payload_type <= 127:
            raise MediaLocalError("SSRC or payload type out of range")
        if not 0 <= self.first_sequence <= 0xFFFF or not 0 <= self.first_timestamp <= 0xFFFFFFFF:
            raise MediaLocalError("first sequence number or timestamp out of range")


class RtpPacketizer:
    """Builds the RTP packets of one stream (RFC 3550 §5.1), one per frame."""

    __slots__ = ("octets_sent", "packets_sent", "params")

    def __init__(self, params: StreamParams) -> None:
        self.params = params
        self.packets_sent = 0
        self.octets_sent = 0

    @property
    def next_sequence(self) -> int:
        return (self.params.first_sequence + self.packets_sent) & 0xFFFF

    def timestamp_for_frame(self, frame: int) -> int:
        return (self.params.first_timestamp + frame * self.params.samples_per_frame) & 0xFFFFFFFF

    def packet(self, frame: int, payload: bytes, *, marker: bool = False) -> bytes:
        """RTP packet carrying ``payload`` for frame number ``frame`` (0-based)."""
        p = self.params
        data = build_rtp(
            p.payload_type,
            p.first_sequence + self.packets_sent,
            p.first_timestamp + frame * p.samples_per_frame,
            p.ssrc,
            payload,
            marker=marker,
        )
        self.packets_sent += 1
        self.octets_sent += len(payload)
        return data


class ReceptionStats:
    """Receiver statistics of one source (RFC 3550 §A.3 loss, §A.8 interarrival jitter).

    ``arrival`` is the arrival time in seconds (any monotonic origin); the jitter is kept
    in timestamp units as §A.8 does.
    """

    __slots__ = (
        "_expected_prior",
        "_received_prior",
        "_transit",
        "base_index",
        "clock_rate",
        "highest_index",
        "jitter",
        "received",
        "ssrc",
    )

    def __init__(self, ssrc: int, clock_rate: int = SAMPLE_RATE) -> None:
        self.ssrc = ssrc
        self.clock_rate = clock_rate
        self.base_index: int | None = None
        self.highest_index = 0
        self.received = 0
        self.jitter = 0.0
        self._transit: float | None = None
        self._expected_prior = 0
        self._received_prior = 0

    def update(self, sequence: int, timestamp: int, arrival: float) -> None:
        """Account one received packet (RFC 3550 §A.1/§A.8)."""
        if self.base_index is None:
            self.base_index = self.highest_index = sequence
        else:
            # estimate_index() inlined (RFC 3711 §3.3.1): this runs for every packet
            highest = self.highest_index
            roc, highest_seq = highest >> 16, highest & 0xFFFF
            if highest_seq < HALF_SEQ:
                if sequence - highest_seq > HALF_SEQ and roc:
                    roc -= 1
            elif highest_seq - HALF_SEQ > sequence:
                roc += 1
            index = (roc << 16) | sequence
            if index > highest:
                self.highest_index = index
        self.received += 1
        transit = arrival * self.clock_rate - timestamp
        if self._transit is not None:
            delta = abs(transit - self._transit)
            self.jitter += (delta - self.jitter) / 16
        self._transit = transit

    @property
    def expected(self) -> int:
        return 0 if self.base_index is None else self.highest_index - self.base_index + 1

    @property
    def cumulative_lost(self) -> int:
        return self.expected - self.received

    def report_block(self, last_sr: int = 0, delay_since_last_sr: int = 0) -> ReportBlock:
        """RR report block (RFC 3550 §6.4.1); advances the "since last report" interval."""
        expected = self.expected
        expected_interval = expected - self._expected_prior
        received_interval = self.received - self._received_prior
        self._expected_prior, self._received_prior = expected, self.received
        lost_interval = expected_interval - received_interval
        fraction = 0 if expected_interval <= 0 or lost_interval <= 0 else (
            (lost_interval << 8) // expected_interval
        )
        cumulative = max(-(1 << 23), min(self.cumulative_lost, (1 << 23) - 1))
        return ReportBlock(
            ssrc=self.ssrc,
            fraction_lost=min(fraction, 255),
            cumulative_lost=cumulative,
            highest_sequence=self.highest_index & 0xFFFFFFFF,
            jitter=int(self.jitter),
            last_sr=last_sr,
            delay_since_last_sr=delay_since_last_sr,
        )
