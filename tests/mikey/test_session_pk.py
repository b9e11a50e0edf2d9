"""PKE (RFC 3830 §3.2) and DH-SIGN (§3.3) exchanges with two engines in memory."""

from __future__ import annotations

import random

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from mobilityd.mikey.certs import issue_certificate
from mobilityd.mikey.constants import CacheType, DataType, DhGroup, ErrorType, SignatureType
from mobilityd.mikey.dh import DhKeyPool, DhPolicy
from mobilityd.mikey.errors import MikeyError
from mobilityd.mikey.message import MikeyMessage
from mobilityd.mikey.payloads import DhPayload, Pke, SrtpCsEntry
from mobilityd.mikey.pke import EnvelopePadding
from mobilityd.mikey.session import (
    DhInitiator,
    PkCredentials,
    PkeInitiator,
    Responder,
    SessionPolicy,
)
from mobilityd.mikey.signature import SignatureHash

ALICE = b"sip:alice@example.org"
BOB = b"sip:bob@example.org"
NOW = 1_795_000_000.0
DAY = 86400.0
CS_MAP = (SrtpCsEntry(0, 0xAAAA0001, 0),)


def rng(seed: int = 1):  # type: ignore[no-untyped-def]
    return random.Random(seed).randbytes


@pytest.fixture(scope="module")
def pki() -> dict[str, PkCredentials]:
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = issue_certificate(ca_key.public_key(), ca_key, "CA", not_before=NOW - DAY,
                           not_after=NOW + 365 * DAY, is_ca=True)
    creds = {}
    for name, uri in (("alice", ALICE), ("bob", BOB), ("mallory", b"sip:mallory@example.org")):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cert = issue_certificate(key.public_key(), ca_key, name, issuer=ca, sip_uri=uri.decode(),
                                 not_before=NOW - DAY, not_after=NOW + DAY, serial=len(creds) + 2)
        creds[name] = PkCredentials(key, cert, ca)
    return creds


@pytest.mark.parametrize("padding", list(EnvelopePadding))
@pytest.mark.parametrize("sig", list(SignatureType))
def test_pke_exchange_rfc3830_3_2(pki, padding: EnvelopePadding, sig: SignatureType) -> None:  # type: ignore[no-untyped-def]
    policy = SessionPolicy(envelope_padding=padding, sig_type=sig)
    initiator = PkeInitiator(credentials=pki["alice"], local_id=ALICE, peer_id=BOB,
                             peer_certificate=pki["bob"].certificate, cs_map=CS_MAP, policy=policy)
    responder = Responder(local_id=BOB, pk=pki["bob"], policy=policy)
    i_message = initiator.start(NOW, rng())
    msg = MikeyMessage.parse(i_message)
    assert msg.header.data_type is DataType.PK_INIT
    assert [p.payload_type.name for p in msg.payloads] == [
        "T", "RAND", "ID", "CERT", "ID", "SP", "KEMAC", "CHASH", "PKE", "SIGN"]
    assert msg.require(Pke).cache is CacheType.CACHE_FOR_CSB
    answer = responder.receive(i_message, NOW + 1)
    assert answer.reply is not None
    ctx = initiator.receive_response(answer.reply, NOW + 1)
    assert ctx.tgk == answer.context.tgk and answer.context.peer_id == ALICE
    assert ctx.srtp_master(1) == answer.context.srtp_master(1)


def test_pke_for_another_responder_fails(pki) -> None:  # type: ignore[no-untyped-def]
    initiator = PkeInitiator(credentials=pki["alice"], local_id=ALICE, peer_id=BOB,
                             peer_certificate=pki["bob"].certificate, cs_map=CS_MAP)
    i_message = initiator.start(NOW, rng())
    with pytest.raises(MikeyError) as info:  # mallory's key cannot open it; CHASH differs
        Responder(local_id=BOB, pk=pki["mallory"]).receive(i_message, NOW)
    assert info.value.error_type in (ErrorType.INVALID_CERT, ErrorType.AUTH_FAILURE)


def test_pke_initiator_refuses_untrusted_responder_certificate(pki) -> None:  # type: ignore[no-untyped-def]
    initiator = PkeInitiator(credentials=pki["alice"], local_id=ALICE, peer_id=BOB,
                             peer_certificate=pki["mallory"].certificate, cs_map=CS_MAP)
    with pytest.raises(MikeyError) as info:
        initiator.start(NOW, rng())
    assert info.value.error_type is ErrorType.AUTH_FAILURE


def test_pke_signed_by_impostor_is_rejected(pki) -> None:  # type: ignore[no-untyped-def]
    """Mallory signs with her own key but claims to be Alice: her certificate says otherwise."""
    impostor = PkeInitiator(credentials=pki["mallory"], local_id=ALICE, peer_id=BOB,
                            peer_certificate=pki["bob"].certificate, cs_map=CS_MAP)
    with pytest.raises(MikeyError) as info:
        Responder(local_id=BOB, pk=pki["bob"]).receive(impostor.start(NOW, rng()), NOW)
    assert info.value.error_type is ErrorType.AUTH_FAILURE


def test_pke_every_bit_flip_rejected(pki) -> None:  # type: ignore[no-untyped-def]
    initiator = PkeInitiator(credentials=pki["alice"], local_id=ALICE, peer_id=BOB,
                             peer_certificate=pki["bob"].certificate, cs_map=CS_MAP)
    i_message = initiator.start(NOW, rng())
    r = random.Random(5)
    for _ in range(150):
        i = r.randrange(len(i_message) * 8)
        tampered = bytearray(i_message)
        tampered[i // 8] ^= 1 << (i % 8)
        with pytest.raises(MikeyError):
            Responder(local_id=BOB, pk=pki["bob"]).receive(bytes(tampered), NOW)


def dh_pair(pki, policy: SessionPolicy | None = None, **kwargs):  # type: ignore[no-untyped-def]
    policy = policy or SessionPolicy()
    initiator = DhInitiator(credentials=pki["alice"], local_id=ALICE, peer_id=BOB,
                            cs_map=CS_MAP, policy=policy, **kwargs)
    responder = Responder(local_id=BOB, pk=pki["bob"], policy=policy)
    return initiator, responder


def test_dh_sign_exchange_rfc3830_3_3(pki) -> None:  # type: ignore[no-untyped-def]
    initiator, responder = dh_pair(pki)
    i_message = initiator.start(NOW, rng())
    assert [p.payload_type.name for p in MikeyMessage.parse(i_message).payloads] == [
        "T", "RAND", "ID", "CERT", "ID", "SP", "DH", "SIGN"]
    answer = responder.receive(i_message, NOW, rng(2))
    assert answer.reply is not None
    reply = MikeyMessage.parse(answer.reply)
    assert reply.header.data_type is DataType.DH_RESP
    assert [p.payload_type.name for p in reply.payloads] == [
        "T", "ID", "CERT", "ID", "DH", "DH", "SIGN"]
    ctx = initiator.receive_response(answer.reply, NOW)
    assert ctx.tgk == answer.context.tgk and len(ctx.tgk) == 192
    assert ctx.srtp_master(1) == answer.context.srtp_master(1)


def test_dh_values_are_matched_by_value_not_position(pki) -> None:  # type: ignore[no-untyped-def]
    """Thesis §9.4: a peer put DHi before DHr; we accept either order."""
    initiator, _ = dh_pair(pki)
    i_message = initiator.start(NOW, rng())
    pool = DhKeyPool(DhGroup.OAKLEY_5, target_size=1)
    pool.fill(rng(3))
    pk = pki["bob"]
    from mobilityd.mikey.session_common import build_signed

    answer = Responder(local_id=BOB, pk=pk, dh_pool=pool).receive(i_message, NOW)
    assert answer.reply is not None
    reply = MikeyMessage.parse(answer.reply)
    payloads = list(reply.payloads[:-1])
    payloads[4], payloads[5] = payloads[5], payloads[4]
    swapped = build_signed(reply.header, payloads, pk.private_key,
                           SignatureType.RSA_PKCS1_V15, SignatureHash.SHA256)
    assert isinstance(MikeyMessage.parse(bytes(swapped)).payloads[4], DhPayload)
    assert initiator.receive_response(bytes(swapped), NOW).tgk == answer.context.tgk


def test_dh_precomputed_pool_is_used(pki) -> None:  # type: ignore[no-untyped-def]
    pool = DhKeyPool(DhGroup.OAKLEY_5, target_size=2)
    pool.fill(rng(4))
    initiator, _ = dh_pair(pki)
    responder = Responder(local_id=BOB, pk=pki["bob"], dh_pool=pool)
    answer = responder.receive(initiator.start(NOW, rng()), NOW)  # no rng needed
    assert len(pool) == 1 and pool.misses == 0
    assert answer.reply is not None
    assert initiator.receive_response(answer.reply, NOW).tgk == answer.context.tgk


def test_dh_weak_group_refused_by_responder_policy(pki) -> None:  # type: ignore[no-untyped-def]
    lax = SessionPolicy(dh_policy=DhPolicy(frozenset(DhGroup)))
    initiator = DhInitiator(credentials=pki["alice"], local_id=ALICE, peer_id=BOB, cs_map=CS_MAP,
                            policy=lax, group=DhGroup.OAKLEY_2)
    i_message = initiator.start(NOW, rng())
    with pytest.raises(MikeyError) as info:
        Responder(local_id=BOB, pk=pki["bob"]).receive(i_message, NOW, rng(2))
    assert info.value.error_type is ErrorType.INVALID_DH
    answer = Responder(local_id=BOB, pk=pki["bob"], policy=lax).receive(i_message, NOW, rng(2))
    assert answer.reply is not None
    assert initiator.receive_response(answer.reply, NOW).tgk == answer.context.tgk


def test_dh_initiator_refuses_weak_group_locally(pki) -> None:  # type: ignore[no-untyped-def]
    initiator = DhInitiator(credentials=pki["alice"], local_id=ALICE, peer_id=BOB,
                            cs_map=CS_MAP, group=DhGroup.OAKLEY_1)
    with pytest.raises(MikeyError) as info:
        initiator.start(NOW, rng())
    assert info.value.error_type is ErrorType.INVALID_DH


def test_dh_response_from_wrong_responder_is_rejected(pki) -> None:  # type: ignore[no-untyped-def]
    initiator, _ = dh_pair(pki)
    i_message = initiator.start(NOW, rng())
    # Mallory answers as herself (her certificate does not name Bob).
    mallory = Responder(local_id=BOB, pk=pki["mallory"])
    answer = mallory.receive(i_message, NOW, rng(2))
    assert answer.reply is not None
    with pytest.raises(MikeyError) as info:
        initiator.receive_response(answer.reply, NOW)
    assert info.value.error_type is ErrorType.AUTH_FAILURE
    assert initiator.context is None


def test_dh_tampered_response_changes_nothing(pki) -> None:  # type: ignore[no-untyped-def]
    initiator, responder = dh_pair(pki)
    answer = responder.receive(initiator.start(NOW, rng()), NOW, rng(2))
    assert answer.reply is not None
    tampered = bytearray(answer.reply)
    tampered[60] ^= 0x40
    with pytest.raises(MikeyError):
        initiator.receive_response(bytes(tampered), NOW)
    assert initiator.receive_response(answer.reply, NOW).tgk == answer.context.tgk


def test_dh_expired_certificate_is_invalid_cert(pki) -> None:  # type: ignore[no-untyped-def]
    initiator, responder = dh_pair(pki)
    later = NOW + 2 * DAY
    with pytest.raises(MikeyError) as info:
        responder.receive(initiator.start(later, rng()), later, rng(2))
    assert info.value.error_type is ErrorType.INVALID_CERT
