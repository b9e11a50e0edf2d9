"""SIP over UDP (RFC 3261 §18.1.1, §18.2) with rebinding to a new local address.

One socket per local address. :meth:`UdpTransport.rebind` opens a socket on the new
address (the same port where it is free) and makes it the one we send from; the old
socket keeps receiving (late responses to requests whose Via still names it) until
:meth:`release` or until sending on it fails. When the current address disappears
before the owner rebinds, the failed send is reported through
:meth:`MessageSink.send_failed` so the owner can pick a new address.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from typing import Generic

from mobilityd.sip.transport.base import (
    Address,
    Flow,
    MessageCodec,
    MessageSink,
    MessageT,
    TransportClosed,
    TransportError,
    TransportKind,
)

logger = logging.getLogger(__name__)

#: RFC 3261 §18.1.1: a message over 1300 bytes (path MTU - 200) SHOULD go over TCP;
#: we still accept datagrams up to the IPv4 UDP maximum on receive.
MAX_DATAGRAM = 65_507
#: errno values that mean "this local address is gone" when sending.
ADDRESS_GONE = frozenset({errno.EADDRNOTAVAIL, errno.EINVAL, errno.ENETUNREACH,
                          errno.ENETDOWN, errno.EHOSTUNREACH})


class _DatagramReceiver(asyncio.DatagramProtocol, Generic[MessageT]):
    """Feeds one socket's datagrams to the transport."""

    def __init__(self, owner: UdpTransport[MessageT], local: Address) -> None:
        self._owner = owner
        self.local = local

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self._owner.datagram_received(data, (str(addr[0]), int(addr[1])), self.local)

    def error_received(self, exc: Exception) -> None:
        # ICMP errors (port unreachable) on a connectionless socket: the transaction
        # layer's timers handle the silence (RFC 3261 §17.1.1.2 Timer B/F).
        logger.debug("udp %s: %s", self.local, exc)


class _Socket:
    """An open UDP endpoint on one local address."""

    def __init__(self, transport: asyncio.DatagramTransport, sock: socket.socket,
                 local: Address) -> None:
        self.transport = transport
        self.sock = sock
        self.local = local

    def close(self) -> None:
        self.transport.close()


class UdpTransport(Generic[MessageT]):
    """An asyncio UDP SIP transport (RFC 3261 §18) that can :meth:`rebind`."""

    kind = TransportKind.UDP

    def __init__(self, codec: MessageCodec[MessageT], sink: MessageSink[MessageT]) -> None:
        self._codec = codec
        self._sink = sink
        self._current: _Socket | None = None
        self._retired: dict[Address, _Socket] = {}
        self.datagrams_received = 0
        self.datagrams_rejected = 0

    @classmethod
    async def open(cls, codec: MessageCodec[MessageT], sink: MessageSink[MessageT],
                   local: Address) -> UdpTransport[MessageT]:
        """Bind to ``local`` (port 0 picks a free port)."""
        transport = cls(codec, sink)
        transport._current = await transport._bind(local)
        return transport

    async def _bind(self, local: Address) -> _Socket:
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in local[0] else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
            sock.bind(local)
            sock.setblocking(False)
            bound = sock.getsockname()
            actual = (str(bound[0]), int(bound[1]))
            endpoint, _ = await loop.create_datagram_endpoint(
                lambda: _DatagramReceiver(self, actual), sock=sock)
        except BaseException:
            sock.close()
            raise
        return _Socket(endpoint, sock, actual)

    @property
    def local_address(self) -> Address:
        """The address we send from and advertise (Via sent-by, Contact)."""
        if self._current is None:
            raise TransportClosed(("", 0), "transport closed")
        return self._current.local

    @property
    def listening_addresses(self) -> list[Address]:
        """Every address still receiving: the current one first, then retired ones."""
        current = [self._current.local] if self._current is not None else []
        return current + list(self._retired)

    async def rebind(self, new_ip: str) -> Address:
        """Move to ``new_ip``, keeping the port where it is free; return the new address.

        The old socket keeps receiving until :meth:`release` (RFC 3261 §18.2.2 responses
        to requests sent before the move still name the old sent-by).
        """
        if self._current is None:
            raise TransportClosed((new_ip, 0), "transport closed")
        old = self._current
        if old.local[0] == new_ip:
            return old.local
        if (new_ip, old.local[1]) in self._retired:
            new = self._retired.pop((new_ip, old.local[1]))
        else:
            try:
                new = await self._bind((new_ip, old.local[1]))
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
                new = await self._bind((new_ip, 0))
        self._retired[old.local] = old
        self._current = new
        logger.info("udp rebound %s -> %s", old.local, new.local)
        return new.local

    def release(self, old: Address) -> None:
        """Stop receiving on a retired address."""
        retired = self._retired.pop(old, None)
        if retired is not None:
            retired.close()

    def datagram_received(self, data: bytes, remote: Address, local: Address) -> None:
        """RFC 3261 §18.3: one datagram is one message; CRLF-only keep-alives are skipped."""
        self.datagrams_received += 1
        flow = Flow(TransportKind.UDP, local, remote)
        if data[:1] in (b"\r", b"\n", b"") and not data.strip(b"\r\n"):
            return
        try:
            message = self._codec.parse(data)
        except Exception as exc:  # the codec raises only its typed parse error
            self.datagrams_rejected += 1
            self._sink.message_rejected(exc, data, flow)
            return
        self._sink.message_received(message, flow)

    def send(self, data: bytes, remote: Address) -> None:
        """Send one message to ``remote`` from the current address (RFC 3261 §18.1.1)."""
        current = self._current
        if current is None:
            raise TransportClosed(remote, "transport closed")
        try:
            current.sock.sendto(data, remote)
        except (BlockingIOError, InterruptedError):
            current.transport.sendto(data, remote)  # queued by asyncio
        except OSError as exc:
            flow = Flow(TransportKind.UDP, current.local, remote)
            detail = exc.strerror or str(exc)
            gone = exc.errno in ADDRESS_GONE
            if gone:
                detail = f"local address {current.local[0]} unusable: {detail}"
            self._sink.send_failed(
                TransportError(remote, detail, data=data, address_gone=gone), flow)

    def close(self) -> None:
        """Close every socket."""
        if self._current is not None:
            self._current.close()
            self._current = None
        for retired in self._retired.values():
            retired.close()
        self._retired.clear()
