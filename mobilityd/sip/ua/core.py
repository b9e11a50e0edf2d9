"""State and driving API of the user-agent core (see ``mobilityd.sip.useragent``).

``UaCore`` owns the transaction layer, the UA timers, the event queue and the calls;
``receive`` / ``handle_timer`` / ``get_timer`` / ``datagrams_to_send`` /
``next_event`` are the sans-I/O surface.  The request and upcall handlers are supplied
by the subclasses in ``inbound.py`` and ``upcalls.py``.
"""

from __future__ import annotations

import contextlib
from collections import deque

from mobilityd.sip import events as ev
from mobilityd.sip.digest import DigestClient
from mobilityd.sip.errors import SipParseError
from mobilityd.sip.message import Request, Response, make_response, parse_message
from mobilityd.sip.timers import TimerHeap
from mobilityd.sip.transaction.facts import RequestFacts
from mobilityd.sip.transaction.layer import TransactionLayer
from mobilityd.sip.transaction.outbound import Addr, Outgoing, TransportKind
from mobilityd.sip.ua import requests as rq
from mobilityd.sip.ua.config import Rng, UaConfig, UsageError
from mobilityd.sip.ua.session import (
    Session,
    UaTimer,
)
from mobilityd.sip.uri import SipUri


class UaCore:
    """A SIP UA core (UAC + UAS) over an RFC 3261 §17 transaction layer."""

    def __init__(self, config: UaConfig, rng: Rng) -> None:
        self.config = config
        self._rng = rng
        self._layer = TransactionLayer(config.timers)
        self._timers: TimerHeap[Session] = TimerHeap()
        self._events: deque[ev.Event] = deque()
        self._sessions: dict[str, Session] = {}
        self._host = config.host
        self._port = config.port
        self._sent_by = rq.sent_by(config.host, config.port)
        self._contact = self._make_contact()
        self._contact_field = f"<{self._contact}>"  # our Contact header value
        self._others: dict[tuple[object, ...], str] = {}  # tx key -> call id (OPTIONS...)
        self._digest = (
            DigestClient(config.auth_username, config.auth_password, rng)
            if config.auth_username is not None and config.auth_password is not None
            else None
        )

    def receive(
        self,
        data: bytes | Request | Response,
        source: Addr,
        now: float,
        transport: TransportKind = TransportKind.UDP,
        *,
        raw: bytes | None = None,
    ) -> None:
        """Feed one received message (bytes of one datagram/frame, or parsed).

        Byte-identical retransmissions of a request are absorbed before parsing (see
        ``absorb_retransmission``).  An adapter that parses by itself passes the
        datagram as ``raw`` so that its retransmissions can be recognised."""
        if isinstance(data, (bytes, bytearray)):
            if len(data) <= 4 and not data.strip(b"\r\n"):
                return  # RFC 5626 §3.5.1 keep-alive (CRLF or double CRLF)
            raw = bytes(data)
            if self._layer.absorb_raw(raw, now):
                return
            try:
                message = parse_message(raw, datagram=transport is TransportKind.UDP)
            except SipParseError as exc:
                self._answer_unparsable(exc, source, transport)
                return
        else:
            message = data
        try:
            if isinstance(message, Response):
                self._layer.receive_response(message, source, now)
            else:
                try:
                    facts = RequestFacts.of(message)
                except SipParseError as exc:
                    self._answer_malformed(message, exc, source, transport)
                    return
                self._receive_request(message, facts, source, transport, now, raw)
        except SipParseError:
            pass  # a header the parser accepted lazily is broken: drop (§18.3)
        self._drain_upcalls(now)

    def _answer_malformed(self, request: Request, exc: SipParseError, source: Addr,
                          transport: TransportKind) -> None:
        """A request whose Via, CSeq or tags do not hold up: 400 naming the problem,
        sent statelessly back to its source (§8.2, §18.3); never for an ACK."""
        if request.method != "ACK":
            with contextlib.suppress(SipParseError):
                response = make_response(request, exc.status, exc.reason)
                self._layer.send_stateless(response, source, transport)

    def absorb_retransmission(self, data: bytes, now: float) -> bool:
        """For adapters that parse datagrams themselves: ``True`` when ``data`` is a
        byte-identical retransmission of a request whose server transaction is alive
        (RFC 3261 §17.2.1, §17.2.2) - it has been absorbed and needs no parsing."""
        return self._layer.absorb_raw(data, now)

    def handle_timer(self, now: float) -> None:
        """Fire every transaction and UA timer due at ``now``."""
        self._layer.handle_timer(now)
        for session, name in self._timers.pop_due(now):
            assert isinstance(name, UaTimer)
            self._on_ua_timer(session, name, now)
        self._drain_upcalls(now)

    def get_timer(self) -> float | None:
        """The earliest deadline (same clock as ``now``), or None."""
        a = self._layer.get_timer()
        b = self._timers.next_deadline()
        if a is None:
            return b
        return a if b is None or a < b else b

    def earliest_timer_since_mark(self) -> float:
        """The earliest deadline scheduled since :meth:`mark_timers` (``inf`` when none
        was): while it is at or after a wake-up armed at :meth:`get_timer` (marked
        then), that wake-up is still early enough (``TimerHeap.earliest_since_mark``)."""
        a = self._layer.timers.earliest_since_mark()
        b = self._timers.earliest_since_mark()
        return a if a < b else b

    def mark_timers(self) -> None:
        """Call right after :meth:`get_timer` when arming a wake-up at its answer."""
        self._layer.timers.mark()
        self._timers.mark()

    def datagrams_to_send(self) -> list[Outgoing]:
        """Take everything queued for transmission: (bytes, destination, transport)."""
        out = self._layer.outgoing
        self._layer.outgoing = []
        return out

    def transport_failed(self, destination: Addr, now: float) -> None:
        """The adapter could not send to ``destination`` (ICMP error, connection
        refused or reset): every transaction towards it fails (§17.1.4, §17.2.4) and
        the TU treats it as 503 (§8.1.3.1)."""
        self._layer.report_transport_error(destination, now)
        self._drain_upcalls(now)

    def next_event(self) -> ev.Event | None:
        return self._events.popleft() if self._events else None

    def set_local_address(self, host: str, port: int) -> None:
        """Our transport moved (rebind): new Via sent-by and Contact for every dialog.
        The peers learn it from our next target refresh (``reinvite``, §12.2.1.1)."""
        self._host, self._port, self._sent_by = host, port, rq.sent_by(host, port)
        self._contact = self._make_contact()
        self._contact_field = f"<{self._contact}>"  # our Contact header value
        for session in self._sessions.values():
            if session.dialog is not None:
                session.dialog.set_local_contact(self._contact)

    def call(self, call_id: str) -> Session:
        """The session state of a call (read it; change it only through the API)."""
        session = self._sessions.get(call_id)
        if session is None:
            raise UsageError(f"no call {call_id!r}")
        return session

    @property
    def calls(self) -> int:
        return len(self._sessions)

    @property
    def transactions(self) -> int:
        return len(self._layer)

    def _make_contact(self) -> SipUri:
        return SipUri(
            scheme="sip",
            user=self.config.contact_user,
            host=self._host,
            port=self._port,
            params={}
            if self.config.transport is TransportKind.UDP
            else {"transport": self.config.transport.name.lower()},
        )

    def _answer_unparsable(
        self, exc: SipParseError, source: Addr, transport: TransportKind
    ) -> None:
        """§18.3/RFC 4475: answer a malformed request statelessly when it can be
        addressed (``partial``), else drop it."""
        partial = exc.partial
        if partial is None or partial.method == "ACK":
            return
        response = make_response(partial, exc.status, exc.reason)
        self._layer.send_stateless(response, source, transport)

    # --- supplied by subclasses --------------------------------------------------------

    def _receive_request(  # noqa: PLR0917
        self,
        request: Request,
        facts: RequestFacts,
        source: Addr,
        transport: TransportKind,
        now: float,
        raw: bytes | None = None,
    ) -> None:
        raise NotImplementedError

    def _drain_upcalls(self, now: float) -> None:
        raise NotImplementedError

    def _on_ua_timer(self, session: Session, name: UaTimer, now: float) -> None:
        raise NotImplementedError
