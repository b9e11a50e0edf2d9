"""UDP and TCP transports (RFC 3261 §18, RFC 5626 §4.4.1) on loopback, with rebind.

A minimal byte codec stands in for the SIP message codec so that these tests exercise
the transports alone; tests/sip/test_endpoint.py runs them with the real one.
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TypeVar

import pytest

from mobilityd.sip.transport import (
    Flow,
    KeepAlive,
    StreamLimits,
    StreamTransport,
    TransportError,
    TransportKind,
    UdpTransport,
)

T = TypeVar("T")
WAIT = 5.0  # a bound on waiting for loopback delivery, not a timing assertion


class ByteParseError(Exception):
    """The stand-in codec's typed parse error."""


class ByteFramer:
    """Content-Length framing (RFC 3261 §18.3) over bytes, limited to 8 KiB."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[bytes | KeepAlive | Exception]:
        self._buffer += data
        if len(self._buffer) > 8192:
            raise ByteParseError("message too large")
        out: list[bytes | KeepAlive | Exception] = []
        while True:
            if self._buffer.startswith(b"\r\n\r\n"):
                out.append(KeepAlive.PING)
            self._buffer = self._buffer.lstrip(b"\r\n")
            head, sep, rest = self._buffer.partition(b"\r\n\r\n")
            if not sep:
                return out
            match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
            if match is None:
                raise ByteParseError("no Content-Length")
            length = int(match.group(1))
            if len(rest) < length:
                return out
            message = head + sep + rest[:length]
            out.append(message if b"BROKEN" not in head else ByteParseError("broken"))
            self._buffer = rest[length:]


class ByteCodec:
    def parse(self, data: bytes) -> bytes:
        if not data.startswith((b"SIP/2.0 ", b"OPTIONS ", b"INVITE ")):
            raise ByteParseError("not SIP")
        return data

    def new_framer(self) -> ByteFramer:
        return ByteFramer()


@dataclass
class RecordingSink:
    received: asyncio.Queue[tuple[bytes, Flow]] = field(default_factory=asyncio.Queue)
    rejected: asyncio.Queue[tuple[Exception, Flow]] = field(default_factory=asyncio.Queue)
    failed: asyncio.Queue[tuple[TransportError, Flow]] = field(default_factory=asyncio.Queue)
    batches: int = 0

    def message_received(self, message: bytes, flow: Flow, raw: bytes | None = None) -> None:
        self.received.put_nowait((message, flow))

    def message_rejected(self, error: Exception, data: bytes, flow: Flow) -> None:
        self.rejected.put_nowait((error, flow))

    def send_failed(self, error: TransportError, flow: Flow) -> None:
        self.failed.put_nowait((error, flow))

    def input_done(self) -> None:
        self.batches += 1


def options(n: int = 1, body: bytes = b"") -> bytes:
    return (b"OPTIONS sip:b@127.0.0.1 SIP/2.0\r\nCSeq: %d OPTIONS\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (n, len(body), body))


async def next_item(queue: asyncio.Queue[T]) -> T:
    return await asyncio.wait_for(queue.get(), WAIT)


@pytest.fixture
async def udp_pair() -> AsyncIterator[tuple[UdpTransport[bytes], RecordingSink,
                                            UdpTransport[bytes], RecordingSink]]:
    sink_a, sink_b = RecordingSink(), RecordingSink()
    a = await UdpTransport.open(ByteCodec(), sink_a, ("127.0.0.2", 0))
    b = await UdpTransport.open(ByteCodec(), sink_b, ("127.0.0.1", 0))
    yield a, sink_a, b, sink_b
    a.close()
    b.close()


async def test_udp_delivers_one_message_per_datagram(udp_pair) -> None:  # type: ignore[no-untyped-def]
    a, _, b, sink_b = udp_pair
    a.send(options(1), b.local_address)
    message, flow = await next_item(sink_b.received)
    assert message == options(1)
    assert flow == Flow(TransportKind.UDP, b.local_address, a.local_address)
    assert sink_b.batches >= 1  # the sink was told to flush after the read batch


async def test_udp_garbage_is_rejected_not_raised(udp_pair) -> None:  # type: ignore[no-untyped-def]
    a, _, b, sink_b = udp_pair
    a.send(b"\x00\xffgarbage", b.local_address)
    a.send(b"\r\n\r\n", b.local_address)  # keep-alive: silently skipped
    a.send(options(2), b.local_address)
    error, _ = await next_item(sink_b.rejected)
    assert isinstance(error, ByteParseError)
    message, _ = await next_item(sink_b.received)
    assert message == options(2)
    assert b.datagrams_rejected == 1


async def test_udp_rebind_keeps_port_and_moves_source(udp_pair) -> None:  # type: ignore[no-untyped-def]
    a, sink_a, b, sink_b = udp_pair
    old = a.local_address
    new = await a.rebind("127.0.0.3")
    assert new == ("127.0.0.3", old[1])
    assert a.local_address == new
    a.send(options(3), b.local_address)
    _, flow = await next_item(sink_b.received)
    assert flow.remote == new
    # A late response to the old Via still arrives on the retired socket ...
    b.send(b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n", old)
    _, flow = await next_item(sink_a.received)
    assert flow.local == old
    # ... until it is released.
    a.release(old)
    assert a.listening_addresses == [new]


async def test_udp_rebind_falls_back_to_a_free_port_when_taken(udp_pair) -> None:  # type: ignore[no-untyped-def]
    a, _, _, _ = udp_pair
    blocker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    blocker.bind(("127.0.0.4", a.local_address[1]))
    try:
        new = await a.rebind("127.0.0.4")
    finally:
        blocker.close()
    assert new[0] == "127.0.0.4" and new[1] != 0


async def test_udp_send_from_unusable_address_is_reported(udp_pair) -> None:  # type: ignore[no-untyped-def]
    a, sink_a, _, _ = udp_pair
    # A loopback source cannot reach a public address: the kernel refuses the send,
    # as it does once the bound address has disappeared.
    a.send(options(), ("192.0.2.1", 5060))
    error, flow = await next_item(sink_a.failed)
    assert error.remote == ("192.0.2.1", 5060)
    assert flow.local == a.local_address


@pytest.fixture
async def tcp_pair() -> AsyncIterator[tuple[StreamTransport[bytes], RecordingSink,
                                            StreamTransport[bytes], RecordingSink]]:
    limits = StreamLimits(idle_timeout=30.0, message_timeout=0.5)
    sink_a, sink_b = RecordingSink(), RecordingSink()
    a = await StreamTransport.open(TransportKind.TCP, ByteCodec(), sink_a, ("127.0.0.2", 0),
                                   limits=limits)
    b = await StreamTransport.open(TransportKind.TCP, ByteCodec(), sink_b, ("127.0.0.1", 0),
                                   limits=limits)
    yield a, sink_a, b, sink_b
    await a.close()
    await b.close()


async def test_tcp_reuses_the_connection_both_ways(tcp_pair) -> None:  # type: ignore[no-untyped-def]
    a, sink_a, b, sink_b = tcp_pair
    a.send(options(1), b.local_address)
    a.send(options(2), b.local_address)
    first, flow = await next_item(sink_b.received)
    second, flow2 = await next_item(sink_b.received)
    assert (first, second) == (options(1), options(2))
    assert flow == flow2 and flow.remote[0] == "127.0.0.2"
    # RFC 3261 §18.2.2: the response goes back over the same connection.
    b.send(b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n", flow.remote)
    _, back = await next_item(sink_a.received)
    assert back.remote == b.local_address and back.local == flow.remote
    assert len(a.connections) == 1 and len(b.connections) == 1


async def raw_client(target: tuple[str, int]) -> tuple[asyncio.StreamReader,
                                                      asyncio.StreamWriter]:
    return await asyncio.open_connection(*target)


async def test_tcp_frames_byte_by_byte_and_trailing_data(tcp_pair) -> None:  # type: ignore[no-untyped-def]
    _, _, b, sink_b = tcp_pair
    _, writer = await raw_client(b.local_address)
    stream = options(1, b"v=0\r\n") + options(2) + b"OPTIONS sip:x SIP/2.0\r\nCont"
    for byte in stream:
        writer.write(bytes([byte]))
        await writer.drain()
    assert (await next_item(sink_b.received))[0] == options(1, b"v=0\r\n")
    assert (await next_item(sink_b.received))[0] == options(2)
    assert sink_b.received.empty()


async def test_tcp_malformed_framed_message_is_rejected_and_stream_goes_on(tcp_pair) -> None:  # type: ignore[no-untyped-def]
    _, _, b, sink_b = tcp_pair
    _, writer = await raw_client(b.local_address)
    writer.write(b"OPTIONS sip:x SIP/2.0\r\nX: BROKEN\r\nContent-Length: 0\r\n\r\n"
                 + options(7))
    error, _ = await next_item(sink_b.rejected)
    assert isinstance(error, ByteParseError)
    assert (await next_item(sink_b.received))[0] == options(7)
    writer.close()


async def test_tcp_slow_drip_is_cut_off(tcp_pair) -> None:  # type: ignore[no-untyped-def]
    _, _, b, _ = tcp_pair
    reader, writer = await raw_client(b.local_address)
    writer.write(b"OPTIONS sip:x SIP/2.0\r\n")
    drip = asyncio.create_task(_drip(writer))
    # message_timeout=0.5 s: the server closes although bytes keep coming.
    assert await asyncio.wait_for(reader.read(), WAIT) == b""
    drip.cancel()
    writer.close()


async def _drip(writer: asyncio.StreamWriter) -> None:
    while True:
        writer.write(b"X")
        await writer.drain()
        await asyncio.sleep(0.1)


async def test_tcp_never_ending_header_is_bounded(tcp_pair) -> None:  # type: ignore[no-untyped-def]
    _, _, b, sink_b = tcp_pair
    reader, writer = await raw_client(b.local_address)
    writer.write(b"OPTIONS sip:x SIP/2.0\r\nX: " + b"a" * 20000)
    error, _ = await next_item(sink_b.rejected)
    assert isinstance(error, ByteParseError)
    assert await asyncio.wait_for(reader.read(), WAIT) == b""
    writer.close()


async def test_tcp_idle_connection_is_closed() -> None:
    sink = RecordingSink()
    server = await StreamTransport.open(TransportKind.TCP, ByteCodec(), sink,
                                        ("127.0.0.1", 0),
                                        limits=StreamLimits(idle_timeout=0.3))
    try:
        reader, writer = await raw_client(server.local_address)
        assert await asyncio.wait_for(reader.read(), WAIT) == b""
        writer.close()
    finally:
        await server.close()


async def test_tcp_crlf_ping_gets_pong(tcp_pair) -> None:  # type: ignore[no-untyped-def]
    _, _, b, _ = tcp_pair
    reader, writer = await raw_client(b.local_address)
    writer.write(b"\r\n\r\n")  # RFC 5626 §4.4.1
    assert await asyncio.wait_for(reader.readexactly(2), WAIT) == b"\r\n"
    writer.close()


async def test_tcp_client_sends_keepalive_pings() -> None:
    received: asyncio.Queue[bytes] = asyncio.Queue()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.put_nowait(await reader.readexactly(4))
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = await StreamTransport.open(TransportKind.TCP, ByteCodec(), RecordingSink(),
                                        ("127.0.0.1", 0),
                                        limits=StreamLimits(keepalive_interval=0.2))
    try:
        await client.connect(("127.0.0.1", port))
        assert await next_item(received) == b"\r\n\r\n"
    finally:
        await client.close()
        server.close()


async def test_tcp_rebind_moves_new_connections(tcp_pair) -> None:  # type: ignore[no-untyped-def]
    a, sink_a, b, sink_b = tcp_pair
    a.send(options(1), b.local_address)
    _, before = await next_item(sink_b.received)
    assert before.remote[0] == "127.0.0.2"
    new = await a.rebind("127.0.0.3")
    assert new[0] == "127.0.0.3" and a.local_address == new
    # The answer to the request sent before the move still arrives over its connection
    # (no retransmission would rescue it on a reliable transport) ...
    b.send(b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n", before.remote)
    _, answer_flow = await next_item(sink_a.received)
    assert answer_flow.local[0] == "127.0.0.2"
    # ... while new requests leave from the new address.
    a.send(options(2), b.local_address)
    message, after = await next_item(sink_b.received)
    assert message == options(2)
    assert after.remote[0] == "127.0.0.3"


async def test_tcp_connect_failure_is_reported() -> None:
    sink = RecordingSink()
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    closed_port = probe.getsockname()[1]
    probe.close()
    client = await StreamTransport.open(TransportKind.TCP, ByteCodec(), sink,
                                        ("127.0.0.1", 0))
    try:
        client.send(options(), ("127.0.0.1", closed_port))
        error, _ = await next_item(sink.failed)
        assert error.remote == ("127.0.0.1", closed_port)
    finally:
        await client.close()


@pytest.mark.parametrize("seed", range(5))
async def test_tcp_with_the_sip_codec_at_random_split_points(seed: int) -> None:
    """Real SIP messages (RFC 3261 §18.3 Content-Length framing) cut at random points
    arrive whole and in order, with CRLF keep-alives in between."""
    import random

    from mobilityd.sip.message import Request, parse_message
    from mobilityd.sip.transport import SipCodec, SipMessage

    received: asyncio.Queue[SipMessage] = asyncio.Queue()

    class Sink:
        def message_received(self, message: SipMessage, flow: Flow,
                             raw: bytes | None = None) -> None:
            received.put_nowait(message)

        def message_rejected(self, error: Exception, data: bytes, flow: Flow) -> None:
            raise AssertionError(error)

        def send_failed(self, error: TransportError, flow: Flow) -> None:
            raise AssertionError(error)

        def input_done(self) -> None:
            pass

    server = await StreamTransport.open(TransportKind.TCP, SipCodec(), Sink(),
                                        ("127.0.0.1", 0))
    messages = [
        b"INVITE sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.2:5060;branch=z9hG4bK"
        + str(n).encode() + b"\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:bob@127.0.0.1>\r\n"
        b"Call-ID: split-" + str(n).encode() + b"\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"
        b"Contact: <sip:a@127.0.0.2;transport=tcp>\r\nContent-Type: application/sdp\r\n"
        b"Content-Length: 10\r\n\r\nv=0\r\ns=-\r\n" for n in range(3)]
    stream = b"\r\n\r\n".join(messages)
    generator = random.Random(seed)
    cuts = sorted(generator.sample(range(1, len(stream)), 12))
    try:
        _, writer = await raw_client(server.local_address)
        for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
            writer.write(stream[start:end])
            await writer.drain()
        for expected in messages:
            message = await next_item(received)
            assert isinstance(message, Request)
            assert message == parse_message(expected, datagram=False)
        writer.close()
    finally:
        await server.close()
