"""Moving live calls, asyncio (issue 5): the thin adapter around :mod:`.move` and
:mod:`.peer`.

* :class:`CallMover` (moving side, step 1-2, 5): rebind the media sockets first (media
  flows from the new address at once, same SRTP sessions; the old sockets keep
  receiving for :data:`RETAINED_MEDIA_SECONDS`, make-before-break: what the peer
  sends to our old address until its stream follows us is not lost while that address
  still works), then the SIP transport
  (same port where free; :meth:`SipEndpoint.rebind` re-REGISTERs with the new Contact),
  then send the re-INVITE carrying the RFC 3830 §4.5 update (built ahead, every
  second checked against the call's context and age: :class:`~.move.UpdateInAdvance`;
  the move only adds its addresses to the SDP). The SRTCP announce
  (:meth:`MediaEndpoint.announce`) leaves right after the media rebind, before the
  re-INVITE: the peer then authenticates it while it waits for the re-INVITE, and its
  stream switches as soon as the update verifies. Sending the re-INVITE first was
  measured (handover bench, RTT 20, 4 alternating timeline runs of 20 moves): its
  earlier departure is paid back at the peer, which then authenticates the announce
  only after verifying the update (0.3-0.5 ms), and the first packet on the new path
  is the re-INVITE itself; the stream reached us no earlier (change -> first packet
  decrypted, minus decision: 24.05 vs 24.23 ms mean of the medians). An INVITE transaction
  still running in either direction (RFC 3261 §14.1) defers the move's offer until it
  completes: our own re-INVITE's end is an event (ReinviteAccepted / ReinviteFailed),
  and so is the ACK of our 2xx to the peer's (ReinviteConfirmed). The ACK of a non-2xx
  final answer is absorbed inside the INVITE server transaction (§17.2.1) with no TU
  event, so a deferred offer is also tried again on a timer (20 ms, doubling to 1 s, for
  at most 64*T1) as a safety net. A 491 glare
  is retried by the UA after the §14.1 back-off with the same offer.
* :class:`MoveGuard` (peer side, steps 3-4): a re-INVITE that changes the remote target
  or the SDP is accepted only after :func:`~.peer.verify_move`; then the media path
  check is armed (the stream follows the first authenticated packet from a new source,
  never the SDP ``c=``). A refusal answers 488 + Warning + the MIKEY error (RFC 4567
  §4.1.2) and changes nothing. An unchanged re-INVITE from the same Contact (session
  refresh, RFC 4028) is accepted as it is. Both ends moving at once: each side's
  announce went to the other's old address, so each gate would wait for packets the
  other sends to an address that is gone; the verified offer's addresses are therefore
  *probed* (:func:`~.peer.probe_verified_move`: one SRTCP report from where we are,
  bounded re-sends), never sent the stream -- the peer's gate takes the probe as its
  proof, and its media then confirms ours (step 4 holds on both sides).
* :class:`Roamer`: feeds :class:`~.pathmonitor.PathMonitor` decisions to the movers;
  a call whose grace period expired is ended with BYE (RFC 3261 §15.1.1).

``wall_clock`` (Unix seconds, for MIKEY timestamps, RFC 3830 §5.4) and ``rng`` are
injected; the SIP engines keep the event loop's monotonic clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from mobilityd.media.endpoint import MediaEndpoint
from mobilityd.mikey.context import CryptoContext
from mobilityd.mikey.session import Rng
from mobilityd.mobility.events import CallPathChanged, GracePeriodExpired
from mobilityd.mobility.move import (
    MediaAddress,
    MoveOffer,
    UpdateInAdvance,
    addrtype_of,
    move_offer,
    relocated_sdp,
)
from mobilityd.mobility.pathmonitor import PathMonitor
from mobilityd.mobility.peer import (
    MoveRefused,
    VerifiedMove,
    probe_verified_move,
    refusal_body,
    verify_move,
)
from mobilityd.sip import events as sip_events
from mobilityd.sip.endpoint import SipEndpoint
from mobilityd.sip.errors import SipError
from mobilityd.sip.sdp import SessionDescription
from mobilityd.sip.ua.config import UsageError

__all__ = ["CallMover", "MoveGuard", "Roamer", "RoamingCall"]

log = logging.getLogger(__name__)

#: How long the SIP transport keeps listening on the address it left (64*T1, the life
#: of a client transaction, RFC 3261 §17.1.1.2).
RETIRED_LISTEN_SECONDS = 32.0
#: A deferred move's offer is tried again after this, doubling up to the maximum, for
#: at most 64*T1 (the peer's re-INVITE transaction cannot outlive that, §17.2.1).
DEFERRED_RETRY_FIRST = 0.02
DEFERRED_RETRY_MAX = 1.0
DEFERRED_RETRY_FOR = 32.0
#: Make-before-break: the media sockets a move leaves keep receiving this long (the
#: peer's stream follows us once our update verified and our proof arrived: about one
#: round trip, or a few re-INVITE retransmissions, 0.5 + 1 + 2 s, RFC 3261 §17.1.1.2,
#: when the first is lost); where the old address is gone nothing arrives on them.
RETAINED_MEDIA_SECONDS = 4.0
#: How often a call's next update is checked and, when it no longer fits the call's
#: context or is half its allowed age, built again (:class:`~.move.UpdateInAdvance`):
#: a check is a comparison; a build (0.5-2 ms) happens after each move, each move of
#: the peer and every 30 s.
UPDATE_AHEAD_CHECK_SECONDS = 1.0


@dataclass(eq=False)
class RoamingCall:
    """What moving one call touches: its SIP endpoint and dialog (``call_id``), its
    media endpoint (whose SRTP sessions are never replaced), the MIKEY context and
    the last SDP each side sent. Shared by the call's mover and guard."""

    call_id: str
    sip: SipEndpoint
    media: MediaEndpoint
    context: CryptoContext
    local_sdp: SessionDescription
    remote_sdp: SessionDescription | None = None
    #: our media address per SDP addrtype ("IP4", "IP6") to follow a peer that moved
    #: to the other IP version
    local_alternates: Mapping[str, str] = field(default_factory=dict)


class CallMover:
    """The moving side of one call (module doc)."""

    def __init__(self, call: RoamingCall, *, wall_clock: Callable[[], float] = time.time,
                 rng: Rng = os.urandom) -> None:
        self.call = call
        self._wall_clock = wall_clock
        self._rng = rng
        self.deferred = False
        self.offers_sent = 0
        self._retry: asyncio.TimerHandle | None = None
        self._retry_delay = DEFERRED_RETRY_FIRST
        self._deferred_since: float | None = None
        self.ahead = UpdateInAdvance()
        self._ahead_timer: asyncio.Handle | None = None
        with contextlib.suppress(RuntimeError):  # driven without a loop (tests): none
            self._ahead_timer = asyncio.get_running_loop().call_soon(self._keep_update_ready)

    def _keep_update_ready(self) -> None:
        """Keep the next move's update built (:class:`~.move.UpdateInAdvance`): off the
        move's critical path, which then only adds the addresses."""
        try:
            failure = self.ahead.keep_ready(self.call.context, self._wall_clock(), self._rng)
            if failure is not None:  # once per distinct failure, not every second
                log.warning("update for %s not prepared: %s", self.call.call_id, failure)
        finally:
            self._ahead_timer = asyncio.get_running_loop().call_later(
                UPDATE_AHEAD_CHECK_SECONDS, self._keep_update_ready)

    def close(self) -> None:
        """Stop keeping an update ready (the call ended)."""
        self._stop_retrying()
        if self._ahead_timer is not None:
            self._ahead_timer.cancel()
            self._ahead_timer = None

    async def move_to(self, new_ip: str, *, remote_media: str | None = None) -> None:
        """Move the call to local address ``new_ip`` (and, for an IPv4 <-> IPv6
        change, send media to the peer's ``remote_media`` address, same port)."""
        call = self.call
        old_media_ip = call.media.local_rtp[0]
        await call.media.rebind(new_ip, keep_old_for=RETAINED_MEDIA_SECONDS)
        if remote_media is not None and call.media.remote_rtp is not None:
            port = call.media.remote_rtp[1]
            call.media.set_remote((remote_media, port))
        # the peer's gate gets its proof from our new address at once (issue 5 gap)
        call.media.announce()
        # SIP follows when it shared the media's address (signalling on another
        # address, e.g. IPv6 while media used IPv4, stays where it is)
        if call.sip.local_address[0] == old_media_ip != new_ip:
            old = call.sip.local_address
            await call.sip.rebind(new_ip, refresh_dialogs=False)
            # answers to requests sent before the move still name the old sent-by
            # (RFC 3261 §18.2.2): keep listening there for a transaction's life (64*T1)
            asyncio.get_running_loop().call_later(RETIRED_LISTEN_SECONDS, call.sip.release, old)
        self.send_offer()

    def send_offer(self) -> MoveOffer | None:
        """Send the re-INVITE for where the media is now; None when deferred (§14.1)."""
        call = self.call
        rtp = call.media.local_rtp
        rtcp_port = None if call.media.rtcp_mux else call.media.local_rtcp[1]
        now = self._wall_clock()
        offer = move_offer(call.local_sdp, call.context, MediaAddress(rtp[0], rtp[1], rtcp_port),
                           now, self._rng, prepared=self.ahead.take(call.context, now))
        try:
            call.sip.act(lambda ua, now: ua.reinvite(
                call.call_id, now, body=offer.body, content_type=offer.content_type))
        except UsageError as exc:
            log.info("move of %s deferred: %s", call.call_id, exc)
            self.deferred = True
            self._retry_later()
            return None
        self.deferred = False
        self._stop_retrying()
        self.offers_sent += 1
        call.context, call.local_sdp = offer.context, offer.sdp
        return offer

    def _retry_later(self) -> None:
        """Try the deferred offer again on a timer (module doc); gives up after
        DEFERRED_RETRY_FOR seconds (the call is then ended by its own timers)."""
        if self._retry is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # driven without a loop (tests): only the events retry
        now = loop.time()
        if self._deferred_since is None:
            self._deferred_since = now
        if now - self._deferred_since > DEFERRED_RETRY_FOR:
            log.warning("move of %s still deferred after %.0f s: given up",
                        self.call.call_id, now - self._deferred_since)
            return
        self._retry = loop.call_later(self._retry_delay, self._retry_deferred)
        self._retry_delay = min(self._retry_delay * 2, DEFERRED_RETRY_MAX)

    def _retry_deferred(self) -> None:
        self._retry = None
        if self.deferred:
            self.send_offer()

    def _stop_retrying(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        self._retry_delay = DEFERRED_RETRY_FIRST
        self._deferred_since = None

    def handle_sip_event(self, event: object) -> None:
        """A deferred move goes out once the running re-INVITE completed: ours
        answered, or the peer's acknowledged (``ReinviteConfirmed``)."""
        done = (sip_events.ReinviteAccepted, sip_events.ReinviteFailed,
                sip_events.ReinviteConfirmed)
        if (isinstance(event, done) and event.call_id == self.call.call_id and self.deferred
                and getattr(event, "retry_at", None) is None):
            self.send_offer()


class MoveGuard:
    """The peer side of one call: verify, then accept; or refuse and change nothing."""

    def __init__(self, call: RoamingCall, *,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.call = call
        self._wall_clock = wall_clock
        self.accepted: list[VerifiedMove] = []
        self.refused: list[MoveRefused] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def handle_sip_event(self, event: object) -> None:
        if isinstance(event, sip_events.ReinviteReceived) and event.call_id == self.call.call_id:
            self.decide(event)

    def _is_refresh(self, event: sip_events.ReinviteReceived) -> bool:
        """Same Contact and no SDP, or the same SDP as before (RFC 4028 refresh)."""
        body, previous = event.request.body, self.call.remote_sdp
        if event.new_remote_target is not None:
            return False
        if not body:
            return True
        try:
            return previous is not None and SessionDescription.parse(body) == previous
        except SipError:
            return False

    def decide(self, event: sip_events.ReinviteReceived) -> None:
        call = self.call
        if self._is_refresh(event):
            call.sip.act(lambda ua, now: ua.accept_reinvite(
                call.call_id, now, body=bytes(call.local_sdp)))
            return
        try:
            verified = verify_move(event.request.body, call.context, self._wall_clock(),
                                   previous=call.remote_sdp)
        except MoveRefused as exc:
            self._refuse(exc)
            return
        call.context, call.remote_sdp = verified.context, verified.sdp
        self.accepted.append(verified)
        family = self._family_change(verified)
        if family is not None:
            task = asyncio.get_running_loop().create_task(self._relocate(verified, family))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        self._accept(verified)

    def _family_change(self, verified: VerifiedMove) -> str | None:
        """Our address of the offer's family when the peer moved to the other IP
        version (IPv4 <-> IPv6) and we have one; else None."""
        hint = verified.media_hint
        if hint is None:
            return None
        wanted = addrtype_of(hint[0])
        if addrtype_of(self.call.media.local_rtp[0]) == wanted:
            return None
        return self.call.local_alternates.get(wanted)

    async def _relocate(self, verified: VerifiedMove, local_ip: str) -> None:
        """Follow the peer to the other IP version: our media moves to ``local_ip``
        (same ports where free) and the answer says so (o= version + 1, new c=)."""
        call = self.call
        await call.media.rebind(local_ip)
        rtp = call.media.local_rtp
        rtcp_port = None if call.media.rtcp_mux else call.media.local_rtcp[1]
        call.local_sdp = relocated_sdp(call.local_sdp, MediaAddress(rtp[0], rtp[1], rtcp_port))
        self._accept(verified)

    def _accept(self, verified: VerifiedMove) -> None:
        call = self.call
        # RFC 3830 §4.5 verified: now (only now) media may follow an authenticated
        # source. Armed before the 2xx is built and sent: when the mover's SRTCP
        # announce came first, the stream switches (and re-sends) right here, without
        # waiting for the answer's encoding, transmission and event handlers.
        call.media.propose_remote(None, any_source=True)
        call.sip.act(lambda ua, now: ua.accept_reinvite(
            call.call_id, now, body=bytes(call.local_sdp)))
        probe_verified_move(call.media, verified)

    def _refuse(self, refused: MoveRefused) -> None:
        call = self.call
        log.warning("refused a move of %s: %s", call.call_id, refused)
        self.refused.append(refused)
        body = refusal_body(call.local_sdp, refused)
        call.sip.act(lambda ua, now: ua.refuse_reinvite(
            call.call_id, now, refused.status, headers=(("Warning", refused.warning),),
            body=body))


class Roamer:
    """Drives the movers from a :class:`PathMonitor` (runs until cancelled)."""

    def __init__(self, monitor: PathMonitor, clock: Callable[[], float] = time.monotonic,
                 on_decision: Callable[[object, bool], None] | None = None) -> None:
        """``on_decision(decision, done)`` is called before (False) and after (True)
        each decision is acted upon (for logs and measurements)."""
        self.monitor = monitor
        self.movers: dict[str, CallMover] = {}
        self._clock = clock
        self._on_decision = on_decision
        self.decided_at: list[tuple[str, float]] = []

    def add(self, mover: CallMover) -> None:
        self.movers[mover.call.call_id] = mover

    async def run(self) -> None:
        while True:
            for decision in await self.monitor.next_decisions():
                if self._on_decision is not None:
                    self._on_decision(decision, False)
                await self._act(decision)
                if self._on_decision is not None:
                    self._on_decision(decision, True)

    async def _act(self, decision: object) -> None:
        if isinstance(decision, CallPathChanged) and decision.call_id in self.movers:
            self.decided_at.append((decision.call_id, self._clock()))
            await self.movers[decision.call_id].move_to(
                decision.new_local, remote_media=decision.new_remote_media)
        elif isinstance(decision, GracePeriodExpired) and decision.call_id in self.movers:
            call = self.movers.pop(decision.call_id).call
            call.sip.act(lambda ua, now: ua.hangup(call.call_id, now))
