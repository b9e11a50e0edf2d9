"""Property: parse and encode are exact inverses on every valid message (RFC 3830 §6)."""

from __future__ import annotations

from hypothesis import given, settings

from mobilityd.mikey.constants import EncrAlg
from mobilityd.mikey.errors import MikeyError
from mobilityd.mikey.message import MikeyMessage
from mobilityd.mikey.payloads import Kemac, parse_key_data_chain
from tests.mikey.codec_strategies import messages


@settings(max_examples=400, deadline=None)
@given(messages())
def test_parse_inverts_build(msg: MikeyMessage) -> None:
    wire = bytes(msg)
    parsed = MikeyMessage.parse(wire)
    assert parsed == msg
    assert bytes(parsed) == wire
    assert bytes(MikeyMessage.build(parsed.header, parsed.payloads)) == wire


@settings(max_examples=200, deadline=None)
@given(messages())
def test_null_encrypted_key_data_round_trips(msg: MikeyMessage) -> None:
    for kemac in MikeyMessage.parse(bytes(msg)).find_all(Kemac):
        if kemac.encr_alg != EncrAlg.NULL:
            continue
        try:
            items = parse_key_data_chain(kemac.encr_data)
        except MikeyError:
            continue  # random encr data, not a chain
        from mobilityd.mikey.payloads import encode_key_data_chain

        assert encode_key_data_chain(items) == kemac.encr_data
