"""The asyncio call agent: SIP + MIKEY + SRTP media, one object per account.

:class:`CallAgent` owns a :class:`~mobilityd.sip.endpoint.SipEndpoint` (UDP, TCP or
TLS as the UA's transports allow), the sans-I/O offer/answer engines
(:mod:`mobilityd.call.negotiation`) and, per call, a
:class:`~mobilityd.call.secure_call.SecureCall` with its media endpoint.

API: ``await agent.start()``; ``await agent.place(uri) -> call id``;
``await agent.answer(id)`` / ``reject(id)`` after :class:`IncomingCallOffered`;
``await agent.hangup(id)``; ``agent.list_calls()``, ``agent.status()``;
``await agent.close()``. Progress is published as :mod:`mobilityd.call.events` on
``agent.events`` (an ``asyncio.Queue``) and to every ``agent.add_listener(callback)``.

Hooks for what comes next (roaming, transfer) -- stable, documented here:

* ``agent.call(id)`` -> :class:`SecureCall`: ``.context`` (the MIKEY ``CryptoContext``),
  ``.media`` (the ``MediaEndpoint``; its ``tx``/``rx`` SRTP sessions are the same objects
  for the call's life: use ``media.rebind()`` / ``media.propose_remote()``),
  ``.negotiated`` (SSRCs, suite, remote addresses), ``.local_sdp`` / ``.remote_sdp``.
* ``agent.dialog(id)``: the SIP dialog (RFC 3261 §12) of the call, or None;
  ``agent.sip`` is the endpoint itself (``sip.rebind()``, ``sip.act(...)``).
* Incoming re-INVITE / UPDATE: the :class:`ReinvitePolicy` given to the agent is
  consulted with the call and the request (parsed SDP via ``SessionDescription.parse``,
  key-mgmt via ``key_mgmt_for``); it returns a :class:`ReinviteDecision` (accept with an
  answer body, or refuse with a status). Default :class:`ConservativeReinvitePolicy`:
  accept only when the media address is unchanged and there is no key-mgmt, else 488.
* Outgoing re-INVITE: ``await agent.reinvite(id, sdp)`` returns the SIP
  ``ReinviteAccepted`` / ``ReinviteFailed`` event.
* Incoming REFER: the :class:`ReferPolicy` decides (default: refuse with 603).
* Policies (:mod:`mobilityd.call.policies`, re-exported here) are coroutines; the agent
  awaits them in their own task, so they may do I/O.

Media settings (``AgentConfig.media``, :class:`~mobilityd.call.media_options.MediaOptions`,
``[media]`` of the daemon): RTP/RTCP pairs come from the port range (RFC 3550 §11,
:mod:`mobilityd.call.ports`): an offer reserves its pair(s) when it is made (two for the
``preferred`` policy's SRTP and RTP alternatives), an incoming INVITE right after its 180;
a range without a free pair refuses the call -- :class:`MediaPortsExhausted` from
:meth:`CallAgent.place`, a 503 with a ``Warning`` naming the range to an INVITE
(RFC 3261 §21.5.4). Offers and answers carry the codec preference and ``a=ptime``
(:mod:`mobilityd.call.negotiation`); each packet time we send at has its own frame
scheduler. :meth:`CallAgent.reconfigure` takes new media settings for new calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from mobilityd.call.audio import AudioOptions
from mobilityd.call.errors import CallUsageError, NegotiationError
from mobilityd.call.events import (
    CallConnected,
    CallEvent,
    CallPlaced,
    CallRefused,
    CallTerminated,
    IncomingCallOffered,
    ReferHandled,
    ReinviteHandled,
    ReinviteRerouted,
)
from mobilityd.call.identity import sip_identity
from mobilityd.call.keying import KeyingConfig
from mobilityd.call.media_options import MediaOptions
from mobilityd.call.negotiation import Answerer, CallSecurity, Offerer
from mobilityd.call.policies import (
    ConservativeReinvitePolicy,
    ReferDecision,
    ReferPolicy,
    RefuseRefers,
    ReinviteDecision,
    ReinvitePolicy,
)
from mobilityd.call.ports import MediaPortsExhausted, PortReservation
from mobilityd.call.sdpmedia import KeyMgmtLevel, MediaPort, error_body, read_error_body
from mobilityd.call.secure_call import (
    CallRole,
    CallState,
    SecureCall,
    open_media,
    prepare_srtp,
)
from mobilityd.media import g711
from mobilityd.media.endpoint import bind_port_pair
from mobilityd.media.g711 import G711PayloadType
from mobilityd.media.pacing import FrameScheduler
from mobilityd.mikey.errors import MikeyError
from mobilityd.mikey.message import MikeyMessage
from mobilityd.mikey.session import Rng, parse_error_message
from mobilityd.net.errors import NetError
from mobilityd.net.route import source_address_for
from mobilityd.sip import events as ev
from mobilityd.sip.dialog import Dialog
from mobilityd.sip.endpoint import SipEndpoint, TransportOptions
from mobilityd.sip.errors import SipError, StatusCode
from mobilityd.sip.message import Request, Response
from mobilityd.sip.sdp import SessionDescription
from mobilityd.sip.timers import TimerConfig
from mobilityd.sip.transport import Flow, SipMessage, TransportKind
from mobilityd.sip.uri import NameAddr, SipUri
from mobilityd.sip.useragent import UaConfig, UsageError

__all__ = [
    "AgentConfig",
    "CallAgent",
    "ConservativeReinvitePolicy",
    "MediaOptions",
    "MediaPortsExhausted",
    "ReferDecision",
    "ReferPolicy",
    "RefuseRefers",
    "ReinviteDecision",
    "ReinvitePolicy",
    "reinvite_wait",
]

logger = logging.getLogger(__name__)

#: SIP events after which a call's setup is over (RFC 3261 §13.3.1.4: the ACK
#: confirms the callee's dialog; a failure, CANCEL or BYE ends it)
_SETUP_SETTLED = (ev.CallEstablished, ev.CallFailed, ev.CallCancelled, ev.CallEnded)

SDP = "application/sdp"
MAX_ENDED_CALLS = 64


def reinvite_wait(timers: TimerConfig, rerouting: bool) -> float:
    """How long :meth:`CallAgent.reinvite` waits for a re-INVITE's outcome (seconds).

    An attempt nobody answers ends at Timer B, 64*T1 after it was sent (RFC 3261
    §17.1.1.2; a transport error ends it sooner, §17.1.4), which the UA reports as
    ``ReinviteFailed`` (408). With re-routing (``AgentConfig.outbound_proxy``) that
    failure is not the end: the UA sends the re-INVITE once more through the proxy to
    the peer's GRUU/AOR (``ReinviteRerouted``), a second attempt with its own Timer B.
    So the wait is one or two Timer B periods plus T4 (RFC 3261 Table 4: the longest a
    message stays in the network, 5 s by default), so that the UA's own typed outcome
    always arrives before the wait gives up: 2 * 32 + 5 = 69 s with the default
    timers and a proxy, 37 s without.
    """
    attempts = 2 if rerouting else 1
    return attempts * timers.timeout + timers.t4


@dataclass
class AgentConfig:
    """One account: identity (address-of-record), where SIP and media bind, policy."""

    identity: str
    host: str
    port: int = 5060
    transport: TransportKind = TransportKind.UDP
    media_ip: str | None = None
    security: CallSecurity = CallSecurity.REQUIRED
    keying: KeyingConfig = field(default_factory=KeyingConfig)
    contacts: Mapping[bytes, tuple[str, int]] = field(default_factory=dict)
    key_mgmt_level: KeyMgmtLevel = KeyMgmtLevel.SESSION
    rtcp_mux: bool = True
    auto_answer: bool = False
    audio: AudioOptions = field(default_factory=AudioOptions)
    media_netns: str | None = None
    transport_options: TransportOptions | None = None
    #: SIP URI of the account's registrar / outbound proxy (RFC 3261 §8.1.2). When set,
    #: requests without an explicit contact go through it, and a re-INVITE the peer's
    #: old contact never answers (the peer moved too) is re-sent through it to the
    #: peer's GRUU or AOR (``UaConfig.reroute_via_proxy``, issue 5).
    outbound_proxy: str | None = None
    #: T1/T2/T4 of the SIP transactions (RFC 3261 Table 4); Timer B = 64*T1
    sip_timers: TimerConfig = field(default_factory=TimerConfig)
    #: port range, codec preference, packet time (``[media]``; module docstring)
    media: MediaOptions = field(default_factory=MediaOptions)
    #: Digest credentials (RFC 3261 §22.2/§22.3, RFC 7616) the UA answers a 401/407 to
    #: its INVITE, re-INVITE or in-dialog request with (``UaConfig.auth_username``):
    #: the account's registrar credentials, for a proxy that challenges calls.
    auth_username: str | None = None
    auth_password: str | None = field(default=None, repr=False)


class _AgentSipEndpoint(SipEndpoint):
    """Keeps the one body the UA's events do not carry: a BYE's (it may hold a MIKEY
    error, thesis §11.4). A final INVITE error response, which may hold one too
    (RFC 4567 §4.1.2), arrives with ``CallFailed.response``."""

    wanted: Callable[[str], bool] = staticmethod(lambda call_id: False)
    bye_bodies: dict[str, bytes]

    def message_received(self, message: SipMessage, flow: Flow,
                         raw: bytes | None = None) -> None:
        if (message.body and isinstance(message, Request) and message.method == "BYE"
                and self.wanted(message.call_id)):
            self.bye_bodies[message.call_id] = message.body
        super().message_received(message, flow, raw)


def _peer_mikey_error(body: bytes | None) -> Any:
    """The first ERR type of a MIKEY error message carried in an SDP body, or None."""
    data = read_error_body(body) if body else None
    if data is None:
        return None
    try:
        return parse_error_message(MikeyMessage.parse(data)).error_type
    except MikeyError:
        return None


class CallAgent:
    """See the module docstring."""

    def __init__(
        self,
        config: AgentConfig,
        *,
        rng: Rng = os.urandom,
        wall_clock: Callable[[], float] = time.time,
        reinvite_policy: ReinvitePolicy | None = None,
        refer_policy: ReferPolicy | None = None,
    ) -> None:
        self.config = config
        self.identity = sip_identity(config.identity)
        self.reinvite_policy: ReinvitePolicy = reinvite_policy or ConservativeReinvitePolicy()
        self.refer_policy: ReferPolicy = refer_policy or RefuseRefers()
        self.events: asyncio.Queue[CallEvent] = asyncio.Queue()
        self.calls: dict[str, SecureCall] = {}
        self._rng = rng
        self._wall = wall_clock
        self._listeners: list[Callable[[CallEvent], None]] = []
        self._sip: _AgentSipEndpoint | None = None
        self._scheduler: FrameScheduler | None = None
        #: one frame scheduler per packet time we send at (ms), 20 ms is ``_scheduler``
        self._schedulers: dict[int, FrameScheduler] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        #: DH calls whose pool refill waits until the call is settled (ACK, failure)
        self._refill_after_setup: set[str] = set()
        self._reinvites: dict[str, asyncio.Future[ev.ReinviteAccepted | ev.ReinviteFailed]] = {}
        self._answerer = self._new_answerer()

    def _new_answerer(self) -> Answerer:
        media = self.config.media
        return Answerer(self.identity, self.config.security, self.config.keying,
                        payload_types=media.payload_types, ptime_ms=media.ptime_ms)

    # -- life cycle -----------------------------------------------------------------

    @property
    def sip(self) -> SipEndpoint:
        if self._sip is None:
            raise CallUsageError("agent not started")
        return self._sip

    @property
    def media_ip(self) -> str:
        """The configured media address (``media_ip``, else the SIP bind address)."""
        return self.config.media_ip or self.config.host

    def media_ip_toward(self, destination: str) -> str:
        """Our media address for a call with ``destination``: the configured one, or,
        when SIP listens on a wildcard address, the source the kernel would use toward
        the peer (RTM_GETROUTE, :func:`mobilityd.net.route.source_address_for`)."""
        configured = self.media_ip
        try:
            wildcard = ipaddress.ip_address(configured).is_unspecified
        except ValueError:
            wildcard = False
        if not wildcard:
            return configured
        try:
            found = source_address_for(destination, netns=self.config.media_netns)
        except NetError as exc:
            raise CallUsageError(f"no local address toward {destination}: {exc}") from exc
        if found is None:
            raise CallUsageError(f"no route toward {destination}")
        return found

    async def start(self) -> None:
        """Bind the SIP transport, start the event pump and fill the DH pool.

        The G.711 tables are built here, once per process: otherwise the first call
        builds them (~13 ms of CPU) between its answer and its first frame -- on a
        transfer, between the new device's INVITE and its 200 OK (docs/transfer.md)."""
        if self._sip is not None:
            raise CallUsageError("agent already started")
        for law in G711PayloadType:
            g711.encode(bytes(2), law)  # both tables are cached for the process
            g711.decode(b"\x00", law)
        uri = SipUri.parse(self.config.identity)
        proxy = self._outbound_proxy()
        ua_config = UaConfig(local_uri=NameAddr(uri=uri), host=self.config.host,
                             port=self.config.port, transport=self.config.transport,
                             contact_user=uri.user, timers=self.config.sip_timers,
                             outbound_proxy=proxy, reroute_via_proxy=proxy is not None,
                             auth_username=self.config.auth_username,
                             auth_password=self.config.auth_password)
        endpoint = await _AgentSipEndpoint.open(ua_config, self._rng,
                                                self.config.transport_options)
        assert isinstance(endpoint, _AgentSipEndpoint)
        endpoint.bye_bodies = {}
        endpoint.wanted = self.calls.__contains__
        self._sip = endpoint
        self._scheduler = FrameScheduler(max_burst=10)
        self._schedulers = {round(self._scheduler.period * 1000): self._scheduler}
        self._spawn(self._pump())
        if self.config.keying.own is not None:
            self._spawn(self._refill_dh_pool())

    def _outbound_proxy(self) -> SipUri | None:
        raw = self.config.outbound_proxy
        if raw is None:
            return None
        try:
            uri = SipUri.parse(raw.strip().strip("<>"))
        except SipError as exc:
            raise CallUsageError(f"bad outbound proxy URI {raw!r}: {exc.reason}") from exc
        if uri.scheme not in ("sip", "sips"):
            raise CallUsageError(f"outbound proxy {raw!r} is not a sip: or sips: URI")
        return uri

    @property
    def reinvite_timeout(self) -> float:
        """The default wait of :meth:`reinvite` (:func:`reinvite_wait`)."""
        return reinvite_wait(self.config.sip_timers, self.config.outbound_proxy is not None)

    async def close(self) -> None:
        """Hang up every call, stop media and tasks, close the transport."""
        for call in list(self.calls.values()):
            if call.state in (CallState.CONNECTED, CallState.CALLING, CallState.RINGING):
                with contextlib.suppress(CallUsageError):
                    await self.hangup(call.call_id)
        await asyncio.sleep(0)
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for scheduler in self._schedulers.values():
            scheduler.close()
        if self._sip is not None:
            await self._sip.close()

    def reconfigure(self, security: CallSecurity, keying: KeyingConfig,
                    contacts: Mapping[bytes, tuple[str, int]],
                    media: MediaOptions | None = None) -> None:
        """New policy, credentials, contacts and (if given) media settings for new calls
        (running calls keep theirs, ports included); the replay cache (RFC 3830 §5.4)
        and the DH pool carry over."""
        keying.replay_cache = self.config.keying.replay_cache
        keying.dh_pool = self.config.keying.dh_pool
        self.config = replace(self.config, security=security, keying=keying,
                              contacts=contacts, media=media or self.config.media)
        self._answerer = self._new_answerer()

    def add_listener(self, callback: Callable[[CallEvent], None]) -> None:
        """Call ``callback(event)`` for every call event (in addition to the queue)."""
        self._listeners.append(callback)

    # -- queries ----------------------------------------------------------------------

    def call(self, call_id: str) -> SecureCall:
        call = self.calls.get(call_id)
        if call is None:
            raise CallUsageError(f"no call {call_id!r}")
        return call

    def dialog(self, call_id: str) -> Dialog | None:
        """The SIP dialog of a call (None before one exists or once forgotten)."""
        try:
            return self.sip.ua.call(call_id).dialog
        except UsageError:
            return None

    def list_calls(self) -> list[dict[str, Any]]:
        return [call.summary() for call in self.calls.values()]

    def status(self) -> dict[str, Any]:
        pool = self.config.keying.dh_pool
        host, port = self.sip.local_address
        active = [c for c in self.calls.values() if c.state is CallState.CONNECTED]
        return {"identity": self.config.identity, "sip": [host, port],
                "transport": self.config.transport.name.lower(),
                "security": self.config.security.value, "calls": len(active),
                "dh_pool": len(pool), "dh_pool_misses": pool.misses}

    # -- outgoing ---------------------------------------------------------------------

    def _reserve(self, local_ip: str, count: int) -> list[PortReservation]:
        """``count`` RTP/RTCP pairs on ``local_ip``: from the configured range
        (:class:`MediaPortsExhausted` when it is full), else even ports of the kernel's
        choice (RFC 3550 §11)."""
        port_range = self.config.media.port_range
        if port_range is not None:
            return port_range.reserve_many(local_ip, count, self.config.media_netns)
        reservations: list[PortReservation] = []
        try:
            for _ in range(count):
                rtp, rtcp = bind_port_pair(local_ip, 0, False, self.config.media_netns)
                reservations.append(PortReservation(local_ip, rtp, rtcp))
        except OSError:
            for reservation in reservations:
                reservation.release()
            raise
        return reservations

    async def place(self, uri: str, *, audio: AudioOptions | None = None,
                    security: CallSecurity | None = None) -> str:
        """INVITE ``uri`` with our offer; returns the call id (the SIP Call-ID).

        :class:`MediaPortsExhausted` (a :class:`CallUsageError`) when the port range has
        no free pair for the offer: nothing is sent and no call is created."""
        try:
            target = SipUri.parse(uri.strip().strip("<>"))
        except SipError as exc:
            raise CallUsageError(f"bad SIP URI {uri!r}: {exc.reason}") from exc
        peer_id = sip_identity(target)
        media = self.config.media
        offerer = Offerer(self.identity, peer_id, security or self.config.security,
                          self.config.keying, self.config.key_mgmt_level, self.config.rtcp_mux,
                          payload_types=media.payload_types, ptime_ms=media.ptime_ms)
        destination = self.config.contacts.get(peer_id)
        proxy = self.sip.ua.config.outbound_proxy
        first_hop = destination[0] if destination else (proxy or target).host.strip("[]")
        local_ip = self.media_ip_toward(first_hop)
        reservations = self._reserve(local_ip, len(offerer.streams()))
        try:
            offer = offerer.make_offer([r.port for r in reservations], self._wall(), self._rng)
        except ValueError as exc:
            for reservation in reservations:
                reservation.release()
            raise CallUsageError(str(exc)) from exc
        call_id = self.sip.act(lambda ua, now: ua.invite(
            target, now, body=offer, content_type=SDP, destination=destination))
        self.calls[call_id] = SecureCall(
            call_id, CallRole.CALLER, str(target), audio or self.config.audio,
            offerer=offerer, reservations=reservations, local_sdp=offer, local_ip=local_ip,
            method=offerer.keying.peer(peer_id).method.value
            if offerer.keying is not None and True in offerer.streams() else None,
        )
        self._emit(CallPlaced(call_id, str(target)))
        if self.calls[call_id].method == "dh":  # the initiator drew a DH pair too
            self._refill_after_setup.add(call_id)  # not while the 180/200 are on their way
        return call_id

    async def _on_answer(self, call: SecureCall, response: Response) -> None:
        """2xx to our INVITE (already ACKed by the UA): check it, start media or BYE."""
        assert call.offerer is not None
        call.remote_sdp = response.body
        try:
            negotiated = call.offerer.receive_answer(response.body, self._wall())
        except NegotiationError as exc:
            body = error_body(exc.error_message, self.media_ip) if exc.error_message else b""
            call.state, call.end_reason = CallState.FAILED, exc.reason
            call.stop_media(self._scheduler_or_fail())
            self._act_quietly(lambda ua, now: ua.hangup(
                call.call_id, now, body=body, content_type=SDP if body else None))
            self._emit(CallRefused(call.call_id, 0, exc.reason, exc.mikey_error))
            self._forget_ended()
            return
        call.negotiated = negotiated
        if not negotiated.secure:
            call.method = None
        port = call.reservations[negotiated.media_index].port
        call.release_ports()
        await self._start_media(call, port)

    async def _start_media(self, call: SecureCall, port: MediaPort | None) -> None:
        negotiated = call.negotiated
        assert negotiated is not None
        try:
            await open_media(call, negotiated, port, self._scheduler_for(negotiated.ptime_ms),
                             self._rng,
                             local_ip=call.local_ip or self.media_ip,
                             netns=self.config.media_netns,
                             wall=self._wall, port_range=self.config.media.port_range)
        except Exception as exc:  # a local failure: end the call rather than run half
            logger.warning("call %s: media failed: %s", call.call_id, exc)
            call.state, call.end_reason = CallState.FAILED, f"media failed: {exc}"
            call.stop_media(self._scheduler_or_fail())
            self._act_quietly(lambda ua, now: ua.hangup(call.call_id, now))
            self._emit(CallRefused(call.call_id, 0, call.end_reason))
            return
        call.state = CallState.CONNECTED
        self._emit(CallConnected(call.call_id, negotiated.secure, call.method,
                                 negotiated.suite.name if negotiated.suite else None))

    # -- incoming ---------------------------------------------------------------------

    def _on_invite(self, event: ev.IncomingCallReceived) -> None:
        """An INVITE: screen the offer (SDP, policy), send 180 Ringing, then run the
        MIKEY Responder (:meth:`Answerer.complete_offer`) while it rings.

        The 180 (RFC 3261 §13.3.1.1) goes out before the key agreement because the MIKEY
        response is due only in the 200 OK (thesis: the response rides in the 200), so
        the Responder's work is not on the calling delay (thesis App. B Definition 1).
        No check is skipped or weakened: the user is alerted (:class:`IncomingCallOffered`)
        only once every MIKEY message verified, and an offer that fails gets its 488 with
        the MIKEY error (RFC 4567 §4.1.2) after the 180 as before without it.
        """
        request = event.request
        caller = request.from_
        call_id = event.call_id
        try:
            screened = self._answerer.screen_offer(request.body)
        except NegotiationError as exc:
            self._refuse_offer(call_id, exc)
            return
        self.sip.act(lambda ua, now: ua.answer_call(call_id, now, 180))
        try:
            reservations = self._reserve_for_offer(screened.offer, screened.index)
        except MediaPortsExhausted as exc:
            self._refuse_no_ports(call_id, exc)
            return
        try:
            plan = self._answerer.complete_offer(screened, sip_identity(caller),
                                                 self._wall(), self._rng)
        except NegotiationError as exc:
            for reservation in reservations:
                reservation.release()
            self._refuse_offer(call_id, exc)
            return
        context = plan.media.context
        call = SecureCall(call_id, CallRole.CALLEE, str(caller.uri), self.config.audio,
                          state=CallState.RINGING, plan=plan, remote_sdp=request.body,
                          method=context.mode.value if context is not None else None,
                          reservations=reservations)
        self.calls[call_id] = call
        prepare_srtp(call, plan.media)  # while it rings, not after the pick-up
        self._emit(IncomingCallOffered(call_id, str(caller.uri), plan.media.secure, call.method))
        if self.config.auto_answer:
            self._spawn(self.answer(call_id))

    def _reserve_for_offer(self, offer: SessionDescription, index: int
                           ) -> list[PortReservation]:
        """The pair the answer will name, when a port range is configured (else the
        kernel picks at pick-up, as before). The address is ours toward the offer's
        media address; when that cannot be found now, :meth:`answer` finds (and
        reports) it as without a range."""
        if self.config.media.port_range is None:
            return []
        conn = offer.connection_of(index)
        try:
            local_ip = self.media_ip_toward(conn.address) if conn is not None else self.media_ip
        except CallUsageError:
            return []
        return self._reserve(local_ip, 1)

    def _refuse_no_ports(self, call_id: str, error: MediaPortsExhausted) -> None:
        """503 Service Unavailable (RFC 3261 §21.5.4): the media port range is full;
        the reason phrase and a ``Warning: 399`` (§20.43) name it."""
        status = StatusCode.SERVICE_UNAVAILABLE
        phrase = f"Media Ports {error.port_range} Exhausted"
        warning = (("Warning", f'399 {self.config.host} "{error}"'),)
        logger.warning("call %s refused: %s", call_id, error)
        self._act_quietly(lambda ua, now: ua.reject_call(
            call_id, now, status, phrase, headers=warning))
        self._emit(CallRefused(call_id, status, str(error)))

    def _refuse_offer(self, call_id: str, error: NegotiationError) -> None:
        """488/606 with a Warning (RFC 3261 §20.43) and the MIKEY error in an SDP body
        (RFC 4567 §4.1.2, thesis §11.4)."""
        text = error.reason.replace('"', "'").replace("\\", "/")[:200]
        warning = (("Warning", f'399 {self.config.host} "{text}"'),)
        body = error_body(error.error_message, self.media_ip) if error.error_message else b""
        self._act_quietly(lambda ua, now: ua.reject_call(
            call_id, now, error.status, None, headers=warning, body=body))
        self._emit(CallRefused(call_id, error.status, error.reason, error.mikey_error))

    async def answer(self, call_id: str, *, audio: AudioOptions | None = None) -> None:
        """Pick up a ringing call: media first, then 200 OK with the MIKEY response."""
        call = self.call(call_id)
        if call.role is not CallRole.CALLEE or call.state is not CallState.RINGING:
            raise CallUsageError(f"call {call_id} is not ringing")
        plan = call.plan
        assert plan is not None
        if audio is not None:
            call.audio = audio
        held = call.reservations[0] if call.reservations else None
        local_ip = held.ip if held is not None else self.media_ip_toward(
            plan.media.remote_rtp[0])
        if held is None and self.config.media.port_range is not None:
            try:  # a call taken without an INVITE-time reservation (a transfer)
                call.reservations = self._reserve(local_ip, 1)
            except MediaPortsExhausted as exc:
                call.state, call.end_reason = CallState.FAILED, str(exc)
                self._refuse_no_ports(call_id, exc)
                self._forget_ended()
                raise
        port = call.reservations[0].port if call.reservations else None
        call.release_ports()  # the endpoint binds the same pair next
        call.negotiated = plan.media
        call.local_ip = local_ip
        call.state = CallState.CONNECTED  # until media fails
        await self._start_media(call, port)
        if call.state is not CallState.CONNECTED or call.media is None:
            return
        media = call.media
        port = MediaPort(call.local_ip, media.local_rtp[1],
                         None if plan.media.rtcp_mux else media.local_rtcp[1])
        session_id = int.from_bytes(self._rng(4), "big") & 0x7FFFFFFF
        call.local_sdp = self._answerer.build_answer(plan, port, session_id)
        try:
            self._act(lambda ua, now: ua.answer_call(call_id, now, 200, body=call.local_sdp))
        except CallUsageError:  # the caller gave up meanwhile (CANCEL): no half call
            call.state, call.end_reason = CallState.FAILED, "cancelled before the answer"
            call.stop_media(self._scheduler_or_fail())
            raise
        if plan.media.context is not None and plan.media.context.mode.value == "dh":
            self._refill_after_setup.add(call_id)  # not while the ACK is on its way

    async def reject(self, call_id: str, status: int = StatusCode.DECLINE,
                     reason: str | None = None) -> None:
        call = self.call(call_id)
        if call.role is not CallRole.CALLEE or call.state is not CallState.RINGING:
            raise CallUsageError(f"call {call_id} is not ringing")
        self._act(lambda ua, now: ua.reject_call(call_id, now, status, reason))
        call.state, call.end_reason = CallState.FAILED, f"rejected with {status}"
        call.release_ports()  # the pair held since the INVITE
        self._emit(CallRefused(call_id, status, reason or "rejected"))
        self._forget_ended()

    async def hangup(self, call_id: str) -> None:
        """BYE (CANCEL while calling, 603 while ringing) and stop the media."""
        call = self.call(call_id)
        if call.state in (CallState.ENDED, CallState.FAILED):
            raise CallUsageError(f"call {call_id} has ended")
        previous = call.state
        call.state, call.end_reason = CallState.ENDED, "local hangup"
        call.stop_media(self._scheduler_or_fail())
        self._act_quietly(lambda ua, now: ua.hangup(call_id, now))
        if previous is CallState.CONNECTED:
            self._emit(CallTerminated(call_id, False, "local hangup"))
        else:
            call.state = CallState.FAILED
            self._emit(CallRefused(call_id, 0, "local hangup"))
        self._forget_ended()

    # -- in-dialog requests -------------------------------------------------------------

    async def reinvite(self, call_id: str, body: bytes, *, content_type: str = SDP,
                       timeout: float | None = None
                       ) -> ev.ReinviteAccepted | ev.ReinviteFailed:
        """Send a re-INVITE with ``body`` and wait for its outcome (SIP event): at most
        ``timeout`` seconds, by default :attr:`reinvite_timeout` (long enough for a
        re-routed second attempt, :func:`reinvite_wait`); a re-route on the way is
        published as :class:`~mobilityd.call.events.ReinviteRerouted`."""
        call = self.call(call_id)
        if call_id in self._reinvites:
            raise CallUsageError(f"call {call_id} has a re-INVITE in progress")
        future: asyncio.Future[ev.ReinviteAccepted | ev.ReinviteFailed] = (
            asyncio.get_running_loop().create_future())
        self._reinvites[call_id] = future
        try:
            self._act(lambda ua, now: ua.reinvite(call_id, now, body=body,
                                                  content_type=content_type))
            outcome = await asyncio.wait_for(
                future, self.reinvite_timeout if timeout is None else timeout)
        finally:
            self._reinvites.pop(call_id, None)
        if isinstance(outcome, ev.ReinviteAccepted):
            call.local_sdp = body
            call.remote_sdp = outcome.response.body or call.remote_sdp
        return outcome

    async def _decide_reinvite(self, call: SecureCall, event: ev.ReinviteReceived) -> None:
        try:
            decision = await self.reinvite_policy.decide(self, call, event.request)
        except Exception as exc:  # a broken policy must not leave the transaction hanging
            logger.exception("re-INVITE policy failed")
            decision = ReinviteDecision(False, status=StatusCode.SERVER_INTERNAL_ERROR,
                                        reason=str(exc)[:80])
        if decision.accept:
            body = decision.body or call.local_sdp
            self._act_quietly(lambda ua, now: ua.accept_reinvite(
                call.call_id, now, body=body))
            if event.request.body:
                call.remote_sdp = event.request.body
            call.local_sdp = body
            self._emit(ReinviteHandled(call.call_id, True, 200))
        else:
            self._act_quietly(lambda ua, now: ua.refuse_reinvite(
                call.call_id, now, decision.status, decision.reason,
                headers=decision.headers, body=decision.body))
            self._emit(ReinviteHandled(call.call_id, False, decision.status))

    async def _decide_refer(self, call: SecureCall, event: ev.ReferReceived) -> None:
        try:
            decision = await self.refer_policy.decide(self, call, event)
        except Exception:
            logger.exception("REFER policy failed")
            decision = ReferDecision(False, StatusCode.SERVER_INTERNAL_ERROR)
        if decision.accept:
            self._act_quietly(lambda ua, now: ua.accept_refer(call.call_id, now))
            self._emit(ReferHandled(call.call_id, True, 202))
        else:
            self._act_quietly(lambda ua, now: ua.refuse_refer(
                call.call_id, now, decision.status, decision.reason))
            self._emit(ReferHandled(call.call_id, False, decision.status))

    # -- SIP events ---------------------------------------------------------------------

    async def _pump(self) -> None:
        sip = self.sip
        while True:
            event = await sip.events.get()
            try:
                await self._on_sip_event(event)
            except Exception:  # one bad event must not stop the agent
                logger.exception("handling %s failed", type(event).__name__)
            self._refill_once_settled(event)

    async def _on_sip_event(self, event: object) -> None:
        if isinstance(event, ev.IncomingCallReceived):
            self._on_invite(event)
            return
        call_id = getattr(event, "call_id", None)
        call = self.calls.get(call_id) if isinstance(call_id, str) else None
        if call is None:
            return
        if isinstance(event, ev.CallEstablished):
            if (call.role is CallRole.CALLER and isinstance(event.message, Response)
                    and call.state is CallState.CALLING):
                await self._on_answer(call, event.message)
        elif isinstance(event, ev.CallFailed):
            self._on_failed(call, event.status, event.reason,
                            body=event.response.body if event.response else None)
        elif isinstance(event, ev.CallCancelled):
            self._on_failed(call, StatusCode.REQUEST_TERMINATED, "cancelled by the caller",
                            by_peer=True)
        elif isinstance(event, ev.CallEnded):
            self._on_ended(call, event)
        elif isinstance(event, ev.ReinviteReceived):
            self._spawn(self._decide_reinvite(call, event))
        elif isinstance(event, ev.ReferReceived):
            self._spawn(self._decide_refer(call, event))
        elif isinstance(event, ev.ReinviteRerouted):
            self._emit(ReinviteRerouted(call.call_id, str(event.request_uri),
                                        str(event.proxy)))
        elif isinstance(event, ev.ReinviteAccepted | ev.ReinviteFailed):
            future = self._reinvites.get(call.call_id)
            if future is not None and not future.done():
                future.set_result(event)

    def _on_failed(self, call: SecureCall, status: int, reason: str, *,
                   by_peer: bool = True, body: bytes | None = None) -> None:
        if call.state in (CallState.ENDED, CallState.FAILED):
            return
        call.state, call.end_reason = CallState.FAILED, f"{status} {reason}"
        call.stop_media(self._scheduler_or_fail())
        self._emit(CallRefused(call.call_id, status, reason, _peer_mikey_error(body), by_peer))
        self._forget_ended()

    def _on_ended(self, call: SecureCall, event: ev.CallEnded) -> None:
        body = self._sip.bye_bodies.pop(call.call_id, None) if self._sip else None
        if call.state in (CallState.ENDED, CallState.FAILED):
            return
        connected = call.state is CallState.CONNECTED
        call.state = CallState.ENDED if connected else CallState.FAILED
        call.end_reason = event.reason
        call.stop_media(self._scheduler_or_fail())
        if connected:
            self._emit(CallTerminated(call.call_id, event.by_peer, event.reason,
                                      _peer_mikey_error(body)))
        else:
            self._emit(CallRefused(call.call_id, 0, event.reason, _peer_mikey_error(body),
                                   event.by_peer))
        self._forget_ended()

    # -- helpers ------------------------------------------------------------------------

    def _forget_ended(self) -> None:
        ended = [c for c in self.calls.values()
                 if c.state in (CallState.ENDED, CallState.FAILED)]
        for call in ended[: max(0, len(ended) - MAX_ENDED_CALLS)]:
            del self.calls[call.call_id]

    def _scheduler_or_fail(self) -> FrameScheduler:
        if self._scheduler is None:
            raise CallUsageError("agent not started")
        return self._scheduler

    def _scheduler_for(self, ptime_ms: int) -> FrameScheduler:
        """The frame scheduler ticking every ``ptime_ms`` (made on first use)."""
        self._scheduler_or_fail()
        scheduler = self._schedulers.get(ptime_ms)
        if scheduler is None:
            scheduler = self._schedulers[ptime_ms] = FrameScheduler(
                period=ptime_ms / 1000, max_burst=10)
        return scheduler

    def _act(self, action: Callable[[Any, float], object]) -> None:
        try:
            self.sip.act(action)
        except UsageError as exc:
            raise CallUsageError(str(exc)) from exc

    def _act_quietly(self, action: Callable[[Any, float], object]) -> None:
        """An engine call whose failure (the dialog ended meanwhile) is only logged."""
        try:
            self.sip.act(action)
        except UsageError as exc:
            logger.info("SIP action skipped: %s", exc)

    def _emit(self, event: CallEvent) -> None:
        self.events.put_nowait(event)
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                logger.exception("call event listener failed")

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _refill_once_settled(self, event: object) -> None:
        """Refill the DH pool for a DH call once its setup is over (ACK or 2xx handled,
        or the call failed): a refill thread holds the GIL in stretches, so one running
        while the 180, 200 or ACK is due adds to the calling or answering delay."""
        call_id = getattr(event, "call_id", None)
        if call_id in self._refill_after_setup and isinstance(event, _SETUP_SETTLED):
            self._refill_after_setup.discard(call_id)
            self._spawn(self._refill_dh_pool())

    async def _refill_dh_pool(self) -> None:
        """Top the precomputed DH pool up in a worker thread (off the event loop)."""
        keying = self.config.keying
        if keying.dh_pool.deficit:
            await asyncio.to_thread(keying.refill_dh_pool, self._rng)
