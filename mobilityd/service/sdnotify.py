"""sd_notify(3) without a dependency: datagrams of ``KEY=VALUE`` lines to $NOTIFY_SOCKET.

The address is a filesystem path or, when it starts with ``@``, a Linux abstract socket
name (``@`` becomes a NUL byte). Without $NOTIFY_SOCKET (not started by systemd) every
call is a no-op. A failing send is reported once in the log and never stops the daemon.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

from mobilityd.service.logging import log_event

_log = logging.getLogger("mobilityd.sdnotify")


def notify_address(environ: Mapping[str, str]) -> str | None:
    """The socket address to send to, decoded from ``NOTIFY_SOCKET``; ``None`` if unset."""
    value = environ.get("NOTIFY_SOCKET", "")
    if not value:
        return None
    if value.startswith("@"):
        return "\0" + value[1:]
    return value if value.startswith("/") else None


def watchdog_interval(environ: Mapping[str, str], pid: int) -> float | None:
    """Seconds between ``WATCHDOG=1`` pings: half of ``WATCHDOG_USEC``, as
    sd_watchdog_enabled(3) advises; ``None`` if the watchdog is off or meant for
    another process (``WATCHDOG_PID``)."""
    usec = environ.get("WATCHDOG_USEC", "")
    target = environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if target and (not target.isdigit() or int(target) != pid):
        return None
    return int(usec) / 2_000_000


class Notifier:
    """Sends notifications to the service manager (one socket, reused)."""

    def __init__(self, address: str | None) -> None:
        self.address = address
        self._socket: socket.socket | None = None
        self._warned = False

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        return cls(notify_address(os.environ if environ is None else environ))

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *assignments: str) -> bool:
        """Send ``READY=1``, ``STATUS=...`` etc. in one datagram; ``True`` if sent."""
        if self.address is None:
            return False
        payload = "\n".join(assignments).encode()
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX,
                                             socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._socket.sendto(payload, self.address)
        except OSError as exc:
            if not self._warned:
                log_event(_log, logging.WARNING, "sdnotify.failed",
                          socket=self.address.replace("\0", "@"), error=exc.strerror)
                self._warned = True
            return False
        return True

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
