"""What the SIP engines hand to the transport: bytes, a destination, a transport kind.

RFC 3261 §18: reliable transports (TCP, TLS) change the transaction timers
(§17.1.1.2, §17.1.2.2, §17.2.1, §17.2.2 - no retransmissions, zero wait timers).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

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


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to transmit: serialized bytes, destination and transport."""

    data: bytes
    destination: Addr
    transport: TransportKind

    def __init__(self, data: bytes, destination: Addr, transport: TransportKind) -> None:
        # Written out: see "Constructors written out" in mobilityd/sip/__init__.py.
        object.__setattr__(self, "data", data)
        object.__setattr__(self, "destination", destination)
        object.__setattr__(self, "transport", transport)
