"""Per-stream SRTP counters and packet-index tracking (RFC 3711 §3.3.1, RFC 3550 §A.3).

The packet index of an SRTP packet is ``i = 2^16 * ROC + SEQ`` (RFC 3711 §3.3.1); the
receiver estimates the ROC of each packet from the highest sequence number seen so far
with the algorithm of RFC 3711 §3.3.1 / Appendix A. Loss is estimated as in RFC 3550
§A.3: packets expected (highest index - first index + 1) minus packets received.
"""

from __future__ import annotations

from dataclasses import dataclass

HALF_SEQ = 1 << 15


def estimate_index(roc: int, highest_seq: int, seq: int) -> int:
    """RFC 3711 §3.3.1: guess the index of ``seq`` given the current ROC and s_l."""
    if highest_seq < HALF_SEQ:
        guess = roc - 1 if seq - highest_seq > HALF_SEQ else roc
    else:
        guess = roc + 1 if highest_seq - HALF_SEQ > seq else roc
    return (max(guess, 0) << 16) | seq


@dataclass(frozen=True, slots=True)
class StreamCounterSnapshot:
    """A frozen copy of one stream's counters, for the control API and tests."""

    ssrc: int
    packets: int
    octets: int
    auth_failures: int
    replays: int
    lost: int
    first_index: int | None
    last_index: int | None
    rtcp_packets: int
    rtcp_octets: int
    rtcp_auth_failures: int

    @property
    def roc(self) -> int | None:
        """ROC of the highest index seen (RFC 3711 §3.3.1), ``None`` before any packet."""
        return None if self.last_index is None else self.last_index >> 16


class StreamCounters:
    """Mutable per-SSRC counters kept by :class:`~mobilityd.media.srtp.SrtpSession`.

    ``octets`` counts the plain RTP packets (header + payload) protected or recovered.
    ``initial_roc`` is the ROC to assume for the first packet (set through the ROC shim).
    """

    __slots__ = (
        "auth_failures",
        "first_index",
        "initial_roc",
        "last_index",
        "octets",
        "packets",
        "replays",
        "rtcp_auth_failures",
        "rtcp_octets",
        "rtcp_packets",
        "ssrc",
    )

    def __init__(self, ssrc: int, initial_roc: int = 0) -> None:
        self.ssrc = ssrc
        self.initial_roc = initial_roc
        self.packets = 0
        self.octets = 0
        self.auth_failures = 0
        self.replays = 0
        self.first_index: int | None = None
        self.last_index: int | None = None
        self.rtcp_packets = 0
        self.rtcp_octets = 0
        self.rtcp_auth_failures = 0

    def index_of(self, seq: int) -> int:
        """Packet index that ``seq`` gets (RFC 3711 §3.3.1), without recording it."""
        last = self.last_index
        if last is None:
            return (self.initial_roc << 16) | seq
        roc, highest = last >> 16, last & 0xFFFF  # estimate_index() inlined: per packet
        if highest < HALF_SEQ:
            if seq - highest > HALF_SEQ and roc:
                roc -= 1
        elif highest - HALF_SEQ > seq:
            roc += 1
        return (roc << 16) | seq

    def accept(self, seq: int, octets: int) -> int:
        """Count one packet with sequence number ``seq``; return its packet index.

        The fast path of :meth:`index_of` + :meth:`record` (RFC 3711 §3.3.1 estimate).
        """
        last = self.last_index
        if last is None:
            index = (self.initial_roc << 16) | seq
            self.first_index = self.last_index = index
        else:
            roc = last >> 16
            highest = last & 0xFFFF
            if highest < HALF_SEQ:
                if seq - highest > HALF_SEQ and roc:
                    roc -= 1
            elif highest - HALF_SEQ > seq:
                roc += 1
            index = (roc << 16) | seq
            if index > last:
                self.last_index = index
            elif self.first_index is not None and index < self.first_index:
                self.first_index = index
        self.packets += 1
        self.octets += octets
        return index

    def record(self, index: int, octets: int) -> None:
        """Count one packet with packet index ``index``."""
        self.packets += 1
        self.octets += octets
        if self.first_index is None or index < self.first_index:
            self.first_index = index
        if self.last_index is None or index > self.last_index:
            self.last_index = index

    def reset_roc(self, roc: int) -> None:
        """Forget the index history and start again at ``roc`` (after a ROC shim set)."""
        self.initial_roc = roc
        self.first_index = None
        self.last_index = None

    @property
    def lost(self) -> int:
        """RFC 3550 §A.3: expected minus received (never negative)."""
        if self.first_index is None or self.last_index is None:
            return 0
        return max(0, self.last_index - self.first_index + 1 - self.packets)

    def snapshot(self) -> StreamCounterSnapshot:
        return StreamCounterSnapshot(
            ssrc=self.ssrc,
            packets=self.packets,
            octets=self.octets,
            auth_failures=self.auth_failures,
            replays=self.replays,
            lost=self.lost,
            first_index=self.first_index,
            last_index=self.last_index,
            rtcp_packets=self.rtcp_packets,
            rtcp_octets=self.rtcp_octets,
            rtcp_auth_failures=self.rtcp_auth_failures,
        )
