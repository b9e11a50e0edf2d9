"""The UAS core: requests from the network (RFC 3261 §8.2, §9.2, §12.2.2, §14.2,
§15.1.2; RFC 3515 REFER/NOTIFY; RFC 3891 Replaces)."""

from __future__ import annotations

import re

from mobilityd.sip import events as ev
from mobilityd.sip.dialog import DialogState
from mobilityd.sip.errors import SipError, StatusCode
from mobilityd.sip.message import Request, make_response
from mobilityd.sip.transaction.facts import RequestFacts
from mobilityd.sip.transaction.layer import server_key
from mobilityd.sip.transaction.machine import Transaction
from mobilityd.sip.transaction.outbound import Addr, TransportKind
from mobilityd.sip.transaction.states import TxState
from mobilityd.sip.ua import requests as rq
from mobilityd.sip.ua.actions import UaActions
from mobilityd.sip.ua.session import (
    ACK_TIMEOUT,
    CONNECTING,
    ENDED,
    ESTABLISHED,
    INCOMING,
    RETRANSMIT_2XX,
    UAS,
    CallPhase,
    PendingReinvite,
    Session,
)

_SIPFRAG_RE = re.compile(r"SIP/2\.0 ([1-6][0-9]{2}) ?([^\r\n]*)")
_KNOWN_EXTENSIONS = frozenset({"replaces", "timer"})


class InboundRequests(UaActions):
    """Dispatch of received requests to new calls, dialogs and decisions."""

    def _receive_request(  # noqa: PLR0917
        self,
        request: Request,
        facts: RequestFacts,
        source: Addr,
        transport: TransportKind,
        now: float,
        raw: bytes | None = None,
    ) -> None:
        if (self._layer.server_count >= self.config.max_server_transactions
                and request.method not in ("ACK", "CANCEL")
                and self._layer.find_server(server_key(request, facts, request.method))
                is None):
            self._refuse_overload(request, source, transport)  # new, not a retransmission
            return
        tx = self._layer.receive_request(request, facts, source, transport, now, raw)
        if tx is None:
            return  # retransmission absorbed, or ACK (handled via upcalls)
        try:
            if tx.merged:
                raise SipError(StatusCode.LOOP_DETECTED, "Loop Detected")
            self._dispatch_request(tx, request, facts, now)
        except SipError as exc:
            if tx.last_status is None or tx.last_status < 200:
                headers = None
                if isinstance(exc, _BadExtensionError):
                    headers = [("Unsupported", ", ".join(exc.options))]
                elif exc.status == StatusCode.SESSION_INTERVAL_TOO_SMALL:
                    headers = [("Min-SE", str(MIN_SE))]  # RFC 4028 §6
                elif isinstance(exc, _OverloadError):
                    headers = [("Retry-After", str(exc.retry_after))]
                elif exc.status == StatusCode.METHOD_NOT_ALLOWED:
                    headers = [("Allow", rq.ALLOW)]  # §8.2.1: a 405 lists what we allow
                self._reply(tx, exc.status, exc.reason, now, headers)

    def _refuse_overload(self, request: Request, source: Addr, transport: TransportKind
                         ) -> None:
        """Too many live server transactions: a stateless 503 + Retry-After
        (§21.5.4), holding no state for the request (retransmissions get the same)."""
        response = make_response(request, StatusCode.SERVICE_UNAVAILABLE, None,
                                 rq.new_tag(self._rng))
        response.headers.add("Retry-After", str(self.config.retry_after))
        self._layer.send_stateless(response, source, transport)

    def _dispatch_request(
        self, tx: Transaction, request: Request, facts: RequestFacts, now: float
    ) -> None:
        method = request.method
        if method == "CANCEL":
            self._on_cancel(tx, request, facts, now)
            return
        if facts.has_require:
            self._check_require(request)
        if facts.has_session_expires and method in ("INVITE", "UPDATE"):
            _check_session_interval(request)
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
            or session.phase is ENDED
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
        if len(self._sessions) >= self.config.max_calls:
            raise _OverloadError(self.config.retry_after)
        contact = facts.contact
        if facts.contacts != 1 or contact is None or contact.strip() == "*":
            raise SipError(StatusCode.BAD_REQUEST, "INVITE needs exactly one Contact")
        replaced = self._match_replaces(request) if facts.has_replaces else None
        session = Session(
            call_id=call_id,
            role=UAS,
            local_tag=rq.new_tag(self._rng),
            invite=request,
            invite_transaction=tx,
            destination=tx.destination,
            transport=tx.transport,
            phase=INCOMING,
            peer_contact=contact,  # parsed when the dialog first needs it
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
        local_tag = session.dialog.local_tag
        pending = session.incoming_reinvite
        if pending is not None:
            session.incoming_reinvite = None
            self._reply(pending.transaction, 487, "Request Terminated", now, to_tag=local_tag)
        if session.phase is INCOMING:  # BYE on an early dialog (§15)
            self._reply(
                session.invite_transaction, 487, "Request Terminated", now, to_tag=local_tag
            )
        self._reply(tx, 200, "OK", now, to_tag=local_tag)
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

    def _on_ack(self, ack: Request, facts: RequestFacts, now: float,
                raw_hash: int | None = None) -> None:
        """§13.3.1.4: the ACK for our 2xx stops its retransmission; copies of the same
        datagram are absorbed from then on (``absorb_ack_copies``)."""
        session = self._sessions.get(facts.call_id)
        if session is None or session.unacked is None or session.dialog is None:
            return
        if facts.cseq.seq != session.unacked.cseq or facts.to_tag != session.dialog.local_tag:
            return
        invite_tx = session.unacked.transaction
        self._acknowledged(session, ack, now)
        if invite_tx is not None:
            self._layer.absorb_ack_copies(raw_hash, invite_tx)

    def _acknowledged(self, session: Session, ack: Request, now: float) -> None:
        """Stop retransmitting our 2xx; the initial one's ACK establishes the call."""
        assert session.unacked is not None
        initial = session.unacked.initial
        session.unacked = None
        self._timers.cancel_all(session, (RETRANSMIT_2XX, ACK_TIMEOUT))
        if initial and session.phase is CONNECTING:
            session.phase = ESTABLISHED
            self._emit(ev.CallEstablished(session.call_id, ack))
            self._arm_session_timer(session, now)
        elif not initial:
            self._emit(ev.ReinviteConfirmed(session.call_id, ack))


MIN_SE = 90  # RFC 4028 §4/§9: the smallest session interval we accept (s)


def _check_session_interval(request: Request) -> None:
    """RFC 4028 §9: a UAC that supports timers and asks for an interval below our
    minimum gets 422 Session Interval Too Small (with Min-SE)."""
    expires = request.session_expires
    if (expires is not None and expires.delta < MIN_SE
            and "timer" in (option.lower() for option in request.supported)):
        raise SipError(StatusCode.SESSION_INTERVAL_TOO_SMALL, "Session Interval Too Small")


class _OverloadError(SipError):
    """§21.5.4: 503 Service Unavailable with Retry-After."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(StatusCode.SERVICE_UNAVAILABLE, "Service Unavailable")
        self.retry_after = retry_after


class _BadExtensionError(SipError):
    """§8.2.2.3: 420 with an Unsupported header."""

    def __init__(self, options: list[str]) -> None:
        super().__init__(StatusCode.BAD_EXTENSION, "Bad Extension")
        self.options = options
