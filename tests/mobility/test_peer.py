"""The peer's verdict on a move (issue 5 step 3): RFC 3830 §4.5 update verified
(§5.3: CSB ID, timestamp, replay cache, identity, MAC/signature) before anything
changes; a refusal carries the SIP answer and the MIKEY error (RFC 4567 §4.1.2)."""

from __future__ import annotations

import base64

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mobilityd.mikey.constants import DataType, ErrorType
from mobilityd.mikey.message import MikeyMessage
from mobilityd.mikey.payloads import ErrorPayload
from mobilityd.mikey.sdp import decode_key_mgmt
from mobilityd.mobility.move import MediaAddress, move_offer
from mobilityd.mobility.peer import MoveRefused, refusal_body, verify_move
from mobilityd.sip.sdp import SessionDescription
from tests.mobility.moving import NOW, alice_sdp, bob_sdp, dh_call, pki, psk_call, seeded


def test_genuine_psk_move_verifies_and_keeps_keys() -> None:
    bob, alice = psk_call()
    offer = move_offer(bob_sdp(), bob, MediaAddress("10.3.0.7", 40000), NOW + 1)
    verified = verify_move(offer.body, alice, NOW + 1, previous=bob_sdp())
    assert verified.media_hint == ("10.3.0.7", 40000)
    assert verified.context.tgk == alice.tgk
    assert verified.context.srtp_master(1) == alice.srtp_master(1)
    assert verified.context.csb_id == alice.csb_id


def test_genuine_dh_move_verifies() -> None:
    bob, alice = dh_call(pki())
    offer = move_offer(bob_sdp(), bob, MediaAddress("fd00:4::2", 40000), NOW + 1, seeded(4))
    assert verify_move(offer.body, alice, NOW + 1).media_hint == ("fd00:4::2", 40000)


def test_move_without_mikey_is_refused_488() -> None:
    _, alice = psk_call()
    sdp = SessionDescription.parse(bytes(bob_sdp("10.9.9.9").next_version()).replace(
        b"a=key-mgmt:mikey AQAFgQ==\r\n", b""))
    with pytest.raises(MoveRefused) as refused:
        verify_move(bytes(sdp), alice, NOW + 1, previous=bob_sdp())
    assert refused.value.status == 488
    assert refused.value.warning.startswith("399 ")


def test_forged_mac_is_auth_failure_with_error_message_rfc3830_5_1_2() -> None:
    bob, alice = psk_call()
    offer = move_offer(bob_sdp(), bob, MediaAddress("10.66.0.1", 40000), NOW + 1)
    forged = bytearray(offer.update)
    forged[-1] ^= 1  # the MAC is the last field of the KEMAC (§6.2)
    body = offer.body.replace(
        offer.sdp.key_mgmt[0].data.encode(), base64.b64encode(bytes(forged)))
    with pytest.raises(MoveRefused) as refused:
        verify_move(body, alice, NOW + 1)
    assert refused.value.mikey_error is ErrorType.AUTH_FAILURE
    assert refused.value.error_message is not None
    error = MikeyMessage.parse(refused.value.error_message)
    assert error.header.data_type == DataType.ERROR
    assert error.find(ErrorPayload) is not None
    answer = SessionDescription.parse(refusal_body(alice_sdp(), refused.value))
    assert decode_key_mgmt(f"mikey {answer.key_mgmt[0].data}") == refused.value.error_message
    # the genuine update still verifies afterwards: the forgery changed nothing
    assert verify_move(offer.body, alice, NOW + 1).context.tgk == alice.tgk


def test_replayed_update_is_refused_without_an_answer_rfc3830_5_3() -> None:
    bob, alice = psk_call()
    offer = move_offer(bob_sdp(), bob, MediaAddress("10.3.0.7", 40000), NOW + 1)
    verify_move(offer.body, alice, NOW + 1)
    with pytest.raises(MoveRefused) as refused:
        verify_move(offer.body, alice, NOW + 20)
    assert refused.value.error_message is None  # replays are never answered
    assert refusal_body(alice_sdp(), refused.value) == b""


def test_update_from_another_call_is_refused() -> None:
    bob, _ = psk_call()
    _, other_alice = psk_call(seed=2)  # another CSB with the same PSK
    offer = move_offer(bob_sdp(), bob, MediaAddress("10.3.0.7", 40000), NOW + 1)
    with pytest.raises(MoveRefused) as refused:
        verify_move(offer.body, other_alice, NOW + 1)
    assert refused.value.mikey_error is not None


def test_stale_update_is_refused() -> None:
    bob, alice = psk_call()
    offer = move_offer(bob_sdp(), bob, MediaAddress("10.3.0.7", 40000), NOW + 1)
    with pytest.raises(MoveRefused) as refused:
        verify_move(offer.body, alice, NOW + 3600)
    assert refused.value.mikey_error is ErrorType.INVALID_TS


def test_origin_version_must_increase_rfc3264_8() -> None:
    bob, alice = psk_call()
    offer = move_offer(bob_sdp(version=7), bob, MediaAddress("10.3.0.7", 40000), NOW + 1)
    with pytest.raises(MoveRefused, match="version"):
        verify_move(offer.body, alice, NOW + 1, previous=bob_sdp(version=9))
    other_session = SessionDescription.parse(bytes(bob_sdp()).replace(b"4242", b"999"))
    with pytest.raises(MoveRefused, match="session"):
        verify_move(offer.body, alice, NOW + 1, previous=other_session)
    # neither refusal touched the replay cache: the offer still verifies
    verify_move(offer.body, alice, NOW + 1, previous=bob_sdp(version=1))


def test_rekeying_update_is_not_a_move() -> None:
    bob, alice = psk_call()
    update = bob.build_update(NOW + 1, new_tgk=bytes(16))
    body = bytes(bob_sdp()).replace(b"AQAFgQ==", base64.b64encode(update))
    with pytest.raises(MoveRefused, match="not a move"):
        verify_move(body, alice, NOW + 1)


@pytest.mark.parametrize("body", [
    b"", b"not sdp", b"v=0\r\n", bytes(bob_sdp()).replace(b"AQAFgQ==", b"!!!!"),
    bytes(bob_sdp()).replace(b"AQAFgQ==", b"AQAFgQ=="),
    bytes(bob_sdp()) + b"a=key-mgmt:mikey AQAFgg==\r\n",
])
def test_garbage_offers_get_a_typed_refusal(body: bytes) -> None:
    _, alice = psk_call()
    with pytest.raises(MoveRefused) as refused:
        verify_move(body, alice, NOW)
    assert 400 <= refused.value.status < 700


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_only_move_refused_escapes_on_mutated_offers(data: st.DataObject) -> None:
    """Fuzz: any byte of a genuine move offer changed, cut or extended -> either it
    still verifies (bytes outside what is checked) or MoveRefused, nothing else."""
    _, alice = FUZZ_CALL
    body = bytearray(FUZZ_OFFER)
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(body) - 1))
        body[index] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(body)))
    mutated = bytes(body[:cut]) + data.draw(st.binary(max_size=8))
    try:
        verify_move(mutated, alice, NOW + 1, previous=bob_sdp())
    except MoveRefused as refused:
        assert 400 <= refused.status < 700


FUZZ_CALL = psk_call(seed=7)
FUZZ_OFFER = move_offer(bob_sdp(), FUZZ_CALL[0], MediaAddress("10.3.0.7", 40000),
                        NOW + 1).body


def test_dh_update_with_a_wrong_signature_is_refused_rfc3830_5_3() -> None:
    bob, alice = dh_call(pki())
    offer = move_offer(bob_sdp(), bob, MediaAddress("10.66.0.1", 40000), NOW + 1, seeded(5))
    forged = bytearray(offer.update)
    forged[-1] ^= 0x80  # inside SIGNi, the last payload (§6.5)
    body = offer.body.replace(base64.b64encode(offer.update), base64.b64encode(bytes(forged)))
    with pytest.raises(MoveRefused) as refused:
        verify_move(body, alice, NOW + 1, previous=bob_sdp())
    assert refused.value.mikey_error is ErrorType.AUTH_FAILURE
    assert verify_move(offer.body, alice, NOW + 1).context.tgk == alice.tgk  # unchanged
