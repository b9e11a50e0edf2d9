"""RTCP packets (RFC 3550 §6.4 SR/RR, §6.5 SDES, §6.6 BYE; others kept opaque) and
compound packets (§6.1, validity checks of §A.2).

Pure and symmetric: each packet class has ``parse`` and ``__bytes__``;
:func:`parse_compound` splits a compound packet. Malformed input raises
:class:`~mobilityd.media.errors.RtcpParseError`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import TypeAlias

from mobilityd.media.errors import RtcpParseError

_HEADER = struct.Struct("!BBH")
_SENDER_INFO = struct.Struct("!IQIII")
_REPORT_BLOCK = struct.Struct("!IIIIII")
RTCP_VERSION = 2


class RtcpPacketType(IntEnum):
    """RTCP packet types (RFC 3550 §12.1; RFC 4585 §6.1; RFC 3611 §2)."""

    SR = 200
    RR = 201
    SDES = 202
    BYE = 203
    APP = 204
    RTPFB = 205
    PSFB = 206
    XR = 207


class SdesItemType(IntEnum):
    """SDES item types (RFC 3550 §12.2)."""

    END = 0
    CNAME = 1
    NAME = 2
    EMAIL = 3
    PHONE = 4
    LOC = 5
    TOOL = 6
    NOTE = 7
    PRIV = 8


def _check_padding(padding: bytes) -> None:
    if padding and (len(padding) % 4 or padding[-1] != len(padding)):
        raise RtcpParseError("RTCP padding must be whole words ending with its length (§6.4.1)")


def _header(packet_type: int, count: int, body_len: int, padding: bytes) -> bytes:
    """RFC 3550 §6.4.1 common header; ``length`` is in 32-bit words minus one."""
    total = 4 + body_len + len(padding)
    if total % 4:
        raise RtcpParseError(f"RTCP packet length {total} is not a multiple of 4")
    if count > 31:
        raise RtcpParseError(f"RTCP count {count} does not fit in 5 bits")
    first = (RTCP_VERSION << 6) | (0x20 if padding else 0) | count
    return _HEADER.pack(first, packet_type, total // 4 - 1)


@dataclass(frozen=True, slots=True)
class ReportBlock:
    """Reception report block (RFC 3550 §6.4.1). ``cumulative_lost`` is signed 24-bit."""

    ssrc: int
    fraction_lost: int
    cumulative_lost: int
    highest_sequence: int
    jitter: int
    last_sr: int
    delay_since_last_sr: int

    def __post_init__(self) -> None:
        if not 0 <= self.fraction_lost <= 255:
            raise RtcpParseError(f"fraction lost {self.fraction_lost} out of range")
        if not -(1 << 23) <= self.cumulative_lost < (1 << 23):
            raise RtcpParseError(f"cumulative lost {self.cumulative_lost} out of 24-bit range")

    @classmethod
    def parse(cls, data: bytes, offset: int = 0) -> ReportBlock:
        if len(data) < offset + _REPORT_BLOCK.size:
            raise RtcpParseError("report block truncated")
        ssrc, lost, ext, jitter, lsr, dlsr = _REPORT_BLOCK.unpack_from(data, offset)
        cumulative = lost & 0xFFFFFF
        if cumulative & 0x800000:
            cumulative -= 1 << 24
        return cls(ssrc, lost >> 24, cumulative, ext, jitter, lsr, dlsr)

    def __bytes__(self) -> bytes:
        lost = (self.fraction_lost << 24) | (self.cumulative_lost & 0xFFFFFF)
        return _REPORT_BLOCK.pack(
            self.ssrc, lost, self.highest_sequence, self.jitter, self.last_sr,
            self.delay_since_last_sr,
        )


def _parse_blocks(body: bytes, offset: int, count: int) -> tuple[ReportBlock, ...]:
    if len(body) < offset + count * _REPORT_BLOCK.size:
        raise RtcpParseError(f"{count} report blocks do not fit")
    return tuple(
        ReportBlock.parse(body, offset + i * _REPORT_BLOCK.size) for i in range(count)
    )


@dataclass(frozen=True, slots=True)
class SenderReport:
    """SR (RFC 3550 §6.4.1). ``ntp_timestamp`` is the 64-bit NTP fixed-point value."""

    ssrc: int
    ntp_timestamp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[ReportBlock, ...] = ()
    extension: bytes = b""
    padding: bytes = b""

    packet_type = RtcpPacketType.SR

    @classmethod
    def parse_body(cls, count: int, body: bytes, padding: bytes) -> SenderReport:
        if len(body) < _SENDER_INFO.size:
            raise RtcpParseError("SR sender info truncated")
        ssrc = struct.unpack_from("!I", body)[0]
        ntp, rtp_ts, packets, octets = struct.unpack_from("!QIII", body, 4)
        blocks = _parse_blocks(body, 24, count)
        ext = bytes(body[24 + count * _REPORT_BLOCK.size :])
        return cls(ssrc, ntp, rtp_ts, packets, octets, blocks, ext, padding)

    def __bytes__(self) -> bytes:
        body = b"".join(
            [
                struct.pack(
                    "!IQIII", self.ssrc, self.ntp_timestamp, self.rtp_timestamp,
                    self.packet_count, self.octet_count,
                ),
                *(bytes(b) for b in self.reports),
                self.extension,
            ]
        )
        _check_padding(self.padding)
        return _header(self.packet_type, len(self.reports), len(body), self.padding) + body + (
            self.padding
        )


@dataclass(frozen=True, slots=True)
class ReceiverReport:
    """RR (RFC 3550 §6.4.2)."""

    ssrc: int
    reports: tuple[ReportBlock, ...] = ()
    extension: bytes = b""
    padding: bytes = b""

    packet_type = RtcpPacketType.RR

    @classmethod
    def parse_body(cls, count: int, body: bytes, padding: bytes) -> ReceiverReport:
        if len(body) < 4:
            raise RtcpParseError("RR SSRC truncated")
        ssrc = struct.unpack_from("!I", body)[0]
        blocks = _parse_blocks(body, 4, count)
        return cls(ssrc, blocks, bytes(body[4 + count * _REPORT_BLOCK.size :]), padding)

    def __bytes__(self) -> bytes:
        body = struct.pack("!I", self.ssrc) + b"".join(bytes(b) for b in self.reports)
        body += self.extension
        _check_padding(self.padding)
        return _header(self.packet_type, len(self.reports), len(body), self.padding) + body + (
            self.padding
        )


@dataclass(frozen=True, slots=True)
class SdesItem:
    """One SDES item (RFC 3550 §6.5): type and up to 255 octets of UTF-8 text."""

    item_type: int
    value: bytes

    def __post_init__(self) -> None:
        if not 1 <= self.item_type <= 255:
            raise RtcpParseError(f"SDES item type {self.item_type} invalid")
        if len(self.value) > 255:
            raise RtcpParseError("SDES item longer than 255 octets")


@dataclass(frozen=True, slots=True)
class SdesChunk:
    """One SDES chunk: an SSRC/CSRC and its items (RFC 3550 §6.5)."""

    ssrc: int
    items: tuple[SdesItem, ...]

    def __bytes__(self) -> bytes:
        out = bytearray(struct.pack("!I", self.ssrc))
        for item in self.items:
            out += bytes((item.item_type, len(item.value))) + item.value
        # §6.5: the list ends with one or more null octets up to the next 32-bit boundary.
        out += b"\x00" * (4 - len(out) % 4)
        return bytes(out)


@dataclass(frozen=True, slots=True)
class SourceDescription:
    """SDES (RFC 3550 §6.5)."""

    chunks: tuple[SdesChunk, ...]
    padding: bytes = b""

    packet_type = RtcpPacketType.SDES

    @classmethod
    def parse_body(cls, count: int, body: bytes, padding: bytes) -> SourceDescription:
        chunks = []
        offset = 0
        for _ in range(count):
            if len(body) < offset + 4:
                raise RtcpParseError("SDES chunk SSRC truncated")
            ssrc = struct.unpack_from("!I", body, offset)[0]
            offset += 4
            items = []
            while True:
                if offset >= len(body):
                    raise RtcpParseError("SDES chunk has no END item")
                item_type = body[offset]
                if item_type == SdesItemType.END:
                    offset += 4 - offset % 4
                    if offset > len(body):
                        raise RtcpParseError("SDES chunk padding truncated")
                    break
                if offset + 2 > len(body):
                    raise RtcpParseError("SDES item header truncated")
                length = body[offset + 1]
                end = offset + 2 + length
                if end > len(body):
                    raise RtcpParseError("SDES item value truncated")
                items.append(SdesItem(item_type, bytes(body[offset + 2 : end])))
                offset = end
            chunks.append(SdesChunk(ssrc, tuple(items)))
        if offset != len(body):
            raise RtcpParseError("trailing octets after the SDES chunks")
        return cls(tuple(chunks), padding)

    def __bytes__(self) -> bytes:
        body = b"".join(bytes(c) for c in self.chunks)
        _check_padding(self.padding)
        return _header(self.packet_type, len(self.chunks), len(body), self.padding) + body + (
            self.padding
        )


@dataclass(frozen=True, slots=True)
class Goodbye:
    """BYE (RFC 3550 §6.6): the sources leaving and an optional reason."""

    ssrcs: tuple[int, ...]
    reason: bytes = b""
    padding: bytes = b""

    packet_type = RtcpPacketType.BYE

    @classmethod
    def parse_body(cls, count: int, body: bytes, padding: bytes) -> Goodbye:
        if len(body) < 4 * count:
            raise RtcpParseError("BYE SSRC list truncated")
        ssrcs = struct.unpack_from(f"!{count}I", body)
        offset = 4 * count
        reason = b""
        if offset < len(body):
            length = body[offset]
            if offset + 1 + length > len(body):
                raise RtcpParseError("BYE reason truncated")
            reason = bytes(body[offset + 1 : offset + 1 + length])
            if any(body[offset + 1 + length :]):
                raise RtcpParseError("BYE reason padding is not zero")
        return cls(tuple(ssrcs), reason, padding)

    def __bytes__(self) -> bytes:
        if len(self.reason) > 255:
            raise RtcpParseError("BYE reason longer than 255 octets")
        body = struct.pack(f"!{len(self.ssrcs)}I", *self.ssrcs)
        if self.reason:
            text = bytes((len(self.reason),)) + self.reason
            body += text + b"\x00" * (-len(text) % 4)
        _check_padding(self.padding)
        return _header(self.packet_type, len(self.ssrcs), len(body), self.padding) + body + (
            self.padding
        )


@dataclass(frozen=True, slots=True)
class OpaqueRtcp:
    """An RTCP packet of a type we do not interpret (APP, feedback, XR ...), kept as is."""

    packet_type: int
    count: int
    body: bytes
    padding: bytes = b""

    def __bytes__(self) -> bytes:
        _check_padding(self.padding)
        return _header(self.packet_type, self.count, len(self.body), self.padding) + (
            self.body + self.padding
        )


RtcpPacket: TypeAlias = (
    SenderReport | ReceiverReport | SourceDescription | Goodbye | OpaqueRtcp
)

_PARSERS: dict[int, Callable[[int, bytes, bytes], RtcpPacket]] = {
    RtcpPacketType.SR: SenderReport.parse_body,
    RtcpPacketType.RR: ReceiverReport.parse_body,
    RtcpPacketType.SDES: SourceDescription.parse_body,
    RtcpPacketType.BYE: Goodbye.parse_body,
}


def parse_compound(data: bytes, require_report_first: bool = True) -> tuple[RtcpPacket, ...]:
    """Split and decode a compound RTCP packet (RFC 3550 §6.1, checks of §A.2).

    Checks: version 2 in every packet; the lengths add up exactly to the datagram;
    padding only in the last packet; with ``require_report_first`` the first packet is
    an SR or RR (§6.1). Raises :class:`RtcpParseError`.
    """
    packets: list[RtcpPacket] = []
    offset = 0
    if not data:
        raise RtcpParseError("empty RTCP packet")
    while offset < len(data):
        if len(data) - offset < 4:
            raise RtcpParseError(f"RTCP header truncated at offset {offset}")
        first, packet_type, words = _HEADER.unpack_from(data, offset)
        if first >> 6 != RTCP_VERSION:
            raise RtcpParseError(f"RTCP version {first >> 6} is not 2")
        end = offset + 4 * (words + 1)
        if end > len(data):
            raise RtcpParseError(f"RTCP packet at offset {offset} runs past the datagram")
        padding = b""
        body_end = end
        if first & 0x20:
            if end != len(data):
                raise RtcpParseError("padding bit set on a packet that is not the last")
            pad = data[end - 1]
            if pad == 0 or pad % 4 or offset + 4 + pad > end:
                raise RtcpParseError(f"RTCP padding count {pad} invalid")
            padding = bytes(data[end - pad : end])
            body_end = end - pad
        count = first & 0x1F
        body = bytes(data[offset + 4 : body_end])
        parser = _PARSERS.get(packet_type)
        packet: RtcpPacket
        if parser is None:
            packet = OpaqueRtcp(packet_type, count, body, padding)
        else:
            packet = parser(count, body, padding)
        if not packets and require_report_first and not isinstance(
            packet, SenderReport | ReceiverReport
        ):
            raise RtcpParseError("compound RTCP packet does not start with SR or RR (§6.1)")
        packets.append(packet)
        offset = end
    return tuple(packets)


def build_compound(packets: Iterable[RtcpPacket]) -> bytes:
    """Concatenate RTCP packets into one compound packet (RFC 3550 §6.1)."""
    return b"".join(bytes(p) for p in packets)
