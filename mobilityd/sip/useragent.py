"""The SIP user-agent core, sans-I/O (RFC 3261 §8, §12-§15; RFC 3515, 3891, 3892, 4028).

How to drive it (aioquic style; the asyncio adapter is a loop around these calls)::

    ua = UserAgent(UaConfig(...), rng=os.urandom)
    ua.receive(data_or_message, source_addr, now, transport)   # every datagram/frame
    ua.handle_timer(now)                                         # when get_timer() is due
    deadline = ua.get_timer()                                    # float | None (same clock)
    for out in ua.datagrams_to_send(): sock.sendto(out.data, out.destination)
    while (event := ua.next_event()) is not None: ...            # mobilityd.sip.events

Application decisions are API calls made after the corresponding event, never
callbacks: ``answer_call``/``reject_call`` after ``IncomingCallReceived``,
``accept_reinvite``/``refuse_reinvite`` after ``ReinviteReceived`` (the remote target
only moves on accept), ``accept_refer``/``refuse_refer`` + ``notify_refer_progress``
after ``ReferReceived``.  Outgoing: ``invite``, ``reinvite``, ``hangup``, ``cancel``,
``refer``, ``send_options``.  ``set_local_address`` follows a transport rebind.

Bad input never escapes: a request we cannot accept is answered with the status of the
``SipError`` raised while handling it (§8.2, §12.2.2); an unparsable message is answered
400 when it can be addressed, else dropped (§18.3); responses that match nothing are
dropped (§17.1.3) except stray 2xx to INVITE, which are ACKed again (§13.2.2.4).
``UsageError`` is our caller's mistake (unknown call, decision in the wrong state).
"""

from __future__ import annotations

import contextlib
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from mobilityd.sip import events as ev
from mobilityd.sip.dialog import Dialog, DialogState
from mobilityd.sip.errors import SipError, SipParseError, StatusCode
from mobilityd.sip.headers import Headers, Replaces
from mobilityd.sip.message import (
    Request,
    Response,
    make_response,
    parse_message,
    reason_phrase,
)
from mobilityd.sip.timers import TimerConfig, TimerHeap
from mobilityd.sip.transaction.facts import RequestFacts, split_tag
from mobilityd.sip.transaction.layer import TransactionLayer, Upcall, UpcallKind, server_key
from mobilityd.sip.transaction.machine import Transaction, TransactionStateError
from mobilityd.sip.transaction.outbound import Addr, Outgoing, TransportKind
from mobilityd.sip.transaction.states import TxKind, TxState
from mobilityd.sip.ua import requests as rq
from mobilityd.sip.ua.session import (
    CallPhase,
    CallRole,
    PendingReinvite,
    Session,
    UaTimer,
    Unacked2xx,
)
from mobilityd.sip.uri import NameAddr, SipUri

Rng = Callable[[int], bytes]
_ALL_UA_TIMERS = tuple(UaTimer)
_COPIED_TO_RESPONSE = frozenset({"Via", "From", "To", "Call-ID", "CSeq"})
_SIPFRAG_RE = re.compile(r"SIP/2\.0 ([1-6][0-9]{2}) ?([^\r\n]*)")
_KNOWN_EXTENSIONS = frozenset({"replaces", "timer"})


class UsageError(Exception):
    """Local error: the caller misused the API (unknown call, wrong state)."""


@dataclass(frozen=True, slots=True)
class UaConfig:
    """Identity and addresses of this UA.

    ``local_uri`` is our address-of-record (From of new requests); ``host``/``port``
    the sent-by of our Via and the host of our Contact; ``outbound_proxy`` a
    pre-loaded loose route (§8.1.2) for out-of-dialog requests.
    """

    local_uri: NameAddr
    host: str
    port: int
    transport: TransportKind = TransportKind.UDP
    contact_user: str | None = None
    timers: TimerConfig = field(default_factory=TimerConfig)
    outbound_proxy: SipUri | None = None
    session_expires: int | None = None  # RFC 4028: request this interval (s)
    user_agent: str | None = "mobilityd"


class UserAgent:
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
        self._sent_by = f"{config.host}:{config.port}"
        self._contact = self._make_contact()
        self._others: dict[tuple[object, ...], str] = {}  # tx key -> call id (OPTIONS...)

    # ==================================================================================
    # Driving API
    # ==================================================================================

    def receive(
        self,
        data: bytes | Request | Response,
        source: Addr,
        now: float,
        transport: TransportKind = TransportKind.UDP,
    ) -> None:
        """Feed one received message (bytes of one datagram/frame, or parsed)."""
        if isinstance(data, (bytes, bytearray)):
            if len(data) <= 4 and not data.strip(b"\r\n"):
                return  # RFC 5626 §3.5.1 keep-alive (CRLF or double CRLF)
            try:
                message = parse_message(bytes(data), datagram=transport is TransportKind.UDP)
            except SipParseError as exc:
                self._answer_unparsable(exc, source, transport)
                return
        else:
            message = data
        try:
            if isinstance(message, Response):
                self._layer.receive_response(message, source, now)
            else:
                facts = RequestFacts.of(message)
                self._receive_request(message, facts, source, transport, now)
        except SipParseError:
            pass  # a header the parser accepted lazily is broken: drop (§18.3)
        self._drain_upcalls(now)

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
        self._host, self._port, self._sent_by = host, port, f"{host}:{port}"
        self._contact = self._make_contact()
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

    # ==================================================================================
    # UAC API
    # ==================================================================================

    def invite(
        self,
        target: SipUri | NameAddr,
        now: float,
        *,
        body: bytes = b"",
        content_type: str = "application/sdp",
        destination: Addr | None = None,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> str:
        """Send a dialog-creating INVITE (§13.2.1); returns the new call's Call-ID."""
        to = target if isinstance(target, NameAddr) else NameAddr(uri=target)
        call_id = rq.new_call_id(self._rng, self._host)
        local_tag = rq.new_tag(self._rng)
        items: list[tuple[str, str]] = [
            ("Via", self._via(rq.new_branch(self._rng))),
            ("Max-Forwards", "70"),
            ("From", f"{self.config.local_uri};tag={local_tag}"),
            ("To", str(to)),
            ("Call-ID", call_id),
            ("CSeq", "1 INVITE"),
        ]
        proxy = self.config.outbound_proxy
        if proxy is not None:
            items.append(("Route", f"<{proxy.with_params(lr=None)}>"))
        items += [
            ("Contact", f"<{self._contact}>"),
            ("Allow", rq.ALLOW),
            ("Supported", rq.SUPPORTED),
        ]
        if self.config.session_expires is not None:
            items.append(("Session-Expires", str(self.config.session_expires)))
        items.extend(headers)
        if self.config.user_agent:
            items.append(("User-Agent", self.config.user_agent))
        if body:
            items.append(("Content-Type", content_type))
        request = Request("INVITE", to.uri, Headers(items), body)
        if destination is None:
            destination = rq.destination_of(proxy if proxy is not None else to.uri)
        tx = self._layer.send_request(request, destination, self.config.transport, now)
        session = Session(
            call_id=call_id,
            role=CallRole.UAC,
            local_tag=local_tag,
            invite=request,
            invite_transaction=tx,
            destination=destination,
            transport=self.config.transport,
            phase=CallPhase.CALLING,
            local_body=body,
            local_content_type=content_type,
        )
        tx.owner = session
        self._sessions[call_id] = session
        return call_id

    def cancel(self, call_id: str, now: float) -> None:
        """§9.1: CANCEL our pending INVITE (sent once a provisional has arrived)."""
        session = self.call(call_id)
        if session.role is not CallRole.UAC or session.phase is not CallPhase.CALLING:
            raise UsageError("only a UAC INVITE without final response can be cancelled")
        session.cancel_requested = True
        if session.invite_transaction.state is TxState.PROCEEDING:
            self._send_cancel(session, now)

    def hangup(self, call_id: str, now: float) -> None:
        """End a call: BYE (§15.1.1), CANCEL while calling, 603 while ringing."""
        session = self.call(call_id)
        if session.phase is CallPhase.CALLING:
            self.cancel(call_id, now)
        elif session.phase is CallPhase.INCOMING:
            self.reject_call(call_id, now, StatusCode.DECLINE)
        elif session.phase is not CallPhase.ENDED:
            self._send_bye(session, now, "local hangup")

    def reinvite(
        self,
        call_id: str,
        now: float,
        *,
        body: bytes | None = None,
        content_type: str | None = None,
    ) -> None:
        """Send a re-INVITE (§14.1) carrying our current Contact (target refresh).

        Raises ``UsageError`` while another INVITE transaction of this dialog is in
        progress (§14.1: wait for it to complete)."""
        session = self._established(call_id)
        if session.reinvite_in_progress or session.glare_retry is not None:
            raise UsageError("a re-INVITE is already in progress (RFC 3261 §14.1)")
        if body is not None:
            session.local_body = body
            session.local_content_type = content_type or session.local_content_type
        self._send_reinvite(session, now)

    def update(
        self,
        call_id: str,
        now: float,
        *,
        body: bytes | None = None,
        content_type: str | None = None,
    ) -> None:
        """Send an UPDATE (RFC 3311 §5.1) carrying our current Contact: a target
        refresh without an INVITE transaction.  Answers arrive as ``ReinviteAccepted``
        / ``ReinviteFailed`` (491 glare is retried with a re-INVITE after §14.1 back-off).
        """
        session = self._established(call_id)
        if session.reinvite_in_progress or session.glare_retry is not None:
            raise UsageError("an offer is already in progress (RFC 3311 §5.1)")
        if body is not None:
            session.local_body = body
            session.local_content_type = content_type or session.local_content_type
        session.outgoing_reinvite = self._send_in_dialog(
            session,
            "UPDATE",
            now,
            extra=[("Allow", rq.ALLOW), ("Supported", rq.SUPPORTED)],
            body=session.local_body,
            content_type=session.local_content_type,
            contact=True,
        )

    def refer(
        self,
        call_id: str,
        refer_to: SipUri | NameAddr,
        now: float,
        *,
        referred_by: NameAddr | None = None,
        replaces: Replaces | None = None,
    ) -> None:
        """REFER in the dialog (RFC 3515 §2.4.1), with Referred-By (RFC 3892) and an
        embedded Replaces (RFC 3891 §6.1) in the Refer-To URI when given."""
        session = self._established(call_id)
        target = refer_to if isinstance(refer_to, NameAddr) else NameAddr(uri=refer_to)
        if replaces is not None:
            uri = target.uri
            headers = dict(uri.headers)
            headers["Replaces"] = str(replaces)
            target = NameAddr(
                uri=SipUri(
                    scheme=uri.scheme,
                    user=uri.user,
                    host=uri.host,
                    port=uri.port,
                    params=dict(uri.params),
                    headers=headers,
                ),
                display_name=target.display_name,
                params=dict(target.params),
            )
        extra = [("Refer-To", f"<{target.uri}>")]
        if referred_by is not None:
            extra.append(("Referred-By", str(referred_by)))
        self._send_in_dialog(session, "REFER", now, extra=extra, contact=True)

    def send_options(
        self, target: SipUri | str, now: float, *, destination: Addr | None = None
    ) -> str:
        """OPTIONS (§11): in the dialog when ``target`` is a Call-ID, else out of
        dialog to a URI.  Returns the Call-ID; the answer is ``RequestAnswered``."""
        if isinstance(target, str) and target in self._sessions:
            session = self._established(target)
            self._send_in_dialog(session, "OPTIONS", now, extra=[("Accept", "application/sdp")])
            return target
        uri = target if isinstance(target, SipUri) else SipUri.parse(target)
        call_id = rq.new_call_id(self._rng, self._host)
        items = [
            ("Via", self._via(rq.new_branch(self._rng))),
            ("Max-Forwards", "70"),
            ("From", f"{self.config.local_uri};tag={rq.new_tag(self._rng)}"),
            ("To", f"<{uri}>"),
            ("Call-ID", call_id),
            ("CSeq", "1 OPTIONS"),
            ("Contact", f"<{self._contact}>"),
            ("Accept", "application/sdp"),
        ]
        request = Request("OPTIONS", uri, Headers(items))
        tx = self._layer.send_request(
            request, destination or rq.destination_of(uri), self.config.transport, now
        )
        self._others[tx.key] = call_id
        return call_id

    # ==================================================================================
    # UAS API (decisions)
    # ==================================================================================

    def answer_call(
        self,
        call_id: str,
        now: float,
        status: int = 200,
        *,
        body: bytes = b"",
        content_type: str = "application/sdp",
        reason: str | None = None,
    ) -> None:
        """Answer an incoming INVITE with a 1xx (early dialog) or 2xx (§13.3.1)."""
        session = self.call(call_id)
        if session.role is not CallRole.UAS or session.phase is not CallPhase.INCOMING:
            raise UsageError(f"call {call_id} is not waiting for an answer")
        if not 101 <= status < 300:
            raise UsageError("answer with 101-299; use reject_call for failures")
        tx = session.invite_transaction
        dialog = session.dialog
        if dialog is None:
            dialog = self._uas_dialog(session)
        headers = [("Contact", f"<{self._contact}>")]
        if tx.facts is not None and tx.facts.has_record_route:  # §12.1.1: copied to 2xx
            headers.extend(
                ("Record-Route", rr) for rr in session.invite.headers.get_all("Record-Route")
            )
        if status >= 200:
            headers += [("Allow", rq.ALLOW), ("Supported", rq.SUPPORTED)]
            headers += self._session_timer_answer(session, session.invite)
        response = self._response(
            tx, status, reason, dialog.local_tag, headers, body, content_type
        )
        data = self._layer.send_response(tx, response, now)
        if status >= 200:
            session.local_body, session.local_content_type = body, content_type
            dialog.confirm(contact=None, record_route=None)
            session.phase = CallPhase.CONNECTING
            self._start_2xx_retransmission(session, tx, data, initial=True, now=now)

    def reject_call(
        self, call_id: str, now: float, status: int = 486, reason: str | None = None
    ) -> None:
        """Refuse an incoming INVITE with 300-699 (§13.3.1.3); the call ends."""
        session = self.call(call_id)
        if session.role is not CallRole.UAS or session.phase is not CallPhase.INCOMING:
            raise UsageError(f"call {call_id} is not waiting for an answer")
        if not 300 <= status < 700:
            raise UsageError("reject with 300-699")
        response = self._response(session.invite_transaction, status, reason, session.local_tag)
        self._layer.send_response(session.invite_transaction, response, now)
        self._end(session, now, by_peer=False, reason=f"rejected with {status}")

    def accept_reinvite(
        self, call_id: str, now: float, *, body: bytes = b"", content_type: str = "application/sdp"
    ) -> None:
        """Accept the pending re-INVITE (or UPDATE, RFC 3311 §5.2): 2xx, and only now
        the remote target moves (§12.2.2) - ``RemoteTargetRefreshed`` is emitted when it
        changed."""
        session = self.call(call_id)
        pending = session.incoming_reinvite
        dialog = session.dialog
        if pending is None or dialog is None:
            raise UsageError(f"call {call_id} has no re-INVITE waiting for a decision")
        headers = [
            ("Contact", f"<{self._contact}>"),
            ("Allow", rq.ALLOW),
            ("Supported", rq.SUPPORTED),
        ]
        headers += self._session_timer_answer(session, pending.request)
        response = self._response(
            pending.transaction, 200, None, dialog.local_tag, headers, body, content_type
        )
        data = self._layer.send_response(pending.transaction, response, now)
        session.incoming_reinvite = None
        if body:
            session.local_body, session.local_content_type = body, content_type
        if pending.new_target is not None:
            old = dialog.set_remote_target(pending.new_target)
            self._emit(ev.RemoteTargetRefreshed(call_id, old, pending.new_target))
        if pending.transaction.kind is TxKind.INVITE_SERVER:  # UPDATE: no ACK (RFC 3311)
            self._start_2xx_retransmission(
                session, pending.transaction, data, initial=False, now=now
            )
        self._arm_session_timer(session, now)

    def refuse_reinvite(
        self, call_id: str, now: float, status: int = 488, reason: str | None = None
    ) -> None:
        """Refuse the pending re-INVITE; the dialog and session stay as they were."""
        session = self.call(call_id)
        pending = session.incoming_reinvite
        if pending is None or session.dialog is None:
            raise UsageError(f"call {call_id} has no re-INVITE waiting for a decision")
        if not 300 <= status < 700:
            raise UsageError("refuse with 300-699")
        response = self._response(pending.transaction, status, reason, session.dialog.local_tag)
        session.incoming_reinvite = None
        self._layer.send_response(pending.transaction, response, now)

    def accept_refer(self, call_id: str, now: float) -> None:
        """202 Accepted and the first NOTIFY (100 Trying) of the implicit
        subscription (RFC 3515 §2.4.2, §2.4.4)."""
        session = self.call(call_id)
        tx = session.incoming_refer
        if tx is None or session.dialog is None:
            raise UsageError(f"call {call_id} has no REFER waiting for a decision")
        session.incoming_refer = None
        response = self._response(
            tx,
            202,
            "Accepted",
            session.dialog.local_tag,
            [("Contact", f"<{self._contact}>")],
        )
        self._layer.send_response(tx, response, now)
        session.refer_event_id = str(tx.request.cseq.seq)
        self.notify_refer_progress(call_id, 100, "Trying", now)

    def refuse_refer(
        self, call_id: str, now: float, status: int = 603, reason: str | None = None
    ) -> None:
        session = self.call(call_id)
        tx = session.incoming_refer
        if tx is None or session.dialog is None:
            raise UsageError(f"call {call_id} has no REFER waiting for a decision")
        session.incoming_refer = None
        self._layer.send_response(
            tx, self._response(tx, status, reason, session.dialog.local_tag), now
        )

    def notify_refer_progress(self, call_id: str, status: int, reason: str, now: float) -> None:
        """NOTIFY with a ``message/sipfrag`` status line (RFC 3515 §2.4.5, RFC 3420);
        a final status (>= 200) terminates the subscription (§2.4.7)."""
        session = self._established(call_id)
        if session.refer_event_id is None:
            raise UsageError(f"call {call_id} has no accepted REFER")
        final = status >= 200
        state = "terminated;reason=noresource" if final else "active;expires=60"
        extra = [("Event", f"refer;id={session.refer_event_id}"), ("Subscription-State", state)]
        body = f"SIP/2.0 {status} {reason}\r\n".encode()
        self._send_in_dialog(
            session,
            "NOTIFY",
            now,
            extra=extra,
            body=body,
            content_type="message/sipfrag;version=2.0",
            contact=True,
        )
        if final:
            session.refer_event_id = None

    # ==================================================================================
    # Inbound requests (UAS core, §8.2)
    # ==================================================================================

    def _receive_request(
        self,
        request: Request,
        facts: RequestFacts,
        source: Addr,
        transport: TransportKind,
        now: float,
    ) -> None:
        tx = self._layer.receive_request(request, facts, source, transport, now)
        if tx is None:
            return  # retransmission absorbed, or ACK (handled via upcalls)
        try:
            if tx.merged:
                raise SipError(StatusCode.LOOP_DETECTED, "Loop Detected")
            self._dispatch_request(tx, request, facts, now)
        except SipError as exc:
            if tx.last_response is None or tx.last_response.status < 200:
                headers = None
                if isinstance(exc, _BadExtensionError):
                    headers = [("Unsupported", ", ".join(exc.options))]
                self._reply(tx, exc.status, exc.reason, now, headers)

    def _dispatch_request(
        self, tx: Transaction, request: Request, facts: RequestFacts, now: float
    ) -> None:
        method = request.method
        if method == "CANCEL":
            self._on_cancel(tx, request, facts, now)
            return
        if facts.has_require:
            self._check_require(request)
        to_tag = facts.to_tag
        if to_tag is None:
            if method == "INVITE":
                self._on_new_invite(tx, request, facts)
            elif method == "OPTIONS":
                self._reply(tx, 200, "OK", now, self._capabilities())
            elif method in ("BYE", "NOTIFY", "REFER"):
                raise SipError(
                    StatusCode.CALL_OR_TRANSACTION_DOES_NOT_EXIST, "Call/Transaction Does Not Exist"
                )
            else:
                raise SipError(StatusCode.METHOD_NOT_ALLOWED, "Method Not Allowed")
            return
        session = self._sessions.get(facts.call_id)
        dialog = session.dialog if session is not None else None
        if (
            session is None
            or dialog is None
            or dialog.local_tag != to_tag
            or dialog.remote_tag != (facts.from_tag or "")
            or session.phase is CallPhase.ENDED
        ):
            raise SipError(
                StatusCode.CALL_OR_TRANSACTION_DOES_NOT_EXIST, "Call/Transaction Does Not Exist"
            )  # §12.2.2
        dialog.check_remote_seq(facts.cseq.seq, method)
        tx.owner = session
        if method in ("INVITE", "UPDATE"):
            self._on_reinvite(session, tx, request, now)
        elif method == "BYE":
            self._on_bye(session, tx, now)
        elif method == "REFER":
            self._on_refer(session, tx, request)
        elif method == "NOTIFY":
            self._on_notify(session, tx, request, now)
        elif method == "OPTIONS":
            self._reply(tx, 200, "OK", now, self._capabilities(), to_tag=dialog.local_tag)
        else:
            raise SipError(StatusCode.METHOD_NOT_ALLOWED, "Method Not Allowed")

    def _on_new_invite(self, tx: Transaction, request: Request, facts: RequestFacts) -> None:
        call_id = facts.call_id
        if call_id in self._sessions:
            # Same Call-ID, no To tag, different transaction: a second INVITE of a
            # call we already have (e.g. forked copy) - §8.2.2.2.
            raise SipError(StatusCode.LOOP_DETECTED, "Loop Detected")
        contacts = request.contacts
        if len(contacts) != 1 or contacts[0].wildcard:
            raise SipError(StatusCode.BAD_REQUEST, "INVITE needs exactly one Contact")
        replaced = self._match_replaces(request) if facts.has_replaces else None
        session = Session(
            call_id=call_id,
            role=CallRole.UAS,
            local_tag=rq.new_tag(self._rng),
            invite=request,
            invite_transaction=tx,
            destination=tx.destination,
            transport=tx.transport,
            phase=CallPhase.INCOMING,
            peer_contact=contacts[0].uri,
        )
        tx.owner = session
        self._sessions[call_id] = session
        session.replaces_call_id = replaced
        self._emit(ev.IncomingCallReceived(call_id, request, replaced))

    def _match_replaces(self, request: Request) -> str | None:
        """RFC 3891 §3: the dialog a Replaces header names, 481 when there is none,
        486 when ``early-only`` names a confirmed dialog."""
        replaces = request.replaces
        if replaces is None:
            return None
        session = self._sessions.get(replaces.call_id)
        dialog = session.dialog if session is not None else None
        if (
            session is None
            or dialog is None
            or session.phase is CallPhase.ENDED
            or dialog.local_tag != replaces.to_tag
            or dialog.remote_tag != replaces.from_tag
        ):
            raise SipError(
                StatusCode.CALL_OR_TRANSACTION_DOES_NOT_EXIST,
                "Replaced dialog not found (RFC 3891 §3)",
            )
        if replaces.early_only and dialog.state is DialogState.CONFIRMED:
            raise SipError(StatusCode.BUSY_HERE, "Replaced dialog is confirmed")
        return session.call_id

    def _on_reinvite(self, session: Session, tx: Transaction, request: Request, now: float) -> None:
        dialog = session.dialog
        assert dialog is not None
        if session.outgoing_reinvite is not None:
            raise SipError(StatusCode.REQUEST_PENDING, "Request Pending")  # §14.2 glare
        unacked = session.unacked
        if unacked is not None and request.method == "INVITE" \
                and tx.request.cseq.seq > unacked.cseq:
            # The peer sends a new INVITE, so its previous INVITE transaction is over: it
            # got our 2xx (§14.1) and only its ACK was lost.  Take it as acknowledged.
            self._acknowledged(session, request, now)
        if session.incoming_reinvite is not None or session.unacked is not None:
            # §14.2: an INVITE while our answer to the previous one is pending.
            self._reply(
                tx,
                500,
                "Server Internal Error",
                now,
                [("Retry-After", "1")],
                to_tag=dialog.local_tag,
            )
            return
        contacts = request.contacts
        contact = contacts[0].uri if len(contacts) == 1 else None
        new_target = dialog.target_refresh_of(request.method, contact)
        session.incoming_reinvite = PendingReinvite(tx, request, new_target)
        self._emit(ev.ReinviteReceived(session.call_id, request, new_target))

    def _on_bye(self, session: Session, tx: Transaction, now: float) -> None:
        """§15.1.2: answer 200, 487 to a pending INVITE of the dialog, end the call."""
        assert session.dialog is not None
        pending = session.incoming_reinvite
        if pending is not None:
            session.incoming_reinvite = None
            self._reply(
                pending.transaction, 487, "Request Terminated", now, to_tag=session.dialog.local_tag
            )
        self._reply(tx, 200, "OK", now, to_tag=session.dialog.local_tag)
        self._end(session, now, by_peer=True, reason="BYE received")

    def _on_cancel(
        self, tx: Transaction, request: Request, facts: RequestFacts, now: float
    ) -> None:
        """§9.2: 200 to the CANCEL; 487 to the INVITE if it was still unanswered."""
        invite_tx = self._layer.find_server(server_key(request, facts, "INVITE"))
        if invite_tx is None:
            raise SipError(
                StatusCode.CALL_OR_TRANSACTION_DOES_NOT_EXIST, "Call/Transaction Does Not Exist"
            )
        session = invite_tx.owner
        to_tag = None
        if isinstance(session, Session):
            to_tag = session.dialog.local_tag if session.dialog else session.local_tag
        self._reply(tx, 200, "OK", now, to_tag=to_tag)
        if invite_tx.state is not TxState.PROCEEDING or not isinstance(session, Session):
            return  # already answered: the CANCEL has no effect
        self._reply(invite_tx, 487, "Request Terminated", now, to_tag=to_tag)
        if session.phase is CallPhase.INCOMING:
            self._emit(ev.CallCancelled(session.call_id))
            self._end(session, now, by_peer=True, reason="cancelled", emit=False)
        elif (
            session.incoming_reinvite is not None
            and session.incoming_reinvite.transaction is invite_tx
        ):
            session.incoming_reinvite = None
            self._emit(ev.ReinviteCancelled(session.call_id))

    def _on_refer(self, session: Session, tx: Transaction, request: Request) -> None:
        refer_to = request.refer_to
        if refer_to is None or len(request.headers.get_all("Refer-To")) != 1:
            raise SipError(StatusCode.BAD_REQUEST, "REFER needs one Refer-To (RFC 3515 §2.4.1)")
        if session.incoming_refer is not None:
            raise SipError(StatusCode.REQUEST_PENDING, "Request Pending")
        session.incoming_refer = tx
        self._emit(ev.ReferReceived(session.call_id, refer_to, request.referred_by, request))

    def _on_notify(self, session: Session, tx: Transaction, request: Request, now: float) -> None:
        event = request.event
        if event is None or event.package.lower() != "refer":
            raise SipError(StatusCode.BAD_EVENT, "Bad Event")  # RFC 6665 §4.1.3
        match = _SIPFRAG_RE.match(request.body.decode("utf-8", "replace"))
        if match is None:
            raise SipError(StatusCode.BAD_REQUEST, "NOTIFY body is not a sipfrag status line")
        state = request.subscription_state
        terminated = state is not None and state.state.lower() == "terminated"
        assert session.dialog is not None
        self._reply(tx, 200, "OK", now, to_tag=session.dialog.local_tag)
        self._emit(
            ev.ReferProgressNotified(
                session.call_id, int(match.group(1)), match.group(2), terminated
            )
        )

    def _check_require(self, request: Request) -> None:
        """§8.2.2.3: 420 Bad Extension listing what we do not support."""
        if request.method in ("ACK", "CANCEL"):
            return
        unsupported = [opt for opt in request.require if opt.lower() not in _KNOWN_EXTENSIONS]
        if unsupported:
            raise _BadExtensionError(unsupported)

    # ==================================================================================
    # Upcalls from the transaction layer
    # ==================================================================================

    def _drain_upcalls(self, now: float) -> None:
        upcalls = self._layer.upcalls
        while upcalls:
            upcall = upcalls.popleft()
            try:
                self._on_upcall(upcall, now)
            except SipParseError:
                continue  # a malformed header in a response/ACK: dropped (§18.3)

    def _on_upcall(self, upcall: Upcall, now: float) -> None:
        kind, tx, message = upcall.kind, upcall.transaction, upcall.message
        if kind is UpcallKind.ACK:
            assert isinstance(message, Request) and upcall.facts is not None
            self._on_ack(message, upcall.facts, now)
        elif kind is UpcallKind.STRAY_2XX:
            assert isinstance(message, Response)
            self._on_stray_2xx(message)
        elif tx is None:
            return
        elif kind is UpcallKind.RESPONSE:
            assert isinstance(message, Response)
            self._on_response(tx, message, now)
        else:
            timeout = kind is UpcallKind.TIMEOUT
            status = 408 if timeout else 503
            reason = "Request Timeout" if timeout else "Service Unavailable (transport)"
            if tx.kind is TxKind.INVITE_SERVER or tx.kind is TxKind.NON_INVITE_SERVER:
                self._on_server_failure(tx, timeout, now)
            else:
                self._on_client_failure(tx, status, reason, now, timeout)

    def _on_ack(self, ack: Request, facts: RequestFacts, now: float) -> None:
        """§13.3.1.4: the ACK for our 2xx stops its retransmission."""
        session = self._sessions.get(facts.call_id)
        if session is None or session.unacked is None or session.dialog is None:
            return
        if facts.cseq.seq != session.unacked.cseq or facts.to_tag != session.dialog.local_tag:
            return
        self._acknowledged(session, ack, now)

    def _acknowledged(self, session: Session, ack: Request, now: float) -> None:
        """Stop retransmitting our 2xx; the initial one's ACK establishes the call."""
        assert session.unacked is not None
        initial = session.unacked.initial
        session.unacked = None
        self._timers.cancel_all(session, (UaTimer.RETRANSMIT_2XX, UaTimer.ACK_TIMEOUT))
        if initial and session.phase is CallPhase.CONNECTING:
            session.phase = CallPhase.ESTABLISHED
            self._emit(ev.CallEstablished(session.call_id, ack))
            self._arm_session_timer(session, now)

    def _on_stray_2xx(self, response: Response) -> None:
        """A 2xx retransmission after our INVITE transaction ended: ACK it again."""
        session = self._sessions.get(response.call_id)
        if session is None:
            return
        ack = session.acks.get(response.cseq.seq)
        if ack is not None:
            self._layer.resend(ack, session.destination, session.transport)

    def _on_response(self, tx: Transaction, response: Response, now: float) -> None:
        owner = tx.owner
        if not isinstance(owner, Session):
            self._on_other_response(tx, response)
            return
        session = owner
        if tx is session.invite_transaction:
            self._on_invite_response(session, response, now)
        elif tx is session.outgoing_reinvite or tx.kind is TxKind.INVITE_CLIENT:
            # re-INVITE or UPDATE (both target refresh requests, §12.2, RFC 3311)
            self._on_reinvite_response(session, tx, response, now)
        elif response.status >= 200:
            method = tx.method
            if method == "REFER":
                self._emit(ev.ReferAnswered(session.call_id, response.status, response.reason))
            elif method != "CANCEL":
                self._emit(ev.RequestAnswered(session.call_id, method, response))
            if response.status in (408, 481) and method not in ("BYE", "CANCEL"):
                self._end_after_failure(session, now, response.status)  # §12.2.1.2

    def _on_other_response(self, tx: Transaction, response: Response) -> None:
        call_id = self._others.pop(tx.key, None) if response.status >= 200 else None
        if call_id is not None:
            self._emit(ev.RequestAnswered(call_id, tx.method, response))

    def _on_invite_response(self, session: Session, response: Response, now: float) -> None:
        status = response.status
        if status < 200:
            if status > 100:
                to_tag = response.to.tag
                if to_tag is not None and session.dialog is None:
                    session.dialog = self._uac_dialog(session, response, early=True)
                self._emit(ev.ProvisionalResponseReceived(session.call_id, response))
            if session.cancel_requested:
                self._send_cancel(session, now)
            return
        if status >= 300:
            if session.phase is CallPhase.CALLING:
                self._end(
                    session, now, by_peer=True, reason=f"{status} {response.reason}", emit=False
                )
                self._emit(ev.CallFailed(session.call_id, status, response.reason))
            return
        self._on_invite_2xx(session, response, now)

    def _on_invite_2xx(self, session: Session, response: Response, now: float) -> None:
        seq = response.cseq.seq
        ack = session.acks.get(seq)
        if ack is not None:  # retransmitted 2xx: ACK again (§13.2.2.4)
            self._layer.resend(ack, session.destination, session.transport)
            return
        to_tag = response.to.tag or ""
        dialog = session.dialog
        if dialog is not None and dialog.remote_tag != to_tag:
            # A 2xx from another fork: ACK it, then BYE that dialog (§13.2.2.4).
            other = self._uac_dialog(session, response, early=False)
            self._send_ack(session, other, seq)
            self._send_bye_for(other, session, now)
            return
        if dialog is None:
            dialog = session.dialog = self._uac_dialog(session, response, early=False)
        else:
            contacts = response.contacts
            dialog.confirm(
                contact=contacts[0].uri if contacts else None, record_route=response.record_route
            )
        self._send_ack(session, dialog, seq)
        self._read_session_timer(session, response)
        if session.phase is CallPhase.CALLING:
            session.phase = CallPhase.ESTABLISHED
            self._emit(ev.CallEstablished(session.call_id, response))
            if session.cancel_requested:
                self._send_bye(session, now, "cancelled but answered (§9.1)")
                return
            self._arm_session_timer(session, now)

    def _on_reinvite_response(
        self, session: Session, tx: Transaction, response: Response, now: float
    ) -> None:
        status = response.status
        dialog = session.dialog
        if status < 200 or dialog is None:
            return
        if status < 300:
            if tx.kind is TxKind.INVITE_CLIENT:
                seq = response.cseq.seq
                ack = session.acks.get(seq)
                if ack is not None:
                    self._layer.resend(ack, session.destination, session.transport)
                    return
                self._send_ack(session, dialog, seq)
            if tx is session.outgoing_reinvite:
                session.outgoing_reinvite = None
            contacts = response.contacts
            new_target = dialog.target_refresh_of("INVITE", contacts[0].uri if contacts else None)
            if new_target is not None:  # §12.2.1.2: a 2xx to a target refresh
                old = dialog.set_remote_target(new_target)
                self._emit(ev.RemoteTargetRefreshed(session.call_id, old, new_target))
            self._read_session_timer(session, response)
            self._emit(ev.ReinviteAccepted(session.call_id, response))
            self._arm_session_timer(session, now)
            return
        if tx is session.outgoing_reinvite:
            session.outgoing_reinvite = None
        retry_at = None
        if status == StatusCode.REQUEST_PENDING:
            retry_at = now + self._glare_backoff(session)
        elif status == StatusCode.SERVER_INTERNAL_ERROR:
            retry_after = _retry_after(response)  # §14.2: the peer's INVITE was pending
            retry_at = None if retry_after is None else now + retry_after
        if retry_at is not None:
            session.glare_retry = (session.local_body, session.local_content_type)
            self._timers.schedule(session, UaTimer.GLARE_RETRY, retry_at)
        self._emit(ev.ReinviteFailed(session.call_id, status, response.reason, retry_at))
        if status in (408, 481):
            self._end_after_failure(session, now, status)

    def _on_client_failure(
        self, tx: Transaction, status: int, reason: str, now: float, timeout: bool
    ) -> None:
        owner = tx.owner
        if not isinstance(owner, Session):
            call_id = self._others.pop(tx.key, None)
            if call_id is not None:
                self._emit(ev.RequestFailed(call_id, tx.method, status, reason))
            return
        session = owner
        if tx is session.invite_transaction and session.phase is CallPhase.CALLING:
            self._end(session, now, by_peer=False, reason=reason, emit=False)
            self._emit(ev.CallFailed(session.call_id, status, reason))
            return
        if tx is session.outgoing_reinvite:
            session.outgoing_reinvite = None
            self._emit(ev.ReinviteFailed(session.call_id, status, reason))
        elif tx.method not in ("CANCEL", "ACK"):
            self._emit(ev.RequestFailed(session.call_id, tx.method, status, reason))
        if timeout and tx.method != "BYE" and session.phase is not CallPhase.ENDED:
            self._end_after_failure(session, now, status)

    def _on_server_failure(self, tx: Transaction, timeout: bool, now: float) -> None:
        """Timer H (no ACK for our non-2xx) or a transport error answering."""
        owner = tx.owner
        if isinstance(owner, Session) and not timeout and owner.phase is CallPhase.INCOMING:
            self._end(owner, now, by_peer=False, reason="transport error")

    # ==================================================================================
    # UA timers
    # ==================================================================================

    def _on_ua_timer(self, session: Session, name: UaTimer, now: float) -> None:
        if name is UaTimer.FORGET:
            if session.phase is CallPhase.ENDED and self._sessions.get(session.call_id) is session:
                del self._sessions[session.call_id]
        elif name is UaTimer.RETRANSMIT_2XX:
            unacked = session.unacked
            if unacked is not None:
                self._layer.resend(unacked.data, unacked.destination, unacked.transport)
                unacked.interval = min(2 * unacked.interval, self.config.timers.t2)
                self._timers.schedule(session, UaTimer.RETRANSMIT_2XX, now + unacked.interval)
        elif name is UaTimer.ACK_TIMEOUT:
            if session.unacked is not None:
                session.unacked = None
                self._timers.cancel(session, UaTimer.RETRANSMIT_2XX)
                self._send_bye(session, now, "no ACK for our 2xx (§13.3.1.4)")
        elif name is UaTimer.GLARE_RETRY:
            if session.glare_retry is not None and session.phase is CallPhase.ESTABLISHED:
                session.local_body, session.local_content_type = session.glare_retry
                session.glare_retry = None
                if session.reinvite_in_progress:
                    self._timers.schedule(
                        session, UaTimer.GLARE_RETRY, now + self._glare_backoff(session)
                    )
                    session.glare_retry = (session.local_body, session.local_content_type)
                else:
                    self._send_reinvite(session, now)
        elif name is UaTimer.SESSION_REFRESH:
            if session.phase is CallPhase.ESTABLISHED and not session.reinvite_in_progress:
                self._emit(ev.SessionRefreshDue(session.call_id))
                self._send_reinvite(session, now)
        elif name is UaTimer.SESSION_EXPIRY and session.phase is CallPhase.ESTABLISHED:
            self._send_bye(session, now, "session expired (RFC 4028 §10)")

    def _glare_backoff(self, session: Session) -> float:
        """§14.1: owner of the Call-ID waits 2.1-4 s (10 ms units), the other 0-2 s."""
        fraction = int.from_bytes(self._rng(4), "big") / 2**32
        if session.owns_call_id:
            return 2.1 + round(fraction * 190) / 100
        return round(fraction * 200) / 100

    def _start_2xx_retransmission(
        self, session: Session, tx: Transaction, data: bytes, *, initial: bool, now: float
    ) -> None:
        t1 = self.config.timers.t1
        seq = tx.facts.cseq.seq if tx.facts is not None else tx.request.cseq.seq
        session.unacked = Unacked2xx(data, seq, tx.destination, tx.transport, t1, initial, tx)
        self._timers.schedule(session, UaTimer.RETRANSMIT_2XX, now + t1)
        self._timers.schedule(session, UaTimer.ACK_TIMEOUT, now + self.config.timers.timeout)

    # --- session timers (RFC 4028) ----------------------------------------------------

    def _session_timer_answer(self, session: Session, request: Request) -> list[tuple[str, str]]:
        """RFC 4028 §9: echo Session-Expires with a refresher in our 2xx."""
        expires = request.session_expires
        if expires is None:
            return []
        uac_supports = "timer" in (opt.lower() for opt in request.supported)
        refresher = expires.refresher or ("uac" if uac_supports else "uas")
        session.session_interval = expires.delta
        session.we_refresh = refresher == "uas"  # we are the UAS of this request
        headers = [("Session-Expires", f"{expires.delta};refresher={refresher}")]
        if uac_supports:
            headers.append(("Require", "timer"))
        return headers

    def _read_session_timer(self, session: Session, response: Response) -> None:
        """RFC 4028 §7.2: the 2xx to our request says who refreshes (we are its UAC)."""
        expires = response.session_expires
        if expires is None:
            return
        session.session_interval = expires.delta
        session.we_refresh = (expires.refresher or "uac") == "uac"

    def _arm_session_timer(self, session: Session, now: float) -> None:
        interval = session.session_interval
        if interval is None or session.phase is not CallPhase.ESTABLISHED:
            return
        self._timers.cancel_all(session, (UaTimer.SESSION_REFRESH, UaTimer.SESSION_EXPIRY))
        if session.we_refresh:
            self._timers.schedule(session, UaTimer.SESSION_REFRESH, now + interval / 2)
        else:  # §10: BYE at interval - min(32, interval/3) without a refresh
            self._timers.schedule(
                session, UaTimer.SESSION_EXPIRY, now + interval - min(32, interval / 3)
            )

    # ==================================================================================
    # Sending helpers
    # ==================================================================================

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

    def _via(self, branch: str) -> str:
        return rq.via_value(self.config.transport.name, self._sent_by, branch)

    def _emit(self, event: ev.Event) -> None:
        self._events.append(event)

    def _established(self, call_id: str) -> Session:
        session = self.call(call_id)
        if session.dialog is None or session.phase not in (
            CallPhase.ESTABLISHED,
            CallPhase.CONNECTING,
        ):
            raise UsageError(f"call {call_id} is not established")
        return session

    def _response(  # noqa: PLR0917
        self,
        tx: Transaction,
        status: int,
        reason: str | None,
        to_tag: str | None,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        content_type: str = "application/sdp",
    ) -> Response:
        """§8.2.6.2: Via, From, To (plus our tag), Call-ID and CSeq copied verbatim."""
        facts = tx.facts
        assert facts is not None
        add_tag = to_tag is not None and facts.to_tag is None and status != 100
        items: list[tuple[str, str]] = []
        for name, value in tx.request.headers:
            if name in _COPIED_TO_RESPONSE:
                if name == "To" and add_tag:
                    items.append((name, f"{value};tag={to_tag}"))
                else:
                    items.append((name, value))
        if headers:
            items.extend(headers)
        if body:
            items.append(("Content-Type", content_type))
        return Response(status, reason or reason_phrase(status), Headers(items), body)

    def _reply(
        self,
        tx: Transaction,
        status: int,
        reason: str,
        now: float,
        headers: list[tuple[str, str]] | None = None,
        *,
        to_tag: str | None = None,
    ) -> None:
        if to_tag is None and status > 100:
            to_tag = rq.new_tag(self._rng)
        response = self._response(tx, status, reason, to_tag, headers)
        with contextlib.suppress(TransactionStateError):
            # already answered (e.g. a CANCEL raced our final response)
            self._layer.send_response(tx, response, now)

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

    def _capabilities(self) -> list[tuple[str, str]]:
        return [
            ("Allow", rq.ALLOW),
            ("Accept", "application/sdp, message/sipfrag"),
            ("Supported", rq.SUPPORTED),
        ]

    def _send_in_dialog(
        self,
        session: Session,
        method: str,
        now: float,
        *,
        extra: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        content_type: str | None = None,
        contact: bool = False,
    ) -> Transaction:
        dialog = session.dialog
        assert dialog is not None
        request = rq.in_dialog_request(
            dialog,
            method,
            via=self._via(rq.new_branch(self._rng)),
            cseq=dialog.next_local_seq(self._initial_seq()),
            contact=contact,
            body=body,
            content_type=content_type,
            extra=extra or (),
        )
        destination = self._dialog_destination(dialog)
        session.destination = destination
        tx = self._layer.send_request(request, destination, session.transport, now)
        tx.owner = session
        return tx

    def _initial_seq(self) -> int:
        return 1

    def _send_reinvite(self, session: Session, now: float) -> None:
        extra = [("Allow", rq.ALLOW), ("Supported", rq.SUPPORTED)]
        if session.session_interval is not None:
            refresher = "uac" if session.we_refresh else "uas"
            extra.append(("Session-Expires", f"{session.session_interval};refresher={refresher}"))
        session.outgoing_reinvite = self._send_in_dialog(
            session,
            "INVITE",
            now,
            extra=extra,
            body=session.local_body,
            content_type=session.local_content_type,
            contact=True,
        )

    def _send_ack(self, session: Session, dialog: Dialog, seq: int) -> None:
        ack = rq.ack_for_2xx(dialog, via=self._via(rq.new_branch(self._rng)), cseq=seq)
        destination = self._dialog_destination(dialog)
        session.destination = destination
        data = self._layer.send_stateless(ack, destination, session.transport)
        session.acks[seq] = data

    def _send_cancel(self, session: Session, now: float) -> None:
        if session.cancel_sent:
            return
        session.cancel_sent = True  # a 2xx that races the CANCEL gets a BYE (§9.1)
        cancel = rq.cancel_for(session.invite)
        tx = self._layer.send_request(cancel, session.destination, session.transport, now)
        tx.owner = session

    def _send_bye(self, session: Session, now: float, reason: str) -> None:
        if session.dialog is not None and not session.bye_sent:
            session.bye_sent = True
            self._send_in_dialog(session, "BYE", now)
        self._end(session, now, by_peer=False, reason=reason)

    def _send_bye_for(self, dialog: Dialog, session: Session, now: float) -> None:
        request = rq.in_dialog_request(
            dialog,
            "BYE",
            via=self._via(rq.new_branch(self._rng)),
            cseq=dialog.next_local_seq(),
            contact=False,
        )
        self._layer.send_request(request, self._dialog_destination(dialog), session.transport, now)

    def _end_after_failure(self, session: Session, now: float, status: int) -> None:
        """§12.2.1.2: 481 or 408 to an in-dialog request ends the dialog."""
        if session.phase is not CallPhase.ENDED:
            self._send_bye(session, now, f"in-dialog request answered {status}")

    def _end(
        self, session: Session, now: float, *, by_peer: bool, reason: str, emit: bool = True
    ) -> None:
        """Mark the call ended; it is forgotten once its transactions are gone."""
        if session.phase is CallPhase.ENDED:
            return
        session.phase = CallPhase.ENDED
        if session.dialog is not None:
            session.dialog.state = DialogState.TERMINATED
        self._timers.cancel_all(session, _ALL_UA_TIMERS)
        session.unacked = None
        if emit:
            self._emit(ev.CallEnded(session.call_id, by_peer, reason))
        # Keep the session for 64*T1 so that retransmitted 2xx/BYE still find it.
        self._timers.schedule(session, UaTimer.FORGET, now + self.config.timers.timeout)

    # --- dialogs ------------------------------------------------------------------------

    def _dialog_destination(self, dialog: Dialog) -> Addr:
        """§12.2.1.1 then §8.1.2: the first route, else the outbound proxy we are
        configured with, else the remote target."""
        proxy = self.config.outbound_proxy
        if dialog.route_set or proxy is None:
            return rq.destination_of(dialog.next_hop())
        return rq.destination_of(proxy)

    def _uac_dialog(self, session: Session, response: Response, *, early: bool) -> Dialog:
        invite = session.invite
        contacts = response.contacts
        return Dialog.as_uac(
            call_id=session.call_id,
            local_tag=session.local_tag,
            local_uri=split_tag(invite.headers.get("From") or "")[0],
            remote_uri=invite.headers.get("To") or "",
            local_target=self._contact,
            local_seq=invite.cseq.seq,
            remote_tag=response.to.tag or "",
            contact=contacts[0].uri if contacts else None,
            record_route=response.record_route,
            request_uri=invite.uri,
            early=early,
        )

    def _uas_dialog(self, session: Session) -> Dialog:
        invite = session.invite
        facts = session.invite_transaction.facts
        assert facts is not None and session.peer_contact is not None
        dialog = Dialog.as_uas(
            call_id=session.call_id,
            local_tag=session.local_tag,
            local_uri=facts.to_value,
            remote_uri=facts.from_value,
            local_target=self._contact,
            remote_tag=facts.from_tag,
            remote_seq=facts.cseq.seq,
            contact=session.peer_contact,
            record_route=invite.record_route if facts.has_record_route else [],
            request_uri=invite.uri,
        )
        session.dialog = dialog
        return dialog


def _retry_after(response: Response) -> float | None:
    """Retry-After delta-seconds (§20.33), capped at 10 s for a re-INVITE retry."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    digits = value.split(";", 1)[0].split("(", 1)[0].strip()
    return min(float(digits), 10.0) if digits.isdigit() else None


class _BadExtensionError(SipError):
    """§8.2.2.3: 420 with an Unsupported header."""

    def __init__(self, options: list[str]) -> None:
        super().__init__(StatusCode.BAD_EXTENSION, "Bad Extension")
        self.options = options
