"""RTP data packets: codec for the fixed header (RFC 3550 §5.1), CSRC list, header
extension (§5.3.1) and padding, plus RTP/RTCP demultiplexing on one port (RFC 5761 §4).

Pure and symmetric: ``RtpPacket.parse(data)`` and ``bytes(packet)``; a packet that
cannot be parsed raises :class:`~mobilityd.media.errors.RtpParseError`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from mobilityd.media.errors import RtpParseError

RTP_VERSION = 2
FIXED_HEADER_LEN = 12
_FIXED = struct.Struct("!BBHII")
_EXT_HEADER = struct.Struct("!HH")

#: RFC 5761 §4: with RTP/RTCP multiplexing, a second octet in 192..223 is an RTCP
#: packet type (SR=200 .. and the future range 194-199, 209-223); RTP payload types
#: 64-95 (which would collide when the marker bit is set) must not be used.
RTCP_MUX_FIRST = 192
RTCP_MUX_LAST = 223


def is_rtcp(data: bytes) -> bool:
    """RFC 5761 §4: tell an RTCP packet from an RTP one arriving on a muxed port."""
    return len(data) >= 2 and RTCP_MUX_FIRST <= data[1] <= RTCP_MUX_LAST


@dataclass(frozen=True, slots=True)
class HeaderExtension:
    """RFC 3550 §5.3.1 header extension: 16-bit profile-defined value plus data.

    ``data`` length must be a multiple of 4 (the length field counts 32-bit words).
    """

    profile: int
    data: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.profile <= 0xFFFF:
            raise RtpParseError(f"extension profile {self.profile} out of range")
        if len(self.data) % 4 or len(self.data) > 4 * 0xFFFF:
            raise RtpParseError(f"extension length {len(self.data)} is not a word multiple")


@dataclass(frozen=True, slots=True)
class RtpPacket:
    """One RTP data packet (RFC 3550 §5.1).

    ``padding`` holds the padding octets exactly as on the wire (the last one is the
    count, §5.1 "padding (P)"); it is empty when the P bit is clear.
    """

    payload_type: int
    sequence_number: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrcs: tuple[int, ...] = ()
    extension: HeaderExtension | None = None
    padding: bytes = field(default=b"")

    def __post_init__(self) -> None:
        if not 0 <= self.payload_type <= 127:
            raise RtpParseError(f"payload type {self.payload_type} out of range 0..127")
        if not 0 <= self.sequence_number <= 0xFFFF:
            raise RtpParseError(f"sequence number {self.sequence_number} out of range")
        if not 0 <= self.timestamp <= 0xFFFFFFFF:
            raise RtpParseError(f"timestamp {self.timestamp} out of range")
        if not 0 <= self.ssrc <= 0xFFFFFFFF:
            raise RtpParseError(f"SSRC {self.ssrc} out of range")
        if len(self.csrcs) > 15 or any(not 0 <= c <= 0xFFFFFFFF for c in self.csrcs):
            raise RtpParseError("at most 15 CSRCs of 32 bits (RFC 3550 §5.1 CC)")
        if self.padding and (len(self.padding) > 255 or self.padding[-1] != len(self.padding)):
            raise RtpParseError("padding must end with its own length (RFC 3550 §5.1 P)")

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        """Decode one RTP packet; raise :class:`RtpParseError` on any malformation."""
        if len(data) < FIXED_HEADER_LEN:
            raise RtpParseError(f"RTP packet of {len(data)} octets is shorter than 12")
        first, second, seq, ts, ssrc = _FIXED.unpack_from(data)
        if first >> 6 != RTP_VERSION:
            raise RtpParseError(f"RTP version {first >> 6} is not 2")
        has_padding = bool(first & 0x20)
        has_extension = bool(first & 0x10)
        csrc_count = first & 0x0F
        offset = FIXED_HEADER_LEN + 4 * csrc_count
        if len(data) < offset:
            raise RtpParseError(f"CSRC list of {csrc_count} truncated")
        csrcs = struct.unpack_from(f"!{csrc_count}I", data, FIXED_HEADER_LEN)
        extension = None
        if has_extension:
            if len(data) < offset + 4:
                raise RtpParseError("header extension header truncated")
            profile, words = _EXT_HEADER.unpack_from(data, offset)
            end = offset + 4 + 4 * words
            if len(data) < end:
                raise RtpParseError("header extension truncated")
            extension = HeaderExtension(profile, bytes(data[offset + 4 : end]))
            offset = end
        end = len(data)
        padding = b""
        if has_padding:
            count = data[-1]
            if count == 0 or offset + count > end:
                raise RtpParseError(f"padding count {count} invalid for the packet length")
            padding = bytes(data[end - count :])
            end -= count
        return cls(
            payload_type=second & 0x7F,
            sequence_number=seq,
            timestamp=ts,
            ssrc=ssrc,
            payload=bytes(data[offset:end]),
            marker=bool(second & 0x80),
            csrcs=tuple(csrcs),
            extension=extension,
            padding=padding,
        )

    def __bytes__(self) -> bytes:
        first = (
            (RTP_VERSION << 6)
            | (0x20 if self.padding else 0)
            | (0x10 if self.extension is not None else 0)
            | len(self.csrcs)
        )
        second = (0x80 if self.marker else 0) | self.payload_type
        parts = [_FIXED.pack(first, second, self.sequence_number, self.timestamp, self.ssrc)]
        if self.csrcs:
            parts.append(struct.pack(f"!{len(self.csrcs)}I", *self.csrcs))
        if self.extension is not None:
            ext = self.extension
            parts.append(_EXT_HEADER.pack(ext.profile, len(ext.data) // 4))
            parts.append(ext.data)
        parts.append(self.payload)
        parts.append(self.padding)
        return b"".join(parts)


def build_rtp(
    payload_type: int, sequence_number: int, timestamp: int, ssrc: int, payload: bytes,
    *, marker: bool = False,
) -> bytes:
    """Fast path for the common case (no CSRC, extension or padding), RFC 3550 §5.1.

    Sequence number and timestamp are taken modulo 2^16 and 2^32: both wrap around on
    the wire (§5.1), so callers may keep counting past the limit.
    """
    if not 0 <= payload_type <= 127 or not 0 <= ssrc <= 0xFFFFFFFF:
        raise RtpParseError(f"payload type {payload_type} or SSRC {ssrc} out of range")
    return (
        _FIXED.pack(
            0x80,
            (0x80 if marker else 0) | payload_type,
            sequence_number & 0xFFFF,
            timestamp & 0xFFFFFFFF,
            ssrc,
        )
        + payload
    )
