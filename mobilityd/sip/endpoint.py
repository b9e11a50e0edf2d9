"""The asyncio adapter of the SIP stack: transports <-> the sans-I/O UA engine.

Like aioquic's ``asyncio/protocol.py``: every input (a message from a transport, a
timer, an API call) is fed to the engine with ``now``; then the endpoint transmits what
the engine queued, drains its events into :attr:`SipEndpoint.events` and re-arms ONE
timer at the earliest deadline. The engine (:class:`mobilityd.sip.useragent.UserAgent`)
keeps every transaction and dialog; the endpoint only moves bytes.

Transport layer duties done here (RFC 3261 §18.2.1, RFC 3581 §4): a request's top Via
gets ``received`` (and ``rport`` when asked) before the engine sees it, so responses
carry them and go back to the source. Registrations (:mod:`mobilityd.sip.registration`)
run on a transaction layer of their own; their responses are routed by Call-ID.

:meth:`SipEndpoint.rebind` moves the transports to a new local IP, tells the engine its
new Via sent-by / Contact, re-registers, and (optionally) sends a target-refresh
re-INVITE in every established dialog so the peers' remote target follows (§12.2).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from mypy_extensions import mypyc_attr

from mobilityd.sip import events as ev
from mobilityd.sip.errors import SipParseError
from mobilityd.sip.message import Request, Response, make_response
from mobilityd.sip.registration import (
    LocalBinding,
    RegistrationClient,
    RegistrationConfig,
    RegistrationEvent,
)
from mobilityd.sip.transaction.layer import TransactionLayer, UpcallKind
from mobilityd.sip.transport import (
    Address,
    Flow,
    SipCodec,
    SipMessage,
    StreamLimits,
    StreamTransport,
    TransportError,
    TransportKind,
    UdpTransport,
)
from mobilityd.sip.uri import SipUri
from mobilityd.sip.useragent import UaConfig, UsageError, UserAgent

logger = logging.getLogger(__name__)

Rng = Callable[[int], bytes]
EndpointEvent = ev.Event | RegistrationEvent
_CALL_OVER = (ev.CallEnded, ev.CallFailed)  # built once: one isinstance per event
T = TypeVar("T")


@dataclass(frozen=True)
class TransportOptions:
    """How to open the endpoint's transport (the UA config says which kind)."""

    tls_server: ssl.SSLContext | None = None
    tls_client: ssl.SSLContext | None = None
    stream_limits: StreamLimits | None = None
    tls_server_names: tuple[tuple[Address, str], ...] = ()  # RFC 5922 names to verify
    #: Asked for a usable local IP toward a destination when a send finds our address
    #: gone (e.g. ``mobilityd.net.route.source_address_for``); None: no fallback.
    address_fallback: Callable[[str], str | None] | None = None


@mypyc_attr(allow_interpreted_subclasses=True)  # call.agent, bench.sip subclass it
class SipEndpoint:
    """One UA engine on one transport (UDP, TCP or TLS), driven by the event loop."""

    def __init__(self, ua: UserAgent, rng: Rng, options: TransportOptions) -> None:
        self.ua = ua
        self._rng = rng
        self._options = options
        self._loop = asyncio.get_running_loop()
        self._codec = SipCodec()
        self._transport: UdpTransport[SipMessage] | StreamTransport[SipMessage] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._registration_layer = TransactionLayer(ua.config.timers)
        self._registrations: dict[str, tuple[RegistrationClient, Address]] = {}
        self._established: set[str] = set()
        self._server_names = dict(options.tls_server_names)
        self._recoveries: set[asyncio.Task[None]] = set()
        self._move: asyncio.Task[None] | None = None
        self.events: asyncio.Queue[EndpointEvent] = asyncio.Queue()
        self.messages_received = 0
        self.messages_rejected = 0
        self.send_failures = 0

    # -- life cycle -------------------------------------------------------------

    @classmethod
    async def open(cls, config: UaConfig, rng: Rng,
                   options: TransportOptions | None = None) -> SipEndpoint:
        """Bind the transport at ``config.host:config.port`` (0 picks a port) and
        tell the engine the address actually bound."""
        endpoint = cls(UserAgent(config, rng), rng, options or TransportOptions())
        local = (config.host, config.port)
        kind = config.transport
        if kind is TransportKind.UDP:
            endpoint._transport = await UdpTransport.open(
                endpoint._codec, endpoint, local, absorb=endpoint._absorb_retransmission)
        else:
            endpoint._transport = await StreamTransport.open(
                kind, endpoint._codec, endpoint, local,
                limits=endpoint._options.stream_limits,
                server_ssl=endpoint._options.tls_server,
                client_ssl=endpoint._options.tls_client)
        host, port = endpoint.local_address
        endpoint.ua.set_local_address(host, port)
        return endpoint

    @property
    def local_address(self) -> Address:
        """Where we are reachable (Via sent-by and Contact)."""
        assert self._transport is not None
        return self._transport.local_address

    @property
    def absorbed_retransmissions(self) -> int:
        """UDP datagrams the engine recognised as retransmissions without parsing."""
        if isinstance(self._transport, UdpTransport):
            return self._transport.datagrams_absorbed
        return 0

    @property
    def connections(self) -> list[Flow]:
        """Open TCP/TLS connections (empty on UDP)."""
        if isinstance(self._transport, StreamTransport):
            return self._transport.connections
        return []

    @property
    def kind(self) -> TransportKind:
        return self.ua.config.transport

    def now(self) -> float:
        """The engines' clock: the event loop's monotonic time."""
        return self._loop.time()

    async def close(self) -> None:
        """Stop the timer and close the transport (engine state is dropped)."""
        if self._timer is not None:
            self._timer.cancel()
        for task in list(self._recoveries):
            task.cancel()
        transport, self._transport = self._transport, None
        if isinstance(transport, UdpTransport):
            transport.close()
        elif transport is not None:
            await transport.close()

    # -- driving the engine -----------------------------------------------------

    def act(self, action: Callable[[UserAgent, float], T]) -> T:
        """Run an engine API call (``invite``, ``answer_call``...) with ``now``, then
        transmit and re-arm: ``endpoint.act(lambda ua, now: ua.hangup(call_id, now))``."""
        result = action(self.ua, self.now())
        self._after_input()
        return result

    async def next_event(self, kind: type[EndpointEvent] | None = None,
                         timeout: float = 10.0) -> EndpointEvent:
        """The next event (of ``kind``, skipping others) within ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            while True:
                event = await self.events.get()
                if kind is None or isinstance(event, kind):
                    return event

    def _after_input(self) -> None:
        self._transmit()
        self._drain_events()
        self._transmit()  # what event handlers (event_received overrides) queued
        self._arm_timer()

    def _transmit(self) -> None:
        transport = self._transport
        if transport is None:
            return
        for out in self.ua.datagrams_to_send():
            self._send(out.data, out.destination)
        if self._registration_layer.outgoing:
            for out in self._registration_layer.outgoing:
                self._send(out.data, out.destination)
            self._registration_layer.outgoing = []

    def _send(self, data: bytes, destination: Address) -> None:
        transport = self._transport
        if isinstance(transport, UdpTransport):
            transport.send(data, destination)
        elif transport is not None:
            transport.send(data, destination, self._server_names.get(destination))

    def event_received(self, event: EndpointEvent) -> None:
        """Called for every engine event; queues it on :attr:`events`.

        Subclasses may override it to act at once (aioquic's ``quic_event_received``):
        engine calls made here (with :meth:`now`) are transmitted right after.
        """
        self.events.put_nowait(event)

    def _drain_events(self) -> None:
        next_event = self.ua.next_event
        while (event := next_event()) is not None:
            if isinstance(event, ev.CallEstablished):
                self._established.add(event.call_id)
            elif isinstance(event, _CALL_OVER):
                self._established.discard(event.call_id)
            self.event_received(event)
        if self._registrations or self._registration_layer.upcalls:
            self._drain_registrations()

    def _arm_timer(self) -> None:
        ua = self.ua
        armed = self._timer_at
        deadline: float | None
        if armed is not None and ua.earliest_timer_since_mark() >= armed:
            # Nothing scheduled before the armed wake-up since the last exact look
            # (cancelled and fired timers only move the next deadline later): keep it,
            # without walking the timer stores once per batch.
            deadline = armed
        else:
            deadline = ua.get_timer()
            ua.mark_timers()
        if self._registrations:
            candidates = [self._registration_layer.get_timer(), deadline,
                          *(c.get_timer() for c, _ in self._registrations.values())]
            deadlines = [d for d in candidates if d is not None]
            deadline = min(deadlines) if deadlines else None
        armed = self._timer_at
        if armed is not None and (deadline is None or deadline >= armed):
            # The armed wake-up comes first; it re-arms for what is due then.  (Timers
            # cancelled since cost one early wake-up instead of a new handle per batch.)
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = deadline
        if deadline is not None:
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        now = self.now()
        self.ua.handle_timer(now)
        self._registration_layer.handle_timer(now)
        for client, registrar in self._registrations.values():
            request = client.handle_timer(now)
            if request is not None:
                self._send_register(request, registrar, now)
        self._after_input()

    # -- transport sink ---------------------------------------------------------

    def _absorb_retransmission(self, data: bytes) -> bool:
        """RFC 3261 §17.2: a byte-identical copy of a request whose server transaction
        lives is handled by the engine without parsing it again."""
        return self.ua.absorb_retransmission(data, self._loop.time())

    def message_received(self, message: SipMessage, flow: Flow,
                         raw: bytes | None = None) -> None:
        """RFC 3261 §18.2.1 / §18.1.2: hand a message from a transport to its engine
        (what it causes goes out at :meth:`input_done`, once per batch)."""
        self.messages_received += 1
        now = self._loop.time()  # = self.now(), one call less per message
        if isinstance(message, Request):
            try:  # noqa: SIM105 - per message: a try is free, suppress() is not
                stamp_received(message, flow.remote)
            except SipParseError:
                pass  # a broken Via: the engine answers it (400)
            self.ua.receive(message, flow.remote, now, flow.kind, raw=raw)
        elif self._registrations and message.call_id in self._registrations:
            self._registration_layer.receive_response(message, flow.remote, now)
        else:
            self.ua.receive(message, flow.remote, now, flow.kind)

    def message_rejected(self, error: Exception, data: bytes, flow: Flow) -> None:
        """A message did not parse: the engine answers 400 where it can (§18.3)."""
        self.messages_rejected += 1
        logger.info("rejected message from %s: %s", flow.remote, error)
        if data and flow.kind is TransportKind.UDP:
            self.ua.receive(data, flow.remote, self.now(), flow.kind)
        elif isinstance(error, SipParseError) and error.partial is not None:
            response = make_response(error.partial, error.status, error.reason)
            self._send(bytes(response), flow.remote)

    def input_done(self) -> None:
        """The transport delivered a batch: transmit, drain events, re-arm the timer."""
        self._after_input()

    def send_failed(self, error: TransportError, flow: Flow) -> None:
        """A send failed (RFC 3261 §18.4). When our local address is gone and a
        fallback address is known, move there and send the message again; otherwise the
        transaction learns it from its timers (Timer B/F)."""
        self.send_failures += 1
        logger.warning("send to %s failed: %s", error.remote, error.detail)
        fallback = self._options.address_fallback
        if not (error.address_gone and error.data and fallback is not None):
            return
        new_ip = fallback(error.remote[0])
        if new_ip is None or new_ip == self.local_address[0]:
            return
        task = self._loop.create_task(self._move_and_resend(new_ip, error))
        self._recoveries.add(task)
        task.add_done_callback(self._recoveries.discard)

    async def _move_and_resend(self, new_ip: str, error: TransportError) -> None:
        """Rebind to ``new_ip`` (once, however many sends failed) and resend."""
        if self._move is None or self._move.done():
            self._move = self._loop.create_task(self._move_to(new_ip))
        await asyncio.shield(self._move)
        self._send(error.data, error.remote)

    async def _move_to(self, new_ip: str) -> None:
        if self.local_address[0] != new_ip:
            old = self.local_address
            await self.rebind(new_ip)
            self.release(old)

    # -- registration -------------------------------------------------------------

    def register(self, config: RegistrationConfig, registrar: Address) -> RegistrationClient:
        """Start registering ``config.aor`` at ``registrar`` (a transport address);
        outcomes arrive as :mod:`mobilityd.sip.registration` events."""
        client = RegistrationClient(config, self._binding(), self._rng)
        self._registrations[client.call_id] = (client, registrar)
        self._send_register(client.register(self.now()), registrar, self.now())
        self._after_input()
        return client

    def unregister(self, client: RegistrationClient) -> None:
        """Remove the binding (expires=0)."""
        _, registrar = self._registrations[client.call_id]
        self._send_register(client.unregister(self.now()), registrar, self.now())
        self._after_input()

    def _binding(self) -> LocalBinding:
        host, port = self.local_address
        contact = self.ua.config.contact_user or self.ua.config.local_uri.uri.user
        params: dict[str, str | None] = (
            {} if self.kind is TransportKind.UDP else {"transport": self.kind.name.lower()})
        uri = SipUri("sips" if self.kind is TransportKind.TLS else "sip", user=contact,
                     host=host, port=port, params=params)
        return LocalBinding(self.kind.name, host, port, uri)

    def _send_register(self, request: Request, registrar: Address, now: float) -> None:
        self._registration_layer.send_request(request, registrar, self.kind, now)

    def _drain_registrations(self) -> None:
        layer = self._registration_layer
        now = self.now()
        while layer.upcalls:
            upcall = layer.upcalls.popleft()
            if upcall.transaction is None:
                continue
            entry = self._registrations.get(upcall.transaction.request.call_id)
            if entry is None:
                continue
            client, registrar = entry
            follow_up: Request | None = None
            if upcall.kind is UpcallKind.RESPONSE and isinstance(upcall.message, Response):
                if client.owns(upcall.message):
                    follow_up = client.receive_response(upcall.message, now)
            elif upcall.kind is UpcallKind.TIMEOUT:
                client.transaction_failed(408, "Request Timeout", now)
            elif upcall.kind is UpcallKind.TRANSPORT_ERROR:
                client.transaction_failed(503, "Service Unavailable", now)
            if follow_up is not None:
                self._send_register(follow_up, registrar, now)
        for client, _ in self._registrations.values():
            while (event := client.next_event()) is not None:
                self.event_received(event)

    # -- mobility -----------------------------------------------------------------

    async def rebind(self, new_ip: str, *, refresh_dialogs: bool = True) -> Address:
        """Move to ``new_ip`` without losing transactions or dialogs.

        The transport rebinds (same port where free), the engine takes the new Via
        sent-by and Contact, every registration re-registers with the new Contact and,
        with ``refresh_dialogs``, each established dialog gets a re-INVITE carrying it
        (RFC 3261 §12.2.1.1 target refresh) so the peer's remote target follows.
        """
        assert self._transport is not None
        new = await self._transport.rebind(new_ip)
        now = self.now()
        self.ua.set_local_address(*new)
        for client, registrar in self._registrations.values():
            self._send_register(client.move(self._binding(), now), registrar, now)
        if refresh_dialogs:
            for call_id in sorted(self._established):
                try:
                    self.ua.reinvite(call_id, now)
                except UsageError as exc:
                    # A re-INVITE already running carries the old Contact; the caller
                    # retries once it completes (ReinviteAccepted / ReinviteFailed).
                    logger.info("no target refresh for %s yet: %s", call_id, exc)
        self._after_input()
        return new

    def release(self, old: Address) -> None:
        """Stop listening on a retired UDP address (after in-flight answers arrived)."""
        if isinstance(self._transport, UdpTransport):
            self._transport.release(old)


def stamp_received(request: Request, source: Address) -> None:
    """RFC 3261 §18.2.1 and RFC 3581 §4: add ``received`` when the sent-by host differs
    from the source, and fill ``rport`` with the source port when the client asked."""
    fields = request.parsed_fields()  # the parser's own view, when still current
    vias = fields.get("via") if fields is not None else None
    raw = vias[0] if vias else request.headers.get("Via")
    if raw is None:
        return
    sent_by = raw.split(None, 1)[1] if " " in raw else ""
    if "rport" not in raw and sent_by.startswith(source[0]) and (
            len(sent_by) == len(source[0]) or sent_by[len(source[0])] in ":;"):
        return  # fast path: sent-by is the source address and no rport was asked for
    via = request.top_via
    params: dict[str, str | None] = {}
    if via.has_rport and via.rport is None:
        params["rport"] = str(source[1])
        params["received"] = source[0]
    elif via.host != source[0]:
        params["received"] = source[0]
    if not params:
        return
    # Headers keep one entry per Via value (list fields are split on parse).
    request.headers.remove_first("Via")
    request.headers.prepend("Via", str(via.with_params(**params)))
