"""The transaction layer and the UAS core fed raw bytes (RFC 3261 §17, §8.2, §9.2)."""

from __future__ import annotations

from mobilityd.sip import events as ev
from mobilityd.sip.message import Response, parse_message
from mobilityd.sip.timers import TimerConfig
from mobilityd.sip.transaction.layer import TransactionLayer, UpcallKind
from mobilityd.sip.transaction.outbound import TransportKind
from mobilityd.sip.transaction.states import TxState
from mobilityd.sip.useragent import UserAgent
from tests.sip.uafixtures import BOB, make_ua

PEER = ("192.0.2.9", 5070)


def invite(*, branch: str = "z9hG4bK776asdhds", call_id: str = "a84b4c76e66710",
           from_tag: str = "1928301774", cseq: int = 314159, method: str = "INVITE",
           to_tag: str | None = None, via_port: int = 5070) -> bytes:
    to = "<sip:bob@10.0.0.2>" + (f";tag={to_tag}" if to_tag else "")
    return (
        f"{method} sip:bob@10.0.0.2 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 192.0.2.9:{via_port};branch={branch}\r\n"
        "Max-Forwards: 70\r\n"
        f"To: {to}\r\n"
        f"From: Alice <sip:alice@example.com>;tag={from_tag}\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: {cseq} {method}\r\n"
        "Contact: <sip:alice@192.0.2.9:5070>\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def responses(ua: UserAgent) -> list[Response]:
    out = []
    for item in ua.datagrams_to_send():
        message = parse_message(item.data)
        assert isinstance(message, Response)
        assert item.destination == PEER
        out.append(message)
    return out


def drain(ua: UserAgent) -> list[ev.Event]:
    events = []
    while (event := ua.next_event()) is not None:
        events.append(event)
    return events


def test_100_trying_after_200_ms_and_retransmission_absorbed() -> None:
    """§17.2.1: 100 Trying when the TU has not answered in 200 ms; a retransmitted
    INVITE gets the last provisional again and never reaches the TU twice."""
    ua = make_ua("bob", BOB, 5)
    ua.receive(invite(), PEER, 0.0)
    assert len(drain(ua)) == 1 and responses(ua) == []
    assert ua.get_timer() == 0.2
    ua.handle_timer(0.2)
    (trying,) = responses(ua)
    assert trying.status == 100 and trying.to.tag is None
    ua.receive(invite(), PEER, 0.3)
    assert [r.status for r in responses(ua)] == [100]
    assert drain(ua) == []


def test_invite_and_bye_retransmissions_after_the_answer() -> None:
    """RFC 6026 §7.1: after the 2xx the INVITE retransmission is absorbed (the TU
    retransmits the 2xx on its own timer); a retransmitted BYE gets the same 200."""
    ua = make_ua("bob", BOB, 5)
    ua.receive(invite(), PEER, 0.0)
    (incoming,) = drain(ua)
    assert isinstance(incoming, ev.IncomingCallReceived)
    ua.answer_call(incoming.call_id, 0.01, 200)
    (ok,) = responses(ua)
    to_tag = ok.to.tag
    assert ok.status == 200 and to_tag
    ua.receive(invite(), PEER, 0.1)
    assert responses(ua) == []
    ua.handle_timer(0.51)  # §13.3.1.4: 2xx retransmitted at T1
    assert [r.status for r in responses(ua)] == [200]
    ack = invite(branch="z9hG4bKack1", method="ACK", to_tag=to_tag)
    ua.receive(ack, PEER, 0.6)
    assert [type(e) for e in drain(ua)] == [ev.CallEstablished]
    ua.handle_timer(2.0)
    assert responses(ua) == []  # ACK stopped the retransmissions

    bye = invite(branch="z9hG4bKbye1", method="BYE", to_tag=to_tag, cseq=314160)
    ua.receive(bye, PEER, 3.0)
    first = responses(ua)
    ua.receive(bye, PEER, 3.5)
    again = responses(ua)
    assert [r.status for r in first] == [200] and [r.status for r in again] == [200]
    assert bytes(first[0]) == bytes(again[0])
    assert [type(e) for e in drain(ua)] == [ev.CallEnded]


def test_cancel_gets_200_and_invite_487() -> None:
    """§9.2: CANCEL matching a pending INVITE: 200 for it, 487 for the INVITE."""
    ua = make_ua("bob", BOB, 5)
    ua.receive(invite(), PEER, 0.0)
    drain(ua)
    ua.receive(invite(method="CANCEL"), PEER, 0.1)
    statuses = {(r.status, r.cseq.method) for r in responses(ua)}
    assert statuses == {(200, "CANCEL"), (487, "INVITE")}
    assert [type(e) for e in drain(ua)] == [ev.CallCancelled]


def test_cancel_without_invite_gets_481() -> None:
    ua = make_ua("bob", BOB, 5)
    ua.receive(invite(method="CANCEL"), PEER, 0.0)
    assert [r.status for r in responses(ua)] == [481]


def test_merged_request_gets_482() -> None:
    """§8.2.2.2: same From tag, Call-ID and CSeq, other branch (forked copy): 482."""
    ua = make_ua("bob", BOB, 5)
    ua.receive(invite(), PEER, 0.0)
    ua.receive(invite(branch="z9hG4bKotherpath"), PEER, 0.01)
    assert [r.status for r in responses(ua)] == [482]
    assert len(drain(ua)) == 1


def test_rfc2543_request_matching_without_magic_cookie() -> None:
    """§17.2.3: without the z9hG4bK cookie, Request-URI/From tag/Call-ID/CSeq/top Via
    identify the transaction; the ACK of a non-2xx finds its INVITE."""
    ua = make_ua("bob", BOB, 5)
    old = invite(branch="oldstyle1")
    ua.receive(old, PEER, 0.0)
    (incoming,) = drain(ua)
    assert isinstance(incoming, ev.IncomingCallReceived)
    ua.reject_call(incoming.call_id, 0.01, 486)
    (busy,) = responses(ua)
    ua.receive(old, PEER, 0.1)  # retransmission -> the 486 again
    assert [r.status for r in responses(ua)] == [486]
    ack = invite(branch="oldstyle1", method="ACK", to_tag=busy.to.tag)
    ua.receive(ack, PEER, 0.2)
    ua.handle_timer(0.2 + 0.5 + 0.01)  # Timer G would fire now if not Confirmed
    assert responses(ua) == []


def test_unknown_dialog_gets_481_and_unsupported_require_420() -> None:
    ua = make_ua("bob", BOB, 5)
    ua.receive(invite(method="BYE", to_tag="nosuch"), PEER, 0.0)
    ua.receive(invite(branch="z9hG4bKreq", call_id="other").replace(
        b"Content-Length", b"Require: 100rel, foo\r\nContent-Length"), PEER, 0.0)
    first, second = responses(ua)
    assert first.status == 481
    assert second.status == 420 and second.headers.get_all("Unsupported") == ["100rel", "foo"]


def test_malformed_request_answered_400_and_garbage_dropped() -> None:
    """§18.3 / RFC 4475: a broken but addressable request gets 400; garbage and
    keep-alive CRLFs are dropped without output."""
    ua = make_ua("bob", BOB, 5)
    broken = invite().replace(b"CSeq: 314159 INVITE", b"CSeq: x INVITE")
    ua.receive(broken, PEER, 0.0)
    ua.receive(b"\x00\xffnot sip at all\r\n\r\n", PEER, 0.0)
    ua.receive(b"\r\n\r\n", PEER, 0.0)
    out = ua.datagrams_to_send()
    assert len(out) <= 1
    for item in out:
        assert item.data.startswith(b"SIP/2.0 400 ") and item.destination == PEER
    assert drain(ua) == []


def test_invite_client_timer_b_reports_408() -> None:
    """§17.1.1.2: retransmissions at T1, 2T1, 4T1... then Timer B (64*T1) -> 408."""
    ua = make_ua("alice", ("10.0.0.1", 5060), 3)
    call_id = ua.invite(make_ua("b", BOB, 1).config.local_uri.uri, 0.0)
    sends = [0.0]
    assert len(ua.datagrams_to_send()) == 1
    while (deadline := ua.get_timer()) is not None and deadline <= 40:
        ua.handle_timer(deadline)
        if ua.datagrams_to_send():
            sends.append(deadline)
    assert sends == [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert drain(ua) == [ev.CallFailed(call_id, 408, "Request Timeout")]


def test_non_invite_client_timer_e_caps_at_t2() -> None:
    """§17.1.2.2: E doubles up to T2 (4 s); F (64*T1) gives up."""
    ua = make_ua("alice", ("10.0.0.1", 5060), 3)
    call_id = ua.send_options(make_ua("b", BOB, 1).config.local_uri.uri, 0.0)
    ua.datagrams_to_send()
    times = []
    while (deadline := ua.get_timer()) is not None:
        ua.handle_timer(deadline)
        if ua.datagrams_to_send():
            times.append(deadline)
    gaps = [round(b - a, 3) for a, b in zip([0.0, *times], times, strict=False)]
    assert gaps[:4] == [0.5, 1.0, 2.0, 4.0] and set(gaps[4:]) == {4.0}
    assert drain(ua) == [ev.RequestFailed(call_id, "OPTIONS", 408, "Request Timeout")]


def test_transport_error_surfaces_as_503_event() -> None:
    """§17.1.4 / §8.1.3.1: a transport failure is reported like a 503."""
    ua = make_ua("alice", ("10.0.0.1", 5060), 3)
    call_id = ua.invite(make_ua("b", BOB, 1).config.local_uri.uri, 0.0,
                        destination=("198.51.100.1", 5060))
    (out,) = ua.datagrams_to_send()
    ua.transport_failed(out.destination, 0.1)
    (failed,) = drain(ua)
    assert isinstance(failed, ev.CallFailed) and failed.status == 503
    assert failed.call_id == call_id
    assert ua.transactions == 0


def test_reliable_transport_has_no_retransmissions() -> None:
    """§17.1.1.2: over TCP Timer A is not started; J/K/D are zero (§17.1.2.2)."""
    layer = TransactionLayer(TimerConfig())
    ua = make_ua("alice", ("10.0.0.1", 5060), 3)
    ua.invite(make_ua("b", BOB, 1).config.local_uri.uri, 0.0)
    request = parse_message(ua.datagrams_to_send()[0].data)
    assert not isinstance(request, Response)
    tx = layer.send_request(request, BOB, TransportKind.TCP, 0.0)
    assert len(layer.outgoing) == 1
    assert layer.get_timer() == 32.0  # only Timer B
    layer.handle_timer(32.0)
    assert tx.state is TxState.TERMINATED
    assert [u.kind for u in layer.upcalls] == [UpcallKind.TIMEOUT]


def test_unknown_method_gets_405_with_allow() -> None:
    """§8.2.1: 405 Method Not Allowed carries an Allow header."""
    ua = make_ua("bob", BOB, 5)
    ua.receive(invite(method="PUBLISH", branch="z9hG4bKpub"), PEER, 0.0)
    (answer,) = responses(ua)
    assert answer.status == 405 and "INVITE" in answer.allow


def test_cseq_method_mismatch_gets_400() -> None:
    """§8.1.1.5: a CSeq method other than the request's gets 400 (from the parser, or
    from the engine when it is handed an already parsed message)."""
    from mobilityd.sip.message import Request

    ua = make_ua("bob", BOB, 5)
    ua.receive(invite().replace(b"CSeq: 314159 INVITE", b"CSeq: 314159 ACK"), PEER, 0.0)
    request = parse_message(invite())
    assert isinstance(request, Request)
    request.headers.set("CSeq", "314159 BYE")
    ua.receive(request, PEER, 0.0)
    out = ua.datagrams_to_send()
    assert [o.data.split(b" ", 2)[1] for o in out] == [b"400", b"400"]
    assert b"CSeq method differs" in out[1].data
    assert drain(ua) == []


def test_byte_identical_retransmissions_are_absorbed_before_parsing() -> None:
    """§17.2.1/§17.2.2: a copy of the datagram that created a live server transaction
    is recognised by its bytes; the response it gets is the one the state calls for."""
    ua = make_ua("bob", BOB, 5)
    first = invite()
    ua.receive(first, PEER, 0.0)
    (incoming,) = drain(ua)
    assert isinstance(incoming, ev.IncomingCallReceived)
    ua.answer_call(incoming.call_id, 0.0, 180)
    (ringing,) = ua.datagrams_to_send()
    assert ua.absorb_retransmission(first, 0.1)  # Proceeding: the last 1xx again
    assert [o.data for o in ua.datagrams_to_send()] == [ringing.data]
    ua.reject_call(incoming.call_id, 0.2, 486)
    (busy,) = ua.datagrams_to_send()
    ua.receive(first, PEER, 0.3)  # Completed: the final response again
    assert [o.data for o in ua.datagrams_to_send()] == [busy.data]
    assert not ua.absorb_retransmission(invite(branch="z9hG4bKother"), 0.3)
    ua.handle_timer(40.0)  # Timer H ended the transaction (no ACK): no longer absorbed
    ua.datagrams_to_send()
    assert not ua.absorb_retransmission(first, 41.0)


def test_copies_of_the_ack_for_our_2xx_are_absorbed_before_parsing() -> None:
    """§13.3.1.4 / RFC 6026 §7.1: once the ACK for our 2xx has been taken, copies of
    the same datagram (a UAC re-ACKs each 2xx retransmission) are absorbed without a
    parse while the INVITE transaction lingers (Timer L); another ACK is not."""
    ua = make_ua("bob", BOB, 5)
    ua.receive(invite(), PEER, 0.0)
    (incoming,) = drain(ua)
    assert isinstance(incoming, ev.IncomingCallReceived)
    ua.answer_call(incoming.call_id, 0.0, 200)
    (ok,) = responses(ua)
    tag = ok.to.tag
    assert tag is not None
    ack = invite(branch="z9hG4bKack1", method="ACK", to_tag=tag)
    assert not ua.absorb_retransmission(ack, 0.1)  # the first one is parsed and used
    ua.receive(ack, PEER, 0.1)
    assert [type(e) for e in drain(ua)] == [ev.CallEstablished]
    assert ua.absorb_retransmission(ack, 0.6)  # a re-ACK: absorbed, nothing happens
    assert ua.datagrams_to_send() == [] and drain(ua) == []
    other = invite(branch="z9hG4bKack2", method="ACK", to_tag=tag)
    assert not ua.absorb_retransmission(other, 0.6)
    ua.receive(other, PEER, 0.6)  # parsed; the 2xx is already acknowledged: no event
    assert drain(ua) == []
    ua.handle_timer(40.0)  # Timer L (64*T1) ended the INVITE transaction
    assert not ua.absorb_retransmission(ack, 41.0)


def test_state_is_bounded_503_with_retry_after() -> None:
    """§21.5.4: beyond the configured calls / server transactions, new requests get
    503 + Retry-After and no state; retransmissions of live ones are still absorbed."""
    from dataclasses import replace

    ua = make_ua("bob", BOB, 5)
    ua = UserAgent(replace(ua.config, max_calls=1, max_server_transactions=3),
                   rng=bytes)
    ua.receive(invite(), PEER, 0.0)
    ua.receive(invite(branch="z9hG4bK2", call_id="c2", from_tag="f2"), PEER, 0.0)
    (busy,) = responses(ua)
    assert busy.status == 503 and busy.headers.get("Retry-After") == "5"
    assert ua.calls == 1
    ua.receive(invite(branch="z9hG4bK3", method="OPTIONS", call_id="c3"), PEER, 0.0)
    assert [r.status for r in responses(ua)] == [200]  # third server transaction
    ua.receive(invite(branch="z9hG4bK4", method="OPTIONS", call_id="c4"), PEER, 0.0)
    (full,) = responses(ua)
    assert full.status == 503 and ua.transactions == 3
    ua.handle_timer(0.2)  # the pending INVITE's 100 Trying
    ua.receive(invite(), PEER, 0.3)  # a retransmission is still absorbed: 100 again
    assert [r.status for r in responses(ua)] == [100, 100]
