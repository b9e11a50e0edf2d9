"""Only MikeyError escapes the engines, whatever the bytes (RFC 3830 §5.3; style rule 7)."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mobilityd.mikey.constants import DataType, ErrorType, MacAlg
from mobilityd.mikey.errors import MikeyError
from mobilityd.mikey.message import MikeyMessage
from mobilityd.mikey.payloads import ErrorPayload, SrtpCsEntry, Timestamp, Verification
from mobilityd.mikey.session import (
    PskInitiator,
    Responder,
    build_error_message,
    error_response,
    parse_error_message,
)

PSK = bytes(range(32))
ALICE = b"sip:alice@example.org"
BOB = b"sip:bob@example.org"
NOW = 1_795_000_000.0
CS_MAP = (SrtpCsEntry(0, 1, 0),)
EXAMPLES = 200
SLOW_EXAMPLES = 20_000


def _pair():  # type: ignore[no-untyped-def]
    initiator = PskInitiator(psk=PSK, local_id=ALICE, peer_id=BOB, cs_map=CS_MAP)
    i_message = initiator.start(NOW, random.Random(1).randbytes)
    answer = Responder(local_id=BOB, psk=PSK).receive(i_message, NOW)
    assert answer.reply is not None
    return i_message, initiator.receive_response(answer.reply, NOW), answer.context


I_MESSAGE, ALICE_CTX, BOB_CTX = _pair()
UPDATE = ALICE_CTX.build_update(NOW + 1, new_tgk=b"\x01" * 16)


def mutate(data: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    out = bytearray(data)
    for pos, value in edits:
        out[pos % len(out)] = value
    return bytes(out[:cut] if cut is not None else out)


edits = st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=6)
cuts = st.none() | st.integers(0, 400)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edits=edits, cut=cuts)
def test_responder_raises_only_mikey_error(edits: list[tuple[int, int]], cut: int | None) -> None:
    data = mutate(I_MESSAGE, edits, cut)
    try:
        Responder(local_id=BOB, psk=PSK).receive(data, NOW)
    except MikeyError as exc:
        error_response(data, exc, NOW)  # the answer builder must not fail either


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edits=edits, cut=cuts)
def test_verify_update_raises_only_mikey_error(
    edits: list[tuple[int, int]], cut: int | None
) -> None:
    data = mutate(UPDATE, edits, cut)
    try:
        result = BOB_CTX.verify_update(data, NOW + 1)
    except MikeyError:
        return
    # The MAC covers every other byte: only the genuine update is ever accepted.
    assert data == UPDATE and result.tgk == b"\x01" * 16


@settings(max_examples=EXAMPLES, deadline=None)
@given(data=st.binary(max_size=300))
def test_random_bytes(data: bytes) -> None:
    for call in (lambda: Responder(local_id=BOB, psk=PSK).receive(data, NOW),
                 lambda: BOB_CTX.verify_update(data, NOW)):
        with pytest.raises(MikeyError):
            call()


@pytest.mark.slow
@settings(max_examples=SLOW_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(edits=edits, cut=cuts, update=st.booleans())
def test_exhaustive_mutations(edits: list[tuple[int, int]], cut: int | None, update: bool) -> None:
    if update:
        test_verify_update_raises_only_mikey_error.hypothesis.inner_test(edits, cut)  # type: ignore[attr-defined]
    else:
        test_responder_raises_only_mikey_error.hypothesis.inner_test(edits, cut)  # type: ignore[attr-defined]


def test_error_message_rfc3830_6_12_and_its_v_payload() -> None:
    ts = MikeyMessage.parse(I_MESSAGE).require(Timestamp)
    keys = BOB_CTX.secrets.message_keys
    assert keys is not None
    wire = build_error_message(
        BOB_CTX.csb_id, [ErrorType.INVALID_SPPAR, ErrorType.INVALID_SP], timestamp=ts,
        v_key=(MacAlg.HMAC_SHA1_160, keys.auth_key, ALICE, BOB))
    msg = MikeyMessage.parse(wire)
    assert msg.header.data_type is DataType.ERROR
    assert [p.error_no for p in msg.find_all(ErrorPayload)] == [
        ErrorType.INVALID_SPPAR, ErrorType.INVALID_SP]
    assert isinstance(msg.payloads[-1], Verification)
    err = parse_error_message(msg)
    assert err.error_type is ErrorType.INVALID_SPPAR and err.errors[1] is ErrorType.INVALID_SP
    assert error_response(wire, err, NOW) is None  # never answer an error with an error


def test_error_response_to_garbage_without_header_is_none() -> None:
    assert error_response(b"\x01", MikeyError("x"), NOW) is None
