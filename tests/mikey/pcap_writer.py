"""A minimal pure-Python pcap writer for interop tests: Ethernet / IPv4 / UDP frames.

Classic libpcap format (magic 0xa1b2c3d4, link type 1 = Ethernet); IPv4 header
checksum per RFC 791 §3.1; UDP checksum 0 ("not computed", RFC 768).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from pathlib import Path

LINKTYPE_ETHERNET = 1
_ETHERTYPE_IPV4 = 0x0800
_IPPROTO_UDP = 17


def _ipv4_checksum(header: bytes) -> int:
    total: int = sum(struct.unpack(f">{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def udp_frame(payload: bytes, src: str, dst: str, sport: int, dport: int) -> bytes:
    """An Ethernet frame carrying one IPv4/UDP datagram."""
    udp = struct.pack(">HHHH", sport, dport, 8 + len(payload), 0) + payload
    src_ip = bytes(int(part) for part in src.split("."))
    dst_ip = bytes(int(part) for part in dst.split("."))
    header = struct.pack(
        ">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, _IPPROTO_UDP, 0, src_ip, dst_ip
    )
    header = header[:10] + struct.pack(">H", _ipv4_checksum(header)) + header[12:]
    ethernet = bytes.fromhex("020000000002020000000001") + struct.pack(">H", _ETHERTYPE_IPV4)
    return ethernet + header + udp


def write_pcap(path: Path, frames: Iterable[bytes], start: int = 1_700_000_000) -> None:
    """Write Ethernet frames to a pcap file, one second apart."""
    with path.open("wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, LINKTYPE_ETHERNET))
        for index, frame in enumerate(frames):
            out.write(struct.pack("<IIII", start + index, 0, len(frame), len(frame)))
            out.write(frame)


def sip_invite_with_key_mgmt(key_mgmt_value: str, call_id: str = "mikey-interop-1") -> bytes:
    """A SIP INVITE whose SDP carries ``a=key-mgmt:<value>`` at session level (RFC 4567 §3.1)."""
    sdp = (
        "v=0\r\n"
        "o=alice 2890844526 2890844526 IN IP4 192.0.2.1\r\n"
        "s=-\r\n"
        "c=IN IP4 192.0.2.1\r\n"
        "t=0 0\r\n"
        f"a=key-mgmt:{key_mgmt_value}\r\n"
        "m=audio 49170 RTP/SAVP 0\r\n"
        "a=rtpmap:0 PCMU/8000\r\n"
    )
    headers = (
        "INVITE sip:bob@192.0.2.2 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds\r\n"
        "Max-Forwards: 70\r\n"
        "To: Bob <sip:bob@192.0.2.2>\r\n"
        "From: Alice <sip:alice@192.0.2.1>;tag=1928301774\r\n"
        f"Call-ID: {call_id}\r\n"
        "CSeq: 314159 INVITE\r\n"
        "Contact: <sip:alice@192.0.2.1>\r\n"
        "Content-Type: application/sdp\r\n"
        f"Content-Length: {len(sdp.encode())}\r\n"
        "\r\n"
    )
    return (headers + sdp).encode()
