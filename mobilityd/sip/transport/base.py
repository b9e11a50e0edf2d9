"""Shared transport types: flows, the codec a transport uses, the sink it feeds.

A :class:`Flow` names where a message came from (RFC 3261 §18.2.1 "source") and so
where a response goes back over (§18.2.2): for streams, the same connection; for UDP,
the source address (RFC 3581 §4 symmetric response).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Protocol, TypeVar

from mobilityd.sip.transaction.outbound import TransportKind

Address = tuple[str, int]
__all__ = [
    "Address", "Flow", "Framer", "KeepAlive", "MessageCodec", "MessageSink",
    "TransportClosed", "TransportError", "TransportKind",
]

MessageT = TypeVar("MessageT")
MessageT_co = TypeVar("MessageT_co", covariant=True)
MessageT_contra = TypeVar("MessageT_contra", contravariant=True)


@dataclass(frozen=True, slots=True)
class Flow:
    """One path a message took: transport kind, our local and the peer's address
    (immutable; one is made per received datagram, so its constructor is written out
    and compiled - a NamedTuple's ``__new__`` runs interpreted)."""

    kind: TransportKind
    local: Address
    remote: Address

    def __init__(self, kind: TransportKind, local: Address, remote: Address) -> None:
        # Written out: see "Constructors written out" in mobilityd/sip/__init__.py.
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "local", local)
        object.__setattr__(self, "remote", remote)


class TransportError(Exception):
    """A send that could not be done (RFC 3261 §18.4: reported to the transaction)."""

    def __init__(self, remote: Address, detail: str, *, data: bytes = b"",
                 address_gone: bool = False) -> None:
        super().__init__(f"{remote[0]}:{remote[1]}: {detail}")
        self.remote = remote
        self.detail = detail
        self.data = data  # what could not be sent, for a retry on another path
        self.address_gone = address_gone  # our local address is no longer usable


class TransportClosed(TransportError):
    """The transport was closed by its owner."""


class KeepAlive(Enum):
    """CRLF keep-alives seen between messages on a stream (RFC 5626 §3.5.1, §4.4.1)."""

    PING = "ping"  # a double CRLF: answer with a single CRLF
    PONG = "pong"  # a single CRLF answering our ping


class Framer(Protocol[MessageT_co]):
    """Content-Length framing of a byte stream (RFC 3261 §18.3).

    ``feed`` returns, in order, whole messages, keep-alives and the typed parse error of
    each framed-but-malformed message (the stream goes on). It raises the codec's parse
    error when the stream can no longer be framed (the connection is then closed).
    """

    def feed(self, data: bytes) -> Sequence[MessageT_co | KeepAlive | Exception]: ...


class MessageCodec(Protocol[MessageT_co]):
    """How a transport turns bytes into messages (``parse_message`` / StreamFramer)."""

    def parse(self, data: bytes) -> MessageT_co: ...

    def new_framer(self) -> Framer[MessageT_co]: ...


class MessageSink(Protocol[MessageT_contra]):
    """What a transport feeds (the endpoint)."""

    def message_received(self, message: MessageT_contra, flow: Flow,
                         raw: bytes | None = None) -> None:
        """A whole message arrived on ``flow``; ``raw`` is the datagram it came in
        (UDP), for engines that recognise retransmissions by their bytes."""

    def message_rejected(self, error: Exception, data: bytes, flow: Flow) -> None:
        """Bytes on ``flow`` did not parse; ``error`` is the codec's typed parse error."""

    def send_failed(self, error: TransportError, flow: Flow) -> None:
        """A send on ``flow`` failed (RFC 3261 §18.4, §17.1.4 transport error)."""

    def input_done(self) -> None:
        """A batch of input (datagrams of one wake-up, one stream read) was delivered:
        the time to transmit what it caused and re-arm timers."""
