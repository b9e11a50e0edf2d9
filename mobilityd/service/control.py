"""The control server: a Unix stream socket speaking :mod:`mobilityd.service.protocol`.

One asyncio task per client (:class:`~mobilityd.service.connection.Connection`); each
line is answered in order and a bad line never closes the connection. ``subscribe``
streams bus events on that connection while requests keep being answered. The socket
file is created with mode 0660 (owner and group from the systemd unit); a stale socket
left by a crashed daemon is replaced, a live one is refused. At most ``max_clients``
connections are served; the next one gets a ``busy`` error line and is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from pathlib import Path

from mobilityd.service.bus import EventBus
from mobilityd.service.connection import Connection
from mobilityd.service.dispatch import Dispatcher
from mobilityd.service.errors import ControlError, ErrorCode
from mobilityd.service.logging import log_event
from mobilityd.service.protocol import MAX_LINE_BYTES, encode_error

SOCKET_MODE = 0o660
MAX_CLIENTS = 64
CLOSE_GRACE = 2.0
"""Seconds connections get to finish at shutdown before they are cancelled."""
_log = logging.getLogger("mobilityd.control")


class SocketInUseError(Exception):
    """Another daemon answers on the control socket path."""


class ControlServer:
    """Serve ``dispatcher`` and ``bus`` on the Unix socket at ``path``."""

    def __init__(self, path: Path, dispatcher: Dispatcher, bus: EventBus, *,
                 max_clients: int = MAX_CLIENTS, max_line: int = MAX_LINE_BYTES) -> None:
        self.path = path
        self._dispatcher = dispatcher
        self._bus = bus
        self._max_clients = max_clients
        self._max_line = max_line
        self._server: asyncio.Server | None = None
        self._clients: dict[asyncio.Task[None], asyncio.StreamWriter] = {}

    async def start(self) -> None:
        """Bind and listen; afterwards clients can connect (READY may be sent)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_socket(self.path)
        self._server = await asyncio.start_unix_server(self._accept, path=str(self.path),
                                                       limit=self._max_line)
        os.chmod(self.path, SOCKET_MODE)
        log_event(_log, logging.INFO, "control.listening", socket=str(self.path))

    async def close(self) -> None:
        """Stop listening, disconnect clients, remove the socket file."""
        if self._server is None:
            return  # never bound: the path may belong to another daemon
        self._server.close()
        if self._clients:
            for writer in self._clients.values():
                writer.transport.abort()  # the connection sees end of input and ends
            _, stuck = await asyncio.wait(set(self._clients), timeout=CLOSE_GRACE)
            for task in stuck:  # e.g. waiting for a long call operation
                task.cancel()
            if stuck:
                await asyncio.wait(stuck)
        await self._server.wait_closed()
        self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    @property
    def client_count(self) -> int:
        return len(self._clients)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._clients) >= self._max_clients:
            error = ControlError(ErrorCode.BUSY, f"too many clients ({self._max_clients})")
            writer.write(encode_error(None, error))
            with contextlib.suppress(ConnectionError):
                await writer.drain()
            writer.close()
            return
        # The connection runs in a task of our own, awaited with asyncio.wait: cancelling
        # it at shutdown then never surfaces in asyncio's handler-task callback.
        connection = Connection(reader, writer, self._dispatcher, self._bus, self._max_line)
        task = asyncio.create_task(connection.run())
        self._clients[task] = writer
        try:
            await asyncio.wait({task})
        finally:
            self._clients.pop(task, None)


def _remove_stale_socket(path: Path) -> None:
    if not path.exists() and not path.is_symlink():
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        path.unlink(missing_ok=True)  # a crashed daemon left it behind
        return
    except OSError as exc:
        raise SocketInUseError(f"{path}: cannot be checked: {exc.strerror}") from None
    finally:
        probe.close()
    raise SocketInUseError(f"{path}: another daemon is already listening there")
