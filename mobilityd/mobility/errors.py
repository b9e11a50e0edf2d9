"""Typed errors of the sans-I/O mobility engines.

All of them are *local* errors (the caller misused an engine: an unknown call, a bad
setting, an event the engine does not take); remote misbehaviour never raises here --
unauthenticated or unverified input is simply not acted upon.
"""

from __future__ import annotations


class MobilityError(Exception):
    """Base class of :mod:`mobilityd.mobility` errors."""


class UnknownCallError(MobilityError, KeyError):
    """An event or route answer names a call the engine does not track."""

    def __init__(self, call_id: str) -> None:
        super().__init__(call_id)
        self.call_id = call_id

    def __str__(self) -> str:
        return f"unknown call {self.call_id!r}"


class MobilityConfigError(MobilityError, ValueError):
    """A setting that cannot work (negative grace period, unparseable address ...)."""


class UnexpectedEventError(MobilityError, TypeError):
    """An engine was handed an event type it does not handle."""


class MonitorNotStartedError(MobilityError, RuntimeError):
    """The path monitor was used before ``await start()``."""
