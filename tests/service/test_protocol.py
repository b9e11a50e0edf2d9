"""Control protocol v1 codec (docs/control-protocol.md): requests, replies, framing."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mobilityd.service.errors import ControlError, ErrorCode
from mobilityd.service.protocol import (
    EventMessage,
    LineSplitter,
    Op,
    Reply,
    RequestError,
    encode_error,
    encode_event,
    encode_request,
    encode_result,
    parse_request,
    parse_server_line,
)


def _request(**obj: object) -> bytes:
    return json.dumps({"v": 1, "id": 1, **obj}).encode()


def _refusal(line: bytes) -> RequestError:
    with pytest.raises(RequestError) as info:
        parse_request(line)
    return info.value


def test_every_op_round_trips_through_encode_request() -> None:
    samples: dict[Op, dict[str, Any]] = {
               Op.PLACE: {"uri": "sip:alice@example.org", "peer": "alice"},
               Op.MOVE: {"call": "c1", "device": "pda"}, Op.REJECT: {"call": "c1"},
               Op.ANSWER: {"call": "c1"}, Op.HANGUP: {"call": "c1"}, Op.PULL: {"call": "c1"},
               Op.SUBSCRIBE: {"events": ["call-moved"]}, Op.STATUS: {}, Op.CALLS: {}}
    assert set(samples) == set(Op)
    for op, args in samples.items():
        request = parse_request(encode_request(9, op, **args).rstrip(b"\n"))
        assert request.id == 9 and request.op is op
        assert {k: list(v) if isinstance(v, tuple) else v
                for k, v in request.args.items()} == args


@pytest.mark.parametrize(
    ("line", "code", "field"),
    [
        (b"{nope", ErrorCode.BAD_JSON, None),
        (b"\xff\xfe", ErrorCode.BAD_JSON, None),
        (b"[1,2]", ErrorCode.BAD_REQUEST, None),
        (json.dumps({"v": 1, "op": "status"}).encode(), ErrorCode.BAD_REQUEST, "id"),
        (json.dumps({"v": 1, "id": True, "op": "status"}).encode(), ErrorCode.BAD_REQUEST, "id"),
        (json.dumps({"v": 1, "id": -1, "op": "status"}).encode(), ErrorCode.BAD_REQUEST, "id"),
        (json.dumps({"v": 2, "id": 1, "op": "status"}).encode(), ErrorCode.UNSUPPORTED_VERSION,
         "v"),
        (json.dumps({"id": 1, "op": "status"}).encode(), ErrorCode.UNSUPPORTED_VERSION, "v"),
        (_request(op="dance"), ErrorCode.UNKNOWN_OP, "op"),
        (_request(op=5), ErrorCode.BAD_REQUEST, "op"),
        (_request(op="place"), ErrorCode.BAD_REQUEST, "uri"),
        (_request(op="place", uri=""), ErrorCode.BAD_REQUEST, "uri"),
        (_request(op="move", call="c1"), ErrorCode.BAD_REQUEST, "device"),
        (_request(op="move", call=7, device="pda"), ErrorCode.BAD_REQUEST, "call"),
        (_request(op="hangup", call="c1", force=True), ErrorCode.BAD_REQUEST, "force"),
        (_request(op="subscribe", events="call-moved"), ErrorCode.BAD_REQUEST, "events"),
    ],
)
def test_bad_requests_get_typed_errors_naming_the_field(line: bytes, code: ErrorCode,
                                                        field: str | None) -> None:
    err = _refusal(line)
    assert err.code is code
    assert err.field == field
    reply = json.loads(err.reply())
    assert reply["v"] == 1 and reply["ok"] is False
    assert reply["error"]["code"] == code.value
    assert reply["error"].get("field") == field


def test_request_id_is_echoed_when_readable() -> None:
    err = _refusal(json.dumps({"v": 1, "id": 42, "op": "place"}).encode())
    assert json.loads(err.reply())["id"] == 42
    assert json.loads(_refusal(b"{").reply())["id"] is None


def test_replies_and_events_decode_on_the_client_side() -> None:
    ok = parse_server_line(encode_result(3, {"a": 1}))
    assert ok == Reply(id=3, ok=True, result={"a": 1})
    bad = parse_server_line(encode_error(4, ControlError(ErrorCode.NO_SUCH_CALL, "x", "call")))
    assert isinstance(bad, Reply) and not bad.ok
    assert bad.error == {"code": "no-such-call", "message": "x", "field": "call"}
    event = parse_server_line(encode_event("call-moved", 5, {"gap_ms": 12.5}))
    assert event == EventMessage("call-moved", 5, {"gap_ms": 12.5})
    with pytest.raises(ControlError):
        parse_server_line(b'{"v":9}')
    with pytest.raises(ControlError):
        parse_server_line(b"garbage")


def test_splitter_whole_byte_by_byte_and_with_trailing_data() -> None:
    stream = b'{"a":1}\n\n{"b":2}\r\n{"c":'
    whole = LineSplitter().feed(stream)
    assert whole == [b'{"a":1}', b'{"b":2}']
    splitter = LineSplitter()
    pieces = [item for i in range(len(stream)) for item in splitter.feed(stream[i:i + 1])]
    assert pieces == whole
    assert splitter.pending == len(b'{"c":')
    assert splitter.feed(b"3}\n") == [b'{"c":3}']


def test_overlong_line_is_refused_and_the_stream_resynchronises() -> None:
    splitter = LineSplitter(max_bytes=16)
    out = splitter.feed(b"x" * 10)
    assert out == []
    out = splitter.feed(b"y" * 10)  # now 20 bytes without newline: refused at once
    assert len(out) == 1 and isinstance(out[0], RequestError)
    assert out[0].code is ErrorCode.LINE_TOO_LONG
    assert splitter.pending == 0  # nothing is buffered while discarding
    assert splitter.feed(b"z" * 100 + b"\nok\n") == [b"ok"]
    long_in_one = splitter.feed(b"w" * 17 + b"\nfine\n")
    assert isinstance(long_in_one[0], RequestError) and long_in_one[1] == b"fine"


@given(st.binary(max_size=300))
def test_only_request_errors_escape_parse_request(data: bytes) -> None:
    with contextlib.suppress(RequestError):
        parse_request(data)


@given(st.dictionaries(st.sampled_from(["v", "id", "op", "uri", "call", "device", "events",
                                        "peer", "reason", "x"]),
                       st.one_of(st.integers(-2, 3), st.text(max_size=5), st.none(),
                                 st.booleans(), st.lists(st.text(max_size=3), max_size=2),
                                 st.sampled_from([o.value for o in Op]))))
def test_only_request_errors_escape_for_json_objects(obj: dict[str, object]) -> None:
    with contextlib.suppress(RequestError):
        parse_request(json.dumps(obj).encode())


@given(st.binary(max_size=200) | st.dictionaries(
    st.sampled_from(["v", "id", "ok", "event", "seq", "data", "error", "result"]),
    st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.text(max_size=4),
              st.just(1), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)))
    .map(lambda d: json.dumps(d).encode()))
def test_only_control_errors_escape_on_the_client_side(line: bytes) -> None:
    with contextlib.suppress(ControlError):
        parse_server_line(line)
