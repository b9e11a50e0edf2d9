"""Typed errors of the call-transfer engines (issue 6, thesis §15.1).

Remote errors carry the SIP answer to send back (RFC 3261 §21) and, when MIKEY
refused the message, the MIKEY error type (RFC 3830 §6.12) for the ``a=key-mgmt`` error
answer (RFC 4567 §4.1.2). Local errors mean our caller misused an engine.
"""

from __future__ import annotations

from mobilityd.mikey.constants import ErrorType


class TransferError(Exception):
    """Base class of :mod:`mobilityd.mobility.transfer` errors."""


class TransferRefusedError(TransferError):
    """The peer's transfer input is refused; ``status``/``reason`` are the SIP answer."""

    def __init__(
        self, message: str, status: int = 403, reason: str = "Forbidden",
        mikey_error: ErrorType | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.mikey_error = mikey_error


class TokenError(TransferRefusedError):
    """A device hand-off token that does not parse, authenticate or apply (docs/transfer.md)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 403, "Forbidden")


class RetransmittedTokenError(TokenError):
    """An identical copy of a token already admitted (the sender retransmitted it,
    RFC 3261 §17.1.2.2 style): refused as a new request -- it files nothing and starts
    nothing -- but not an attack. ``answer`` is the cached answer token to send again
    (None: nothing to answer, e.g. a PULL, or the answer budget of this nonce is spent)."""

    def __init__(self, message: str, answer: bytes | None) -> None:
        super().__init__(message)
        self.answer = answer


class NotExpectedError(TransferRefusedError):
    """A transfer INVITE for a call no device of the user told us to expect
    (RFC 3891/RFC 5631 hand-off without consent: answered 603 Decline).
    ``correspondent``/``csb_id`` say which expectation was missing (so the INVITE can
    wait briefly for a late EXPECT token, docs/transfer.md)."""

    def __init__(self, message: str, correspondent: str = "", csb_id: int | None = None
                 ) -> None:
        super().__init__(message, 603, "Decline")
        self.correspondent = correspondent
        self.csb_id = csb_id


class KeyTransportError(TransferRefusedError):
    """The MIKEY part of a transfer was refused (488, RFC 4567 §4.1.2)."""

    def __init__(self, message: str, mikey_error: ErrorType) -> None:
        super().__init__(message, 488, "Not Acceptable Here", mikey_error)


class TransferUsageError(TransferError, RuntimeError):
    """Local misuse: wrong state, a call that cannot be transferred, no credentials."""
