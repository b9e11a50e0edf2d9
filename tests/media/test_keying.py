"""SRTP sessions keyed by a real MIKEY PSK exchange (RFC 3830 §3.1, §4.1.3, §6.1.1):
one key per crypto session, the ROC of the CS ID map applied from the first packet."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from mobilityd.media.errors import SrtpConfigError
from mobilityd.media.keying import keys_for_crypto_session, sessions_for_call, suite_for_policy
from mobilityd.media.rtp import build_rtp
from mobilityd.media.srtp import SrtpSuite
from mobilityd.mikey.constants import ProtType, SrtpParam
from mobilityd.mikey.context import CryptoContext
from mobilityd.mikey.payloads import PolicyParam, SecurityPolicy, SrtpCsEntry
from mobilityd.mikey.session import PskInitiator, Responder

ALICE, BOB = b"sip:alice@example.org", b"sip:bob@example.org"
PSK = bytes(range(32))
A_SSRC, B_SSRC = 0xA11CE, 0xB0B
NOW = 1_800_000_000.0


def rng(seed: int) -> Callable[[int], bytes]:
    generator = random.Random(seed)
    return generator.randbytes


def exchange(policies: tuple[SecurityPolicy, ...] = (SecurityPolicy.srtp_defaults(0),)
             ) -> tuple[CryptoContext, CryptoContext]:
    initiator = PskInitiator(
        psk=PSK, local_id=ALICE, peer_id=BOB,
        cs_map=[SrtpCsEntry(0, A_SSRC, 3), SrtpCsEntry(0, B_SSRC, 0)], policies=policies,
    )
    i_message = initiator.start(NOW, rng(1))
    done = Responder(local_id=BOB, psk=PSK).receive(i_message, NOW, rng(2))
    assert done.reply is not None
    return initiator.receive_response(done.reply, NOW), done.context


def test_alice_to_bob_from_first_packet_at_roc_3_and_back() -> None:
    ctx_alice, ctx_bob = exchange()
    a_out, a_in = sessions_for_call(ctx_alice, [A_SSRC], [B_SSRC])
    b_out, b_in = sessions_for_call(ctx_bob, [B_SSRC], [A_SSRC])
    packet = build_rtp(0, 100, 16000, A_SSRC, b"\xff" * 160)
    assert b_in.unprotect(a_out.protect(packet)) == packet
    assert a_out.get_roc(A_SSRC) == b_in.get_roc(A_SSRC) == 3
    assert b_in.counters(A_SSRC).last_index == (3 << 16) | 100
    reply = build_rtp(8, 7, 1120, B_SSRC, b"\xd5" * 160)
    assert a_in.unprotect(b_out.protect(reply)) == reply
    # two crypto sessions, two different keys (RFC 3830 §4.1.3: TEK per CS ID)
    assert keys_for_crypto_session(ctx_alice, 1) != keys_for_crypto_session(ctx_alice, 2)
    assert keys_for_crypto_session(ctx_alice, 1) == keys_for_crypto_session(ctx_bob, 1)


def test_32_bit_tag_policy() -> None:
    params = tuple(p for p in SecurityPolicy.srtp_defaults(0).params
                   if p.param_type != SrtpParam.AUTH_TAG_LEN)
    policy = SecurityPolicy(0, ProtType.SRTP, (*params, PolicyParam(SrtpParam.AUTH_TAG_LEN,
                                                                    b"\x04")))
    ctx_alice, ctx_bob = exchange((policy,))
    assert keys_for_crypto_session(ctx_alice, 1).suite is SrtpSuite.AES_CM_128_HMAC_SHA1_32
    a_out, _ = sessions_for_call(ctx_alice, [A_SSRC], [B_SSRC])
    _, b_in = sessions_for_call(ctx_bob, [B_SSRC], [A_SSRC])
    packet = build_rtp(0, 1, 160, A_SSRC, b"\xff" * 160)
    protected = a_out.protect(packet)
    assert len(protected) == len(packet) + 4
    assert b_in.unprotect(protected) == packet


def test_unsupported_policies_and_unknown_ssrc() -> None:
    assert suite_for_policy(None) is SrtpSuite.AES_CM_128_HMAC_SHA1_80
    null_cipher = SecurityPolicy(0, ProtType.SRTP, (PolicyParam(SrtpParam.SRTP_ENCRYPTION,
                                                                b"\x00"),))
    with pytest.raises(SrtpConfigError, match="SRTP_ENCRYPTION"):
        suite_for_policy(null_cipher)
    f8 = SecurityPolicy(0, ProtType.SRTP, (PolicyParam(SrtpParam.ENCR_ALG, b"\x02"),))
    with pytest.raises(SrtpConfigError, match="ENCR_ALG"):
        suite_for_policy(f8)
    ctx_alice, _ = exchange()
    with pytest.raises(SrtpConfigError, match="CS ID map"):
        sessions_for_call(ctx_alice, [0xDEAD], [B_SSRC])
    with pytest.raises(SrtpConfigError):
        keys_for_crypto_session(ctx_alice, 3)
