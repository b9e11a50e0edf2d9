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
after ``ReferReceived``.  Outgoing: ``invite``, ``reinvite``, ``update`` (RFC 3311),
``hangup``, ``cancel``, ``refer``, ``send_options``.  ``set_local_address`` follows a
transport rebind; ``transport_failed(destination, now)`` reports a send failure (the
transactions towards it fail as 503, §17.1.4).

Digest authentication (RFC 3261 §22.2, RFC 7616): with ``UaConfig.auth_username`` /
``auth_password`` a 401/407 to our INVITE, re-INVITE or another in-dialog request is
answered once with credentials (same Call-ID, CSeq + 1, new branch); a second
challenge, or none configured, ends in ``CallFailed`` / ``ReinviteFailed`` /
``RequestAnswered`` carrying the 401/407 response.  Failure events carry the final
response (``response``) so that a MIKEY error in a 488 body can be read.
``UaConfig.reroute_via_proxy``: a re-INVITE the peer's remote target never answers is
re-sent once through the outbound proxy to the peer's GRUU/AOR (``ReinviteRerouted``)
before the dialog ends (§12.2.1.2).  Adapters that parse datagrams
themselves should first try ``absorb_retransmission(data, now)`` (byte-identical
request retransmissions cost no parse) and pass ``raw=data`` to ``receive``.

Timers: T1/T2/T4 come from ``UaConfig.timers`` (RFC 3261 Table 4); transactions follow
RFC 3261 §17 with RFC 6026's Accepted state; ``mobilityd.sip.ua.memnet`` runs several
engines on an in-memory network with a hand-advanced clock and seeded loss.

Bad input never escapes: a request we cannot accept is answered with the status of the
``SipError`` raised while handling it (§8.2, §12.2.2); an unparsable message is answered
400 when it can be addressed, else dropped (§18.3); responses that match nothing are
dropped (§17.1.3) except stray 2xx to INVITE, which are ACKed again (§13.2.2.4).
``UsageError`` is our caller's mistake (unknown call, decision in the wrong state).
"""

from __future__ import annotations

from mobilityd.sip import events as ev
from mobilityd.sip.errors import StatusCode
from mobilityd.sip.headers import Headers, Replaces
from mobilityd.sip.message import (
    Request,
)
from mobilityd.sip.transaction.outbound import Addr
from mobilityd.sip.transaction.states import TxKind, TxState
from mobilityd.sip.ua import requests as rq
from mobilityd.sip.ua.config import UaConfig, UsageError
from mobilityd.sip.ua.session import (
    CONNECTING,
    INCOMING,
    UAS,
    CallPhase,
    CallRole,
    Session,
)
from mobilityd.sip.ua.upcalls import ResponseHandling
from mobilityd.sip.uri import NameAddr, SipUri

__all__ = ["UaConfig", "UsageError", "UserAgent"]


class UserAgent(ResponseHandling):
    """A SIP user agent, sans-I/O: the public UAC and UAS API (module docstring)."""

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
            ("Contact", self._contact_field),
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

    def hangup(
        self, call_id: str, now: float, *, body: bytes = b"", content_type: str | None = None
    ) -> None:
        """End a call: BYE (§15.1.1), CANCEL while calling, 603 while ringing.

        ``body`` goes in the BYE (e.g. a MIKEY error message, RFC 4567 §4.1.2)."""
        session = self.call(call_id)
        if session.phase is CallPhase.CALLING:
            self.cancel(call_id, now)
        elif session.phase is CallPhase.INCOMING:
            self.reject_call(call_id, now, StatusCode.DECLINE)
        elif session.phase is not CallPhase.ENDED:
            if body and session.dialog is not None and not session.bye_sent:
                session.bye_sent = True
                self._send_in_dialog(session, "BYE", now, body=body, content_type=content_type)
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
            ("Contact", self._contact_field),
            ("Accept", "application/sdp"),
        ]
        request = Request("OPTIONS", uri, Headers(items))
        tx = self._layer.send_request(
            request, destination or rq.destination_of(uri), self.config.transport, now
        )
        self._others[tx.key] = call_id
        return call_id

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
        if session.role is not UAS or session.phase is not INCOMING:
            raise UsageError(f"call {call_id} is not waiting for an answer")
        if not 101 <= status < 300:
            raise UsageError("answer with 101-299; use reject_call for failures")
        tx = session.invite_transaction
        facts = tx.facts
        assert facts is not None  # released only after the final response
        dialog = session.dialog
        if dialog is None:
            dialog = self._uas_dialog(session)
        headers = [("Contact", self._contact_field)]
        if facts.has_record_route:  # §12.1.1: Record-Route is copied to the response
            headers.extend(
                ("Record-Route", rr) for rr in session.invite.headers.get_all("Record-Route")
            )
        if status >= 200:
            headers += [("Allow", rq.ALLOW), ("Supported", rq.SUPPORTED)]
            if facts.has_session_expires:  # RFC 4028 §9 (the parser noted the field)
                headers += self._session_timer_answer(session, session.invite)
        data = self._respond(
            tx, status, reason, dialog.local_tag, now, headers, body, content_type
        )
        if status >= 200:
            session.local_body, session.local_content_type = body, content_type
            dialog.confirm(contact=None, record_route=None)
            session.phase = CONNECTING
            self._start_2xx_retransmission(
                session, tx, facts.cseq.seq, data, initial=True, now=now
            )

    def reject_call(
        self,
        call_id: str,
        now: float,
        status: int = 486,
        reason: str | None = None,
        *,
        headers: tuple[tuple[str, str], ...] = (),
        body: bytes = b"",
        content_type: str = "application/sdp",
    ) -> None:
        """Refuse an incoming INVITE with 300-699 (§13.3.1.3); the call ends.

        ``headers`` (e.g. Warning, §20.43) and ``body`` (e.g. an SDP carrying a MIKEY
        error message, RFC 4567 §4.1.2) are added to the response."""
        session = self.call(call_id)
        if session.role is not CallRole.UAS or session.phase is not CallPhase.INCOMING:
            raise UsageError(f"call {call_id} is not waiting for an answer")
        if not 300 <= status < 700:
            raise UsageError("reject with 300-699")
        self._respond(
            session.invite_transaction, status, reason, session.local_tag, now,
            list(headers), body, content_type,
        )
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
            ("Contact", self._contact_field),
            ("Allow", rq.ALLOW),
            ("Supported", rq.SUPPORTED),
        ]
        headers += self._session_timer_answer(session, pending.request)
        data = self._respond(
            pending.transaction, 200, None, dialog.local_tag, now, headers, body, content_type
        )
        session.incoming_reinvite = None
        if body:
            session.local_body, session.local_content_type = body, content_type
        if pending.new_target is not None:
            old = dialog.set_remote_target(pending.new_target)
            self._emit(ev.RemoteTargetRefreshed(call_id, old, pending.new_target))
        if pending.transaction.kind is TxKind.INVITE_SERVER:  # UPDATE: no ACK (RFC 3311)
            self._start_2xx_retransmission(
                session, pending.transaction, pending.request.cseq.seq, data, initial=False,
                now=now,
            )
        self._arm_session_timer(session, now)

    def refuse_reinvite(
        self, call_id: str, now: float, status: int = 488, reason: str | None = None,
        *, headers: tuple[tuple[str, str], ...] = (), body: bytes = b"",
        content_type: str = "application/sdp",
    ) -> None:
        """Refuse the pending re-INVITE; the dialog and session stay as they were.

        ``headers`` (e.g. a Warning, §20.43) and ``body`` (e.g. SDP carrying a MIKEY
        error message, RFC 4567 §4.1.2) go into the error response."""
        session = self.call(call_id)
        pending = session.incoming_reinvite
        if pending is None or session.dialog is None:
            raise UsageError(f"call {call_id} has no re-INVITE waiting for a decision")
        if not 300 <= status < 700:
            raise UsageError("refuse with 300-699")
        session.incoming_reinvite = None
        self._respond(pending.transaction, status, reason, session.dialog.local_tag, now,
                      list(headers), body, content_type)

    def accept_refer(self, call_id: str, now: float) -> None:
        """202 Accepted and the first NOTIFY (100 Trying) of the implicit
        subscription (RFC 3515 §2.4.2, §2.4.4)."""
        session = self.call(call_id)
        tx = session.incoming_refer
        if tx is None or session.dialog is None:
            raise UsageError(f"call {call_id} has no REFER waiting for a decision")
        session.incoming_refer = None
        session.refer_event_id = str(tx.request.cseq.seq)
        self._respond(
            tx, 202, "Accepted", session.dialog.local_tag, now, [("Contact", self._contact_field)]
        )
        self.notify_refer_progress(call_id, 100, "Trying", now)

    def refuse_refer(
        self, call_id: str, now: float, status: int = 603, reason: str | None = None,
        *, headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        """Refuse the pending REFER (RFC 3515 §2.4.2); ``headers`` go into the response
        (e.g. ``WWW-Authenticate`` with a 401, RFC 3261 §22.2)."""
        session = self.call(call_id)
        tx = session.incoming_refer
        if tx is None or session.dialog is None:
            raise UsageError(f"call {call_id} has no REFER waiting for a decision")
        session.incoming_refer = None
        self._respond(tx, status, reason, session.dialog.local_tag, now, list(headers))

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
