"""Decision hooks of the :class:`~mobilityd.call.agent.CallAgent` for in-dialog
requests that change a call: re-INVITE / UPDATE (RFC 3261 §14, RFC 3311) and REFER
(RFC 3515). A policy is a coroutine object the agent awaits in its own task; it sees
the :class:`~mobilityd.call.secure_call.SecureCall` (CryptoContext, MediaEndpoint,
negotiated media) and the request, and returns a decision the agent carries out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from mobilityd.call.secure_call import SecureCall
from mobilityd.sip import events as ev
from mobilityd.sip.errors import SipError, StatusCode
from mobilityd.sip.message import Request
from mobilityd.sip.sdp import SessionDescription

if TYPE_CHECKING:
    from mobilityd.call.agent import CallAgent

__all__ = [
    "ConservativeReinvitePolicy",
    "ReferDecision",
    "ReferPolicy",
    "RefuseRefers",
    "ReinviteDecision",
    "ReinvitePolicy",
]


@dataclass(frozen=True)
class ReinviteDecision:
    """Accept (2xx with ``body``; empty: our current SDP) or refuse with ``status``
    (the refusal carries ``headers`` and ``body`` when given: e.g. a Warning and SDP
    with a MIKEY error message, RFC 4567 §4.1.2)."""

    accept: bool
    body: bytes = b""
    status: int = StatusCode.NOT_ACCEPTABLE_HERE
    reason: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


class ReinvitePolicy(Protocol):
    async def decide(self, agent: CallAgent, call: SecureCall, request: Request
                     ) -> ReinviteDecision: ...


class ConservativeReinvitePolicy:
    """Accept a re-offer only if it keeps the media address and carries no key-mgmt
    (a session refresh, RFC 4028); anything else is the mobility layer's job: 488."""

    async def decide(self, agent: CallAgent, call: SecureCall, request: Request
                     ) -> ReinviteDecision:
        del agent
        if not request.body:
            return ReinviteDecision(True)
        negotiated = call.negotiated
        try:
            sd = SessionDescription.parse(request.body)
            has_key_mgmt = bool(sd.key_mgmt) or any(m.key_mgmt for m in sd.media)
        except SipError as exc:
            return ReinviteDecision(False, status=exc.status, reason=exc.reason)
        if has_key_mgmt or negotiated is None or len(sd.media) <= negotiated.media_index:
            return ReinviteDecision(False, reason="re-keying or new media not accepted")
        index = negotiated.media_index
        conn = sd.connection_of(index)
        if conn is None or (conn.address, sd.media[index].port) != negotiated.remote_rtp:
            return ReinviteDecision(False, reason="media address change not accepted")
        return ReinviteDecision(True)


@dataclass(frozen=True)
class ReferDecision:
    accept: bool
    status: int = StatusCode.DECLINE
    reason: str | None = None


class ReferPolicy(Protocol):
    async def decide(self, agent: CallAgent, call: SecureCall, refer: ev.ReferReceived
                     ) -> ReferDecision: ...


class RefuseRefers:
    """Default REFER policy: transfers are not handled here (603)."""

    async def decide(self, agent: CallAgent, call: SecureCall, refer: ev.ReferReceived
                     ) -> ReferDecision:
        del agent, call, refer
        return ReferDecision(False)
