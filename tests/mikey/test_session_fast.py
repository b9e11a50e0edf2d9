"""The hot paths give exactly what the general codec paths give (RFC 3830 §4.5, §5.2)."""

from __future__ import annotations

import random

from mobilityd.mikey.constants import DataType, EncrAlg, MacAlg
from mobilityd.mikey.message import MikeyMessage
from mobilityd.mikey.payloads import CommonHeader, Kemac, SrtpCsEntry
from mobilityd.mikey.protection import compute_mac
from mobilityd.mikey.session import PskInitiator, Responder, SessionPolicy
from mobilityd.mikey.session_common import encrypt_kemac, id_payload, key_data_for
from mobilityd.mikey.session_fast import encode_message
from mobilityd.mikey.timestamps import timestamp_payload

PSK = bytes(range(32))
ALICE = b"sip:alice@example.org"
BOB = b"sip:bob@example.org"
NOW = 1_795_000_000.0
CS_MAP = (SrtpCsEntry(0, 0x11111111, 0), SrtpCsEntry(1, 0x22222222, 7))


def contexts(policy: SessionPolicy | None = None):  # type: ignore[no-untyped-def]
    policy = policy or SessionPolicy()
    initiator = PskInitiator(psk=PSK, local_id=ALICE, peer_id=BOB, cs_map=CS_MAP, policy=policy)
    answer = Responder(local_id=BOB, psk=PSK, policy=policy).receive(
        initiator.start(NOW, random.Random(1).randbytes), NOW)
    assert answer.reply is not None
    return initiator.receive_response(answer.reply, NOW), answer.context


def test_encode_message_equals_codec_build() -> None:
    alice, _ = contexts()
    for wire in (alice.build_update(NOW + 1, new_tgk=b"\x01" * 16),
                 PskInitiator(psk=PSK, local_id=ALICE, peer_id=BOB, cs_map=CS_MAP).start(
                     NOW, random.Random(2).randbytes)):
        msg = MikeyMessage.parse(wire)
        assert encode_message(msg.header, msg.payloads) == bytes(
            MikeyMessage.build(msg.header, msg.payloads)) == wire


def general_update(ctx, now: float, new_tgk: bytes | None) -> bytes:  # type: ignore[no-untyped-def]
    """The same update assembled with the codec's MikeyMessage.build."""
    keys = ctx.secrets.message_keys
    ts = timestamp_payload(now)
    items = [key_data_for(new_tgk)] if new_tgk else []
    kemac = encrypt_kemac(items, keys, ctx.csb_id, ts, ctx.policy)
    msg = MikeyMessage.build(CommonHeader(DataType.PSK_INIT, ctx.csb_id, ctx.cs_map),
                             [ts, id_payload(ctx.local_id), id_payload(ctx.peer_id), kemac])
    mac = compute_mac(kemac.mac_alg, keys.auth_key, msg.authenticated_bytes())
    return bytes(msg.with_auth_field(mac))


def test_fast_update_bytes_equal_general_build() -> None:
    for encr in EncrAlg:
        alice, _ = contexts(SessionPolicy(encr_alg=encr, allow_null=True))
        for tgk in (None, b"\x05" * 16):
            assert alice.build_update(NOW + 3, new_tgk=tgk) == general_update(alice, NOW + 3, tgk)


def test_update_outside_the_template_takes_the_general_path() -> None:
    """An update without ID payloads (they are optional, §4.5) is still accepted."""
    alice, bob = contexts()
    keys = alice.secrets.message_keys
    assert keys is not None
    ts = timestamp_payload(NOW + 4)
    kemac = encrypt_kemac([key_data_for(b"\x09" * 16)], keys, alice.csb_id, ts, alice.policy)
    msg = MikeyMessage.build(CommonHeader(DataType.PSK_INIT, alice.csb_id, CS_MAP), [ts, kemac])
    wire = bytes(msg.with_auth_field(compute_mac(MacAlg.HMAC_SHA1_160, keys.auth_key,
                                                 msg.authenticated_bytes())))
    assert bob.incoming_update_template.match(wire) is None
    assert bob.verify_update(wire, NOW + 4).tgk == b"\x09" * 16


def test_template_recognises_our_updates_only_for_its_direction() -> None:
    alice, bob = contexts()
    update = alice.build_update(NOW + 2)
    assert bob.incoming_update_template.match(update) is not None
    assert alice.incoming_update_template.match(update) is None  # IDs reversed
    assert isinstance(MikeyMessage.parse(update).payloads[-1], Kemac)


def test_evolve_keeps_other_fields_and_refuses_unknown_ones() -> None:
    alice, _ = contexts()
    moved = alice.evolve(last_timestamp=5)
    assert moved.last_timestamp == 5 and moved.tgk == alice.tgk and alice.last_timestamp != 5
    try:
        alice.evolve(tgkk=b"")
    except TypeError:
        pass
    else:
        raise AssertionError("unknown field accepted")


def test_memoised_parse_equals_codec_parse_on_valid_and_broken_input() -> None:
    from mobilityd.mikey.errors import MikeyError
    from mobilityd.mikey.session_fast import parse_message

    wire = PskInitiator(psk=PSK, local_id=ALICE, peer_id=BOB, cs_map=CS_MAP).start(
        NOW, random.Random(3).randbytes)
    for _ in range(2):  # second round hits the SP memo
        assert parse_message(wire) == MikeyMessage.parse(wire)
    r = random.Random(4)
    for i in range(600):
        broken = bytearray(wire)
        broken[r.randrange(len(wire))] = r.randrange(256)
        data = bytes(broken[: r.randrange(len(wire) + 1)] if i % 3 == 0 else broken)
        try:
            expected = MikeyMessage.parse(data)
        except MikeyError as exc:
            try:
                parse_message(data)
            except MikeyError as got:
                assert (type(got), str(got)) == (type(exc), str(exc))
            else:
                raise AssertionError("memoised parse accepted what the codec refuses") from None
        else:
            assert parse_message(data) == expected


def test_reply_prefix_equals_the_codec_encoding_and_is_hit() -> None:
    from mobilityd.mikey.constants import TsType
    from mobilityd.mikey.payloads import Timestamp
    from mobilityd.mikey.session_common import verification_prefix
    from mobilityd.mikey.session_fast import reply_prefix

    ts = Timestamp(TsType.NTP, 0x1122334455667788)
    for data_type in (DataType.PSK_RESP, DataType.PK_RESP):
        assert reply_prefix(data_type, 7, CS_MAP, ts.ts_type, ts.value_bytes, BOB,
                            MacAlg.HMAC_SHA1_160) == verification_prefix(
            CommonHeader(data_type, 7, CS_MAP), [ts, id_payload(BOB)], MacAlg.HMAC_SHA1_160)
    # The initiator's exact-match check recognises the responder's answer.
    from mobilityd.mikey.session_psk import verify_expected_reply

    initiator = PskInitiator(psk=PSK, local_id=ALICE, peer_id=BOB, cs_map=CS_MAP)
    answer = Responder(local_id=BOB, psk=PSK).receive(
        initiator.start(NOW, random.Random(5).randbytes), NOW)
    assert answer.reply is not None
    keys = answer.context.secrets.message_keys
    assert keys is not None
    assert verify_expected_reply(answer.reply, initiator._reply_prefix, keys.auth_key,
                                 (ALICE, BOB), initiator._ts, SessionPolicy())  # type: ignore[arg-type]
