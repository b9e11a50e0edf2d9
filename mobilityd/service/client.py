"""A blocking control-socket client for ``mobilityctl`` (one connection per command)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from mobilityd.service.errors import ControlError, ErrorCode
from mobilityd.service.protocol import (
    EventMessage,
    Op,
    Reply,
    encode_request,
    parse_server_line,
)


class DaemonUnreachable(Exception):
    """The socket cannot be reached (daemon down, wrong path, no permission)."""


class ControlClient:
    """Send requests and read replies/events over one Unix stream connection."""

    def __init__(self, path: Path, timeout: float | None) -> None:
        self.path = path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        try:
            self._sock.connect(str(path))
        except FileNotFoundError:
            self._sock.close()
            raise DaemonUnreachable(f"no control socket at {path} (is mobilityd running?)"
                                    ) from None
        except PermissionError:
            self._sock.close()
            raise DaemonUnreachable(f"permission denied on {path} (are you in the "
                                    f"socket's group?)") from None
        except OSError as exc:
            self._sock.close()
            raise DaemonUnreachable(f"cannot connect to {path}: {exc.strerror or exc}"
                                    ) from None
        self._lines = self._sock.makefile("rb")
        self._next_id = 1

    def send(self, op: Op, **args: Any) -> int:
        request_id, self._next_id = self._next_id, self._next_id + 1
        try:
            self._sock.sendall(encode_request(request_id, op, **args))
        except OSError as exc:
            raise DaemonUnreachable(f"lost the connection to {self.path}: {exc}") from None
        return request_id

    def receive(self) -> Reply | EventMessage:
        try:
            line = self._lines.readline()
        except TimeoutError:
            raise ControlError(ErrorCode.INTERNAL, "no answer from mobilityd in time") from None
        except OSError as exc:
            raise DaemonUnreachable(f"lost the connection to {self.path}: {exc}") from None
        if not line:
            raise DaemonUnreachable(f"mobilityd closed the connection ({self.path})")
        return parse_server_line(line)

    def request(self, op: Op, **args: Any) -> Reply:
        """Send one request and wait for its reply (events in between are skipped)."""
        request_id = self.send(op, **args)
        while True:
            message = self.receive()
            if isinstance(message, Reply) and message.id == request_id:
                return message

    def close(self) -> None:
        self._lines.close()
        self._sock.close()

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
