"""Events the SIP transaction layer and user-agent core hand to their caller.

Frozen dataclasses with past-tense names (house style).  Calls are named by their
Call-ID (``call_id``): the UA core keeps one dialog per Call-ID.  Events that ask the
application for a decision say which API call answers them; the engine waits (the peer
sees 100 Trying) until the application calls it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mobilityd.sip.message import Request, Response
from mobilityd.sip.uri import NameAddr, SipUri

Addr = tuple[str, int]


class Event:
    """Base class of every SIP event (for ``isinstance`` dispatch and typing)."""

    __slots__ = ()


# --- transaction layer (RFC 3261 §17) -------------------------------------------------


@dataclass(frozen=True, slots=True)
class TransactionTimedOut(Event):
    """Timer B, F or H fired (§17.1.1.2, §17.1.2.2, §17.2.1): treat as 408."""

    method: str
    call_id: str
    branch: str


@dataclass(frozen=True, slots=True)
class TransportFailed(Event):
    """The transport reported a failure for a transaction (§17.1.4, §8.1.3.1: as 503)."""

    method: str
    call_id: str
    destination: Addr
    reason: str


# --- INVITE sessions (RFC 3261 §13-§15) ------------------------------------------------


@dataclass(frozen=True, slots=True)
class IncomingCallReceived(Event):
    """A dialog-creating INVITE arrived.  Answer with ``UserAgent.answer_call`` or
    ``UserAgent.reject_call`` (§13.3.1); until then the peer sees 100 Trying."""

    call_id: str
    request: Request
    replaces_call_id: str | None = None  # set when Replaces (RFC 3891) matched a call

    def __init__(self, call_id: str, request: Request,
                 replaces_call_id: str | None = None) -> None:
        # Written out: see "Constructors written out" in mobilityd/sip/__init__.py.
        object.__setattr__(self, "call_id", call_id)
        object.__setattr__(self, "request", request)
        object.__setattr__(self, "replaces_call_id", replaces_call_id)


@dataclass(frozen=True, slots=True)
class ProvisionalResponseReceived(Event):
    """A 1xx answered our INVITE (§13.2.2.1); may have created an early dialog."""

    call_id: str
    response: Response

    def __init__(self, call_id: str, response: Response) -> None:
        # Written out: see "Constructors written out" in mobilityd/sip/__init__.py.
        object.__setattr__(self, "call_id", call_id)
        object.__setattr__(self, "response", response)


@dataclass(frozen=True, slots=True)
class CallEstablished(Event):
    """The INVITE was accepted: UAC on the 2xx (after sending ACK), UAS on the ACK."""

    call_id: str
    message: Request | Response

    def __init__(self, call_id: str, message: Request | Response) -> None:
        # Written out: see "Constructors written out" in mobilityd/sip/__init__.py.
        object.__setattr__(self, "call_id", call_id)
        object.__setattr__(self, "message", message)


@dataclass(frozen=True, slots=True)
class CallFailed(Event):
    """Our INVITE got a final non-2xx, timed out, or the transport failed (§13.2.2.3).

    ``response`` is the final response itself (status line, headers such as Warning
    or WWW-Authenticate, and the body, e.g. SDP carrying a MIKEY error message,
    RFC 4567 §4.1.2); ``None`` when no response came (408 timeout, 503 transport)."""

    call_id: str
    status: int
    reason: str
    response: Response | None = field(default=None, compare=False)

    def __init__(self, call_id: str, status: int, reason: str,
                 response: Response | None = None) -> None:
        # Written out: see "Constructors written out" in mobilityd/sip/__init__.py.
        object.__setattr__(self, "call_id", call_id)
        object.__setattr__(self, "status", status)
        object.__setattr__(self, "reason", reason)
        object.__setattr__(self, "response", response)


@dataclass(frozen=True, slots=True)
class CallCancelled(Event):
    """The peer CANCELled its INVITE before we answered (§9.2): 487 was sent."""

    call_id: str

    def __init__(self, call_id: str) -> None:
        # Written out: see "Constructors written out" in mobilityd/sip/__init__.py.
        object.__setattr__(self, "call_id", call_id)


@dataclass(frozen=True, slots=True)
class CallEnded(Event):
    """The dialog is over: BYE sent or received, ACK never came (§13.3.1.4), or the
    session timer expired (RFC 4028 §10)."""

    call_id: str
    by_peer: bool
    reason: str

    def __init__(self, call_id: str, by_peer: bool, reason: str) -> None:
        # Written out: see "Constructors written out" in mobilityd/sip/__init__.py.
        object.__setattr__(self, "call_id", call_id)
        object.__setattr__(self, "by_peer", by_peer)
        object.__setattr__(self, "reason", reason)


# --- re-INVITE / target refresh (§12.2, §14) ------------------------------------------


@dataclass(frozen=True, slots=True)
class ReinviteReceived(Event):
    """The peer sent a re-INVITE (or an UPDATE, RFC 3311: see ``request.method``).

    Decide with ``UserAgent.accept_reinvite`` or ``UserAgent.refuse_reinvite``; the
    dialog (remote target included) is unchanged until it is accepted (§12.2.2, §14.2).
    """

    call_id: str
    request: Request
    new_remote_target: SipUri | None  # the Contact, when it differs from the current one


@dataclass(frozen=True, slots=True)
class ReinviteCancelled(Event):
    """The peer CANCELled its re-INVITE before we decided (§9.2: 487 was sent); the
    pending decision is void and the dialog unchanged."""

    call_id: str


@dataclass(frozen=True, slots=True)
class RemoteTargetRefreshed(Event):
    """A target refresh request or response changed the remote target (§12.2.2,
    §12.2.1.2): in-dialog requests now go to ``new``."""

    call_id: str
    old: SipUri
    new: SipUri


@dataclass(frozen=True, slots=True)
class ReinviteAccepted(Event):
    """Our re-INVITE got a 2xx (ACK sent)."""

    call_id: str
    response: Response


@dataclass(frozen=True, slots=True)
class ReinviteConfirmed(Event):
    """The ACK for our 2xx to the peer's re-INVITE arrived (RFC 3261 §13.3.1.4): that
    INVITE transaction is over, so a re-INVITE of ours may go now (§14.1)."""

    call_id: str
    ack: Request


@dataclass(frozen=True, slots=True)
class ReinviteFailed(Event):
    """Our re-INVITE got a non-2xx final answer; the session is unchanged (§14.1).
    ``retry_at`` is set after a 491 glare: the UA re-sends by itself at that time."""

    call_id: str
    status: int
    reason: str
    retry_at: float | None = None
    # the final response; None on timeout/transport.  Not compared: events built
    # without it still equal the ones the UA emits (backward compatible).
    response: Response | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class ReinviteRerouted(Event):
    """Our re-INVITE got no answer from the peer's remote target (timeout or transport
    failure) and was re-sent through ``proxy`` to ``request_uri`` (the peer's GRUU or
    AOR), because ``UaConfig.reroute_via_proxy`` is set; its outcome follows as
    ``ReinviteAccepted`` / ``ReinviteFailed``.  Informational."""

    call_id: str
    request_uri: SipUri
    proxy: SipUri


# --- REFER (RFC 3515) ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReferReceived(Event):
    """The peer asks us to contact ``refer_to`` (RFC 3515 §2.4.2).  Decide with
    ``UserAgent.accept_refer`` / ``refuse_refer``; report progress with
    ``notify_refer_progress`` (NOTIFY with message/sipfrag, RFC 3420)."""

    call_id: str
    refer_to: NameAddr
    referred_by: NameAddr | None
    request: Request


@dataclass(frozen=True, slots=True)
class ReferAnswered(Event):
    """Our REFER got a final response (202 Accepted opens the implicit subscription)."""

    call_id: str
    status: int
    reason: str


@dataclass(frozen=True, slots=True)
class ReferProgressNotified(Event):
    """A NOTIFY of the implicit REFER subscription arrived (RFC 3515 §2.4.4): the
    sipfrag status line of the referred request, and whether the subscription ended."""

    call_id: str
    status: int
    reason: str
    subscription_terminated: bool


# --- other requests -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequestAnswered(Event):
    """A final response to a request sent with ``UserAgent.send_request`` (OPTIONS...)."""

    call_id: str
    method: str
    response: Response


@dataclass(frozen=True, slots=True)
class RequestFailed(Event):
    """A request of ours ended without a response: timeout (408) or transport (503).
    Final responses, a 401/407 we could not answer included, arrive as
    ``RequestAnswered``; ``response`` is therefore ``None`` here today and exists for
    symmetry with ``CallFailed`` / ``ReinviteFailed``."""

    call_id: str
    method: str
    status: int
    reason: str
    response: Response | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class SessionRefreshDue(Event):
    """RFC 4028 §7.4/§10: we are the refresher and half the interval has elapsed; the
    UA sends a refreshing re-INVITE itself, this event is informational."""

    call_id: str
