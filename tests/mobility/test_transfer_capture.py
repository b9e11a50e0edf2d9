"""The wire check of the transfer netns tests (:mod:`tests.mobility.transfer_capture`):
which datagrams count as RTP, and what counts as a second encryption of one (SSRC,
index) (RFC 3711 §9.1)."""

from __future__ import annotations

from tests.mobility.transfer_capture import index_reuse, rtp_fields


def ipv4_udp(payload: bytes) -> bytes:
    """A minimal IPv4 header (IHL 5, protocol UDP) + UDP header + ``payload``."""
    ip = bytes([0x45, 0, 0, 20 + 8 + len(payload), 0, 0, 0, 0, 64, 17, 0, 0,
                10, 71, 1, 2, 10, 71, 3, 2])
    return ip + bytes(8) + payload


def rtp(seq: int, ssrc: int, body: bytes) -> bytes:
    return bytes([0x80, 0x00]) + seq.to_bytes(2, "big") + bytes(4) + ssrc.to_bytes(4, "big") + body


def test_rtp_fields_of_rtp_only() -> None:
    ssrc, seq, digest = rtp_fields(ipv4_udp(rtp(65535, 0xA1, b"x" * 20))) or (0, 0, "")
    assert (ssrc, seq) == (0xA1, 65535) and len(digest) == 16
    assert rtp_fields(ipv4_udp(bytes([0x80, 200]) + bytes(22))) is None  # SRTCP (RR)
    assert rtp_fields(ipv4_udp(b"INVITE sip:bob@b.test SIP/2.0\r\n")) is None
    assert rtp_fields(ipv4_udp(bytes([1, 1]) + bytes(40))) is None  # a hand-off token
    assert rtp_fields(ipv4_udp(rtp(1, 2, b""))[:30]) is None  # truncated
    assert rtp_fields(bytes([0x60]) + bytes(60)) is None  # IPv6: not captured


def test_index_reuse_is_two_ciphertexts_for_one_index() -> None:
    first = rtp_fields(ipv4_udp(rtp(7, 0xA1, b"first")))
    again = rtp_fields(ipv4_udp(rtp(7, 0xA1, b"first")))  # re-sent / fanned out / forwarded
    other = rtp_fields(ipv4_udp(rtp(7, 0xA1, b"other")))  # same index, other keystream use
    next_ = rtp_fields(ipv4_udp(rtp(8, 0xA1, b"other")))
    elsewhere = rtp_fields(ipv4_udp(rtp(7, 0xB2, b"other")))  # another SSRC
    assert first and again and other and next_ and elsewhere
    assert index_reuse([first, again, next_, elsewhere]) == []
    assert index_reuse([first, again, other, next_]) == [(0xA1, 7)]
