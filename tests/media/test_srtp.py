"""SRTP/SRTCP through pylibsrtp (RFC 3711): vectors of Appendix B, suites, counters,
typed errors, and the (SSRC, index) uniqueness guard."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import struct

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from mobilityd.media.errors import (
    MediaLocalError,
    SrtpAuthError,
    SrtpConfigError,
    SrtpError,
    SrtpIndexReuseError,
    SrtpReplayError,
)
from mobilityd.media.rtcp import ReceiverReport, build_compound
from mobilityd.media.rtp import build_rtp
from mobilityd.media.srtp import Direction, SrtpKeys, SrtpSession, SrtpSuite

KEY = bytes(range(16))
SALT = bytes(range(100, 114))
SSRC = 0x0BADCAFE


def rtp(seq: int, payload: bytes = b"\xd5" * 160, ssrc: int = SSRC) -> bytes:
    return build_rtp(0, seq, seq * 160, ssrc, payload)


def pair(suite: SrtpSuite = SrtpSuite.AES_CM_128_HMAC_SHA1_80) -> tuple[SrtpSession, SrtpSession]:
    keys = SrtpKeys(KEY, SALT, suite)
    return SrtpSession(keys, Direction.OUTBOUND), SrtpSession(keys, Direction.INBOUND)


# --- an independent reference of RFC 3711 §4.1.1 / §4.2 / §4.3, checked by Appendix B --


def aes_cm_keystream(key: bytes, iv: int, blocks: int, first_block: int = 0) -> bytes:
    """RFC 3711 §4.1.1: E(k, IV + j) for j = first_block .. first_block + blocks - 1."""
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    data = b"".join(((iv + j) % (1 << 128)).to_bytes(16, "big")
                    for j in range(first_block, first_block + blocks))
    return encryptor.update(data) + encryptor.finalize()


def derive(master_key: bytes, master_salt: bytes, label: int, length: int) -> bytes:
    """RFC 3711 §4.3.1 with kdr = 0 (r = 0) and the AES-CM PRF of §4.3.3."""
    x = int.from_bytes(master_salt, "big") ^ (label << 48)
    blocks = (length + 15) // 16
    return aes_cm_keystream(master_key, x << 16, blocks)[:length]


def reference_protect(master_key: bytes, master_salt: bytes, packet: bytes, roc: int) -> bytes:
    """RFC 3711 §3.3 for AES_CM_128_HMAC_SHA1_80 with session keys of §4.3."""
    k_e, k_a, k_s = (derive(master_key, master_salt, 0, 16), derive(master_key, master_salt, 1, 20),
                     derive(master_key, master_salt, 2, 14))
    seq, ssrc = struct.unpack_from("!H", packet, 2)[0], struct.unpack_from("!I", packet, 8)[0]
    index = (roc << 16) | seq
    iv = (int.from_bytes(k_s, "big") << 16) ^ (ssrc << 64) ^ (index << 16)
    payload = packet[12:]
    stream = aes_cm_keystream(k_e, iv, (len(payload) + 15) // 16)
    encrypted = packet[:12] + bytes(a ^ b for a, b in zip(payload, stream, strict=False))
    tag = hmac.new(k_a, encrypted + roc.to_bytes(4, "big"), hashlib.sha1).digest()[:10]
    return encrypted + tag


def test_rfc3711_b2_aes_cm_keystream() -> None:
    """RFC 3711 §B.2: AES-CM keystream blocks for the contrived session key and salt."""
    key = bytes.fromhex("2B7E151628AED2A6ABF7158809CF4F3C")
    iv = int("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000", 16)
    assert aes_cm_keystream(key, iv, 3) == bytes.fromhex(
        "E03EAD0935C95E80E166B16DD92B4EB4"
        "D23513162B02D0F72A43A2FE4A5F97AB"
        "41E95B3BB0A2E8DD477901E4FCA894C0"
    )
    assert aes_cm_keystream(key, iv, 3, first_block=0xFEFF) == bytes.fromhex(
        "EC8CDF7398607CB0F2D21675EA9EA1E4"
        "362B7C3C6773516318A077D7FC5073AE"
        "6A2CC3787889374FBEB4C81B17BA6C44"
    )


B3_KEY = bytes.fromhex("E1F97A0D3E018BE0D64FA32C06DE4139")
B3_SALT = bytes.fromhex("0EC675AD498AFEEBB6960B3AABE6")


def test_rfc3711_b3_key_derivation() -> None:
    """RFC 3711 §B.3: cipher key, cipher salt and auth key from the master key/salt."""
    assert derive(B3_KEY, B3_SALT, 0, 16) == bytes.fromhex("C61E7A93744F39EE10734AFE3FF7A087")
    assert derive(B3_KEY, B3_SALT, 2, 14) == bytes.fromhex("30CBBC08863D8C85D49DB34A9AE1")
    assert derive(B3_KEY, B3_SALT, 1, 94) == bytes.fromhex(
        "CEBE321F6FF7716B6FD4AB49AF256A15" "6D38BAA48F0A0ACF3C34E2359E6CDBCE"
        "E049646C43D9327AD175578EF7227098" "6371C10C9A369AC2F94A8C5FBCDDDC25"
        "6D6E919A48B610EF17C2041E47403576" "6B68642C59BBFC2F34DB60DBDFB2"
    )


@pytest.mark.parametrize("roc", [0, 3])
def test_libsrtp_path_matches_rfc3711_reference(roc: int) -> None:
    """Our libsrtp path, keyed with the §B.3 master key/salt, produces exactly the packet
    the §B.2/§B.3-checked reference computes (§3.3 encryption + §4.2 tag incl. ROC)."""
    session = SrtpSession(SrtpKeys(B3_KEY, B3_SALT), Direction.OUTBOUND)
    if roc:
        session.set_roc(SSRC, roc)
    packet = rtp(0xFFF0, bytes(range(37)))
    assert session.protect(packet) == reference_protect(B3_KEY, B3_SALT, packet, roc)


@pytest.mark.parametrize("suite", list(SrtpSuite))
def test_round_trip_and_tag_length(suite: SrtpSuite) -> None:
    sender, receiver = pair(suite)
    for seq in range(10):
        packet = rtp(seq)
        protected = sender.protect(packet)
        assert len(protected) == len(packet) + suite.tag_length
        assert protected[12:172] != packet[12:]
        assert receiver.unprotect(protected) == packet
    counters = receiver.counters(SSRC)
    assert (counters.packets, counters.octets, counters.lost) == (10, 1720, 0)
    assert sender.counters(SSRC).last_index == 9


def test_sender_roc_after_wrap_and_receiver_follows() -> None:
    """RFC 3711 §3.3.1: 65535 -> 0 increments the ROC on both sides."""
    sender, receiver = pair()
    for seq in (65533, 65534, 65535, 0, 1):
        assert receiver.unprotect(sender.protect(rtp(seq % 65536))) == rtp(seq)
    assert sender.get_roc(SSRC) == 1
    assert receiver.get_roc(SSRC) == 1
    assert receiver.counters(SSRC).last_index == (1 << 16) | 1
    assert sender.counters(SSRC).roc == 1


def test_auth_failure_is_typed_counted_and_harmless() -> None:
    sender, receiver = pair()
    receiver.unprotect(sender.protect(rtp(1)))
    tampered = bytearray(sender.protect(rtp(2)))
    tampered[20] ^= 1
    with pytest.raises(SrtpAuthError) as info:
        receiver.unprotect(bytes(tampered))
    assert info.value.reason == "authentication failure"
    assert receiver.counters(SSRC).auth_failures == 1
    assert receiver.unprotect(sender.protect(rtp(3))) == rtp(3)
    assert receiver.counters(SSRC).packets == 2
    assert receiver.counters(SSRC).lost == 1  # seq 2 never authenticated


def test_auth_failure_from_unknown_ssrc_counted_session_wide() -> None:
    sender, _ = pair()
    other = SrtpSession(SrtpKeys(bytes(16), SALT), Direction.INBOUND)
    with pytest.raises(SrtpAuthError):
        other.unprotect(sender.protect(rtp(1)))
    assert other.unknown_ssrc_auth_failures == 1
    assert other.ssrcs == ()


def test_replay_is_typed_and_counted() -> None:
    sender, receiver = pair()
    protected = sender.protect(rtp(7))
    receiver.unprotect(protected)
    with pytest.raises(SrtpReplayError):
        receiver.unprotect(protected)
    assert receiver.counters(SSRC).replays == 1
    assert receiver.counters(SSRC).packets == 1


def test_loss_estimated_from_gaps() -> None:
    sender, receiver = pair()
    for seq in range(20):
        protected = sender.protect(rtp(seq))
        if seq % 5 != 2:
            receiver.unprotect(protected)
    assert receiver.counters(SSRC).lost == 4


def test_index_never_reused() -> None:
    """RFC 3711 §9.1: the same (SSRC, index) is never encrypted twice."""
    keys = SrtpKeys(KEY, SALT)
    sender = SrtpSession(keys, Direction.OUTBOUND, keep_index_history=True)
    for seq in (65534, 65535, 0, 1):
        sender.protect(rtp(seq))
    for seq in (1, 0, 65535):
        with pytest.raises(SrtpIndexReuseError):
            sender.protect(rtp(seq))
    other = rtp(1, ssrc=SSRC + 1)
    sender.protect(other)
    assert sender.index_history is not None
    assert len(sender.index_history) == 5
    assert sender.index_reuse_refused == 3
    assert sender.counters(SSRC).packets == 4


def test_wrong_direction_and_short_packets() -> None:
    sender, receiver = pair()
    with pytest.raises(MediaLocalError):
        receiver.protect(rtp(1))
    with pytest.raises(MediaLocalError):
        sender.unprotect(rtp(1))
    with pytest.raises(SrtpConfigError):
        sender.protect(b"\x80\x00")
    with pytest.raises(SrtpError):
        receiver.unprotect(b"\x80\x00\x00")
    with pytest.raises(SrtpConfigError):
        SrtpKeys(KEY[:15], SALT)
    assert "hidden" in repr(SrtpKeys(KEY, SALT)) and KEY.hex() not in repr(SrtpKeys(KEY, SALT))


@pytest.mark.parametrize("suite", list(SrtpSuite))
def test_srtcp_round_trip_and_auth_failure(suite: SrtpSuite) -> None:
    sender, receiver = pair(suite)
    report = build_compound([ReceiverReport(SSRC)])
    protected = sender.protect_rtcp(report)
    assert receiver.unprotect_rtcp(protected) == report
    tampered = bytearray(sender.protect_rtcp(report))
    tampered[5] ^= 0x80
    with pytest.raises(SrtpError):
        receiver.unprotect_rtcp(bytes(tampered))
    assert receiver.counters(SSRC).rtcp_packets == 1


@settings(max_examples=200)
@given(st.binary(max_size=200))
def test_fuzz_unprotect_only_typed_errors(data: bytes) -> None:
    _, receiver = pair()
    with contextlib.suppress(SrtpError):
        receiver.unprotect(data)
    with contextlib.suppress(SrtpError):
        receiver.unprotect_rtcp(data)
