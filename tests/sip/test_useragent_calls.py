"""Two UA engines in memory: plain call, BYE, CANCEL, OPTIONS (RFC 3261 §13, §15, §9)."""

from __future__ import annotations

from mobilityd.sip import events as ev
from tests.sip.uafixtures import BOB, SDP, bob_uri, pair


def test_plain_call_and_bye() -> None:
    """RFC 3261 §13.2/§13.3: INVITE -> 180 -> 200 -> ACK; §15.1: BYE -> 200."""
    net, alice, bob = pair()
    call_id = alice.ua.invite(bob_uri(), net.now, body=SDP)
    net.run(lambda: bool(bob.of_type(ev.CallEstablished)))
    assert [type(e) for e in alice.events] == [ev.ProvisionalResponseReceived,
                                               ev.CallEstablished]
    assert isinstance(bob.events[0], ev.IncomingCallReceived)
    assert bob.events[0].request.body == SDP
    a_dialog = alice.ua.call(call_id).dialog
    b_dialog = bob.ua.call(call_id).dialog
    assert a_dialog is not None and b_dialog is not None
    assert a_dialog.id == (b_dialog.call_id, b_dialog.remote_tag, b_dialog.local_tag)
    assert a_dialog.remote_target.host == "10.0.0.2"
    assert b_dialog.remote_target.host == "10.0.0.1"

    alice.ua.hangup(call_id, net.now)
    net.run()
    assert bob.of_type(ev.CallEnded) == [ev.CallEnded(call_id, True, "BYE received")]
    answered = alice.of_type(ev.RequestAnswered)
    assert len(answered) == 1 and isinstance(answered[0], ev.RequestAnswered)
    assert answered[0].method == "BYE" and answered[0].response.status == 200
    # Everything is forgotten once the late-retransmission timers ran out (64*T1).
    assert alice.ua.calls == bob.ua.calls == 0
    assert alice.ua.transactions == bob.ua.transactions == 0
    assert alice.ua.get_timer() is None and bob.ua.get_timer() is None


def test_rejected_call_is_acked_by_the_transaction() -> None:
    """§17.1.1.3: the non-2xx final response is ACKed by the client transaction."""
    def busy(node, event, now):  # type: ignore[no-untyped-def]
        if isinstance(event, ev.IncomingCallReceived):
            node.ua.reject_call(event.call_id, now, 486)

    net, alice, bob = pair(bob_handler=busy)
    call_id = alice.ua.invite(bob_uri(), net.now, body=SDP)
    net.run()
    assert alice.of_type(ev.CallFailed) == [ev.CallFailed(call_id, 486, "Busy Here")]
    assert bob.ua.transactions == 0 and alice.ua.transactions == 0


def test_cancel_before_answer() -> None:
    """§9.1/§9.2: CANCEL after 180 -> 200 to the CANCEL, 487 to the INVITE."""
    def ring(node, event, now):  # type: ignore[no-untyped-def]
        if isinstance(event, ev.IncomingCallReceived):
            node.ua.answer_call(event.call_id, now, 180)

    net, alice, bob = pair(bob_handler=ring)
    call_id = alice.ua.invite(bob_uri(), net.now, body=SDP)
    net.run(lambda: bool(alice.of_type(ev.ProvisionalResponseReceived)))
    alice.ua.cancel(call_id, net.now)
    net.run()
    assert bob.of_type(ev.CallCancelled) == [ev.CallCancelled(call_id)]
    assert alice.of_type(ev.CallFailed) == [ev.CallFailed(call_id, 487, "Request Terminated")]


def test_cancel_requested_before_any_provisional_waits_for_it() -> None:
    """§9.1: a CANCEL must not be sent before a provisional response arrived."""
    answered: list[str] = []

    def slow(node, event, now):  # type: ignore[no-untyped-def]
        if isinstance(event, ev.IncomingCallReceived):
            answered.append(event.call_id)

    net, alice, bob = pair(bob_handler=slow)
    call_id = alice.ua.invite(bob_uri(), net.now, body=SDP)
    alice.ua.cancel(call_id, net.now)
    net.run(lambda: bool(answered))
    assert not any(b"CANCEL" in out.data[:6] for out in alice.ua.datagrams_to_send())
    net.run()  # bob's 100 Trying (§17.2.1, 200 ms) lets the CANCEL go
    assert bob.of_type(ev.CallCancelled) == [ev.CallCancelled(call_id)]
    assert alice.of_type(ev.CallFailed)[0] == ev.CallFailed(call_id, 487, "Request Terminated")


def test_cancel_race_with_200() -> None:
    """§9.1: the 200 crossed our CANCEL: the call is established, then we BYE it."""
    def ring(node, event, now):  # type: ignore[no-untyped-def]
        if isinstance(event, ev.IncomingCallReceived):
            node.ua.answer_call(event.call_id, now, 180)

    net, alice, bob = pair(bob_handler=ring)
    call_id = alice.ua.invite(bob_uri(), net.now, body=SDP)
    net.run(lambda: bool(alice.of_type(ev.ProvisionalResponseReceived)))
    bob.ua.answer_call(call_id, net.now, 200, body=SDP)
    alice.ua.cancel(call_id, net.now)  # CANCEL and 200 cross in flight
    net.run()
    kinds = [type(e) for e in alice.events]
    assert kinds == [ev.ProvisionalResponseReceived, ev.CallEstablished, ev.CallEnded,
                     ev.RequestAnswered]  # the BYE's 200
    assert bob.of_type(ev.CallEnded) == [ev.CallEnded(call_id, True, "BYE received")]
    assert not bob.of_type(ev.CallCancelled)


def test_out_of_dialog_options() -> None:
    """§11.2: OPTIONS is answered 200 with Allow/Accept/Supported."""
    net, alice, _bob = pair()
    call_id = alice.ua.send_options(bob_uri(), net.now)
    net.run()
    (answer,) = alice.of_type(ev.RequestAnswered)
    assert isinstance(answer, ev.RequestAnswered) and answer.call_id == call_id
    assert answer.response.status == 200
    assert "REFER" in answer.response.allow


def test_no_ack_ends_the_call_with_bye() -> None:
    """§13.3.1.4: 2xx retransmitted until 64*T1 without ACK, then BYE."""
    def drop_acks(data: bytes, source: object, dest: object) -> bool:
        return data.startswith(b"ACK ")

    net, alice, bob = pair()
    net._drop = drop_acks
    call_id = alice.ua.invite(bob_uri(), net.now, body=SDP)
    net.run(lambda: bool(bob.of_type(ev.CallEnded)))
    (ended,) = bob.of_type(ev.CallEnded)
    assert isinstance(ended, ev.CallEnded) and "ACK" in ended.reason
    assert ended.call_id == call_id
    assert net.now >= 32.0
    assert bob.ua.calls == 0  # a UAS forgets an ended call at once


def test_forked_answers() -> None:
    """§13.2.2.4: an early dialog from one fork, the 2xx from another wins; a later
    2xx from the first fork is ACKed and then BYEd."""
    from mobilityd.sip.message import Request, make_response, parse_message
    from tests.sip.uafixtures import ALICE, make_ua

    ua = make_ua("alice", ALICE, 7)
    call_id = ua.invite(bob_uri(), 0.0, body=SDP)
    (out,) = ua.datagrams_to_send()
    invite = parse_message(out.data)
    assert isinstance(invite, Request)

    def answer(status: int, tag: str, host: str) -> bytes:
        response = make_response(invite, status, None, tag)
        response.headers.add("Contact", f"<sip:bob@{host}>")
        return bytes(response)

    ua.receive(answer(180, "forkA", "10.0.0.5"), BOB, 0.1)
    ua.receive(answer(200, "forkB", "10.0.0.6"), BOB, 0.2)
    events = []
    while (event := ua.next_event()) is not None:
        events.append(event)
    assert [type(e) for e in events] == [ev.ProvisionalResponseReceived, ev.CallEstablished]
    dialog = ua.call(call_id).dialog
    assert dialog is not None and dialog.remote_tag == "forkB"
    (ack,) = ua.datagrams_to_send()
    assert ack.data.startswith(b"ACK sip:bob@10.0.0.6 ") and ack.destination == ("10.0.0.6", 5060)

    ua.receive(answer(200, "forkA", "10.0.0.5"), BOB, 0.3)
    sent = [(o.data.split(b" ", 1)[0], o.destination) for o in ua.datagrams_to_send()]
    assert sent == [(b"ACK", ("10.0.0.5", 5060)), (b"BYE", ("10.0.0.5", 5060))]
    assert dialog.remote_tag == "forkB" and ua.next_event() is None
    ua.receive(answer(200, "forkB", "10.0.0.6"), BOB, 0.4)  # retransmission: same ACK
    (again,) = ua.datagrams_to_send()
    assert again.data == ack.data
    ua.receive(answer(200, "forkA", "10.0.0.5"), BOB, 0.5)  # the other fork retransmits
    (re_ack,) = ua.datagrams_to_send()
    assert re_ack.destination == ("10.0.0.5", 5060) and re_ack.data.startswith(b"ACK ")
