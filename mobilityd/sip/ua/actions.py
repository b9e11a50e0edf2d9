"""What the UA core does on its own: build and send requests and responses, end
calls, run its timers (2xx retransmission §13.3.1.4, glare back-off §14.1, session
timers RFC 4028)."""

from __future__ import annotations

from mobilityd.sip import events as ev
from mobilityd.sip.dialog import Dialog, DialogState
from mobilityd.sip.message import (
    Request,
    Response,
    reason_phrase,
)
from mobilityd.sip.transaction.facts import split_tag
from mobilityd.sip.transaction.machine import Transaction, TransactionStateError
from mobilityd.sip.transaction.outbound import Addr
from mobilityd.sip.ua import auth
from mobilityd.sip.ua import requests as rq
from mobilityd.sip.ua.config import UsageError
from mobilityd.sip.ua.core import UaCore
from mobilityd.sip.ua.session import (
    ACK_TIMEOUT,
    ENDED,
    ESTABLISHED,
    RETRANSMIT_2XX,
    UAC,
    CallPhase,
    Session,
    UaTimer,
    Unacked2xx,
)

_ALL_UA_TIMERS = tuple(UaTimer)
_DIALOG_TERMINATED = DialogState.TERMINATED
_COPIED_TO_RESPONSE = frozenset({"Via", "From", "To", "Call-ID", "CSeq"})
#: The same fields as the parser groups them (lower-case key, name to write).
_COPIED_FIELDS = (("via", "Via"), ("from", "From"), ("to", "To"), ("call-id", "Call-ID"),
                  ("cseq", "CSeq"))
# headers of a re-INVITE carried over when it is re-sent through the proxy
_KEPT_ON_REROUTE = frozenset({"Allow", "Supported", "Session-Expires", "Authorization",
                              "Proxy-Authorization"})


class UaActions(UaCore):
    """Sending helpers, call teardown, dialog creation and UA timers."""

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
            retry = session.glare_retry
            if retry is None or session.phase is CallPhase.ENDED:
                session.glare_retry = None
            elif session.phase is not CallPhase.ESTABLISHED or session.reinvite_in_progress:
                # Another INVITE transaction runs now (§14.1): back off once more.
                self._timers.schedule(
                    session, UaTimer.GLARE_RETRY, now + self._glare_backoff(session)
                )
            else:
                session.glare_retry = None
                session.local_body, session.local_content_type = retry
                self._send_reinvite(session, now)
        elif name is UaTimer.SESSION_REFRESH:
            if session.phase is not CallPhase.ESTABLISHED:
                return
            if session.reinvite_in_progress or session.glare_retry is not None:
                # An offer/answer exchange is running and will refresh the session
                # when it completes; look again shortly in case it fails.
                self._timers.schedule(session, UaTimer.SESSION_REFRESH, now + 1.0)
            else:
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
        self, session: Session, tx: Transaction, seq: int, data: bytes, *, initial: bool,
        now: float,
    ) -> None:
        """§13.3.1.4: resend the 2xx (CSeq ``seq``) at T1, 2T1... T2 until its ACK."""
        t1 = self.config.timers.t1
        session.unacked = Unacked2xx(data, seq, tx.destination, tx.transport, t1, initial,
                                     tx)
        self._timers.schedule(session, RETRANSMIT_2XX, now + t1)
        self._timers.schedule(session, ACK_TIMEOUT, now + self.config.timers.timeout)

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
        if interval is None or session.phase is not ESTABLISHED:
            return
        self._timers.cancel_all(session, (UaTimer.SESSION_REFRESH, UaTimer.SESSION_EXPIRY))
        if session.we_refresh:
            self._timers.schedule(session, UaTimer.SESSION_REFRESH, now + interval / 2)
        else:  # §10: BYE at interval - min(32, interval/3) without a refresh
            self._timers.schedule(
                session, UaTimer.SESSION_EXPIRY, now + interval - min(32, interval / 3)
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

    def _respond(  # noqa: PLR0917
        self,
        tx: Transaction,
        status: int,
        reason: str | None,
        to_tag: str | None,
        now: float,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        content_type: str = "application/sdp",
    ) -> bytes:
        """Build and send a response (§8.2.6.2): Via, From, To (plus our tag when it had
        none), Call-ID and CSeq copied verbatim from the request, serialized directly."""
        facts = tx.facts
        assert facts is not None
        add_tag = to_tag is not None and facts.to_tag is None and status != 100
        lines = copied_response_lines(
            tx.request, f"SIP/2.0 {status} {reason or reason_phrase(status)}",
            to_tag if add_tag else None)
        if headers:
            for name, value in headers:
                lines.append(f"{name}: {value}")
        if body:
            lines.append(f"Content-Type: {content_type}")
        lines.append(f"Content-Length: {len(body)}\r\n\r\n")
        data = "\r\n".join(lines).encode("utf-8", "surrogateescape") + body
        self._layer.send_response_bytes(tx, status, data, now)
        return data

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
        try:  # noqa: SIM105 - per reply: a try is free, suppress() is not
            self._respond(tx, status, reason, to_tag, now, headers)
        except TransactionStateError:
            pass  # already answered (e.g. a CANCEL raced our final response)

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
            cseq=dialog.next_local_seq(),
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

    def _authorization(
        self, session: Session, request: Request, response: Response
    ) -> tuple[str, str] | None:
        """Our answer to the 401/407 ``response`` to ``request`` (``auth``), counting
        stale-nonce retries against ``auth.MAX_STALE_RETRIES`` (RFC 7616 §3.3)."""
        assert self._digest is not None
        allow_stale = session.stale_retries < auth.MAX_STALE_RETRIES
        authorization = auth.authorization_for(
            request, response, self._digest, allow_stale=allow_stale
        )
        if authorization is not None and request.headers.get(authorization[0]) is not None:
            session.stale_retries += 1  # answered before: this is a stale retry
        return authorization

    def _retry_invite_with_credentials(
        self, session: Session, response: Response, now: float
    ) -> bool:
        """RFC 3261 §22.2: answer a 401/407 to our initial INVITE once - same Call-ID
        and tags, CSeq + 1, new branch, the credentials added.  False: give up."""
        if self._digest is None or session.cancel_requested:
            return False
        authorization = self._authorization(session, session.invite, response)
        if authorization is None:
            return False
        request = auth.retried_request(
            session.invite, authorization, self._via(rq.new_branch(self._rng))
        )
        tx = self._layer.send_request(request, session.destination, session.transport, now)
        tx.owner = session
        session.invite, session.invite_transaction = request, tx
        session.dialog = None  # an early dialog of the challenged INVITE is over
        return True

    def _retry_reinvite_with_credentials(
        self, session: Session, tx: Transaction, response: Response, now: float
    ) -> bool:
        """RFC 3261 §22.2 for our re-INVITE or UPDATE (see ``_retry_in_dialog``)."""
        retry = self._retry_in_dialog_with_credentials(session, tx, response, now)
        if retry is None:
            return False
        session.outgoing_reinvite = retry
        return True

    def _retry_in_dialog_with_credentials(
        self, session: Session, tx: Transaction, response: Response, now: float
    ) -> Transaction | None:
        """RFC 3261 §22.2 in a dialog: the challenged request (re-INVITE, UPDATE, BYE,
        REFER, NOTIFY, OPTIONS) again with the dialog's next CSeq (§12.2.1.1), a new
        branch and the credentials, to the same next hop.  None: give up."""
        dialog = session.dialog
        if self._digest is None or dialog is None:
            return None
        authorization = self._authorization(session, tx.request, response)
        if authorization is None:
            return None
        request = auth.retried_request(
            tx.request, authorization, self._via(rq.new_branch(self._rng)),
            cseq=dialog.next_local_seq(),
        )
        retry = self._layer.send_request(request, tx.destination, session.transport, now)
        retry.owner = session
        return retry

    def _reroute_reinvite(self, session: Session, tx: Transaction, now: float) -> bool:
        """``UaConfig.reroute_via_proxy``: our re-INVITE to the peer's remote target got
        no answer (Timer B), a 408 from a stateful proxy on the route set (its own timer
        toward the target fired), or its transport failed - the peer has probably moved too.
        Send it once more through the outbound proxy to the peer's GRUU or AOR
        (``rq.rerouting_via_proxy``) instead of ending the dialog (RFC 3261 §12.2.1.2);
        False when not configured or already rerouted (then the failure stands)."""
        proxy = self.config.outbound_proxy
        dialog = session.dialog
        if (not self.config.reroute_via_proxy or proxy is None or dialog is None
                or tx.method != "INVITE" or tx is session.rerouted_reinvite
                or session.phase is not CallPhase.ESTABLISHED):
            return False
        original = tx.request
        extra = [(name, value) for name, value in original.headers
                 if name in _KEPT_ON_REROUTE]
        request = rq.in_dialog_request(
            dialog, "INVITE", via=self._via(rq.new_branch(self._rng)),
            cseq=dialog.next_local_seq(), contact=True, body=original.body,
            content_type=original.headers.get("Content-Type"), extra=extra,
            routing=rq.rerouting_via_proxy(dialog, proxy),
        )
        retry = self._layer.send_request(
            request, rq.destination_of(proxy), session.transport, now
        )
        retry.owner = session
        session.outgoing_reinvite = session.rerouted_reinvite = retry
        self._emit(ev.ReinviteRerouted(session.call_id, request.uri, proxy))
        return True

    def _send_ack(
        self, session: Session, dialog: Dialog, seq: int, *, ours: bool = True
    ) -> None:
        """§13.2.2.4: ACK a 2xx, remembered to answer that 2xx's retransmissions.
        ``ours`` is False for another fork's dialog (it does not move our next hop)."""
        ack = rq.ack_for_2xx(dialog, via=self._via(rq.new_branch(self._rng)), cseq=seq)
        destination = self._dialog_destination(dialog)
        data = self._layer.send_stateless(ack, destination, session.transport)
        if ours:
            session.destination = destination
        session.acks[(seq, dialog.remote_tag)] = (data, destination)

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
        if session.phase is ENDED:
            return
        session.phase = ENDED
        if session.dialog is not None:
            session.dialog.state = _DIALOG_TERMINATED
        self._timers.cancel_all(session, _ALL_UA_TIMERS)
        session.unacked = None
        if emit:
            self._emit(ev.CallEnded(session.call_id, by_peer, reason))
        if session.role is UAC:
            # Keep it for 64*T1: a retransmitted 2xx must still be ACKed (§13.2.2.4).
            self._timers.schedule(session, UaTimer.FORGET, now + self.config.timers.timeout)
        elif self._sessions.get(session.call_id) is session:
            # A UAS needs nothing more: its transactions absorb late retransmissions.
            del self._sessions[session.call_id]

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


def copied_to_response(request: Request) -> list[tuple[str, str]]:
    """The fields a response copies from its request (RFC 3261 §8.2.6.2): every Via
    (in order), From, To, Call-ID and CSeq.

    Read from the parser's grouped fields while they are current (a dict lookup per
    name), else by a pass over the header list.  The first writes them in the order
    above, the second in the request's order: the same fields and values, and the
    relative order of different field names carries no meaning (§7.3.1)."""
    fields = request.parsed_fields()
    if fields is None:
        return [(name, value) for name, value in request.headers
                if name in _COPIED_TO_RESPONSE]
    return [(name, value) for key, name in _COPIED_FIELDS for value in fields.get(key, ())]


def copied_response_lines(request: Request, status_line: str, to_tag: str | None
                          ) -> list[str]:
    """``status_line`` and the header lines of `copied_to_response` (RFC 3261
    §8.2.6.2), ``;tag=to_tag`` added to the To when ``to_tag`` is given.

    A freshly parsed request has exactly one From, To, Call-ID and CSeq (the parser
    refuses anything else, §8.1.1), so their lines are written straight from the
    grouped fields, without the intermediate (name, value) pairs."""
    fields = request.parsed_fields()
    if fields is None:
        lines = [status_line]
        for name, value in copied_to_response(request):
            if name == "To" and to_tag is not None:
                lines.append(f"To: {value};tag={to_tag}")
            else:
                lines.append(f"{name}: {value}")
        return lines
    lines = [status_line]
    for value in fields["via"]:
        lines.append(f"Via: {value}")
    to = fields["to"][0]
    lines += (f"From: {fields['from'][0]}",
              f"To: {to};tag={to_tag}" if to_tag is not None else f"To: {to}",
              f"Call-ID: {fields['call-id'][0]}", f"CSeq: {fields['cseq'][0]}")
    return lines
