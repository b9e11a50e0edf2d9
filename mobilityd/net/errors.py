"""Typed errors of :mod:`mobilityd.net`.

``NetError`` is the base; nothing else escapes the package's public functions for bad
input (a malformed address, an unknown interface, a namespace that does not exist).
"""

from __future__ import annotations


class NetError(Exception):
    """Base class of every error raised by :mod:`mobilityd.net`."""


class NetEventError(NetError, ValueError):
    """An event or record was built from values that cannot be right (API misuse)."""


class InvalidAddressError(NetError, ValueError):
    """A destination or source given by the caller is not an IP address."""


class RouteLookupError(NetError):
    """The kernel refused a route lookup for a reason other than "no route"."""

    def __init__(self, message: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno


class WatcherError(NetError):
    """The netlink watcher could not start or lost its socket."""
