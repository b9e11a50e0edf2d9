"""Offer/answer with MIKEY, two engines in memory (RFC 3264, RFC 4567, RFC 3830;
thesis §11.3, §11.4): injected rng, hand-set clock."""

from __future__ import annotations

import random

import pytest

from mobilityd.call.errors import NegotiationError
from mobilityd.call.identity import sip_identity
from mobilityd.call.keying import KeyingConfig, KeyMethod, PeerKeying
from mobilityd.call.negotiation import Answerer, CallSecurity, NegotiatedMedia, Offerer
from mobilityd.call.sdpmedia import KeyMgmtLevel, MediaPort, read_error_body
from mobilityd.media.srtp import SrtpSuite
from mobilityd.mikey.constants import ErrorType
from mobilityd.mikey.message import MikeyMessage
from mobilityd.mikey.session import parse_error_message
from mobilityd.sip.sdp import SessionDescription
from tests.call.credentials import NOW, PSK, credentials

ALICE = sip_identity("sip:alice@a.test")
BOB = sip_identity("sip:bob@b.test")
A_PORTS = (MediaPort("10.1.0.2", 40000, 40001), MediaPort("10.1.0.2", 40002, 40003))
B_PORT = MediaPort("10.2.0.2", 50000, 50001)


def rng(seed: int = 1):  # type: ignore[no-untyped-def]
    return random.Random(seed).randbytes


def keying(me: bytes, peer: bytes, method: KeyMethod, psk: bytes = PSK,
           suite: SrtpSuite = SrtpSuite.AES_CM_128_HMAC_SHA1_80) -> KeyingConfig:
    peer_cert = credentials(peer.decode()).certificate
    return KeyingConfig(peers={peer: PeerKeying(method, psk, peer_cert)},
                        own=credentials(me.decode()), default_method=method, suite=suite)


def exchange(
    a_security: CallSecurity, b_security: CallSecurity, method: KeyMethod = KeyMethod.PSK,
    *, level: KeyMgmtLevel = KeyMgmtLevel.SESSION, b_psk: bytes = PSK,
    suite: SrtpSuite = SrtpSuite.AES_CM_128_HMAC_SHA1_80,
) -> tuple[NegotiatedMedia, NegotiatedMedia, bytes, bytes]:
    offerer = Offerer(ALICE, BOB, a_security, keying(ALICE, BOB, method, suite=suite),
                      level=level)
    answerer = Answerer(BOB, b_security, keying(BOB, ALICE, method, b_psk))
    offer = offerer.make_offer(A_PORTS[: len(offerer.streams())], NOW, rng(1))
    plan = answerer.receive_offer(offer, ALICE, NOW + 0.1, rng(2))
    answer = answerer.build_answer(plan, B_PORT, 7)
    return offerer.receive_answer(answer, NOW + 0.2), plan.media, offer, answer


@pytest.mark.parametrize("method", list(KeyMethod))
def test_secure_call_keys_agree_in_every_method(method: KeyMethod) -> None:
    """RFC 3830 §3.1-§3.3 inside RFC 4567 SDP: same SRTP keys per crypto session."""
    a, b, offer, answer = exchange(CallSecurity.REQUIRED, CallSecurity.REQUIRED, method)
    assert a.secure and b.secure and a.context is not None and b.context is not None
    assert a.local_ssrc == b.remote_ssrc and b.local_ssrc == a.remote_ssrc
    for cs_id in (1, 2):
        assert a.context.srtp_master(cs_id) == b.context.srtp_master(cs_id)
    assert a.remote_rtp == ("10.2.0.2", 50000) and b.remote_rtp == ("10.1.0.2", 40000)
    assert a.rtcp_mux and b.rtcp_mux and a.suite is SrtpSuite.AES_CM_128_HMAC_SHA1_80
    offer_sd, answer_sd = SessionDescription.parse(offer), SessionDescription.parse(answer)
    assert [m.proto for m in offer_sd.media] == ["RTP/SAVP"]
    assert offer_sd.key_mgmt and answer_sd.key_mgmt  # session level (RFC 4567 §3.1)


