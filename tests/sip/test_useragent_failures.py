"""Failure events carry the final response (RFC 3261 §13.2.2.3, §14.1; RFC 4567
§4.1.2: a MIKEY error message travels in the body of the error response)."""

from __future__ import annotations

from mobilityd.sip import events as ev
from mobilityd.sip.ua.memnet import Node
from tests.sip.uafixtures import SDP, auto_answer, bob_uri, pair

MIKEY_ERROR_SDP = b"v=0\r\no=- 1 1 IN IP4 10.0.0.2\r\ns=-\r\nt=0 0\r\n" \
                  b"a=key-mgmt:mikey AQAFAP8AAAAA\r\n"
WARNING = '399 10.0.0.2 "MIKEY verification failed"'


def reject_with_mikey_error(node: Node, event: ev.Event, now: float) -> None:
    if isinstance(event, ev.IncomingCallReceived):
        node.ua.reject_call(event.call_id, now, 488, headers=(("Warning", WARNING),),
                            body=MIKEY_ERROR_SDP)


def refuse_reinvites(node: Node, event: ev.Event, now: float) -> None:
    if isinstance(event, ev.ReinviteReceived):
        node.ua.refuse_reinvite(event.call_id, now, 488, body=MIKEY_ERROR_SDP)
    else:
        auto_answer(node, event, now)


def test_call_failed_carries_the_488_with_its_body_and_headers() -> None:
    """§13.2.2.3: the 4xx is handed to the caller whole - status, headers, body."""
    net, alice, _bob = pair(bob_handler=reject_with_mikey_error)
    alice.ua.invite(bob_uri(), net.now, body=SDP)
    net.run(lambda: bool(alice.of_type(ev.CallFailed)))
    failed = alice.of_type(ev.CallFailed)[0]
    assert isinstance(failed, ev.CallFailed)
    assert (failed.status, failed.reason) == (488, "Not Acceptable Here")
    assert failed.response is not None
    assert failed.response.status == 488
    assert failed.response.body == MIKEY_ERROR_SDP
    assert failed.response.headers.get("Warning") == WARNING


def test_call_failed_by_timeout_has_no_response() -> None:
    """§17.1.1.2 Timer B: a 408 made up locally - there is no response to carry."""
    net, alice, _bob = pair()
    net.move(_bob, ("10.9.9.9", 5060))  # nobody at Bob's address any more
    alice.ua.invite(bob_uri(), net.now, body=SDP)
    net.run(lambda: bool(alice.of_type(ev.CallFailed)))
    failed = alice.of_type(ev.CallFailed)[0]
    assert isinstance(failed, ev.CallFailed)
    assert failed.status == 408
    assert failed.response is None


def test_reinvite_failed_carries_the_error_body() -> None:
    """§14.1: a refused re-INVITE leaves the session as it was; the 488's body
    (the peer's MIKEY error) reaches the caller."""
    net, alice, bob = pair(bob_handler=refuse_reinvites)
    call_id = alice.ua.invite(bob_uri(), net.now, body=SDP)
    net.run(lambda: bool(alice.of_type(ev.CallEstablished)))
    alice.ua.reinvite(call_id, net.now, body=SDP)
    net.run(lambda: bool(alice.of_type(ev.ReinviteFailed)))
    failed = alice.of_type(ev.ReinviteFailed)[0]
    assert isinstance(failed, ev.ReinviteFailed)
    assert failed.status == 488
    assert failed.response is not None and failed.response.body == MIKEY_ERROR_SDP
    assert not alice.of_type(ev.CallEnded) and not bob.of_type(ev.CallEnded)


def test_ended_caller_session_lingers_for_64_t1_then_is_forgotten() -> None:
    """The sip-transactions note "after our own BYE the caller's sessions still exist
    6 s later" is the §13.2.2.4 linger, not a leak: a UAC keeps an ended call for
    64*T1 (32 s) so that a retransmitted 2xx is still ACKed; then it is dropped and
    no transaction is left (Timer K/J, §17.1.2.2, §17.2.2)."""
    net, alice, bob = pair()
    call_id = alice.ua.invite(bob_uri(), net.now, body=SDP)
    net.run(lambda: bool(alice.of_type(ev.CallEstablished)))
    net.advance(1.0)
    alice.ua.hangup(call_id, net.now)
    net.advance(6.0)
    assert alice.ua.calls == 1  # lingering on purpose (64*T1)
    assert bob.ua.calls == 0  # a UAS needs nothing after the BYE
    net.advance(30.0)
    assert alice.ua.calls == 0 and bob.ua.calls == 0
    assert alice.ua.transactions == 0 and bob.ua.transactions == 0


def test_many_ended_calls_leave_no_state() -> None:
    """No leak: 50 calls set up and hung up by either side leave nothing behind."""
    net, alice, bob = pair()
    for index in range(50):
        call_id = alice.ua.invite(bob_uri(), net.now, body=SDP)

        def answered(expected: int = index + 1) -> bool:
            return len(alice.of_type(ev.CallEstablished)) == expected

        net.run(answered)
        (alice if index % 2 else bob).ua.hangup(call_id, net.now)
        net.advance(0.5)
    net.advance(40.0)
    assert alice.ua.calls == 0 and bob.ua.calls == 0
    assert alice.ua.transactions == 0 and bob.ua.transactions == 0
