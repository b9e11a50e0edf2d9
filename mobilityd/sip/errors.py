"""Typed SIP errors that carry the answer to send (RFC 3261 §8.2, §16.3, §18.3, §21).

`SipError` is raised when a peer sent something we must refuse; `status` and `reason`
are the response to send back.  `SipParseError` is the only exception the message
parser lets escape.  When the broken message is a request whose Via, From, To, Call-ID
and CSeq could still be read, `partial` holds them so that the caller can build the
error response (RFC 3261 §8.2.6); when it is `None` the message is to be dropped
silently (a broken response, an ACK, or a request we cannot address an answer to —
RFC 3261 §18.3, RFC 4475 §3.1.2).
"""

from __future__ import annotations

from enum import IntEnum
from typing import TYPE_CHECKING

from mypy_extensions import mypyc_attr

if TYPE_CHECKING:
    from mobilityd.sip.headers import PartialMessage


class StatusCode(IntEnum):
    """SIP response codes used by the stack (RFC 3261 §21, RFC 3515, RFC 4028, RFC 6665)."""

    TRYING = 100
    RINGING = 180
    CALL_IS_BEING_FORWARDED = 181
    QUEUED = 182
    SESSION_PROGRESS = 183
    OK = 200
    ACCEPTED = 202
    MULTIPLE_CHOICES = 300
    MOVED_PERMANENTLY = 301
    MOVED_TEMPORARILY = 302
    USE_PROXY = 305
    ALTERNATIVE_SERVICE = 380
    BAD_REQUEST = 400
    UNAUTHORIZED = 401
    PAYMENT_REQUIRED = 402
    FORBIDDEN = 403
    NOT_FOUND = 404
    METHOD_NOT_ALLOWED = 405
    NOT_ACCEPTABLE = 406
    PROXY_AUTHENTICATION_REQUIRED = 407
    REQUEST_TIMEOUT = 408
    GONE = 410
    REQUEST_ENTITY_TOO_LARGE = 413
    REQUEST_URI_TOO_LONG = 414
    UNSUPPORTED_MEDIA_TYPE = 415
    UNSUPPORTED_URI_SCHEME = 416
    BAD_EXTENSION = 420
    EXTENSION_REQUIRED = 421
    SESSION_INTERVAL_TOO_SMALL = 422
    INTERVAL_TOO_BRIEF = 423
    TEMPORARILY_UNAVAILABLE = 480
    CALL_OR_TRANSACTION_DOES_NOT_EXIST = 481
    LOOP_DETECTED = 482
    TOO_MANY_HOPS = 483
    ADDRESS_INCOMPLETE = 484
    AMBIGUOUS = 485
    BUSY_HERE = 486
    REQUEST_TERMINATED = 487
    NOT_ACCEPTABLE_HERE = 488
    BAD_EVENT = 489
    REQUEST_PENDING = 491
    UNDECIPHERABLE = 493
    SERVER_INTERNAL_ERROR = 500
    NOT_IMPLEMENTED = 501
    BAD_GATEWAY = 502
    SERVICE_UNAVAILABLE = 503
    SERVER_TIMEOUT = 504
    VERSION_NOT_SUPPORTED = 505
    MESSAGE_TOO_LARGE = 513
    BUSY_EVERYWHERE = 600
    DECLINE = 603
    DOES_NOT_EXIST_ANYWHERE = 604
    NOT_ACCEPTABLE_ANYWHERE = 606


def _one_line(text: str) -> str:
    """A reason phrase may not contain CR or LF (RFC 3261 §25.1 Reason-Phrase)."""
    return " ".join(text.split())


@mypyc_attr(allow_interpreted_subclasses=True)  # sdp.SdpError is interpreted
class SipError(Exception):
    """A remote protocol error: answer with ``status`` and ``reason`` (RFC 3261 §21)."""

    def __init__(self, status: int, reason: str) -> None:
        self.status = int(status)
        self.reason = _one_line(reason)
        super().__init__(f"{self.status} {self.reason}")


class SipParseError(SipError):
    """A message that does not parse (RFC 3261 §25, RFC 4475 §3.1.2).

    ``status`` is 400 unless a more specific code applies (413, 414, 416, 505, 513).
    ``partial`` is set when an error response can be built, else the message is dropped.
    """

    def __init__(
        self,
        reason: str,
        status: int = StatusCode.BAD_REQUEST,
        partial: PartialMessage | None = None,
    ) -> None:
        super().__init__(status, reason)
        self.partial = partial

    def with_partial(self, partial: PartialMessage | None) -> SipParseError:
        """The same error, now knowing whether it can be answered."""
        return SipParseError(self.reason, self.status, partial)


class SipUsageError(ValueError):
    """Local misuse of the message API: building something that is not valid SIP
    (a header name that is not a token, a value with CR or LF that would inject header
    fields, a method that is not a token).  Never caused by a peer, never answered."""
