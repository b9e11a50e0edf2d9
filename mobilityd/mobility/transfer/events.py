"""Events of the call-transfer engines (frozen dataclasses, past-tense names)."""

from __future__ import annotations

from dataclasses import dataclass, field

from mobilityd.mikey.context import CryptoContext

__all__ = [
    "TargetConfirmed",
    "TransferAccepted",
    "TransferEvent",
    "TransferFailed",
    "TransferProgressed",
    "TransferSucceeded",
    "TransferTaken",
]


@dataclass(frozen=True, slots=True)
class TransferEvent:
    """Base class of transfer events."""


@dataclass(frozen=True, slots=True)
class TargetConfirmed(TransferEvent):
    """The new device answered the EXPECT token: send the REFER now (RFC 3515 §2.4.1)
    with ``Refer-To: refer_to`` and ``Referred-By: referred_by`` (RFC 3892 §3)."""

    call_id: str
    device: str
    refer_to: str
    referred_by: str


@dataclass(frozen=True, slots=True)
class TransferProgressed(TransferEvent):
    """A provisional sipfrag status of the referred INVITE (RFC 3515 §2.4.5)."""

    call_id: str
    status: int


@dataclass(frozen=True, slots=True)
class TransferSucceeded(TransferEvent):
    """The new device holds the call: end the old leg with BYE (RFC 5631 §3.2)."""

    call_id: str
    device: str


@dataclass(frozen=True, slots=True)
class TransferFailed(TransferEvent):
    """The transfer did not happen; the call stays where it was, untouched.
    ``status`` is the SIP status that ended it (0 for a local timeout)."""

    call_id: str
    device: str
    reason: str
    status: int = 0


@dataclass(frozen=True, slots=True)
class TransferAccepted(TransferEvent):
    """Correspondent side: the new device's MIKEY answer verified (RFC 3830 §3.1/§3.2).
    ``ssrc_renames`` maps each old user-side SSRC to its new one (same CS ID)."""

    context: CryptoContext = field(repr=False)
    ssrc_renames: dict[int, int]


@dataclass(frozen=True, slots=True)
class TransferTaken(TransferEvent):
    """New-device side: the transfer INVITE's MIKEY offer verified; send ``reply`` (the
    V answer) in the 200 OK and key SRTP from ``context``."""

    context: CryptoContext = field(repr=False)
    reply: bytes | None = field(repr=False)
    call_id: str
    local_ssrcs: tuple[int, ...]
    remote_ssrcs: tuple[int, ...]
