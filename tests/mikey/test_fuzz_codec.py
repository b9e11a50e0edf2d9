"""Fuzzing the decoder: only :class:`MikeyError` ever escapes, and whatever is accepted
re-encodes to exactly the bytes it came from (RFC 3830 §5.3; style rule 7).

Default tier: about 2000 examples in all. ``MOBILITYD_SLOW=1`` runs the ``slow`` tier
with a large budget: ``MOBILITYD_FUZZ_EXAMPLES`` examples (default 100000) for the
message decoder, a fifth of that for the key data chain.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mobilityd.mikey.errors import MikeyError
from mobilityd.mikey.message import MikeyMessage
from mobilityd.mikey.payloads import parse_key_data_chain
from mobilityd.mikey.sdp import decode_key_mgmt
from tests.mikey.codec_strategies import messages

LARGE_BUDGET = int(os.environ.get("MOBILITYD_FUZZ_EXAMPLES", "100000"))

VALID_HDR_PREFIXES = [
    bytes.fromhex("0100"),  # version 1, PSK init
    bytes.fromhex("010005800000000100"),  # up to #CS
    bytes.fromhex("010201000000000101000000000100000000"),  # one SRTP entry
]


@st.composite
def mutated_messages(draw: st.DrawFn) -> bytes:
    """A valid message with a few random edits: flips, cuts, insertions, length smashes."""
    data = bytearray(bytes(draw(messages(max_payloads=5))))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "set", "cut", "insert", "delete", "duplicate"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and data:
            data[pos] = draw(st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0xFF, 0x14, 0x15, 0x04]))
        elif kind == "cut":
            del data[pos:]
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[pos : pos + draw(st.integers(1, 8))]
        elif kind == "duplicate":
            data += data[pos : pos + draw(st.integers(1, 64))]
    return bytes(data)


random_input = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda p, b: p + b, st.sampled_from(VALID_HDR_PREFIXES), st.binary(max_size=300)),
)
arbitrary_input = st.one_of(random_input, mutated_messages())


def check_parse(data: bytes) -> None:
    try:
        msg = MikeyMessage.parse(data)
    except MikeyError as exc:
        assert isinstance(exc.error_type.value, int)
        assert str(exc)
        return
    assert bytes(msg) == data  # accepted input re-encodes exactly
    assert MikeyMessage.build(msg.header, msg.payloads) == msg


def check_key_data_chain(data: bytes) -> None:
    try:
        items = parse_key_data_chain(data)
    except MikeyError:
        return
    assert len(items) <= 16


def fuzz(max_examples: int) -> settings:
    return settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@fuzz(1000)
@given(random_input)
def test_only_mikey_error_escapes_parse_of_random_bytes(data: bytes) -> None:
    check_parse(data)


@fuzz(600)
@given(mutated_messages())
def test_only_mikey_error_escapes_parse_of_mutated_messages(data: bytes) -> None:
    check_parse(data)


@fuzz(300)
@given(st.binary(max_size=200))
def test_only_mikey_error_escapes_key_data_chain(data: bytes) -> None:
    check_key_data_chain(data)


@fuzz(200)
@given(st.one_of(st.text(max_size=80), st.text(max_size=80).map(lambda t: "mikey " + t)))
def test_only_mikey_error_escapes_decode_key_mgmt(value: str) -> None:
    try:
        data = decode_key_mgmt(value)
    except MikeyError:
        return
    check_parse(data)


@pytest.mark.slow
@fuzz(LARGE_BUDGET)
@given(arbitrary_input)
def test_only_mikey_error_escapes_parse_large_budget(data: bytes) -> None:
    check_parse(data)


@pytest.mark.slow
@fuzz(max(LARGE_BUDGET // 5, 1))
@given(st.binary(max_size=400))
def test_only_mikey_error_escapes_key_data_chain_large_budget(data: bytes) -> None:
    check_key_data_chain(data)
