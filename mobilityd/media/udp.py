"""A non-blocking UDP socket driven by the asyncio loop's reader callback.

Why not ``loop.create_datagram_endpoint``: its transport does one ``recvfrom`` per loop
iteration and readiness event. Media sockets receive 50 packets/s per stream, and under
load many are queued at once; draining up to ``batch`` datagrams per readiness event
saves a loop iteration (poll + callback dispatch) per packet. Sending is a direct
``sendto`` (UDP never blocks for long; EAGAIN is counted as a drop).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

Address = tuple[str, int]
MAX_DATAGRAM = 4096  # RTP over UDP stays below the path MTU; bigger is truncated, then
# fails SRTP authentication and is counted


class UdpChannel:
    """One bound UDP socket: ``handler(data, source)`` for each datagram received."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        handler: Callable[[bytes, Address], None],
        on_error: Callable[[OSError], None],
        batch: int = 64,
    ) -> None:
        sock.setblocking(False)
        self._loop = loop
        self._sock = sock
        self._handler = handler
        self._on_error = on_error
        self._batch = batch
        self._fd = sock.fileno()
        name: Any = sock.getsockname()
        self.local: Address = (str(name[0]), int(name[1]))
        self.closed = False
        loop.add_reader(self._fd, self._drain)

    def drain(self) -> None:
        """Handle the datagrams already queued on the socket now (at most ``batch``),
        as the loop's reader callback would on its next iteration."""
        if not self.closed:
            self._drain()

    def _drain(self) -> None:
        recvfrom = self._sock.recvfrom
        handler = self._handler
        for _ in range(self._batch):
            try:
                data, addr = recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. ICMP port unreachable reported on this socket
                self._on_error(exc)
                continue
            handler(data, addr[:2])  # IPv4: the very tuple (a full slice); IPv6: host, port

    def sendto(self, data: bytes, address: Address) -> bool:
        """Send one datagram; False (after ``on_error`` for real errors) if not sent."""
        try:
            self._sock.sendto(data, address)
        except (BlockingIOError, InterruptedError) as exc:
            self._on_error(exc)
            return False
        except OSError as exc:
            self._on_error(exc)
            return False
        return True

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._loop.remove_reader(self._fd)
            self._sock.close()
