"""Moving calls of a :class:`~mobilityd.call.agent.CallAgent` (issue 5), asyncio.

* :class:`VerifyingReinvitePolicy` -- the agent's re-INVITE policy on the peer side:
  a re-INVITE that changes the remote target (Contact) or a media address, or carries
  ``key-mgmt``, is accepted only after :func:`~mobilityd.mobility.peer.verify_move` (RFC 3830 §4.5
  update: CSB, timestamp, replay cache, identity, MAC/signature); then the media path
  check is armed (:meth:`MediaEndpoint.propose_remote` with ``any_source``: the
  stream follows the first authenticated packet from a new source, never the SDP
  ``c=``), and the offer's addresses are probed (:func:`~.peer.probe_verified_move`:
  when both ends move at once neither would otherwise hear the other's new address).
  Other re-INVITEs (session refresh) go to the ``fallback`` policy.
* :func:`move_agent_call` -- the moving side: rebind media (same SRTP sessions), then
  SIP (re-REGISTER included), then the re-INVITE with the update (:func:`move_offer`).

Both read and write the call's current MIKEY context in one :class:`MoveContexts`
(the agent's ``NegotiatedMedia.context`` is the one from call set-up).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable

from mobilityd.call.agent import (
    CallAgent,
    ConservativeReinvitePolicy,
    ReinviteDecision,
    ReinvitePolicy,
)
from mobilityd.call.secure_call import SecureCall
from mobilityd.mikey.context import CryptoContext, PreparedUpdate
from mobilityd.mikey.session import Rng
from mobilityd.mobility.move import MediaAddress, MoveUsageError, UpdateInAdvance, move_offer
from mobilityd.mobility.peer import (
    MoveRefused,
    probe_verified_move,
    refusal_body,
    verify_move,
)
from mobilityd.mobility.roaming import RETAINED_MEDIA_SECONDS, RETIRED_LISTEN_SECONDS
from mobilityd.sip import events as ev
from mobilityd.sip.errors import SipError
from mobilityd.sip.message import Request
from mobilityd.sip.sdp import SessionDescription
from mobilityd.sip.uri import NameAddr

__all__ = ["MoveContexts", "VerifyingReinvitePolicy", "move_agent_call"]


class MoveContexts:
    """The current MIKEY context of each moving call (after the updates sent or
    verified so far; a call not seen yet starts from its set-up context), and what its
    next move can have ready before it starts (:meth:`keep_ready`): the update message
    (:class:`~mobilityd.mobility.move.UpdateInAdvance`) and the call's SDPs parsed.
    Measured once per move after 20 ms of relaying audio, the way a move runs, those
    are 0.47 ms (PSK) or 1.8 ms (DH-SIGN) for the update and 0.28 ms per SDP, on each
    side's critical path before the re-INVITE leaves or before the peer can verify it.
    """

    def __init__(self) -> None:
        self._contexts: dict[str, CryptoContext] = {}
        self._ahead: dict[str, UpdateInAdvance] = {}
        self._parsed: dict[tuple[str, str], tuple[bytes, SessionDescription]] = {}

    def get(self, call: SecureCall) -> CryptoContext | None:
        return self._contexts.get(call.call_id) or call.context

    def set(self, call_id: str, context: CryptoContext) -> None:
        self._contexts[call_id] = context

    def forget(self, call_id: str) -> None:
        self._contexts.pop(call_id, None)
        self._ahead.pop(call_id, None)
        for side in ("local", "remote"):
            self._parsed.pop((call_id, side), None)

    def parsed_sdp(self, call_id: str, side: str, raw: bytes) -> SessionDescription:
        """``SessionDescription.parse(raw)``, remembered per call and side ("local",
        "remote") for as long as that side's SDP stays the same bytes. Only the move
        code reads what it returns (never changed: offers are built with ``replace``).
        Raises :class:`~mobilityd.sip.errors.SipError` like the parser."""
        known = self._parsed.get((call_id, side))
        if known is not None and (known[0] is raw or known[0] == raw):
            return known[1]
        sdp = SessionDescription.parse(raw)
        self._parsed[(call_id, side)] = (raw, sdp)
        return sdp

    def keep_ready(self, call: SecureCall, now: float,
                   rng: Rng = os.urandom) -> str | None:
        """Off any move's critical path (the daemon calls it every second per call):
        build the next update unless one fits the call's context and age, and parse the
        call's SDPs unless already parsed. ``now``: Unix seconds (the MIKEY clock).
        Returns a new failure to build the update, once (``UpdateInAdvance.keep_ready``)."""
        failure = None
        context = self.get(call)
        if context is not None:
            ahead = self._ahead.setdefault(call.call_id, UpdateInAdvance())
            failure = ahead.keep_ready(context, now, rng)
        with contextlib.suppress(SipError):  # a move of such a call fails and says why
            if call.local_sdp:
                self.parsed_sdp(call.call_id, "local", call.local_sdp)
            if call.remote_sdp:
                self.parsed_sdp(call.call_id, "remote", call.remote_sdp)
        return failure

    def take_update(self, call_id: str, context: CryptoContext,
                    now: float) -> PreparedUpdate | None:
        """The update built ahead for ``context``, if it still fits (once)."""
        ahead = self._ahead.get(call_id)
        return None if ahead is None else ahead.take(context, now)


def _changes_target(agent: CallAgent, call: SecureCall, request: Request) -> bool:
    dialog = agent.dialog(call.call_id)
    raw = request.headers.get("Contact")
    if dialog is None or raw is None:
        return False
    try:
        contact = NameAddr.parse(raw).uri
    except SipError:
        return True  # unreadable: treat as a change (it must then verify)
    return not contact.equivalent(dialog.remote_target)


def _media_addresses(sdp: SessionDescription) -> list[tuple[str | None, int]]:
    found = []
    for index, media in enumerate(sdp.media):
        connection = sdp.connection_of(index)
        found.append((connection.address if connection else None, media.port))
    return found


def _looks_like_a_move(call: SecureCall, body: bytes) -> bool:
    """The offer carries key-mgmt or moves a media stream (RFC 8866 §5.7 ``c=``, port)."""
    if not body:
        return False
    try:
        sdp = SessionDescription.parse(body)
        if sdp.key_mgmt or any(m.key_mgmt for m in sdp.media):
            return True
        if not call.remote_sdp:
            return False
        return _media_addresses(sdp) != _media_addresses(
            SessionDescription.parse(call.remote_sdp))
    except SipError:
        return False  # the fallback policy answers unparseable offers


class VerifyingReinvitePolicy:
    """A :class:`ReinvitePolicy` that lets only verified moves through (module doc)."""

    def __init__(self, contexts: MoveContexts | None = None, *,
                 fallback: ReinvitePolicy | None = None,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.contexts = contexts or MoveContexts()
        self.fallback: ReinvitePolicy = fallback or ConservativeReinvitePolicy()
        self._wall_clock = wall_clock
        self.refused: list[MoveRefused] = []
        self.accepted = 0

    async def decide(self, agent: CallAgent, call: SecureCall, request: Request
                     ) -> ReinviteDecision:
        context = self.contexts.get(call)
        is_move = (_changes_target(agent, call, request)
                   or _looks_like_a_move(call, request.body))
        if context is None or not is_move:
            return await self.fallback.decide(agent, call, request)
        previous = None
        if call.remote_sdp:
            try:
                previous = self.contexts.parsed_sdp(call.call_id, "remote", call.remote_sdp)
            except SipError:
                previous = None
        try:
            verified = verify_move(request.body, context, self._wall_clock(),
                                   previous=previous)
        except MoveRefused as refused:
            return self._refuse(refused, call)
        self.contexts.set(call.call_id, verified.context)
        self.accepted += 1
        if call.media is not None:
            call.media.propose_remote(None, any_source=True)
            # both ends may have moved at once: probe, never redirect (peer.py)
            probe_verified_move(call.media, verified)
        return ReinviteDecision(True)

    def _refuse(self, refused: MoveRefused, call: SecureCall) -> ReinviteDecision:
        """488 + Warning, and our unchanged SDP carrying the MIKEY error message when
        MIKEY has one to send (RFC 4567 §4.1.2)."""
        self.refused.append(refused)
        body = b""
        if call.local_sdp:
            try:
                body = refusal_body(SessionDescription.parse(call.local_sdp), refused)
            except SipError:
                body = b""
        return ReinviteDecision(False, status=refused.status, reason=refused.reason[:120],
                                headers=(("Warning", refused.warning),), body=body)


async def move_agent_call(
    agent: CallAgent, call_id: str, new_ip: str, contexts: MoveContexts, *,
    wall_clock: Callable[[], float] = time.time, rng: Rng = os.urandom,
) -> ev.ReinviteAccepted | ev.ReinviteFailed:
    """Move ``call_id`` to local address ``new_ip`` and wait for the re-INVITE's
    outcome. Raises :class:`~mobilityd.call.errors.CallUsageError` while another
    re-INVITE of the call runs (RFC 3261 §14.1: retry when it completed)."""
    call = agent.call(call_id)
    media = call.media
    context = contexts.get(call)
    if media is None or context is None:
        raise MoveUsageError(f"call {call_id} is not a secure call with media")
    await media.rebind(new_ip, keep_old_for=RETAINED_MEDIA_SECONDS)  # make-before-break
    media.announce()  # SRTCP proof from the new address at once (issue 5 media gap)
    sip = agent.sip
    if sip.local_address[0] != new_ip:
        old = sip.local_address
        await sip.rebind(new_ip, refresh_dialogs=False)
        asyncio.get_running_loop().call_later(RETIRED_LISTEN_SECONDS, sip.release, old)
    rtp = media.local_rtp
    rtcp_port = None if media.rtcp_mux else media.local_rtcp[1]
    now = wall_clock()
    offer = move_offer(contexts.parsed_sdp(call_id, "local", call.local_sdp), context,
                       MediaAddress(rtp[0], rtp[1], rtcp_port), now, rng,
                       prepared=contexts.take_update(call_id, context, now))
    contexts.set(call_id, offer.context)
    return await agent.reinvite(call_id, offer.body)
