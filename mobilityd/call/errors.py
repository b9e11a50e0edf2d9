"""Errors of the secure-call layer: who is at fault and what to answer.

* :class:`CallUsageError`: our caller misused the API (unknown call, wrong state).
* :class:`NegotiationError`: the peer's offer or answer cannot give a secure (or, by
  policy, acceptable) call. It carries the SIP status to answer an offer with
  (RFC 3261 §21.4.26 488, §21.6.4 606), the MIKEY error type found (RFC 3830 §6.12) and
  the MIKEY error message to send back inside SIP (thesis §11.4, RFC 4567 §4.1.2).
"""

from __future__ import annotations

from mobilityd.mikey.constants import ErrorType
from mobilityd.sip.errors import StatusCode

__all__ = ["CallError", "CallUsageError", "NegotiationError"]


class CallError(Exception):
    """Base of every error this package raises."""


class CallUsageError(CallError):
    """Local misuse of the call API (unknown call id, decision in the wrong state)."""


class NegotiationError(CallError):
    """An offer or answer we refuse.

    ``status``: the SIP final response to answer an offer with (488 by default).
    ``mikey_error``: the RFC 3830 §6.12 error type, when MIKEY processing failed.
    ``error_message``: the MIKEY error message (§5.1.2) to carry in the SIP response or
    BYE, or None when none must be sent (unparseable input, replays, peer errors).
    """

    def __init__(
        self,
        reason: str,
        status: int = StatusCode.NOT_ACCEPTABLE_HERE,
        *,
        mikey_error: ErrorType | None = None,
        error_message: bytes | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.mikey_error = mikey_error
        self.error_message = error_message

    def __repr__(self) -> str:
        kind = self.mikey_error.name if self.mikey_error is not None else None
        return f"NegotiationError({self.reason!r}, status={self.status}, mikey_error={kind})"
