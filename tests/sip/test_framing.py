"""Stream framing by Content-Length with bounded memory (RFC 3261 §18.3, RFC 5626 §3.5.1).

Stream input is tested whole, byte by byte and with trailing data.
"""

from __future__ import annotations

import pytest

from mobilityd.sip.errors import SipParseError, StatusCode
from mobilityd.sip.framing import (
    MessageRejected,
    PingReceived,
    PongReceived,
    StreamFramer,
)
from mobilityd.sip.message import ParseLimits, Request, Response

BYE = (
    b"BYE sip:bob@192.0.2.4 SIP/2.0\r\n"
    b"Via: SIP/2.0/TCP 192.0.2.5;branch=z9hG4bKnashds7\r\n"
    b"Max-Forwards: 70\r\nFrom: <sip:alice@atlanta.com>;tag=1928301774\r\n"
    b"To: <sip:bob@biloxi.com>;tag=a6c85cf\r\nCall-ID: a84b4c76e66710\r\nCSeq: 231 BYE\r\n"
    b"Content-Length: 0\r\n\r\n"
)
MESSAGE = (
    b"MESSAGE sip:bob@192.0.2.4 SIP/2.0\r\n"
    b"v: SIP/2.0/TCP 192.0.2.5;branch=z9hG4bKnashds8\r\n"
    b"f: <sip:alice@atlanta.com>;tag=1\r\nt: <sip:bob@biloxi.com>\r\ni: m1\r\nCSeq: 1 MESSAGE\r\n"
    b"c: text/plain\r\nl: 13\r\n\r\nHello\r\n\r\nBob!"
)
OK = (
    b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP 192.0.2.5;branch=z9hG4bKnashds7\r\n"
    b"From: <sip:alice@atlanta.com>;tag=1928301774\r\nTo: <sip:bob@biloxi.com>;tag=a6c85cf\r\n"
    b"Call-ID: a84b4c76e66710\r\nCSeq: 231 BYE\r\nContent-Length: 0\r\n\r\n"
)
STREAM = BYE + MESSAGE + OK


def check(messages: list[Request | Response]) -> None:
    assert [type(m) for m in messages] == [Request, Request, Response]
    assert messages[1].body == b"Hello\r\n\r\nBob!"
    assert messages[0].cseq.method == "BYE"


def test_whole_stream() -> None:
    check(StreamFramer().feed(STREAM))


def test_byte_by_byte() -> None:
    framer = StreamFramer()
    messages: list[Request | Response] = []
    for index in range(len(STREAM)):
        messages += framer.feed(STREAM[index : index + 1])
    check(messages)
    assert framer.buffered == 0


@pytest.mark.parametrize("cut", range(0, len(STREAM), 7))
def test_every_split_point(cut: int) -> None:
    framer = StreamFramer()
    check(framer.feed(STREAM[:cut]) + framer.feed(STREAM[cut:]))


def test_trailing_partial_message_waits() -> None:
    framer = StreamFramer()
    assert len(framer.feed(BYE + MESSAGE[:50])) == 1
    assert framer.buffered == 50
    assert len(framer.feed(MESSAGE[50:])) == 1


def test_keepalive_ping_and_pong() -> None:
    server = StreamFramer()
    events = server.feed_events(b"\r\n\r\n" + BYE + b"\r\n\r\n")
    assert events[0] == PingReceived() and isinstance(events[1], Request)
    assert events[2] == PingReceived()
    for byte in b"\r\n\r\n":  # a ping split byte by byte is still one ping
        server.feed(bytes([byte]))
    assert server.pings_received == 1
    client = StreamFramer(expect_pongs=True)
    assert client.feed_events(b"\r\n" + OK)[0] == PongReceived()


def test_malformed_message_does_not_break_the_stream() -> None:
    bad = BYE.replace(b"CSeq: 231 BYE", b"CSeq: 231 INVITE")
    framer = StreamFramer()
    events = framer.feed_events(bad + OK)
    assert isinstance(events[0], MessageRejected) and events[0].error.partial is not None
    assert isinstance(events[1], Response)
    assert len(framer.feed(bad + OK)) == 1 and len(framer.rejected) == 1


@pytest.mark.parametrize(
    ("stream", "status"),
    [
        (BYE.replace(b"Content-Length: 0\r\n", b""), 400),  # mandatory on streams
        (BYE.replace(b"Content-Length: 0", b"Content-Length: -5"), 400),  # RFC 4475 §3.1.2.3
        (BYE.replace(b"Content-Length: 0", b"Content-Length: 0\r\nl: 0"), 400),
        (BYE.replace(b"Content-Length: 0", b"Content-Length: 99999999999"), 413),
    ],
)
def test_framing_errors_are_fatal(stream: bytes, status: int) -> None:
    framer = StreamFramer()
    with pytest.raises(SipParseError) as info:
        framer.feed(stream)
    assert info.value.status == status
    assert framer.broken and framer.buffered == 0
    with pytest.raises(SipParseError):
        framer.feed(OK)


def test_messages_before_a_framing_error_are_delivered() -> None:
    framer = StreamFramer()
    assert len(framer.feed(OK + BYE.replace(b"Content-Length: 0", b"Content-Length: x"))) == 1
    with pytest.raises(SipParseError):
        framer.feed(b"")


def test_never_ending_header_block_is_bounded() -> None:
    framer = StreamFramer(max_header_block=4096)
    framer.feed(b"INVITE sip:a@b SIP/2.0\r\n")
    with pytest.raises(SipParseError) as info:
        for _ in range(1000):
            framer.feed(b"X-Flood: " + b"a" * 100 + b"\r\n")
    assert info.value.status == StatusCode.MESSAGE_TOO_LARGE
    assert framer.buffered == 0


def test_body_limit() -> None:
    framer = StreamFramer(limits=ParseLimits(max_body=10))
    with pytest.raises(SipParseError) as info:
        framer.feed(MESSAGE)
    assert info.value.status == StatusCode.REQUEST_ENTITY_TOO_LARGE
