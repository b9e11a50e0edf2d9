"""The UAC core: responses, timeouts and transport errors coming up from the
transaction layer (RFC 3261 §13.2.2, §14.1, §12.2.1.2, §17.1.4)."""

from __future__ import annotations

from mobilityd.sip import events as ev
from mobilityd.sip.errors import SipParseError, StatusCode
from mobilityd.sip.message import (
    Request,
    Response,
)
from mobilityd.sip.transaction.layer import Upcall, UpcallKind
from mobilityd.sip.transaction.machine import Transaction
from mobilityd.sip.transaction.states import TxKind
from mobilityd.sip.ua import auth
from mobilityd.sip.ua.inbound import InboundRequests
from mobilityd.sip.ua.session import (
    CallPhase,
    Session,
    UaTimer,
)


class ResponseHandling(InboundRequests):
    """Upcalls of the transaction layer: responses, ACKs, timeouts, failures."""

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
            self._on_ack(message, upcall.facts, now, upcall.raw_hash)
        elif kind is UpcallKind.STRAY_2XX:
            assert isinstance(message, Response)
            self._on_stray_2xx(message)
        elif tx is None:
            return
        elif kind is UpcallKind.RESPONSE:
            assert isinstance(message, Response)
            self._on_response(tx, upcall.owner, message, now)
        else:
            timeout = kind is UpcallKind.TIMEOUT
            status = 408 if timeout else 503
            reason = "Request Timeout" if timeout else "Service Unavailable (transport)"
            if tx.kind is TxKind.INVITE_SERVER or tx.kind is TxKind.NON_INVITE_SERVER:
                self._on_server_failure(upcall.owner, timeout, now)
            else:
                self._on_client_failure(tx, upcall.owner, status, reason, now, timeout)

    def _on_stray_2xx(self, response: Response) -> None:
        """A 2xx retransmission after our INVITE transaction ended: ACK it again."""
        session = self._sessions.get(response.call_id)
        if session is None:
            return
        ack = session.acks.get((response.cseq.seq, response.to.tag or ""))
        if ack is not None:
            self._layer.resend(ack[0], ack[1], session.transport)

    def _on_response(
        self, tx: Transaction, owner: object, response: Response, now: float
    ) -> None:
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
            if (auth.is_challenge(response.status) and method not in ("CANCEL", "ACK")
                    and self._retry_in_dialog_with_credentials(session, tx, response, now)):
                return  # §22.2: re-sent with credentials; its answer is reported
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
                if self._retry_invite_with_credentials(session, response, now):
                    return
                self._end(
                    session, now, by_peer=True, reason=f"{status} {response.reason}", emit=False
                )
                self._emit(ev.CallFailed(session.call_id, status, response.reason, response))
            return
        self._on_invite_2xx(session, response, now)

    def _on_invite_2xx(self, session: Session, response: Response, now: float) -> None:
        seq = response.cseq.seq
        to_tag = response.to.tag or ""
        ack = session.acks.get((seq, to_tag))
        if ack is not None:  # retransmitted 2xx: ACK again (§13.2.2.4)
            self._layer.resend(ack[0], ack[1], session.transport)
            return
        dialog = session.dialog
        if dialog is not None and dialog.remote_tag != to_tag:
            if session.phase is not CallPhase.CALLING:
                # A 2xx from another fork after ours: ACK it, then BYE it (§13.2.2.4).
                other = self._uac_dialog(session, response, early=False)
                self._send_ack(session, other, seq, ours=False)
                self._send_bye_for(other, session, now)
                return
            dialog = None  # the early dialog was another fork's: this 2xx wins
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
                ack = session.acks.get((seq, response.to.tag or ""))
                if ack is not None:
                    self._layer.resend(ack[0], ack[1], session.transport)
                    return
            # §12.2.1.2: a 2xx to a target refresh replaces the remote target - before
            # the ACK is built, so that the ACK goes where the peer is now (it matters
            # when the peer moved and our re-INVITE reached it through the proxy).
            contacts = response.contacts
            new_target = dialog.target_refresh_of("INVITE", contacts[0].uri if contacts else None)
            old = dialog.set_remote_target(new_target) if new_target is not None else None
            if tx.kind is TxKind.INVITE_CLIENT:
                self._send_ack(session, dialog, response.cseq.seq)
            if tx is session.outgoing_reinvite:
                session.outgoing_reinvite = None
            if old is not None and new_target is not None:
                self._emit(ev.RemoteTargetRefreshed(session.call_id, old, new_target))
            self._read_session_timer(session, response)
            self._emit(ev.ReinviteAccepted(session.call_id, response))
            self._arm_session_timer(session, now)
            return
        if tx is session.outgoing_reinvite:
            session.outgoing_reinvite = None
            if self._retry_reinvite_with_credentials(session, tx, response, now):
                return
            # A 408 from a stateful proxy on the route set: it answered 100 Trying (§17.2.1,
            # so our Timer B stopped) and its own timer toward the peer's old remote target
            # fired - the peer moved too; re-route as after our own Timer B.
            if status == StatusCode.REQUEST_TIMEOUT and self._reroute_reinvite(session, tx, now):
                return
        retry_at = None
        if status == StatusCode.REQUEST_PENDING:
            retry_at = now + self._glare_backoff(session)
        elif status == StatusCode.SERVER_INTERNAL_ERROR:
            retry_after = _retry_after(response)  # §14.2: the peer's INVITE was pending
            retry_at = None if retry_after is None else now + retry_after
        if retry_at is not None:
            session.glare_retry = (session.local_body, session.local_content_type)
            self._timers.schedule(session, UaTimer.GLARE_RETRY, retry_at)
        self._emit(ev.ReinviteFailed(session.call_id, status, response.reason, retry_at,
                                     response))
        if status in (408, 481):
            self._end_after_failure(session, now, status)

    def _on_client_failure(  # noqa: PLR0917
        self, tx: Transaction, owner: object, status: int, reason: str, now: float,
        timeout: bool,
    ) -> None:
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
            if self._reroute_reinvite(session, tx, now):
                return
            self._emit(ev.ReinviteFailed(session.call_id, status, reason))
        elif tx.method not in ("CANCEL", "ACK"):
            self._emit(ev.RequestFailed(session.call_id, tx.method, status, reason))
        if timeout and tx.method != "BYE" and session.phase is not CallPhase.ENDED:
            self._end_after_failure(session, now, status)

    def _on_server_failure(self, owner: object, timeout: bool, now: float) -> None:
        """Timer H (no ACK for our non-2xx) or a transport error answering."""
        if isinstance(owner, Session) and not timeout and owner.phase is CallPhase.INCOMING:
            self._end(owner, now, by_peer=False, reason="transport error")


def _retry_after(response: Response) -> float | None:
    """Retry-After delta-seconds (§20.33), capped at 10 s for a re-INVITE retry."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    digits = value.split(";", 1)[0].split("(", 1)[0].strip()
    return min(float(digits), 10.0) if digits.isdigit() else None
