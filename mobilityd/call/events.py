"""Events of the secure-call layer (frozen dataclasses, past-tense names).

The :class:`~mobilityd.call.agent.CallAgent` puts them on its ``events`` queue (and
gives them to every listener) in the order things happened.
"""

from __future__ import annotations

from dataclasses import dataclass

from mobilityd.mikey.constants import ErrorType

__all__ = [
    "CallConnected",
    "CallEvent",
    "CallPlaced",
    "CallRefused",
    "CallTerminated",
    "IncomingCallOffered",
    "ReferHandled",
    "ReinviteHandled",
    "ReinviteRerouted",
]


@dataclass(frozen=True, slots=True)
class CallEvent:
    """Base of every call event: which call."""

    call_id: str


@dataclass(frozen=True, slots=True)
class CallPlaced(CallEvent):
    """We sent an INVITE with our offer."""

    peer: str


@dataclass(frozen=True, slots=True)
class IncomingCallOffered(CallEvent):
    """An INVITE whose offer we accept is ringing (180 sent); ``answer``/``reject`` it.

    ``secure`` says whether the call will be SRTP keyed by MIKEY (``method``)."""

    caller: str
    secure: bool
    method: str | None


@dataclass(frozen=True, slots=True)
class CallConnected(CallEvent):
    """Offer/answer completed and media runs (``suite`` is None for plain RTP)."""

    secure: bool
    method: str | None
    suite: str | None


@dataclass(frozen=True, slots=True)
class CallRefused(CallEvent):
    """The call never connected: refused by us or the peer, or its answer failed.

    ``status`` is the SIP status (sent or received; 0 when the call ended by BYE after
    a bad answer), ``mikey_error`` the MIKEY error type involved, if any."""

    status: int
    reason: str
    mikey_error: ErrorType | None = None
    by_peer: bool = False


@dataclass(frozen=True, slots=True)
class CallTerminated(CallEvent):
    """A connected call ended (BYE); ``mikey_error`` when the BYE carried one."""

    by_peer: bool
    reason: str
    mikey_error: ErrorType | None = None


@dataclass(frozen=True, slots=True)
class ReinviteHandled(CallEvent):
    """An incoming re-INVITE was accepted (2xx) or refused with ``status``."""

    accepted: bool
    status: int


@dataclass(frozen=True, slots=True)
class ReferHandled(CallEvent):
    """An incoming REFER was accepted (202) or refused with ``status``."""

    accepted: bool
    status: int


@dataclass(frozen=True, slots=True)
class ReinviteRerouted(CallEvent):
    """Our re-INVITE got no answer from the peer's contact (Timer B or a transport
    error: the peer has probably moved too) and was sent once more through ``proxy``
    (the account's outbound proxy / registrar) to ``request_uri``, the peer's GRUU or
    address-of-record, which the proxy resolves to the peer's new registered contact
    (RFC 3261 §8.1.2, §16.5; RFC 5627 §3). The outcome follows as the result of
    :meth:`CallAgent.reinvite`."""

    request_uri: str
    proxy: str
