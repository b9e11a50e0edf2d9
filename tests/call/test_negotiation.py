"""Offer/answer with MIKEY, two engines in memory (RFC 3264, RFC 4567, RFC 3830;
thesis §11.3, §11.4): injected rng, hand-set clock."""

from __future__ import annotations

import random

import pytest

from mobilityd.call.errors import NegotiationError
from mobilityd.call.identity import sip_identity
from mobilityd.call.keying import KeyingConfig, KeyMethod, PeerKeying
from mobilityd.call.negotiation import Answerer, CallSecurity, NegotiatedMedia, Offerer
from mobilityd.call.sdpmedia import KeyMgmtLevel, MediaPort, error_body, read_error_body
from mobilityd.media.srtp import SrtpSuite
from mobilityd.mikey.constants import ErrorType
from mobilityd.mikey.message import MikeyMessage
from mobilityd.mikey.sdp import decode_key_mgmt, encode_key_mgmt
from mobilityd.mikey.session import build_error_message, parse_error_message
from mobilityd.sip.sdp import Attribute, SessionDescription
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




def _offer(security: CallSecurity, method: KeyMethod = KeyMethod.PSK,
           local_id: bytes = ALICE, seed: int = 1,
           level: KeyMgmtLevel = KeyMgmtLevel.SESSION) -> tuple[Offerer, bytes]:
    offerer = Offerer(local_id, BOB, security, keying(ALICE, BOB, method), level=level)
    return offerer, offerer.make_offer(A_PORTS[: len(offerer.streams())], NOW, rng(seed))


def _answerer(security: CallSecurity, method: KeyMethod = KeyMethod.PSK,
              psk: bytes = PSK) -> Answerer:
    return Answerer(BOB, security, keying(BOB, ALICE, method, psk))


def _mikey_error_of(exc: NegotiationError) -> ErrorType:
    assert exc.error_message is not None
    return parse_error_message(MikeyMessage.parse(exc.error_message)).error_type


def test_media_level_key_mgmt_answered_at_media_level() -> None:
    """RFC 4567 §3.1: media-level key-mgmt; the response goes where the offer's was."""
    a, b, offer, answer = exchange(CallSecurity.REQUIRED, CallSecurity.REQUIRED,
                                   level=KeyMgmtLevel.MEDIA)
    offer_sd, answer_sd = SessionDescription.parse(offer), SessionDescription.parse(answer)
    assert not offer_sd.key_mgmt and offer_sd.media[0].key_mgmt
    assert not answer_sd.key_mgmt and answer_sd.media[0].key_mgmt
    assert a.context is not None and b.context is not None
    assert a.context.srtp_master(2) == b.context.srtp_master(2)


def test_sp_payload_chooses_the_32_bit_tag_suite() -> None:
    """RFC 3830 §6.10.1 auth tag length 4 -> AES_CM_128_HMAC_SHA1_32 on both sides."""
    a, b, _, _ = exchange(CallSecurity.REQUIRED, CallSecurity.REQUIRED,
                          suite=SrtpSuite.AES_CM_128_HMAC_SHA1_32)
    assert a.suite is b.suite is SrtpSuite.AES_CM_128_HMAC_SHA1_32


@pytest.mark.parametrize("callee", [CallSecurity.PREFERRED, CallSecurity.REQUIRED])
def test_preferred_offer_gets_srtp_from_a_capable_callee(callee: CallSecurity) -> None:
    """Thesis §11.3: SRTP and RTP alternatives; the callee refuses RTP by port 0."""
    a, b, offer, answer = exchange(CallSecurity.PREFERRED, callee)
    offer_sd, answer_sd = SessionDescription.parse(offer), SessionDescription.parse(answer)
    assert [m.proto for m in offer_sd.media] == ["RTP/SAVP", "RTP/AVP"]
    assert [m.port for m in answer_sd.media] == [50000, 0]
    assert a.secure and b.secure and a.media_index == b.media_index == 0


def test_preferred_offer_falls_back_to_rtp_with_a_callee_without_security() -> None:
    """Thesis §11.3: a callee with security off takes the RTP stream, refuses SRTP."""
    a, b, _, answer = exchange(CallSecurity.PREFERRED, CallSecurity.OFF)
    assert [m.port for m in SessionDescription.parse(answer).media] == [0, 50000]
    assert not a.secure and not b.secure and a.context is None
    assert a.remote_rtp == ("10.2.0.2", 50000) and b.remote_rtp == ("10.1.0.2", 40002)


def test_required_offer_to_callee_with_security_off_is_488() -> None:
    """RFC 3264 §6: no stream the callee can take: 488 Not Acceptable Here."""
    _, offer = _offer(CallSecurity.REQUIRED)
    with pytest.raises(NegotiationError) as info:
        _answerer(CallSecurity.OFF).receive_offer(offer, ALICE, NOW, rng(2))
    assert info.value.status == 488 and info.value.error_message is None


def test_plain_offer_to_callee_requiring_security_is_606() -> None:
    """Thesis §11.3 (our choice): the user accepts no plain media anywhere: 606."""
    _, offer = _offer(CallSecurity.OFF)
    with pytest.raises(NegotiationError) as info:
        _answerer(CallSecurity.REQUIRED).receive_offer(offer, ALICE, NOW, rng(2))
    assert info.value.status == 606


def test_answer_accepting_srtp_without_mikey_ends_the_call() -> None:
    """Thesis §11.3: a non-compliant UA answers RTP/SAVP but ignores key-mgmt: the
    caller refuses the answer (BYE carrying a MIKEY error), never a half-secure call."""
    offerer, offer = _offer(CallSecurity.REQUIRED)
    sd = SessionDescription.parse(offer)
    sd.attributes = [a for a in sd.attributes if a.name != "key-mgmt"]
    sd.media[0].port = 50000
    with pytest.raises(NegotiationError) as info:
        offerer.receive_answer(bytes(sd), NOW)
    assert info.value.error_message is not None
    assert _mikey_error_of(info.value) is ErrorType.UNSPECIFIED


@pytest.mark.parametrize("method", list(KeyMethod))
def test_tampered_offer_is_refused_with_mikey_error(method: KeyMethod) -> None:
    """RFC 3830 §5.3: bad MAC / signature -> 488 carrying an ERR (RFC 4567 §4.1.2)."""
    _, offer = _offer(CallSecurity.REQUIRED, method)
    sd = SessionDescription.parse(offer)
    value = sd.attributes[0].value
    assert value is not None
    data = bytearray(decode_key_mgmt(value))
    data[-3] ^= 0x01  # inside the MAC / signature
    sd.attributes[0] = Attribute("key-mgmt", encode_key_mgmt(bytes(data)))
    with pytest.raises(NegotiationError) as info:
        _answerer(CallSecurity.REQUIRED, method).receive_offer(bytes(sd), ALICE, NOW, rng(2))
    assert info.value.status == 488
    assert info.value.mikey_error is ErrorType.AUTH_FAILURE
    assert _mikey_error_of(info.value) is ErrorType.AUTH_FAILURE
    assert read_error_body(error_body(info.value.error_message or b"", "10.2.0.2")) == (
        info.value.error_message)


def test_wrong_psk_is_auth_failure() -> None:
    _, offer = _offer(CallSecurity.REQUIRED)
    answerer = _answerer(CallSecurity.REQUIRED, psk=bytes(32))
    with pytest.raises(NegotiationError) as info:
        answerer.receive_offer(offer, ALICE, NOW, rng(2))
    assert info.value.mikey_error is ErrorType.AUTH_FAILURE


@pytest.mark.parametrize("method", list(KeyMethod))
def test_mikey_identity_must_be_the_sip_caller(method: KeyMethod) -> None:
    """IDi (or the certificate SAN) must be the From of the INVITE, else refused."""
    _, offer = _offer(CallSecurity.REQUIRED, method)
    mallory = sip_identity("sip:mallory@a.test")
    with pytest.raises(NegotiationError) as info:
        _answerer(CallSecurity.REQUIRED, method).receive_offer(offer, mallory, NOW, rng(2))
    assert info.value.status == 488
    assert info.value.mikey_error in (ErrorType.AUTH_FAILURE, ErrorType.INVALID_ID)


def test_certificate_of_another_user_is_refused() -> None:
    """A caller claiming to be mallory (IDi, From) with alice's certificate (SAN):
    RFC 3830 §4.3.2 / docs/mikey.md choice 6 -- AUTH_FAILURE."""
    mallory = sip_identity("sip:mallory@a.test")
    offerer = Offerer(mallory, BOB, CallSecurity.REQUIRED, keying(ALICE, BOB, KeyMethod.DH))
    offer = offerer.make_offer(A_PORTS[:1], NOW, rng(1))
    answerer = Answerer(BOB, CallSecurity.REQUIRED,
                        KeyingConfig(own=credentials(BOB.decode()),
                                     default_method=KeyMethod.DH))
    with pytest.raises(NegotiationError) as info:
        answerer.receive_offer(offer, mallory, NOW, rng(2))
    assert info.value.mikey_error is ErrorType.AUTH_FAILURE


def test_sdp_ids_mismatch_is_a_bidding_down_attempt() -> None:
    """RFC 4567 §4.1.4, §7: a key-mgmt line added in transit changes the protocol list
    that the I_MESSAGE authenticated: AUTH_FAILURE."""
    _, offer = _offer(CallSecurity.REQUIRED)
    sd = SessionDescription.parse(offer)
    sd.attributes.append(Attribute("key-mgmt", "keyp1 AAAA"))
    with pytest.raises(NegotiationError) as info:
        _answerer(CallSecurity.REQUIRED).receive_offer(bytes(sd), ALICE, NOW, rng(2))
    assert info.value.mikey_error is ErrorType.AUTH_FAILURE


def test_one_bad_mikey_message_among_several_rejects_all() -> None:
    """RFC 4567 §4.1.2, thesis §11.4: a good session-level message and a bad
    media-level one: the whole offer is refused."""
    _, good = _offer(CallSecurity.REQUIRED)
    _, media_level = _offer(CallSecurity.REQUIRED, level=KeyMgmtLevel.MEDIA, seed=3)
    sd = SessionDescription.parse(good)
    media_sd = SessionDescription.parse(media_level)
    bad_value = media_sd.media[0].get("key-mgmt")
    assert bad_value is not None
    data = bytearray(decode_key_mgmt(bad_value))
    data[-1] ^= 0xFF
    sd.media[0].attributes.append(Attribute("key-mgmt", encode_key_mgmt(bytes(data))))
    with pytest.raises(NegotiationError) as info:
        _answerer(CallSecurity.REQUIRED).receive_offer(bytes(sd), ALICE, NOW, rng(2))
    assert info.value.mikey_error is ErrorType.AUTH_FAILURE


def test_tampered_answer_gives_error_for_the_bye() -> None:
    """Thesis §11.4: an error in the 2xx's MIKEY response: ACK, then BYE with an ERR."""
    offerer, offer = _offer(CallSecurity.REQUIRED)
    answerer = _answerer(CallSecurity.REQUIRED)
    plan = answerer.receive_offer(offer, ALICE, NOW, rng(2))
    sd = SessionDescription.parse(answerer.build_answer(plan, B_PORT, 9))
    value = sd.attributes[0].value
    assert value is not None
    data = bytearray(decode_key_mgmt(value))
    data[-1] ^= 0x01  # the V payload's MAC
    sd.attributes[0] = Attribute("key-mgmt", encode_key_mgmt(bytes(data)))
    with pytest.raises(NegotiationError) as info:
        offerer.receive_answer(bytes(sd), NOW)
    assert _mikey_error_of(info.value) is ErrorType.AUTH_FAILURE
    assert MikeyMessage.parse(info.value.error_message or b"").header.csb_id == offerer.csb_id


def test_mikey_error_in_the_answer_is_not_answered_with_an_error() -> None:
    """RFC 3830 §5.1.2: the peer's ERR ends the call; we send no ERR back."""
    offerer, offer = _offer(CallSecurity.REQUIRED)
    sd = SessionDescription.parse(offer)
    err = build_error_message(offerer.csb_id, [ErrorType.INVALID_SP], now=NOW)
    sd.attributes = [Attribute("key-mgmt", encode_key_mgmt(err))]
    sd.media[0].port = 50000
    with pytest.raises(NegotiationError) as info:
        offerer.receive_answer(bytes(sd), NOW)
    assert info.value.mikey_error is ErrorType.INVALID_SP
    assert info.value.error_message is None


@pytest.mark.parametrize("body", [b"", b"not sdp", b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\n"])
def test_unusable_offer_bodies_get_typed_errors(body: bytes) -> None:
    with pytest.raises(NegotiationError) as info:
        _answerer(CallSecurity.PREFERRED).receive_offer(body, ALICE, NOW, rng(2))
    assert info.value.status in (400, 488)


def test_garbage_key_mgmt_value_is_refused() -> None:
    _, offer = _offer(CallSecurity.REQUIRED)
    sd = SessionDescription.parse(offer)
    sd.attributes[0] = Attribute("key-mgmt", "mikey AAAA")
    with pytest.raises(NegotiationError) as info:
        _answerer(CallSecurity.REQUIRED).receive_offer(bytes(sd), ALICE, NOW, rng(2))
    assert info.value.status == 488


def test_dh_answer_draws_from_the_precomputed_pool() -> None:
    """Thesis Table 2: DH answering is fast only with precomputed key pairs."""
    answerer = _answerer(CallSecurity.REQUIRED, KeyMethod.DH)
    assert answerer.keying is not None
    answerer.keying.dh_pool.fill(rng(5), 1)
    _, offer = _offer(CallSecurity.REQUIRED, KeyMethod.DH)
    answerer.receive_offer(offer, ALICE, NOW, rng(2))
    assert answerer.keying.dh_pool.misses == 0 and len(answerer.keying.dh_pool) == 0


def test_offer_is_reproducible_with_the_same_rng() -> None:
    """Sans-I/O: same rng and clock, same bytes."""
    assert _offer(CallSecurity.PREFERRED)[1] == _offer(CallSecurity.PREFERRED)[1]


@pytest.mark.parametrize("method", [KeyMethod.DH, KeyMethod.PKE])
def test_callee_certificate_must_name_the_sip_callee(method: KeyMethod) -> None:
    """The To identity is what the caller's initiator expects: a callee answering with
    carol's certificate (SAN carol) is refused (DH: the signed response; PKE: the
    envelope key was encrypted to bob, so carol cannot even open it)."""
    offerer, offer = _offer(CallSecurity.REQUIRED, method)
    carol = KeyingConfig(own=credentials("sip:carol@b.test", serial=7),
                         peers={ALICE: PeerKeying(method, PSK,
                                                  credentials(ALICE.decode()).certificate)},
                         default_method=method)
    answerer = Answerer(BOB, CallSecurity.REQUIRED, carol)
    with pytest.raises(NegotiationError) as info:
        plan = answerer.receive_offer(offer, ALICE, NOW, rng(2))
        offerer.receive_answer(answerer.build_answer(plan, B_PORT, 1), NOW)
    assert info.value.mikey_error in (ErrorType.AUTH_FAILURE, ErrorType.INVALID_CERT)


def test_screen_then_complete_is_receive_offer() -> None:
    """The two halves the agent sends its 180 between give the same plan, and the
    offerer's CSB ID (RFC 3830 §6.1, read from the header octets) is the message's."""
    offerer, offer = _offer(CallSecurity.REQUIRED)
    whole = _answerer(CallSecurity.REQUIRED).receive_offer(offer, ALICE, NOW, rng(2))
    answerer = _answerer(CallSecurity.REQUIRED)
    screened = answerer.screen_offer(offer)
    assert screened.secure and screened.index == 0
    split = answerer.complete_offer(screened, ALICE, NOW, rng(2))
    assert split.media.local_ssrc == whole.media.local_ssrc
    assert split.media.context is not None and whole.media.context is not None
    assert split.media.context.srtp_master(1) == whole.media.context.srtp_master(1)
    assert offerer.csb_id == split.media.context.csb_id
    value = SessionDescription.parse(offer).key_mgmt
    assert value and offerer.csb_id == MikeyMessage.parse(
        decode_key_mgmt(f"mikey {value[0].data}")).header.csb_id


def test_screening_refuses_by_policy_and_leaves_mikey_to_completion() -> None:
    """thesis §11.3: the policy refusal (606) needs no cryptography; a MIKEY offer with
    a wrong PSK passes the screen and is refused by complete_offer with 488 and the
    MIKEY error message (RFC 4567 §4.1.2)."""
    _, plain = _offer(CallSecurity.OFF)
    with pytest.raises(NegotiationError) as info:
        _answerer(CallSecurity.REQUIRED).screen_offer(plain)
    assert info.value.status == 606
    _, offer = _offer(CallSecurity.REQUIRED)
    answerer = _answerer(CallSecurity.REQUIRED, psk=bytes(32))
    screened = answerer.screen_offer(offer)
    with pytest.raises(NegotiationError) as refused:
        answerer.complete_offer(screened, ALICE, NOW, rng(2))
    assert refused.value.status == 488
    assert _mikey_error_of(refused.value) is ErrorType.AUTH_FAILURE
