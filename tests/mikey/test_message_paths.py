"""Messages the sessions send are exactly the codec's encoding (RFC 3830 §4.5, §5.2, §6).

There is one message builder (``message.encode_message``, used by ``MikeyMessage.build``)
and one parser (``MikeyMessage.parse``); these tests pin what the sessions send to
payload lists assembled independently, and the parser's memoised SP path to its
uncached behaviour.
"""

from __future__ import annotations

import random

from mobilityd.mikey.constants import DataType, EncrAlg, MacAlg
from mobilityd.mikey.message import MikeyMessage, encode_message
from mobilityd.mikey.payloads import CommonHeader, Kemac, SrtpCsEntry
from mobilityd.mikey.protection import compute_mac
from mobilityd.mikey.session import PskInitiator, Responder, SessionPolicy
from mobilityd.mikey.session_common import encrypt_kemac, id_payload, key_data_for
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


def test_update_bytes_equal_an_independent_codec_assembly() -> None:
    for encr in EncrAlg:
        alice, _ = contexts(SessionPolicy(encr_alg=encr, allow_null=True))
        for tgk in (None, b"\x05" * 16):
            assert alice.build_update(NOW + 3, new_tgk=tgk) == general_update(alice, NOW + 3, tgk)


def test_update_without_id_payloads_is_accepted() -> None:
    """An update without ID payloads (they are optional, §4.5) is still accepted."""
    alice, bob = contexts()
    keys = alice.secrets.message_keys
    assert keys is not None
    ts = timestamp_payload(NOW + 4)
    kemac = encrypt_kemac([key_data_for(b"\x09" * 16)], keys, alice.csb_id, ts, alice.policy)
    msg = MikeyMessage.build(CommonHeader(DataType.PSK_INIT, alice.csb_id, CS_MAP), [ts, kemac])
    wire = bytes(msg.with_auth_field(compute_mac(MacAlg.HMAC_SHA1_160, keys.auth_key,
                                                 msg.authenticated_bytes())))
    assert bob.verify_update(wire, NOW + 4).tgk == b"\x09" * 16


def test_update_is_accepted_only_in_its_direction() -> None:
    """IDi of an update must be the peer (§4.5, §3): our own update sent back is refused."""
    from mobilityd.mikey.constants import ErrorType
    from mobilityd.mikey.errors import MikeyError

    alice, bob = contexts()
    update = alice.build_update(NOW + 2)
    assert isinstance(MikeyMessage.parse(update).payloads[-1], Kemac)
    try:
        alice.verify_update(update, NOW + 2)
    except MikeyError as exc:
        assert exc.error_type == ErrorType.AUTH_FAILURE
    else:
        raise AssertionError("an update with the IDs reversed was accepted")
    assert bob.verify_update(update, NOW + 2).last_timestamp > bob.last_timestamp


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


def test_parse_is_stable_and_exact_on_valid_and_broken_input() -> None:
    """Repeated parses (the SP memo hit) equal the first; broken input gives MikeyError only,
    and whatever is accepted re-encodes to the same bytes (§5.3)."""
    from mobilityd.mikey.errors import MikeyError

    wire = PskInitiator(psk=PSK, local_id=ALICE, peer_id=BOB, cs_map=CS_MAP).start(
        NOW, random.Random(3).randbytes)
    first = MikeyMessage.parse(wire)
    for _ in range(2):
        assert MikeyMessage.parse(wire) == first
    r = random.Random(4)
    for i in range(600):
        broken = bytearray(wire)
        broken[r.randrange(len(wire))] = r.randrange(256)
        data = bytes(broken[: r.randrange(len(wire) + 1)] if i % 3 == 0 else broken)
        outcomes = []
        for _ in range(2):  # the second parse may hit the SP memo: same outcome
            try:
                msg = MikeyMessage.parse(data)
            except MikeyError as exc:
                outcomes.append((type(exc), str(exc), exc.error_type))
            else:
                assert bytes(msg) == data
                assert encode_message(msg.header, msg.payloads) == data
                outcomes.append(msg)  # type: ignore[arg-type]
        assert outcomes[0] == outcomes[1]


def test_answer_prefix_is_the_rfc_layout_and_is_recognised() -> None:
    """``HDR, T, IDr, V`` before the Ver data, written out from RFC 3830 §6.1, §6.6, §6.7,
    §6.9 by hand."""
    from mobilityd.mikey.constants import TsType
    from mobilityd.mikey.payloads import Timestamp
    from mobilityd.mikey.session_common import answer_prefix

    ts = Timestamp(TsType.NTP, 0x1122334455667788)
    for data_type in (DataType.PSK_RESP, DataType.PK_RESP):
        expected = (
            bytes([1, data_type, 5, 0]) + (7).to_bytes(4, "big")  # HDR: version, type, next=T
            + bytes([2, 0]) + bytes.fromhex("001111111100000000012222222200000007")  # map
            + bytes([6, TsType.NTP]) + bytes.fromhex("1122334455667788")  # T, next=ID
            + bytes([9, 1]) + len(BOB).to_bytes(2, "big") + BOB  # ID (URI), next=V
            + bytes([0, MacAlg.HMAC_SHA1_160])  # V: last payload, auth alg
        )
        assert answer_prefix(data_type, 7, CS_MAP, ts, BOB, MacAlg.HMAC_SHA1_160) == expected
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


def test_repeated_payloads_memo_never_accepts_a_cut_or_altered_copy() -> None:
    """HDR, ID and SP are memoised by their bytes (RFC 3830 §6.1, §6.7, §6.10): after a
    full parse has filled the memo, every truncation of the message is still refused and
    a changed byte in a memoised payload is parsed afresh (same result as a cold parse)."""
    from mobilityd.mikey.errors import MikeyError
    from mobilityd.mikey.payloads import IdPayload, SecurityPolicy

    wire = PskInitiator(psk=PSK, local_id=ALICE, peer_id=BOB, cs_map=CS_MAP).start(
        NOW, random.Random(6).randbytes)
    full = MikeyMessage.parse(wire)
    assert MikeyMessage.parse(wire).header is full.header  # memo hit: one shared value
    for cut in range(len(wire)):
        try:
            MikeyMessage.parse(wire[:cut])
        except MikeyError:
            continue
        raise AssertionError(f"a message cut to {cut} bytes was accepted")
    id_at = wire.index(ALICE)
    altered = wire[:id_at] + b"S" + wire[id_at + 1:]
    parsed = MikeyMessage.parse(altered)
    assert next(p.data for p in parsed.payloads if isinstance(p, IdPayload)) == b"S" + ALICE[1:]
    sp = next(p for p in full.payloads if isinstance(p, SecurityPolicy))
    assert next(p for p in parsed.payloads if isinstance(p, SecurityPolicy)) == sp
