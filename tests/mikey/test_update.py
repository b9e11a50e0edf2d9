"""Update messages of a CSB (RFC 3830 §4.5): build, verify, and what must change nothing."""

from __future__ import annotations

import random

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from mobilityd.mikey.certs import issue_certificate
from mobilityd.mikey.constants import DataType, ErrorType
from mobilityd.mikey.context import CryptoContext
from mobilityd.mikey.errors import MikeyError
from mobilityd.mikey.message import MikeyMessage
from mobilityd.mikey.payloads import Kemac, Rand, SrtpCsEntry, Timestamp
from mobilityd.mikey.replay import ReplayedMessage
from mobilityd.mikey.session import (
    DhInitiator,
    PkCredentials,
    PkeInitiator,
    PskInitiator,
    Responder,
)
from mobilityd.mikey.session_common import build_maced

PSK = bytes(range(32))
ALICE = b"sip:alice@example.org"
BOB = b"sip:bob@example.org"
NOW = 1_795_000_000.0
CS_MAP = (SrtpCsEntry(0, 0x11111111, 0), SrtpCsEntry(0, 0x22222222, 0))


def rng(seed: int = 1):  # type: ignore[no-untyped-def]
    return random.Random(seed).randbytes


def psk_contexts() -> tuple[CryptoContext, CryptoContext]:
    initiator = PskInitiator(psk=PSK, local_id=ALICE, peer_id=BOB, cs_map=CS_MAP)
    answer = Responder(local_id=BOB, psk=PSK).receive(initiator.start(NOW, rng()), NOW)
    assert answer.reply is not None
    return initiator.receive_response(answer.reply, NOW), answer.context


@pytest.fixture(scope="module")
def pki() -> dict[str, PkCredentials]:
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = issue_certificate(ca_key.public_key(), ca_key, "CA", not_before=NOW - 1e6,
                           not_after=NOW + 1e6, is_ca=True)
    creds = {}
    for serial, (name, uri) in enumerate((("alice", ALICE), ("bob", BOB)), start=2):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cert = issue_certificate(key.public_key(), ca_key, name, issuer=ca, sip_uri=uri.decode(),
                                 not_before=NOW - 1e6, not_after=NOW + 1e6, serial=serial)
        creds[name] = PkCredentials(key, cert, ca)
    return creds


def test_update_without_new_key_rfc3830_4_5() -> None:
    alice, bob = psk_contexts()
    moved_map = (SrtpCsEntry(0, 0x11111111, 2), SrtpCsEntry(0, 0x22222222, 0))
    update = alice.build_update(NOW + 10, new_cs_map=moved_map)
    msg = MikeyMessage.parse(update)
    assert msg.header.data_type is DataType.PSK_INIT
    assert msg.header.csb_id == alice.csb_id
    assert msg.find(Rand) is None
    assert msg.require(Kemac).encr_data == b""  # no new keys: empty Encr data (§6.2)
    assert msg.require(Timestamp).value > alice.last_timestamp
    new_bob = bob.verify_update(update, NOW + 10)
    assert new_bob.cs_map == moved_map and new_bob.tgk == bob.tgk
    assert new_bob.srtp_master(1) == bob.srtp_master(1)


def test_update_with_new_tgk_changes_keys_on_both_sides() -> None:
    alice, bob = psk_contexts()
    prepared = alice.prepare_update(NOW + 10, new_tgk=b"\x42" * 16)
    new_bob = bob.verify_update(prepared.message, NOW + 10)
    assert new_bob.tgk == b"\x42" * 16 == prepared.context.tgk
    assert new_bob.srtp_master(2) == prepared.context.srtp_master(2)
    assert new_bob.srtp_master(2) != bob.srtp_master(2)
    assert alice.tgk != prepared.context.tgk  # the old context object is untouched


def test_responder_side_can_send_updates_too() -> None:
    """The original Responder moves: it authenticates its update the same way."""
    alice, bob = psk_contexts()
    new_alice = alice.verify_update(bob.build_update(NOW + 3), NOW + 3)
    assert new_alice.tgk == alice.tgk


def test_replayed_update_is_refused_and_changes_nothing() -> None:
    alice, bob = psk_contexts()
    update = alice.build_update(NOW + 10, new_tgk=b"\x01" * 16)
    bob.verify_update(update, NOW + 10)
    with pytest.raises(ReplayedMessage):
        bob.verify_update(update, NOW + 11)


def test_forged_update_is_auth_failure_and_leaves_cache_untouched() -> None:
    alice, bob = psk_contexts()
    update = bytearray(alice.build_update(NOW + 10, new_tgk=b"\x01" * 16))
    update[-25] ^= 1  # inside the encrypted key
    cached = len(bob.replay_cache)
    with pytest.raises(MikeyError) as info:
        bob.verify_update(bytes(update), NOW + 10)
    assert info.value.error_type is ErrorType.AUTH_FAILURE
    assert len(bob.replay_cache) == cached
    assert bob.verify_update(alice.build_update(NOW + 10), NOW + 10).tgk == bob.tgk


def test_every_bit_flip_of_an_update_is_rejected() -> None:
    alice, bob = psk_contexts()
    update = alice.build_update(NOW + 10, new_tgk=b"\x01" * 16)
    for i in range(len(update) * 8):
        tampered = bytearray(update)
        tampered[i // 8] ^= 1 << (i % 8)
        with pytest.raises(MikeyError):
            bob.verify_update(bytes(tampered), NOW + 10)
    assert bob.verify_update(update, NOW + 10).tgk == b"\x01" * 16


def test_stale_update_is_invalid_ts() -> None:
    alice, bob = psk_contexts()
    update = alice.build_update(NOW + 10)
    with pytest.raises(MikeyError) as info:
        bob.verify_update(update, NOW + 10 + 601)
    assert info.value.error_type is ErrorType.INVALID_TS


def test_update_for_another_csb_is_refused() -> None:
    alice, _ = psk_contexts()
    initiator = PskInitiator(psk=PSK, local_id=ALICE, peer_id=BOB, cs_map=CS_MAP)
    answer = Responder(local_id=BOB, psk=PSK).receive(initiator.start(NOW, rng(2)), NOW)
    with pytest.raises(MikeyError) as info:
        answer.context.verify_update(alice.build_update(NOW + 1), NOW + 1)
    assert "CSB" in str(info.value)


def test_update_with_rand_is_refused_rfc3830_4_5() -> None:
    alice, bob = psk_contexts()
    msg = MikeyMessage.parse(alice.build_update(NOW + 10))
    keys = alice.secrets.message_keys
    assert keys is not None
    payloads = [msg.payloads[0], Rand(b"\x00" * 16), *msg.payloads[1:]]
    with_rand = build_maced(msg.header, payloads, alice.policy.mac_alg, keys.auth_key)
    with pytest.raises(MikeyError) as info:
        bob.verify_update(bytes(with_rand), NOW + 10)
    assert "RAND" in str(info.value)


def test_update_from_third_party_with_same_psk_but_other_identity() -> None:
    alice, bob = psk_contexts()
    msg = MikeyMessage.parse(alice.build_update(NOW + 10))
    from mobilityd.mikey.session_common import id_payload

    keys = alice.secrets.message_keys
    assert keys is not None
    payloads = [msg.payloads[0], id_payload(b"sip:eve@example.org"), *msg.payloads[2:]]
    forged = build_maced(msg.header, payloads, alice.policy.mac_alg, keys.auth_key)
    with pytest.raises(MikeyError) as info:
        bob.verify_update(bytes(forged), NOW + 10)
    assert info.value.error_type is ErrorType.AUTH_FAILURE


def test_consecutive_updates_get_unique_timestamps() -> None:
    alice, bob = psk_contexts()
    first = alice.prepare_update(NOW + 10)
    second = first.context.prepare_update(NOW + 10)  # same clock reading
    bob = bob.verify_update(first.message, NOW + 10)
    bob.verify_update(second.message, NOW + 10)


def test_pke_context_updates_with_cached_envelope_key(pki) -> None:  # type: ignore[no-untyped-def]
    initiator = PkeInitiator(credentials=pki["alice"], local_id=ALICE, peer_id=BOB,
                             peer_certificate=pki["bob"].certificate, cs_map=CS_MAP)
    answer = Responder(local_id=BOB, pk=pki["bob"]).receive(initiator.start(NOW, rng()), NOW)
    assert answer.reply is not None
    alice = initiator.receive_response(answer.reply, NOW)
    update = alice.build_update(NOW + 5, new_tgk=b"\x07" * 16)
    assert MikeyMessage.parse(update).header.data_type is DataType.PSK_INIT
    assert answer.context.verify_update(update, NOW + 5).tgk == b"\x07" * 16


def test_dh_context_updates_are_signed(pki) -> None:  # type: ignore[no-untyped-def]
    initiator = DhInitiator(credentials=pki["alice"], local_id=ALICE, peer_id=BOB, cs_map=CS_MAP)
    answer = Responder(local_id=BOB, pk=pki["bob"]).receive(initiator.start(NOW, rng()), NOW,
                                                            rng(2))
    assert answer.reply is not None
    alice = initiator.receive_response(answer.reply, NOW)
    moved_map = (SrtpCsEntry(0, 0x11111111, 1), SrtpCsEntry(0, 0x22222222, 1))
    update = alice.build_update(NOW + 5, new_cs_map=moved_map)
    msg = MikeyMessage.parse(update)
    assert msg.header.data_type is DataType.DH_INIT and msg.find(Rand) is None
    bob = answer.context.verify_update(update, NOW + 5)
    assert bob.cs_map == moved_map and bob.tgk == answer.context.tgk
    with pytest.raises(ValueError):
        alice.build_update(NOW + 6, new_tgk=b"\x01" * 16)
    tampered = bytearray(alice.build_update(NOW + 6, new_cs_map=moved_map))
    tampered[12] ^= 1  # an SSRC in the CS map
    with pytest.raises(MikeyError) as info:
        answer.context.verify_update(bytes(tampered), NOW + 6)
    assert info.value.error_type is ErrorType.AUTH_FAILURE
    # Bob moves and signs his own update for Alice.
    assert alice.verify_update(bob.build_update(NOW + 7), NOW + 7).csb_id == alice.csb_id


def test_update_with_v_flag_is_answered_and_checked() -> None:
    alice, bob = psk_contexts()
    prepared = alice.prepare_update(NOW + 5, new_tgk=b"\x0a" * 16, want_verification=True)
    assert MikeyMessage.parse(prepared.message).header.v_flag
    accepted = bob.receive_update(prepared.message, NOW + 5)
    assert accepted.previous is bob and accepted.context.tgk == b"\x0a" * 16
    assert accepted.reply is not None
    reply = MikeyMessage.parse(accepted.reply)
    assert reply.header.data_type is DataType.PSK_RESP
    assert prepared.verify_reply(accepted.reply).tgk == b"\x0a" * 16
    forged = bytearray(accepted.reply)
    forged[-1] ^= 1
    with pytest.raises(MikeyError) as info:
        prepared.verify_reply(bytes(forged))
    assert info.value.error_type is ErrorType.AUTH_FAILURE


def test_update_without_v_flag_gets_no_answer() -> None:
    alice, bob = psk_contexts()
    accepted = bob.receive_update(alice.build_update(NOW + 5), NOW + 5)
    assert accepted.reply is None


def test_dh_update_with_v_flag_gets_a_signed_answer(pki) -> None:  # type: ignore[no-untyped-def]
    initiator = DhInitiator(credentials=pki["alice"], local_id=ALICE, peer_id=BOB, cs_map=CS_MAP)
    answer = Responder(local_id=BOB, pk=pki["bob"]).receive(initiator.start(NOW, rng()), NOW,
                                                            rng(2))
    assert answer.reply is not None
    alice = initiator.receive_response(answer.reply, NOW)
    prepared = alice.prepare_update(NOW + 5, want_verification=True)
    accepted = answer.context.receive_update(prepared.message, NOW + 5)
    assert accepted.reply is not None
    assert MikeyMessage.parse(accepted.reply).header.data_type is DataType.DH_RESP
    assert prepared.verify_reply(accepted.reply) is prepared.context
    tampered = bytearray(accepted.reply)
    tampered[20] ^= 1
    with pytest.raises(MikeyError):
        prepared.verify_reply(bytes(tampered))


def test_pke_without_cached_envelope_key_sends_signed_public_key_updates(pki) -> None:  # type: ignore[no-untyped-def]
    from mobilityd.mikey.constants import CacheType
    from mobilityd.mikey.payloads import Pke

    initiator = PkeInitiator(credentials=pki["alice"], local_id=ALICE, peer_id=BOB,
                             peer_certificate=pki["bob"].certificate, cs_map=CS_MAP,
                             cache=CacheType.NO_CACHE)
    answer = Responder(local_id=BOB, pk=pki["bob"]).receive(initiator.start(NOW, rng()), NOW)
    assert answer.reply is not None
    alice = initiator.receive_response(answer.reply, NOW)
    bob = answer.context
    with pytest.raises(ValueError):
        alice.build_update(NOW + 5)  # a new envelope key needs randomness
    prepared = alice.prepare_update(NOW + 5, new_tgk=b"\x0b" * 16, rng=rng(8),
                                    want_verification=True)
    msg = MikeyMessage.parse(prepared.message)
    assert msg.header.data_type is DataType.PK_INIT and msg.find(Rand) is None
    assert msg.require(Pke).cache is CacheType.NO_CACHE
    accepted = bob.receive_update(prepared.message, NOW + 5)
    assert accepted.context.tgk == b"\x0b" * 16
    assert accepted.reply is not None
    assert MikeyMessage.parse(accepted.reply).header.data_type is DataType.PK_RESP
    assert prepared.verify_reply(accepted.reply).tgk == b"\x0b" * 16
    # Bob moves too: his update is encrypted to Alice and signed by him.
    back = accepted.context.build_update(NOW + 6, rng=rng(9))
    assert alice.verify_update(back, NOW + 6).tgk == alice.tgk
    tampered = bytearray(accepted.context.build_update(NOW + 7, rng=rng(10)))
    tampered[-300] ^= 1
    with pytest.raises(MikeyError):
        alice.verify_update(bytes(tampered), NOW + 7)


def test_pke_transfer_carries_the_existing_tgk(pki) -> None:  # type: ignore[no-untyped-def]
    alice, _ = psk_contexts()
    moved = (SrtpCsEntry(0, 0x11111111, 4), SrtpCsEntry(0, 0x22222222, 4))
    transfer = PkeInitiator(credentials=pki["alice"], local_id=ALICE, peer_id=BOB,
                            peer_certificate=pki["bob"].certificate, cs_map=moved,
                            existing=alice)
    answer = Responder(local_id=BOB, pk=pki["bob"]).receive(transfer.start(NOW + 1, rng(3)),
                                                            NOW + 1)
    assert (answer.context.tgk, answer.context.csb_id, answer.context.rand) == (
        alice.tgk, alice.csb_id, alice.rand)
    assert answer.context.srtp_master(2) == alice.srtp_master(2)


def test_dh_rekeying_update_carries_dhi_and_gets_dhr_rfc3830_4_5(pki) -> None:  # type: ignore[no-untyped-def]
    from mobilityd.mikey.constants import DhGroup
    from mobilityd.mikey.dh import DhKeyPool
    from mobilityd.mikey.payloads import DhPayload

    initiator = DhInitiator(credentials=pki["alice"], local_id=ALICE, peer_id=BOB, cs_map=CS_MAP)
    answer = Responder(local_id=BOB, pk=pki["bob"]).receive(initiator.start(NOW, rng()), NOW,
                                                            rng(2))
    assert answer.reply is not None
    alice, bob = initiator.receive_response(answer.reply, NOW), answer.context
    prepared = alice.prepare_update(NOW + 5, dh_rekey=True, rng=rng(11))
    msg = MikeyMessage.parse(prepared.message)
    assert len(msg.find_all(DhPayload)) == 1 and msg.find(Rand) is None
    assert prepared.context.tgk == alice.tgk  # the new TGK needs DHr first
    with pytest.raises(MikeyError):  # verify_update cannot answer a DHi
        bob.verify_update(prepared.message, NOW + 5)
    pool = DhKeyPool(DhGroup.OAKLEY_5, target_size=1)
    pool.fill(rng(12))
    accepted = bob.receive_update(prepared.message, NOW + 5, dh_pool=pool)
    assert len(pool) == 0 and accepted.reply is not None
    reply = MikeyMessage.parse(accepted.reply)
    assert len(reply.find_all(DhPayload)) == 2
    new_alice = prepared.verify_reply(accepted.reply)
    assert new_alice.tgk == accepted.context.tgk != alice.tgk
    assert new_alice.srtp_master(1) == accepted.context.srtp_master(1)
    tampered = bytearray(accepted.reply)
    tampered[-300] ^= 1
    with pytest.raises(MikeyError):
        prepared.verify_reply(bytes(tampered))
