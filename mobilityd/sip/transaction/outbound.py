"""What the SIP engines hand to the transport: bytes, a destination, a transport kind.

RFC 3261 §18: reliable transports (TCP, TLS) change the transaction timers
(§17.1.1.2, §17.1.2.2, §17.2.1, §17.2.2 - no retransmissions, zero wait timers).
"""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple

Addr = tuple[str, int]


class TransportKind(IntEnum):
    """The transport a message travels on (RFC 3261 §18, Via ``transport``)."""

    UDP = 1
    TCP = 2
    TLS = 3

    @property
    def reliable(self) -> bool:
        return self is not TransportKind.UDP

    @property
    def via_name(self) -> str:
        """The transport token of a Via sent-protocol (RFC 3261 §20.42)."""
        return self.name

    @classmethod
    def from_via(cls, token: str) -> TransportKind:
        """Map a Via transport token; unknown tokens count as UDP (unreliable)."""
        try:
            return cls[token.upper()]
        except KeyError:
            return cls.UDP


class Outgoing(NamedTuple):
    """One message to transmit: serialized bytes, destination and transport."""

    data: bytes
    destination: Addr
    transport: TransportKind
