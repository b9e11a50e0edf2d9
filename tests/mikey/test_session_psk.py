"""PSK key agreement (RFC 3830 §3.1) with two engines in memory and a hand-set clock."""

from __future__ import annotations

import random

import pytest

from mobilityd.mikey.constants import DataType, EncrAlg, ErrorType, MacAlg, SrtpParam
from mobilityd.mikey.errors import MikeyError
from mobilityd.mikey.keys import derive_message_keys, derive_srtp_salt, derive_tek
from mobilityd.mikey.message import MikeyMessage
from mobilityd.mikey.payloads import (
    ErrorPayload,
    Kemac,
    PolicyParam,
    Rand,
    SecurityPolicy,
    SrtpCsEntry,
    Timestamp,
    parse_key_data_chain,
)
from mobilityd.mikey.protection import decrypt_key_data
from mobilityd.mikey.replay import ReplayedMessage
from mobilityd.mikey.session import (
    PeerReportedError,
    PskInitiator,
    Responder,
    SessionPolicy,
    error_response,
)

PSK = bytes(range(32))
ALICE = b"sip:alice@example.org"
BOB = b"sip:bob@example.org"
NOW = 1_795_000_000.0
CS_MAP = (SrtpCsEntry(0, 0x11111111, 0), SrtpCsEntry(0, 0x22222222, 5))


def rng(seed: int = 1):  # type: ignore[no-untyped-def]
    return random.Random(seed).randbytes


def exchange(**initiator_kwargs):  # type: ignore[no-untyped-def]
    initiator = PskInitiator(psk=PSK, local_id=ALICE, peer_id=BOB, cs_map=CS_MAP,
                             **initiator_kwargs)
    responder = Responder(local_id=BOB, psk=PSK)
    i_message = initiator.start(NOW, rng())
    answer = responder.receive(i_message, NOW + 0.1)
    return initiator, responder, i_message, answer


def test_psk_exchange_with_verification_rfc3830_3_1() -> None:
    initiator, _, i_message, answer = exchange()
    assert initiator.context is None  # waiting for V
    assert answer.reply is not None
    ctx_i = initiator.receive_response(answer.reply, NOW + 0.2)
    ctx_r = answer.context
    assert ctx_i.tgk == ctx_r.tgk and len(ctx_i.tgk) == 16
    assert (ctx_i.csb_id, ctx_i.rand, ctx_i.cs_map) == (ctx_r.csb_id, ctx_r.rand, ctx_r.cs_map)
    assert ctx_r.peer_id == ALICE and ctx_i.peer_id == BOB
    for cs_id in (1, 2):
        assert ctx_i.srtp_master(cs_id) == ctx_r.srtp_master(cs_id)
    assert ctx_i.srtp_master(1) != ctx_i.srtp_master(2)
    msg = MikeyMessage.parse(i_message)
    assert msg.header.data_type is DataType.PSK_INIT and msg.header.v_flag
    assert [p.payload_type.name for p in msg.payloads] == [
        "T", "RAND", "ID", "ID", "SP", "KEMAC"]
    reply = MikeyMessage.parse(answer.reply)
    assert reply.header.data_type is DataType.PSK_RESP
    assert [p.payload_type.name for p in reply.payloads] == ["T", "ID", "V"]


def test_i_message_decrypts_with_independent_steps_rfc3830_4_1_4() -> None:
    """The KEMAC opens with keys derived by hand from PSK, CSB ID and RAND."""
    initiator, _, i_message, _ = exchange()
    msg = MikeyMessage.parse(i_message)
    rand = msg.require(Rand).rand
    ts = msg.require(Timestamp)
    kemac = msg.require(Kemac)
    keys = derive_message_keys(PSK, msg.header.csb_id, rand, 16, 20, 14)
    plain = decrypt_key_data(kemac.encr_alg, keys, msg.header.csb_id, ts.value_bytes,
                             kemac.encr_data)
    (key_data,) = parse_key_data_chain(plain)
    assert kemac.encr_alg is EncrAlg.AES_CM_128 and kemac.mac_alg is MacAlg.HMAC_SHA1_160
    master_key, master_salt = initiator._pending.srtp_master(1)  # type: ignore[union-attr]
    assert master_key == derive_tek(key_data.key, 1, msg.header.csb_id, rand, 16)  # type: ignore[union-attr]
    assert master_salt == derive_srtp_salt(key_data.key, 1, msg.header.csb_id, rand, 14)  # type: ignore[union-attr]


def test_without_v_flag_no_answer_and_context_at_once() -> None:
    initiator, _, _, answer = exchange(want_verification=False)
    assert answer.reply is None
    assert initiator.context is not None and initiator.context.tgk == answer.context.tgk


def test_same_inputs_same_bytes() -> None:
    a = PskInitiator(psk=PSK, local_id=ALICE, peer_id=BOB, cs_map=CS_MAP).start(NOW, rng(7))
    b = PskInitiator(psk=PSK, local_id=ALICE, peer_id=BOB, cs_map=CS_MAP).start(NOW, rng(7))
    assert a == b


@pytest.mark.parametrize("encr", list(EncrAlg))
def test_every_kemac_encryption_interoperates(encr: EncrAlg) -> None:
    policy = SessionPolicy(encr_alg=encr, allow_null=True)
    initiator = PskInitiator(psk=PSK, local_id=ALICE, peer_id=BOB, cs_map=CS_MAP, policy=policy)
    responder = Responder(local_id=BOB, psk=PSK, policy=policy)
    answer = responder.receive(initiator.start(NOW, rng()), NOW)
    assert answer.reply is not None
    assert initiator.receive_response(answer.reply, NOW).tgk == answer.context.tgk


def test_wrong_psk_is_auth_failure_and_not_cached() -> None:
    initiator = PskInitiator(psk=PSK, local_id=ALICE, peer_id=BOB, cs_map=CS_MAP)
    i_message = initiator.start(NOW, rng())
    responder = Responder(local_id=BOB, psk=b"\x01" * 32)
    with pytest.raises(MikeyError) as info:
        responder.receive(i_message, NOW)
    assert info.value.error_type is ErrorType.AUTH_FAILURE
    assert responder.replay_cache is not None and len(responder.replay_cache) == 0
    answer = error_response(i_message, info.value, NOW)
    assert answer is not None
    err = MikeyMessage.parse(answer)
    assert err.header.data_type is DataType.ERROR
    assert err.require(ErrorPayload).error_no is ErrorType.AUTH_FAILURE
    assert err.require(Timestamp) == MikeyMessage.parse(i_message).require(Timestamp).with_next(
        err.require(Timestamp).next_payload)
    with pytest.raises(PeerReportedError) as peer:
        initiator.receive_response(answer, NOW)
    assert peer.value.error_type is ErrorType.AUTH_FAILURE


def test_replayed_i_message_is_dropped_not_answered_rfc3830_5_4() -> None:
    _, responder, i_message, _ = exchange()
    with pytest.raises(ReplayedMessage) as info:
        responder.receive(i_message, NOW + 1)
    assert error_response(i_message, info.value, NOW + 1) is None


@pytest.mark.parametrize("skew", [-601.0, 601.0])
def test_stale_or_future_timestamp_is_invalid_ts(skew: float) -> None:
    initiator = PskInitiator(psk=PSK, local_id=ALICE, peer_id=BOB, cs_map=CS_MAP)
    with pytest.raises(MikeyError) as info:
        Responder(local_id=BOB, psk=PSK).receive(initiator.start(NOW, rng()), NOW + skew)
    assert info.value.error_type is ErrorType.INVALID_TS


def test_every_single_bit_flip_is_rejected_with_mikey_error() -> None:
    _, _, i_message, _ = exchange()
    for i in range(len(i_message) * 8):
        tampered = bytearray(i_message)
        tampered[i // 8] ^= 1 << (i % 8)
        with pytest.raises(MikeyError):
            Responder(local_id=BOB, psk=PSK).receive(bytes(tampered), NOW)


def test_every_truncation_is_rejected_with_mikey_error() -> None:
    _, _, i_message, _ = exchange()
    for cut in range(len(i_message)):
        with pytest.raises(MikeyError):
            Responder(local_id=BOB, psk=PSK).receive(i_message[:cut], NOW)


def test_forged_verification_changes_nothing() -> None:
    initiator, _, _, answer = exchange()
    assert answer.reply is not None
    forged = bytearray(answer.reply)
    forged[-1] ^= 1
    with pytest.raises(MikeyError) as info:
        initiator.receive_response(bytes(forged), NOW)
    assert info.value.error_type is ErrorType.AUTH_FAILURE
    assert initiator.context is None
    assert initiator.receive_response(answer.reply, NOW).tgk == answer.context.tgk


def test_unknown_initiator_is_invalid_id() -> None:
    initiator = PskInitiator(psk=PSK, local_id=ALICE, peer_id=BOB, cs_map=CS_MAP)
    responder = Responder(local_id=BOB, psk=lambda ident: None)
    with pytest.raises(MikeyError) as info:
        responder.receive(initiator.start(NOW, rng()), NOW)
    assert info.value.error_type is ErrorType.INVALID_ID


def test_message_for_someone_else_is_invalid_id() -> None:
    initiator = PskInitiator(psk=PSK, local_id=ALICE, peer_id=b"sip:carol@x", cs_map=CS_MAP)
    with pytest.raises(MikeyError) as info:
        Responder(local_id=BOB, psk=PSK).receive(initiator.start(NOW, rng()), NOW)
    assert info.value.error_type is ErrorType.INVALID_ID


def test_signalled_identity_must_match() -> None:
    initiator = PskInitiator(psk=PSK, local_id=ALICE, peer_id=BOB, cs_map=CS_MAP)
    responder = Responder(local_id=BOB, psk=PSK, peer_id=b"sip:mallory@example.org")
    with pytest.raises(MikeyError) as info:
        responder.receive(initiator.start(NOW, rng()), NOW)
    assert info.value.error_type is ErrorType.AUTH_FAILURE


def test_null_protection_refused_by_default_rfc3830_4_2_3() -> None:
    policy = SessionPolicy(encr_alg=EncrAlg.NULL, mac_alg=MacAlg.NULL)
    initiator = PskInitiator(psk=PSK, local_id=ALICE, peer_id=BOB, cs_map=CS_MAP, policy=policy)
    with pytest.raises(MikeyError) as info:
        Responder(local_id=BOB, psk=PSK).receive(initiator.start(NOW, rng()), NOW)
    assert info.value.error_type is ErrorType.INVALID_EA


def test_unsupported_srtp_parameter_is_invalid_sppar() -> None:
    sp = SecurityPolicy(0, SecurityPolicy.srtp_defaults().prot_type,
                        (PolicyParam(SrtpParam.SESSION_ENCR_KEY_LEN, b"\x07"),))
    initiator = PskInitiator(psk=PSK, local_id=ALICE, peer_id=BOB, cs_map=CS_MAP,
                             policies=(sp,))
    with pytest.raises(MikeyError) as info:
        Responder(local_id=BOB, psk=PSK).receive(initiator.start(NOW, rng()), NOW)
    assert info.value.error_type is ErrorType.INVALID_SPPAR


def test_transfer_reuses_tgk_csb_and_rand_with_current_rocs() -> None:
    """Issue 6: the call moves to a new device with the same keys and current ROCs."""
    initiator, _, _, answer = exchange()
    assert answer.reply is not None
    ctx = initiator.receive_response(answer.reply, NOW)
    moved_map = (SrtpCsEntry(0, 0x11111111, 3), SrtpCsEntry(0, 0x22222222, 9))
    transfer = PskInitiator(psk=PSK, local_id=ALICE, peer_id=b"sip:bob-tablet@example.org",
                            cs_map=moved_map, existing=ctx)
    new_device = Responder(local_id=b"sip:bob-tablet@example.org", psk=PSK)
    moved = new_device.receive(transfer.start(NOW + 5, rng(99)), NOW + 5)
    assert (moved.context.tgk, moved.context.csb_id, moved.context.rand) == (
        ctx.tgk, ctx.csb_id, ctx.rand)
    assert moved.context.cs_map == moved_map
    assert moved.context.srtp_master(1) == ctx.srtp_master(1)
    assert moved.context.srtp_master(2) == answer.context.srtp_master(2)


def test_lone_id_naming_us_is_idr_and_initiator_must_be_known() -> None:
    from mobilityd.mikey.payloads import CommonHeader, IdPayload
    from mobilityd.mikey.session_common import build_maced

    initiator = PskInitiator(psk=PSK, local_id=ALICE, peer_id=BOB, cs_map=CS_MAP)
    msg = MikeyMessage.parse(initiator.start(NOW, rng()))
    keys = derive_message_keys(PSK, msg.header.csb_id, msg.require(Rand).rand, 16, 20, 14)
    payloads = [p for p in msg.payloads if not (isinstance(p, IdPayload) and p.data == ALICE)]
    header = CommonHeader(msg.header.data_type, msg.header.csb_id, msg.header.cs_map,
                          v_flag=True)
    only_idr = build_maced(header, payloads, MacAlg.HMAC_SHA1_160, keys.auth_key)
    with pytest.raises(MikeyError) as info:
        Responder(local_id=BOB, psk=PSK).receive(only_idr, NOW)
    assert info.value.error_type is ErrorType.INVALID_ID
    answer = Responder(local_id=BOB, psk=PSK, peer_id=ALICE).receive(only_idr, NOW)
    assert answer.context.peer_id == ALICE


@pytest.mark.parametrize("encr", ["aes-cm", "aes-kw", "null"])
def test_cli_built_i_message_is_accepted_by_the_responder(encr: str) -> None:
    """`python -m mobilityd.mikey build` (the codec helper's CLI) and this engine agree."""
    import base64
    import subprocess
    import sys
    import time

    tgk, rand, csb_id = "0f" * 16, "ab" * 16, 305419896
    out = subprocess.run(
        [sys.executable, "-m", "mobilityd.mikey", "build", "--mode", "psk", "--psk", PSK.hex(),
         "--csb-id", str(csb_id), "--tgk", tgk, "--rand", rand, "--ssrc", "deadbeef,cafebabe",
         "--roc", "0,3", "--encr", encr, "--verify-request"],
        capture_output=True, text=True, check=True, timeout=60,
    )
    responder = Responder(local_id=BOB, psk=PSK, peer_id=ALICE,
                          policy=SessionPolicy(allow_null=True))
    answer = responder.receive(base64.b64decode(out.stdout.strip()), time.time())
    assert answer.context.tgk.hex() == tgk and answer.reply is not None
    assert answer.context.cs_map == (SrtpCsEntry(0, 0xDEADBEEF, 0), SrtpCsEntry(0, 0xCAFEBABE, 3))
    assert answer.context.srtp_master(2) == (
        derive_tek(bytes.fromhex(tgk), 2, csb_id, bytes.fromhex(rand), 16),
        derive_srtp_salt(bytes.fromhex(tgk), 2, csb_id, bytes.fromhex(rand), 14),
    )


def test_responder_accepts_messages_gstreamer_built() -> None:
    """Recorded PSK I_MESSAGEs built by GStreamer's libgstsdp (NULL encryption and MAC,
    so only with ``allow_null``), tests/mikey/data/gstreamer_psk_*.b64."""
    import base64
    from pathlib import Path

    from mobilityd.mikey.timestamps import unix_from_ntp

    data_dir = Path(__file__).with_name("data")
    contexts = []
    for i in (1, 2, 3):
        data = base64.b64decode((data_dir / f"gstreamer_psk_{i}.b64").read_text().strip())
        now = unix_from_ntp(MikeyMessage.parse(data).require(Timestamp).value, NOW)
        with pytest.raises(MikeyError) as info:  # NULL protection: refused by default
            Responder(local_id=BOB, psk=PSK, peer_id=ALICE).receive(data, now)
        assert info.value.error_type is ErrorType.INVALID_EA
        lax = Responder(local_id=BOB, psk=PSK, peer_id=ALICE,
                        policy=SessionPolicy(allow_null=True))
        answer = lax.receive(data, now)
        assert answer.reply is None  # GStreamer did not set the V flag
        contexts.append(answer.context)
    tgk_ctx, tek_ctx, bare_ctx = contexts
    assert tgk_ctx.tgk == b"\x11" * 16 and tgk_ctx.cs_map == (SrtpCsEntry(0, 0xDEADBEEF, 0),)
    assert tgk_ctx.srtp_master(1) == (
        derive_tek(tgk_ctx.tgk, 1, 0x12345678, bytes(range(16)), 16),
        derive_srtp_salt(tgk_ctx.tgk, 1, 0x12345678, bytes(range(16)), 14),
    )
    # A TEK with salt is the SRTP master key and salt as sent (§4.1.3, §6.13).
    assert tek_ctx.srtp_master(2) == (b"\x22" * 16, b"\x33" * 14)
    assert bare_ctx.tgk == b"\x44" * 32 and bare_ctx.cs_map == ()


def test_reprs_never_show_key_material() -> None:
    initiator, responder, _, answer = exchange()
    ctx = answer.context
    keys = ctx.secrets.message_keys
    assert keys is not None
    secrets = [ctx.tgk.hex(), PSK.hex(), keys.auth_key.hex(), keys.encr_key.hex(),
               ctx.srtp_master(1)[0].hex()]
    for text in (repr(ctx), repr(initiator), repr(responder), repr(answer), str(ctx)):
        assert not any(secret in text for secret in secrets)
        assert not any(repr(bytes.fromhex(secret)) in text for secret in secrets)


def test_derived_master_keys_run_srtp_between_the_two_sides() -> None:
    """libsrtp (pylibsrtp) protects with Alice's keys and unprotects with Bob's, per CS."""
    import struct

    import pylibsrtp

    initiator, _, _, answer = exchange()
    assert answer.reply is not None
    alice = initiator.receive_response(answer.reply, NOW)
    bob = answer.context
    for cs_id, entry in enumerate(alice.cs_map, start=1):
        key, salt = alice.srtp_master(cs_id)
        sender = pylibsrtp.Session(policy=pylibsrtp.Policy(
            key=key + salt, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND))
        key, salt = bob.srtp_master(cs_id)
        receiver = pylibsrtp.Session(policy=pylibsrtp.Policy(
            key=key + salt, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND))
        rtp = struct.pack("!BBHII", 0x80, 0, 1, 160, entry.ssrc) + b"payload" * 20
        protected = sender.protect(rtp)
        assert protected != rtp and receiver.unprotect(protected) == rtp
        wrong_key, wrong_salt = bob.srtp_master(3 - cs_id)
        other = pylibsrtp.Session(policy=pylibsrtp.Policy(
            key=wrong_key + wrong_salt, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND))
        with pytest.raises(pylibsrtp.Error):
            other.unprotect(protected)


def test_policy_error_answer_offers_our_policies_rfc3830_5_1_1() -> None:
    sp = SecurityPolicy(0, SecurityPolicy.srtp_defaults().prot_type,
                        (PolicyParam(SrtpParam.AUTH_TAG_LEN, b"\x07"),))
    initiator = PskInitiator(psk=PSK, local_id=ALICE, peer_id=BOB, cs_map=CS_MAP,
                             policies=(sp,))
    i_message = initiator.start(NOW, rng())
    with pytest.raises(MikeyError) as info:
        Responder(local_id=BOB, psk=PSK).receive(i_message, NOW)
    ours = SecurityPolicy.srtp_defaults(0)
    answer = error_response(i_message, info.value, NOW, supported=[ours])
    assert answer is not None
    with pytest.raises(PeerReportedError) as peer:
        initiator.receive_response(answer, NOW)
    assert peer.value.error_type is ErrorType.INVALID_SPPAR
    assert peer.value.supported == (ours,)
    # Other errors do not advertise policies.
    auth = error_response(i_message, MikeyError("x", ErrorType.AUTH_FAILURE), NOW, [ours])
    assert auth is not None and MikeyMessage.parse(auth).find(SecurityPolicy) is None


def test_verification_mac_input_rfc3830_5_2() -> None:
    """V = HMAC(auth_key, R_MESSAGE without Ver data || IDi data || IDr data || T value)."""
    import hashlib
    import hmac as std_hmac

    _, _, i_message, answer = exchange()
    assert answer.reply is not None
    msg = MikeyMessage.parse(i_message)
    ts = msg.require(Timestamp)
    auth_key = derive_message_keys(PSK, msg.header.csb_id, msg.require(Rand).rand).auth_key
    expected = std_hmac.new(auth_key, answer.reply[:-20] + ALICE + BOB + ts.value_bytes,
                            hashlib.sha1).digest()
    assert answer.reply[-20:] == expected
    assert MikeyMessage.parse(answer.reply).require(Timestamp).value == ts.value  # echoed T
