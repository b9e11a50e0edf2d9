"""SIP over TLS (RFC 3261 §26.2.1, §18): our TLS transport as client and server with
certificates a throw-away CA signed, verification against that CA and the host name."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mobilityd.sip.message import Request, parse_message
from mobilityd.sip.transport import (
    Flow,
    SipCodec,
    SipMessage,
    StreamTransport,
    TransportError,
    TransportKind,
    client_context,
    server_context,
)

from .peers import Certificates, make_certificates

WAIT = 5.0

OPTIONS = (
    b"OPTIONS sips:bob@proxy.mobilityd.test SIP/2.0\r\n"
    b"Via: SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bK-tls-1\r\n"
    b"From: <sips:alice@mobilityd.test>;tag=a1\r\nTo: <sips:bob@mobilityd.test>\r\n"
    b"Call-ID: tls-test-1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
    b"Content-Length: 0\r\n\r\n"
)


@dataclass
class Sink:
    received: asyncio.Queue[tuple[SipMessage, Flow]] = field(default_factory=asyncio.Queue)
    failed: asyncio.Queue[TransportError] = field(default_factory=asyncio.Queue)

    def message_received(self, message: SipMessage, flow: Flow,
                         raw: bytes | None = None) -> None:
        self.received.put_nowait((message, flow))

    def message_rejected(self, error: Exception, data: bytes, flow: Flow) -> None:
        raise AssertionError(f"unexpected reject {error}")

    def send_failed(self, error: TransportError, flow: Flow) -> None:
        self.failed.put_nowait(error)

    def input_done(self) -> None:
        pass


ServerAndSink = tuple[StreamTransport[SipMessage], "Sink"]


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture
async def tls_server(certificates: Certificates
                     ) -> AsyncIterator[tuple[StreamTransport[SipMessage], Sink]]:
    sink = Sink()
    server = await StreamTransport.open(
        TransportKind.TLS, SipCodec(), sink, ("127.0.0.1", 0),
        server_ssl=server_context(certificates.server_cert, certificates.server_key),
        client_ssl=client_context(certificates.ca_cert))
    yield server, sink
    await server.close()


async def open_client(ca: Path, sink: Sink) -> StreamTransport[SipMessage]:
    return await StreamTransport.open(TransportKind.TLS, SipCodec(), sink, ("127.0.0.2", 0),
                                      client_ssl=client_context(ca))


async def test_tls_request_and_response_over_one_verified_connection(
        tls_server: ServerAndSink, certificates: Certificates) -> None:
    server, server_sink = tls_server
    client_sink = Sink()
    client = await open_client(certificates.ca_cert, client_sink)
    try:
        client.send(OPTIONS, server.local_address, server_name=certificates.server_name)
        request, flow = await asyncio.wait_for(server_sink.received.get(), WAIT)
        assert isinstance(request, Request) and request.uri.scheme == "sips"
        assert flow.kind is TransportKind.TLS and flow.remote[0] == "127.0.0.2"
        response = (b"SIP/2.0 200 OK\r\n" + OPTIONS.split(b"\r\n", 1)[1]
                    .replace(b"<sips:bob@mobilityd.test>", b"<sips:bob@mobilityd.test>;tag=b"))
        server.send(response, flow.remote)  # RFC 3261 §18.2.2: same connection
        answer, _ = await asyncio.wait_for(client_sink.received.get(), WAIT)
        assert answer == parse_message(response)
        assert len(client.connections) == 1 and len(server.connections) == 1
    finally:
        await client.close()


async def test_tls_verifies_ip_address_when_no_name_is_given(
        tls_server: ServerAndSink, certificates: Certificates) -> None:
    server, server_sink = tls_server
    client = await open_client(certificates.ca_cert, Sink())
    try:
        client.send(OPTIONS, server.local_address)  # certificate carries IP 127.0.0.1
        await asyncio.wait_for(server_sink.received.get(), WAIT)
    finally:
        await client.close()


async def test_tls_refuses_a_server_from_another_ca(
        tls_server: ServerAndSink, tmp_path: Path) -> None:
    server, server_sink = tls_server
    other = make_certificates(tmp_path / "other")
    client_sink = Sink()
    client = await open_client(other.ca_cert, client_sink)
    try:
        client.send(OPTIONS, server.local_address, server_name=other.server_name)
        error = await asyncio.wait_for(client_sink.failed.get(), WAIT)
        assert "certificate verify failed" in error.detail
        assert server_sink.received.empty()
    finally:
        await client.close()


async def test_tls_refuses_a_certificate_for_another_name(
        tls_server: ServerAndSink, certificates: Certificates) -> None:
    server, _ = tls_server
    client_sink = Sink()
    client = await open_client(certificates.ca_cert, client_sink)
    try:
        client.send(OPTIONS, server.local_address, server_name="evil.example")
        error = await asyncio.wait_for(client_sink.failed.get(), WAIT)
        assert "mismatch" in error.detail or "verify failed" in error.detail
    finally:
        await client.close()
