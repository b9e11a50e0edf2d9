"""SIP over TCP and TLS (RFC 3261 §18, §18.3 framing; RFC 5626 §4.4.1 keep-alive).

Connections are reused per remote address in both directions (RFC 3261 §18.1.1 /
§18.2.2: a response goes back over the connection its request came in on; a request to
a peer that already has a connection to us reuses it). Each connection frames its bytes
with the codec's framer; the hostile cases are bounded: the framer bounds a message's
size, an idle connection is closed after ``idle_timeout`` and a connection that keeps
sending without completing a message within ``message_timeout`` (slow drip) is closed.

:meth:`StreamTransport.rebind` opens a listener on the new address; later outgoing
connections are bound to it, and connections on an address that disappeared fail on
send and are replaced by a fresh connection from the new address.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import ssl
from dataclasses import dataclass
from typing import Generic

from mobilityd.sip.transport.base import (
    Address,
    Flow,
    Framer,
    KeepAlive,
    MessageCodec,
    MessageSink,
    MessageT,
    TransportClosed,
    TransportError,
    TransportKind,
)

logger = logging.getLogger(__name__)

#: RFC 5626 §4.4.1: a "ping" is a double CRLF, the "pong" a single CRLF.
PING = b"\r\n\r\n"
PONG = b"\r\n"


@dataclass(frozen=True)
class StreamLimits:
    """Bounds on one connection (RFC 3261 §18.3 leaves them to the implementation)."""

    idle_timeout: float = 300.0
    message_timeout: float = 10.0
    connect_timeout: float = 5.0
    keepalive_interval: float | None = None  # RFC 5626 §4.4.1 CRLF ping, client flows
    max_connections: int = 1024


class _Connection(asyncio.Protocol, Generic[MessageT]):
    """One TCP/TLS connection: framing, limits, keep-alive, queued writes."""

    def __init__(self, owner: StreamTransport[MessageT], framer: Framer[MessageT],
                 outgoing: bool) -> None:
        self._owner = owner
        self._framer = framer
        self.outgoing = outgoing
        self.transport: asyncio.Transport | None = None
        self.local: Address = ("", 0)
        self.remote: Address = ("", 0)
        self.closed = asyncio.get_running_loop().create_future()
        self._loop = asyncio.get_running_loop()
        self._last_activity = self._loop.time()
        self._partial_since = self._last_activity
        self._unframed_bytes = 0
        self._watchdog: asyncio.TimerHandle | None = None
        self._next_ping = 0.0

    @property
    def flow(self) -> Flow:
        return Flow(self._owner.kind, self.local, self.remote)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        local = transport.get_extra_info("sockname")
        remote = transport.get_extra_info("peername")
        self.local = (str(local[0]), int(local[1]))
        self.remote = (str(remote[0]), int(remote[1]))
        interval = self._owner.limits.keepalive_interval
        self._next_ping = self._loop.time() + interval if interval else float("inf")
        self._owner.connection_opened(self)
        self._arm_watchdog()

    def _arm_watchdog(self) -> None:
        limits = self._owner.limits
        now = self._loop.time()
        deadlines = [self._last_activity + limits.idle_timeout, self._next_ping]
        if self._unframed_bytes:
            deadlines.append(self._partial_since + limits.message_timeout)
        self._watchdog = self._loop.call_at(max(min(deadlines), now + 0.01), self._check)

    def _rearm_watchdog(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
        self._arm_watchdog()

    def _check(self) -> None:
        limits = self._owner.limits
        now = self._loop.time()
        if now - self._last_activity >= limits.idle_timeout:
            logger.info("closing idle %s connection %s", self._owner.kind.name, self.remote)
            self.abort()
            return
        if self._unframed_bytes and now - self._partial_since >= limits.message_timeout:
            logger.warning("closing %s connection %s: no complete message in %.0fs",
                           self._owner.kind.name, self.remote, limits.message_timeout)
            self.abort()
            return
        if now >= self._next_ping and self.transport is not None:
            self.transport.write(PING)
            interval = limits.keepalive_interval or float("inf")
            self._next_ping = now + interval
        self._arm_watchdog()

    def data_received(self, data: bytes) -> None:
        self._last_activity = self._loop.time()
        if not self._unframed_bytes:
            self._unframed_bytes = len(data)
            self._partial_since = self._last_activity
            self._rearm_watchdog()  # the slow-drip deadline starts now
        else:
            self._unframed_bytes += len(data)
        try:
            items = self._framer.feed(data)
        except Exception as exc:  # the framer raises only the codec's parse error
            # RFC 3261 §18.3: a stream that cannot be framed must be closed.
            self._owner.sink.message_rejected(exc, data, self.flow)
            self._owner.sink.input_done()
            self.abort()
            return
        if items:
            self._unframed_bytes = 0
        sink = self._owner.sink
        for item in items:
            if item is KeepAlive.PING:
                if self.transport is not None:
                    self.transport.write(PONG)  # RFC 5626 §4.4.1
            elif item is KeepAlive.PONG:
                continue
            elif isinstance(item, Exception):
                sink.message_rejected(item, b"", self.flow)
            else:
                sink.message_received(item, self.flow)
        sink.input_done()

    def write(self, data: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            raise TransportError(self.remote, "connection closed")
        self.transport.write(data)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
        self._owner.connection_closed(self)
        if not self.closed.done():
            self.closed.set_result(None)


class StreamTransport(Generic[MessageT]):
    """TCP or TLS SIP transport with connection reuse and :meth:`rebind`."""

    def __init__(self, kind: TransportKind, codec: MessageCodec[MessageT],
                 sink: MessageSink[MessageT], *, limits: StreamLimits | None = None,
                 server_ssl: ssl.SSLContext | None = None,
                 client_ssl: ssl.SSLContext | None = None) -> None:
        if kind is TransportKind.UDP:
            raise ValueError("StreamTransport carries TCP or TLS")
        if kind is TransportKind.TLS and client_ssl is None:
            raise ValueError("TLS needs a client context (and a server one to listen)")
        self.kind = kind
        self.codec = codec
        self.sink = sink
        self.limits = limits or StreamLimits()
        self._server_ssl = server_ssl
        self._client_ssl = client_ssl
        self._servers: dict[Address, asyncio.Server] = {}
        self._local: Address | None = None
        self._connections: dict[Address, _Connection[MessageT]] = {}
        self._draining: set[_Connection[MessageT]] = set()  # from a previous address
        self._pending: dict[Address, asyncio.Task[_Connection[MessageT]]] = {}
        self._closing = False

    @classmethod
    async def open(cls, kind: TransportKind, codec: MessageCodec[MessageT],
                   sink: MessageSink[MessageT], local: Address, *,
                   limits: StreamLimits | None = None,
                   server_ssl: ssl.SSLContext | None = None,
                   client_ssl: ssl.SSLContext | None = None) -> StreamTransport[MessageT]:
        """Listen on ``local`` (port 0 picks one) and return the transport."""
        transport = cls(kind, codec, sink, limits=limits, server_ssl=server_ssl,
                        client_ssl=client_ssl)
        transport._local = await transport._listen(local)
        return transport

    async def _listen(self, local: Address) -> Address:
        loop = asyncio.get_running_loop()
        ssl_context = self._server_ssl if self.kind is TransportKind.TLS else None
        server = await loop.create_server(
            lambda: _Connection(self, self.codec.new_framer(), outgoing=False),
            host=local[0], port=local[1], ssl=ssl_context, reuse_address=True)
        bound = server.sockets[0].getsockname()
        address = (str(bound[0]), int(bound[1]))
        self._servers[address] = server
        return address

    @property
    def local_address(self) -> Address:
        """The listening address we advertise (Via sent-by, Contact)."""
        if self._local is None:
            raise TransportClosed(("", 0), "transport closed")
        return self._local

    @property
    def connections(self) -> list[Flow]:
        """Open connections as flows."""
        return [connection.flow for connection in self._connections.values()]

    def connection_opened(self, connection: _Connection[MessageT]) -> None:
        if len(self._connections) >= self.limits.max_connections:
            logger.warning("refusing %s connection from %s: limit reached",
                           self.kind.name, connection.remote)
            connection.abort()
            return
        self._connections[connection.remote] = connection

    def connection_closed(self, connection: _Connection[MessageT]) -> None:
        self._draining.discard(connection)
        if self._connections.get(connection.remote) is connection:
            del self._connections[connection.remote]

    async def rebind(self, new_ip: str) -> Address:
        """Listen on ``new_ip`` (same port where free); new connections start there.

        Outgoing connections from the old address are no longer used for new sends (a
        new connection from the new address is opened), but they stay open to carry the
        responses of requests already sent over them (reliable transports never
        retransmit, RFC 3261 §17.1.1.2) until they idle out or the address vanishes.
        """
        old = self.local_address
        if old[0] == new_ip:
            return old
        try:
            new = await self._listen((new_ip, old[1]))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            new = await self._listen((new_ip, 0))
        self._local = new
        for address in [a for a in self._servers if a[0] != new_ip]:
            self._servers.pop(address).close()
        for remote, connection in list(self._connections.items()):
            if connection.outgoing and connection.local[0] != new_ip:
                # Flows are per local address (RFC 5626 §4.2): retire this one.
                self._connections.pop(remote, None)
                self._draining.add(connection)
        logger.info("%s rebound %s -> %s", self.kind.name, old, new)
        return new

    def send(self, data: bytes, remote: Address, server_name: str | None = None) -> None:
        """Send over the connection to ``remote``, opening one if needed (§18.1.1).

        ``server_name`` is the host name the TLS certificate must match (RFC 5922 §7.2);
        it defaults to the remote IP.
        """
        if self._closing:
            raise TransportClosed(remote, "transport closed")
        connection = self._connections.get(remote)
        if connection is not None:
            try:
                connection.write(data)
                return
            except TransportError:
                self._connections.pop(remote, None)
        asyncio.get_running_loop().create_task(self._send_new(data, remote, server_name))

    async def _send_new(self, data: bytes, remote: Address, server_name: str | None) -> None:
        try:
            connection = await self.connect(remote, server_name)
            connection.write(data)
        except (OSError, ssl.SSLError, TransportError, TimeoutError) as exc:
            flow = Flow(self.kind, self._local or ("", 0), remote)
            detail = str(exc) or type(exc).__name__
            self.sink.send_failed(TransportError(remote, detail), flow)

    async def connect(self, remote: Address, server_name: str | None = None
                      ) -> _Connection[MessageT]:
        """Return the connection to ``remote``, opening it from our current address."""
        existing = self._connections.get(remote)
        if existing is not None:
            return existing
        pending = self._pending.get(remote)
        if pending is None:
            pending = asyncio.get_running_loop().create_task(
                self._open_connection(remote, server_name))
            self._pending[remote] = pending
            pending.add_done_callback(lambda _: self._pending.pop(remote, None))
        return await asyncio.shield(pending)

    async def _open_connection(self, remote: Address, server_name: str | None
                               ) -> _Connection[MessageT]:
        loop = asyncio.get_running_loop()
        local_ip = self.local_address[0]
        ssl_context = self._client_ssl if self.kind is TransportKind.TLS else None
        family = socket.AF_INET6 if ":" in remote[0] else socket.AF_INET
        async with asyncio.timeout(self.limits.connect_timeout):
            _, connection = await loop.create_connection(
                lambda: _Connection(self, self.codec.new_framer(), outgoing=True),
                host=remote[0], port=remote[1], family=family,
                local_addr=(local_ip, 0) if local_ip not in ("0.0.0.0", "::") else None,
                ssl=ssl_context,
                server_hostname=(server_name or remote[0]) if ssl_context else None)
        return connection

    async def close(self) -> None:
        """Close listeners and connections and wait for them to go."""
        self._closing = True
        for server in self._servers.values():
            server.close()
        for pending in self._pending.values():
            pending.cancel()
        connections = [*self._connections.values(), *self._draining]
        for connection in connections:
            connection.abort()
        for connection in connections:
            await connection.closed
        for server in self._servers.values():
            await server.wait_closed()
        self._servers.clear()
        self._local = None
