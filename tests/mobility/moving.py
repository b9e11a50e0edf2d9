"""Shared pieces of the move tests: MIKEY contexts of a call (RFC 3830 §3.1 PSK,
§3.3 DH-SIGN) and the SDP each side sent when the call was set up (RFC 4567 §3.1)."""

from __future__ import annotations

import random
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric import rsa

from mobilityd.mikey.certs import issue_certificate
from mobilityd.mikey.context import CryptoContext
from mobilityd.mikey.payloads import SrtpCsEntry
from mobilityd.mikey.replay import ReplayCache
from mobilityd.mikey.session import DhInitiator, PkCredentials, PskInitiator, Responder
from mobilityd.sip.sdp import SessionDescription

PSK = bytes(range(32))
ALICE = b"sip:alice@example.org"
BOB = b"sip:bob@example.org"
NOW = 1_795_000_000.0
BOB_SSRC, ALICE_SSRC = 0x0B0B0B0B, 0x0A0A0A0A
CS_MAP = (SrtpCsEntry(0, BOB_SSRC, 0), SrtpCsEntry(0, ALICE_SSRC, 0))


def seeded(seed: int) -> Callable[[int], bytes]:
    return random.Random(seed).randbytes


def psk_call(seed: int = 1) -> tuple[CryptoContext, CryptoContext]:
    """(Bob's context, Alice's context): Bob called Alice, PSK (§3.1); separate replay
    caches as on two machines."""
    initiator = PskInitiator(psk=PSK, local_id=BOB, peer_id=ALICE, cs_map=CS_MAP,
                             replay_cache=ReplayCache())
    answer = Responder(local_id=ALICE, psk=PSK, replay_cache=ReplayCache()).receive(
        initiator.start(NOW, seeded(seed)), NOW)
    assert answer.reply is not None
    return initiator.receive_response(answer.reply, NOW), answer.context


def pki() -> dict[str, PkCredentials]:
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = issue_certificate(ca_key.public_key(), ca_key, "CA", not_before=NOW - 1e6,
                           not_after=NOW + 1e6, is_ca=True)
    creds = {}
    for serial, (name, uri) in enumerate((("alice", ALICE), ("bob", BOB)), start=2):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cert = issue_certificate(key.public_key(), ca_key, name, issuer=ca,
                                 sip_uri=uri.decode(), not_before=NOW - 1e6,
                                 not_after=NOW + 1e6, serial=serial)
        creds[name] = PkCredentials(key, cert, ca)
    return creds


def dh_call(creds: dict[str, PkCredentials]) -> tuple[CryptoContext, CryptoContext]:
    """(Bob's, Alice's) DH-SIGN contexts (§3.3)."""
    initiator = DhInitiator(credentials=creds["bob"], local_id=BOB, peer_id=ALICE,
                            cs_map=CS_MAP, replay_cache=ReplayCache())
    answer = Responder(local_id=ALICE, pk=creds["alice"], replay_cache=ReplayCache()).receive(
        initiator.start(NOW, seeded(1)), NOW, seeded(2))
    assert answer.reply is not None
    return initiator.receive_response(answer.reply, NOW), answer.context


def bob_sdp(host: str = "10.2.0.2", port: int = 40000, *, version: int = 1) -> SessionDescription:
    """The SDP Bob sent at call set-up (key-mgmt at session level, RFC 4567 §3.1)."""
    return SessionDescription.parse(
        f"v=0\r\no=bob 4242 {version} IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
        "a=key-mgmt:mikey AQAFgQ==\r\n"
        f"m=audio {port} RTP/SAVP 0\r\na=rtcp:{port + 1}\r\na=rtpmap:0 PCMU/8000\r\n"
        "a=sendrecv\r\n"
    )


def alice_sdp() -> SessionDescription:
    return SessionDescription.parse(
        "v=0\r\no=alice 77 1 IN IP4 10.1.0.2\r\ns=-\r\nc=IN IP4 10.1.0.2\r\nt=0 0\r\n"
        "a=key-mgmt:mikey AQAFgQ==\r\nm=audio 30000 RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    )
