"""Call transfer on a :class:`~mobilityd.call.agent.CallAgent` (asyncio; issue 6).

:class:`TransferAgent` is a ``CallAgent`` that runs the sans-I/O transfer engines of
:mod:`mobilityd.mobility.transfer` in all three roles (docs/transfer.md):

* **old device** -- :meth:`TransferAgent.move`: EXPECT token to the other device over
  the hand-off channel, REFER (RFC 3515) with ``Refer-To`` its GRUU/address and
  ``Referred-By`` (RFC 3892) once it confirmed, NOTIFY progress, BYE on success;
  any failure leaves the call untouched.
* **correspondent** -- its REFER policy accepts a REFER on a secure call and INVITEs
  the target with the SDP of the running session and the transfer offer; only after
  the target's MIKEY answer verified does the running call (same media endpoint, same
  SRTP sending session) move to the new dialog: its inbound session takes the new
  SSRC and it sends to the address of the verified answer (as for a call's first
  answer, :meth:`MediaEndpoint.set_remote`).
* **new device** -- an INVITE with ``Referred-By`` is a transfer: taken only with an
  expectation from the user's own device (:func:`take_transfer`), answered at once.

The hand-off channel is one UDP socket per device (:class:`TransferSettings`
``handoff_port``) carrying the HMAC-protected tokens; tokens that fail are dropped and
counted (never answered). It is made reliable like SIP over UDP (RFC 3261 §17.1.2.2):
EXPECT and PULL are resent, identical, at T1, 2*T1 ... until answered
(:class:`~mobilityd.mobility.transfer.retransmit.TokenRetransmission`); an identical
copy is answered from the receiver's cache, never taken as a new request; a transfer
INVITE that overtook its EXPECT token waits for it a bounded time
(:class:`~mobilityd.mobility.transfer.early.EarlyInvites`) before it is refused.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from mobilityd.call.agent import AgentConfig, CallAgent, ReferDecision, ReinvitePolicy
from mobilityd.call.events import CallConnected, CallEvent
from mobilityd.call.identity import sip_identity
from mobilityd.call.keying import new_responder
from mobilityd.call.negotiation import AnswerPlan, NegotiatedMedia
from mobilityd.call.sdpmedia import MediaPort
from mobilityd.call.secure_call import CallRole, CallState, SecureCall
from mobilityd.media.endpoint import MediaEndpoint, bind_port_pair
from mobilityd.media.keying import suite_for_policy
from mobilityd.media.sink import G711Sink
from mobilityd.mikey.session import Rng
from mobilityd.mobility.transfer import (
    ExpectationBook,
    Referrer,
    TargetConfirmed,
    TokenError,
    TransferFailed,
    TransferRefusedError,
    TransferSucceeded,
    TransferUsageError,
    add_receive_streams,
    offer_transfer,
    take_transfer,
    token_key,
)
from mobilityd.mobility.transfer.correspondent import TransferOffer
from mobilityd.mobility.transfer.early import DEFAULT_HOLD_SECONDS, EarlyInvites
from mobilityd.mobility.transfer.errors import NotExpectedError, RetransmittedTokenError
from mobilityd.mobility.transfer.events import TransferEvent
from mobilityd.mobility.transfer.retransmit import DEFAULT_T1, DEFAULT_T2, TokenRetransmission
from mobilityd.mobility.transfer.token import NONCE_LEN, HandOffToken, TokenKind
from mobilityd.mobility.transfer_sdp import build_transfer_sdp, read_transfer_sdp
from mobilityd.sip import events as ev
from mobilityd.sip.message import Response
from mobilityd.sip.sdp import SessionDescription
from mobilityd.sip.uri import NameAddr, SipUri

__all__ = ["DeviceEntry", "TransferAgent", "TransferSettings", "correspondent_only"]

logger = logging.getLogger(__name__)
SDP = "application/sdp"
Address = tuple[str, int]


@dataclass(frozen=True)
class DeviceEntry:
    """Another device of the user: where the REFER points and where tokens go."""

    refer_to: str
    handoff: Address


@dataclass(frozen=True)
class TransferSettings:
    """This device's name, the user's device key and AOR, the user's other devices.

    :func:`correspondent_only` is for an account without other devices: it still takes
    transfers of its calls (REFER policy) but moves nothing itself."""

    device: str
    device_key: bytes = field(repr=False)
    user: str
    devices: Mapping[str, DeviceEntry] = field(default_factory=dict)
    #: UDP port of the hand-off channel (0: any; None: no channel, correspondent only)
    handoff_port: int | None = 0
    announce_timeout: float = 4.0
    transfer_timeout: float = 32.0
    #: REFER right after the EXPECT token, without waiting for the ACCEPT (docs)
    parallel_announce: bool = True
    #: correspondent side: after the switch her stream also goes to the old device
    #: until its BYE, at most this long (needs ``MediaEndpoint.fan_out``)
    fan_out_seconds: float = 2.0
    #: hand-off tokens resent at T1, 2*T1 ... (capped at T2) until answered (RFC 3261
    #: §17.1.2.2 style); EXPECT for at most ``announce_timeout``, PULL for its timeout
    token_t1: float = DEFAULT_T1
    token_t2: float = DEFAULT_T2
    #: new-device side: a transfer INVITE that overtook its EXPECT token waits this long
    #: for it before the 603 (0: refuse at once), at most ``early_invites_max`` at a time
    early_invite_hold: float = DEFAULT_HOLD_SECONDS
    early_invites_max: int = 8


def correspondent_only(user: str, device_key: bytes) -> TransferSettings:
    """Settings of an account that only takes transfers (no devices, no channel)."""
    return TransferSettings("", device_key, user, {}, handoff_port=None)


class _HandOffProtocol(asyncio.DatagramProtocol):
    def __init__(self, handler: Callable[[bytes, Address], None]) -> None:
        self.handler = handler

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.handler(data, (addr[0], addr[1]))


class _ArrivalClock:
    """Wraps a media endpoint's ``on_rtp``: last arrival per SSRC (loop time), and the
    audible gap of a switch (last packet of the old device played -> first of the new
    one, thesis §15.1), without touching the packets."""

    def __init__(self, inner: Callable[[bytes, Address], None] | None,
                 clock: Callable[[], float]) -> None:
        self.inner, self.clock = inner, clock
        self.last: dict[int, float] = {}
        self.waiting_for: int | None = None
        self.played_until: float | None = None
        self.gap: float | None = None

    def __call__(self, rtp: bytes, source: Address) -> None:
        ssrc = int.from_bytes(rtp[8:12], "big")
        now = self.clock()
        self.last[ssrc] = now
        if ssrc == self.waiting_for and self.gap is None and self.played_until is not None:
            self.gap = max(0.0, now - self.played_until)
        if self.inner is not None:
            self.inner(rtp, source)

    def switch(self, old_ssrc: int, new_ssrc: int,
               sink: Callable[[bytes, Address], None]) -> None:
        """From now on play ``new_ssrc`` through ``sink``."""
        self.played_until = self.last.get(old_ssrc, self.clock())
        self.waiting_for, self.inner = new_ssrc, sink
        # it may have arrived already (sent before our answer check): no gap then
        self.gap = 0.0 if new_ssrc in self.last else None


def _fan_out(media: MediaEndpoint, rtp: Address | None) -> bool:
    """Copy the correspondent's stream to ``rtp`` as well (None: stop), thesis §15.1
    ("transmitted to both of Bob's devices while Bob moves"); False when the endpoint
    cannot (``MediaEndpoint.fan_out``, issue 6: then the stream switches at once)."""
    fan_out = getattr(media, "fan_out", None)
    if not callable(fan_out):
        return False
    fan_out(rtp)
    return True


def _resend_last(media: MediaEndpoint) -> bool:
    """The new device has never had the correspondent's stream: give it her last
    packet, the same SRTP bytes (never protected twice, RFC 3711 §9.1), at once rather
    than at her next 20 ms tick (``MediaEndpoint.resend_last``, issue 6; with an
    endpoint that has no such method the first packet waits for the tick)."""
    resend = getattr(media, "resend_last", None)
    return bool(resend()) if callable(resend) else False


@dataclass(frozen=True, eq=False)
class _Leg:
    """Correspondent side: one transfer INVITE in flight (its Call-ID, the offer whose
    answer it waits for, the SDP sent, the outcome future)."""

    leg_id: str
    offer: TransferOffer
    body: bytes
    future: asyncio.Future[object]
    used: set[int]
    clock: _ArrivalClock


@dataclass(eq=False)
class _Move:
    referrer: Referrer
    inputs: asyncio.Queue[tuple[str, object]] = field(default_factory=asyncio.Queue)
    #: the EXPECT token's copies until the ACCEPT arrives
    resend: TokenRetransmission | None = None
    #: the ACCEPT taken (a second copy of it answers a retransmitted EXPECT)
    accepted: bytes | None = None


class TransferAgent(CallAgent):
    """See the module docstring."""

    def __init__(
        self, config: AgentConfig, transfer: TransferSettings, *, rng: Rng = os.urandom,
        wall_clock: Callable[[], float] = time.time,
        reinvite_policy: ReinvitePolicy | None = None,
    ) -> None:
        super().__init__(config, rng=rng, wall_clock=wall_clock, refer_policy=self,
                         reinvite_policy=reinvite_policy)
        self.transfer = transfer
        self.book = ExpectationBook(transfer.device, token_key(transfer.device_key))
        self.tokens_dropped = 0
        #: hand-off tokens we sent again (no answer yet) / identical copies we received
        self.tokens_resent = 0
        self.tokens_repeated = 0
        #: new-device side: transfer INVITEs that waited for their EXPECT token
        self.invites_held = 0
        self._early: EarlyInvites[ev.IncomingCallReceived] = EarlyInvites(
            transfer.early_invite_hold, transfer.early_invites_max)
        self._early_timer: asyncio.TimerHandle | None = None
        self._late_accepts: list[bytes] = []  # ACCEPTs of finished moves (late copies)
        #: correspondent side: (call id, final sipfrag status) of every transfer leg
        self.transfer_outcomes: list[tuple[str, int]] = []
        #: new-device side: (Call-ID, status) of every transfer INVITE refused
        self.transfers_refused: list[tuple[str, int]] = []
        self._key = token_key(transfer.device_key)
        self._handoff: asyncio.DatagramTransport | None = None
        self._moves: dict[str, _Move] = {}
        self._legs: dict[str, asyncio.Future[object]] = {}
        self._used_peer_ssrcs: dict[SecureCall, set[int]] = {}
        #: correspondent side: old Call-ID -> (endpoint, old device's address) while her
        #: stream is copied to the old device (until its BYE or fan_out_seconds)
        self._fan_outs: dict[str, tuple[MediaEndpoint, Address]] = {}
        #: correspondent side: per call, arrival clock and audible gap of its switches
        self.arrivals: dict[SecureCall, _ArrivalClock] = {}
        self._pull_waiters: set[asyncio.Future[SecureCall]] = set()
        self.add_listener(self._call_event)

    # -- life cycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Start the agent, then the hand-off channel; without the channel (its port
        taken) calls work and moves fail cleanly. (``CallAgent.start`` builds the G.711
        tables, which a device taking a call over would otherwise build between the
        transfer INVITE and its 200 OK, on the move's critical path.)"""
        await super().start()
        if self.transfer.handoff_port is None:
            return
        try:
            sock, _ = bind_port_pair(self.config.host, self.transfer.handoff_port, True,
                                     self.config.media_netns)
        except OSError as exc:
            logger.error("hand-off channel unavailable, no call transfers: %s", exc)
            return
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _HandOffProtocol(self._token_received), sock=sock)
        self._handoff = transport

    async def close(self) -> None:
        if self._early_timer is not None:
            self._early_timer.cancel()
        if self._handoff is not None:
            self._handoff.close()
        await super().close()

    @property
    def handoff_address(self) -> Address:
        assert self._handoff is not None
        host, port = self._handoff.get_extra_info("sockname")[:2]
        return host, port

    # -- old device: move -----------------------------------------------------------------

    async def move(self, call_id: str, device: str) -> TransferEvent:
        """Move ``call_id`` to ``device``; returns TransferSucceeded or TransferFailed."""
        call = self.call(call_id)
        entry = self.transfer.devices.get(device)
        negotiated, context = call.negotiated, call.context
        if (entry is None or negotiated is None or context is None or self._handoff is None
                or call.state is not CallState.CONNECTED or call_id in self._moves):
            return TransferFailed(call_id, device, "call or device cannot be moved")
        assert negotiated.remote_ssrc is not None
        referrer = Referrer(
            call_id=call_id, own_device=self.transfer.device, device=device, key=self._key,
            refer_to=entry.refer_to, referred_by=self.transfer.user,
            correspondent=sip_identity(call.peer).decode(), csb_id=context.csb_id,
            correspondent_ssrcs=(negotiated.remote_ssrc,),
            released_ssrcs=(negotiated.local_ssrc,),
            announce_timeout=self.transfer.announce_timeout,
            transfer_timeout=self.transfer.transfer_timeout,
        )
        move = self._moves[call_id] = _Move(referrer)
        try:
            return await self._run_move(call_id, move, entry)
        finally:
            del self._moves[call_id]
            if move.accepted is not None:  # a late copy of it is no attack either
                self._late_accepts = [*self._late_accepts[-15:], move.accepted]

    async def _run_move(self, call_id: str, move: _Move, entry: DeviceEntry) -> TransferEvent:
        referrer = move.referrer
        assert self._handoff is not None
        events: list[TransferEvent] = []
        if self.transfer.parallel_announce:
            token, events = referrer.start_parallel(self._wall(), self._rng)
        else:
            token = referrer.start(self._wall(), self._rng)
        self._handoff.sendto(token, entry.handoff)
        move.resend = TokenRetransmission(token, self._wall(), self.transfer.announce_timeout,
                                          self.transfer.token_t1, self.transfer.token_t2)
        while True:
            for event in events:
                if isinstance(event, TargetConfirmed):
                    target, by = SipUri.parse(event.refer_to), NameAddr.parse(event.referred_by)
                    self._act(lambda ua, now, t=target, b=by: ua.refer(  # type: ignore[misc]
                        call_id, t, now, referred_by=b))
                elif isinstance(event, TransferSucceeded):
                    await self.hangup(call_id)
                    return event
                elif isinstance(event, TransferFailed):
                    return event
            deadline = referrer.get_timer()
            assert deadline is not None
            resend_at = move.resend.get_timer()
            wake = deadline if resend_at is None else min(deadline, resend_at)
            try:
                async with asyncio.timeout(max(0.0, wake - self._wall())):
                    kind, value = await move.inputs.get()
            except TimeoutError:
                now = max(self._wall(), wake)
                for copy in move.resend.handle_timer(now):
                    self.tokens_resent += 1
                    self._handoff.sendto(copy, entry.handoff)
                events = referrer.handle_timer(now)
            else:
                events = self._feed_move(move, kind, value)

    def _feed_move(self, move: _Move, kind: str, value: object) -> list[TransferEvent]:
        now, referrer = self._wall(), move.referrer
        if kind == "accept":
            assert isinstance(value, bytes)
            if value == move.accepted:  # the answer to a copy of our EXPECT
                self.tokens_repeated += 1
                return []
            try:
                events = referrer.receive_accept(value, now)
            except (TokenError, TransferUsageError) as exc:  # forged, stale or duplicate
                self.tokens_dropped += 1
                logger.info("hand-off token dropped: %s", exc)
                return []
            move.accepted = value
            if move.resend is not None:
                move.resend.answered()
            return events
        assert isinstance(value, int)
        if kind == "answered":
            return referrer.refer_answered(value, now)
        return referrer.progress_notified(value, now)

    async def pull(self, device: str, call_id: str = "", timeout: float = 10.0
                   ) -> SecureCall | None:
        """Ask ``device`` to move its call (``call_id``, or its connected call) here
        (a PULL token, docs/transfer.md); returns the call once it is connected here."""
        entry = self.transfer.devices.get(device)
        if entry is None or self._handoff is None:
            return None
        now = self._wall()
        arrived: asyncio.Future[SecureCall] = asyncio.get_running_loop().create_future()
        self._pull_waiters.add(arrived)
        token = bytes(HandOffToken(TokenKind.PULL, now, now + 60.0, self._rng(NONCE_LEN), 0,
                                   call_id, "", self.transfer.device, device
                                   ).sealed(self._key))
        self._handoff.sendto(token, entry.handoff)
        # the answer to a PULL is the call arriving: resend until then (RFC 3261
        # §17.1.2.2 style); the other device takes an identical copy as nothing new
        resend = TokenRetransmission(token, now, timeout, self.transfer.token_t1,
                                     self.transfer.token_t2)
        try:
            async with asyncio.timeout(timeout):
                while True:
                    resend_at = resend.get_timer()
                    wait = None if resend_at is None else max(0.0, resend_at - self._wall())
                    await asyncio.wait({arrived}, timeout=wait)
                    if arrived.done():
                        return arrived.result()
                    assert resend_at is not None
                    for copy in resend.handle_timer(max(self._wall(), resend_at)):
                        self.tokens_resent += 1
                        self._handoff.sendto(copy, entry.handoff)
        except TimeoutError:
            return None
        finally:
            self._pull_waiters.discard(arrived)

    def _call_event(self, event: CallEvent) -> None:
        """A call connected here (e.g. the transfer INVITE a PULL asked for)."""
        if isinstance(event, CallConnected) and self._pull_waiters:
            call = self.calls.get(event.call_id)
            for waiter in self._pull_waiters:
                if call is not None and not waiter.done():
                    waiter.set_result(call)

    def _pulled(self, token: HandOffToken) -> None:
        calls = [c for c in self.calls.values() if c.state is CallState.CONNECTED
                 and (not token.call_id or c.call_id == token.call_id)]
        if calls and token.sender in self.transfer.devices:
            self._spawn(self.move(calls[0].call_id, token.sender))

    def _token_received(self, data: bytes, source: Address) -> None:
        try:
            kind = HandOffToken.parse(data).kind
            if kind is TokenKind.EXPECT:
                token, accept = self.book.admit(data, self._wall())
                assert self._handoff is not None
                self._handoff.sendto(accept, source)
                for invite in self._early.release(token.correspondent, token.csb_id):
                    self._on_invite(invite)  # it overtook the token: take it now
                return
            if kind is TokenKind.PULL:
                self._pulled(self.book.admit_pull(data, self._wall()))
                return
            call_id = HandOffToken.parse(data).call_id
            move = self._moves.get(call_id)
            if kind is TokenKind.ACCEPT and move is not None:
                move.inputs.put_nowait(("accept", data))
                return
            if kind is TokenKind.ACCEPT and data in self._late_accepts:
                self.tokens_repeated += 1  # answer to a copy of an EXPECT, move over
                return
            raise TokenError(f"unexpected {kind.name} token")
        except RetransmittedTokenError as exc:  # identical copy: same answer, nothing new
            self.tokens_repeated += 1
            if exc.answer is not None and self._handoff is not None:
                self._handoff.sendto(exc.answer, source)
        except TokenError as exc:
            self.tokens_dropped += 1
            logger.info("hand-off token from %s dropped: %s", source, exc)

    # -- correspondent: REFER policy and the transfer leg -------------------------------------

    async def decide(self, agent: CallAgent, call: SecureCall, refer: ev.ReferReceived
                     ) -> ReferDecision:
        """Accept a REFER on a connected secure call (RFC 3515 §2.4.2) and start the
        transfer leg; the call itself changes only when the target proved itself."""
        del agent
        if not call.secure or call.media is None or call.state is not CallState.CONNECTED:
            return ReferDecision(False, 603, "only secure calls are transferred")
        by = refer.referred_by
        if by is None or sip_identity(by) != sip_identity(call.peer):
            # RFC 3892 §3: the user in the call refers us to one of their devices
            return ReferDecision(False, 403, "Referred-By is not the party in the call")
        leg = self._start_transfer_leg(call, refer)
        self._spawn(self._transfer_leg(call, leg))
        return ReferDecision(True)

    def _start_transfer_leg(self, call: SecureCall, refer: ev.ReferReceived
                            ) -> _Leg | tuple[int, str]:
        """Build the transfer offer and send the INVITE to the ``Refer-To`` target at
        once, before the 202 and the first NOTIFY go out (RFC 3515 §2.4.2 leaves the
        order to us; the target's INVITE is on the critical path of the move, the 202 is
        not). Returns the leg, or the status to report if no offer could be made."""
        negotiated, context, media = call.negotiated, call.context, call.media
        assert negotiated is not None and context is not None and media is not None
        assert media.tx is not None and media.rx is not None
        used = self._used_peer_ssrcs.setdefault(call, {negotiated.remote_ssrc or 0})
        own = negotiated.local_ssrc
        clock = self.arrivals.get(call)
        if clock is None or media.on_rtp is not clock:
            clock = self.arrivals[call] = _ArrivalClock(media.on_rtp, time.monotonic)
            media.on_rtp = clock
        try:
            offer = offer_transfer(context, self.config.keying,
                                   own_rocs={own: media.tx.get_roc(own)}, used_ssrcs=used,
                                   now=self._wall(), rng=self._rng)
        except TransferRefusedError as exc:
            return exc.status, exc.reason
        except Exception as exc:  # local: no credentials for the user, DH only ...
            logger.warning("transfer of %s not offered: %s", call.call_id, exc)
            return 488, "Not Acceptable Here"
        port = MediaPort(self.media_ip, media.local_rtp[1],
                         None if negotiated.rtcp_mux else media.local_rtcp[1])
        proto = SessionDescription.parse(call.local_sdp).media[negotiated.media_index].proto
        body = build_transfer_sdp(
            session_id=int.from_bytes(self._rng(4), "big") & 0x7FFFFFFF, port=port,
            payload_type=negotiated.payload_type, proto=proto, ssrc=own,
            rtcp_mux=negotiated.rtcp_mux, mikey=offer.message)
        headers = (("Referred-By", str(refer.referred_by)),) if refer.referred_by else ()
        target = refer.refer_to.uri
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        leg_id = self.sip.act(lambda ua, now: ua.invite(
            target, now, body=body, content_type=SDP, headers=headers))
        self._legs[leg_id] = future
        return _Leg(leg_id, offer, body, future, used, clock)

    async def _transfer_leg(self, call: SecureCall, leg: _Leg | tuple[int, str]) -> None:
        await asyncio.sleep(0)  # the 202 and the first NOTIFY (100) go out first
        old_id = call.call_id
        status, reason = leg if isinstance(leg, tuple) else await self._finish_leg(call, leg)
        self.transfer_outcomes.append((old_id, status))
        self._act_quietly(lambda ua, now: ua.notify_refer_progress(old_id, status, reason, now))

    async def _finish_leg(self, call: SecureCall, leg: _Leg) -> tuple[int, str]:
        """Wait for the target's answer; adopt the new dialog only once it verified."""
        negotiated, media = call.negotiated, call.media
        assert negotiated is not None and media is not None and media.rx is not None
        leg_id = leg.leg_id
        try:
            async with asyncio.timeout(self.transfer.transfer_timeout):
                outcome = await leg.future
        except TimeoutError:
            self._act_quietly(lambda ua, now: ua.hangup(leg_id, now))
            return 408, "Request Timeout"
        finally:
            self._legs.pop(leg_id, None)
        if isinstance(outcome, ev.CallFailed):
            return outcome.status, outcome.reason
        assert isinstance(outcome, ev.CallEstablished)
        assert isinstance(outcome.message, Response)
        try:
            answer = read_transfer_sdp(outcome.message.body)
            accepted = leg.offer.receive_response(answer.mikey, self._wall())
        except TransferRefusedError as exc:
            logger.warning("transfer answer refused: %s", exc)
            self._act_quietly(lambda ua, now: ua.hangup(leg_id, now))
            return exc.status, exc.reason
        # the answer's address is as trusted as a call's first answer (the dialog's
        # MIKEY answer verified): send there at once, no return-routability wait
        old_device = media.remote_rtp
        media.set_remote(answer.remote_rtp, answer.remote_rtcp)
        _resend_last(media)
        self._copy_to_old_device(call.call_id, media, old_device)
        (new_ssrc,) = accepted.ssrc_renames.values()
        add_receive_streams(media.rx, accepted)
        leg.used.add(new_ssrc)
        call.negotiated = replace(negotiated, context=accepted.context, remote_ssrc=new_ssrc,
                                  remote_rtp=answer.remote_rtp, remote_rtcp=answer.remote_rtcp)
        # replace any pending move of the old device (roaming, RFC 3830 §4.5) so a
        # late authenticated packet of the old device cannot take the media back
        media.propose_remote(answer.remote_rtp, answer.remote_rtcp)
        if call.sink is not None:  # play the new device's stream from now on
            call.sink = G711Sink(call.sink.writer)
            call.sink.ssrc = new_ssrc  # not the old device's last packets
            leg.clock.switch(negotiated.remote_ssrc or 0, new_ssrc, call.sink)
        del self.calls[call.call_id]
        call.call_id, call.local_sdp, call.remote_sdp = leg_id, leg.body, outcome.message.body
        self.calls[leg_id] = call
        return 200, "OK"

    def _copy_to_old_device(self, old_id: str, media: MediaEndpoint,
                            old_device: Address | None) -> None:
        """Both devices get the stream until the old leg ends (its BYE, or
        ``fan_out_seconds``), then only the new one (issue 6 step 4)."""
        if old_device is None or old_device == media.remote_rtp:
            return
        if _fan_out(media, old_device):
            self._fan_outs[old_id] = (media, old_device)
            asyncio.get_running_loop().call_later(
                self.transfer.fan_out_seconds, self._stop_fan_out, old_id)

    def _stop_fan_out(self, old_id: str) -> None:
        media, old_device = self._fan_outs.pop(old_id, (None, None))
        if media is not None and getattr(media, "fan_out_rtp", None) == old_device:
            _fan_out(media, None)  # a later move's copy is left alone

    # -- new device: the transfer INVITE ----------------------------------------------------

    def _on_invite(self, event: ev.IncomingCallReceived) -> None:
        if event.request.referred_by is None:
            super()._on_invite(event)
            return
        request, call_id = event.request, event.call_id
        caller = request.from_
        try:
            offer = read_transfer_sdp(request.body)
            responder = new_responder(self.config.keying, local_id=self.identity,
                                      caller_id=sip_identity(caller))
            taken = take_transfer(self.book, responder, sip_identity(caller).decode(),
                                  offer.mikey, self._wall(), self._rng)
        except NotExpectedError as exc:
            self._early.hold_seconds = self.transfer.early_invite_hold  # settings may change
            self._early.max_held = self.transfer.early_invites_max
            if exc.csb_id is not None and self._early.hold(exc.correspondent, exc.csb_id,
                                                             event, self._wall()):
                logger.info("transfer INVITE %s waits for its EXPECT token", call_id)
                self.invites_held += 1
                self._arm_early_timer()
                return
            self._refuse_transfer(call_id, exc)
            return
        except TransferRefusedError as exc:
            self._refuse_transfer(call_id, exc)
            return
        context = taken.context
        cs_id = context.ssrc_to_cs_id(taken.local_ssrcs[0]) or 1
        negotiated = NegotiatedMedia(
            True, context, 0, offer.payload_type, offer.remote_rtp, offer.remote_rtcp,
            offer.rtcp_mux, taken.local_ssrcs[0], taken.remote_ssrcs[0],
            suite_for_policy(context.policy_for(cs_id)))
        plan = AnswerPlan(SessionDescription.parse(request.body), negotiated,
                          media_reply=taken.reply)
        self.calls[call_id] = SecureCall(
            call_id, CallRole.CALLEE, str(caller.uri), self.config.audio,
            state=CallState.RINGING, plan=plan, remote_sdp=request.body,
            method=context.mode.value)
        self._spawn(self.answer(call_id))

    def _refuse_transfer(self, call_id: str, exc: TransferRefusedError) -> None:
        logger.info("transfer INVITE %s refused: %s", call_id, exc)
        status, reason = exc.status, exc.reason
        self.transfers_refused.append((call_id, status))
        self._act_quietly(lambda ua, now: ua.reject_call(call_id, now, status, reason))

    def _arm_early_timer(self) -> None:
        """One timer for the held INVITEs' earliest deadline (wall clock, as the book)."""
        if self._early_timer is not None:
            self._early_timer.cancel()
            self._early_timer = None
        deadline = self._early.get_timer()
        if deadline is not None:
            self._early_timer = asyncio.get_running_loop().call_later(
                max(0.0, deadline - self._wall()), self._early_timer_fired)

    def _early_timer_fired(self) -> None:
        self._early_timer = None
        for invite in self._early.handle_timer(self._wall()):  # no token came: 603
            self._refuse_transfer(invite.call_id, NotExpectedError(
                f"no EXPECT token within {self._early.hold_seconds} s"))
        self._arm_early_timer()

    # -- SIP events ------------------------------------------------------------------------

    async def _on_sip_event(self, event: object) -> None:
        call_id = getattr(event, "call_id", None)
        leg = self._legs.get(call_id) if isinstance(call_id, str) else None
        if leg is not None and isinstance(event, ev.CallEstablished | ev.CallFailed):
            if not leg.done():
                leg.set_result(event)
            return
        if isinstance(event, ev.CallEnded) and call_id in self._fan_outs:
            self._stop_fan_out(call_id)  # the old device hung up: only the new one now
        move = self._moves.get(call_id) if isinstance(call_id, str) else None
        if move is not None and isinstance(event, ev.ReferAnswered):
            move.inputs.put_nowait(("answered", event.status))
        elif move is not None and isinstance(event, ev.ReferProgressNotified):
            move.inputs.put_nowait(("notified", event.status))
        await super()._on_sip_event(event)
