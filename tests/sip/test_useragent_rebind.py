"""Our address changes mid-dialog and mid-transaction (RFC 3261 §12.2.1.1, RFC 3581)."""

from __future__ import annotations

from mobilityd.sip import events as ev
from mobilityd.sip.ua.session import CallPhase
from tests.sip.uafixtures import SDP, bob_uri, pair

NEW = ("10.8.0.5", 5064)


def test_transaction_in_flight_survives_the_move() -> None:
    """An OPTIONS whose first copy is lost completes after we moved: the
    retransmission leaves from the new address and, thanks to ``rport`` (RFC 3581 §4),
    the answer comes back to where the request came from."""
    net, alice, bob = pair()
    call_id = alice.ua.invite(bob_uri(), net.now, body=SDP)
    net.run(lambda: bool(bob.of_type(ev.CallEstablished)))
    lost: list[bytes] = []

    def lose_first_options(data: bytes, source: object, dest: object) -> bool:
        if data.startswith(b"OPTIONS") and not lost:
            lost.append(data)
            return True
        return False

    net._drop = lose_first_options
    alice.ua.send_options(call_id, net.now)
    net.flush()
    alice.ua.set_local_address(*NEW)
    net.move(alice, NEW)
    net.run(lambda: bool(alice.of_type(ev.RequestAnswered)))
    (answer,) = alice.of_type(ev.RequestAnswered)
    assert isinstance(answer, ev.RequestAnswered) and answer.response.status == 200
    assert lost


def test_move_then_reinvite_then_peer_hangs_up_to_new_address() -> None:
    """The end-to-end mobility flow: rebind, re-INVITE with the new Contact, the
    peer's remote target follows, its BYE reaches us at the new address."""
    net, alice, bob = pair()
    call_id = alice.ua.invite(bob_uri(), net.now, body=SDP)
    net.run(lambda: bool(bob.of_type(ev.CallEstablished)))
    alice.ua.set_local_address(*NEW)
    net.move(alice, NEW)
    alice.ua.reinvite(call_id, net.now, body=SDP)
    net.run(lambda: bool(alice.of_type(ev.ReinviteAccepted)))
    bob.ua.hangup(call_id, net.now)
    net.run()
    assert alice.of_type(ev.CallEnded) == [ev.CallEnded(call_id, True, "BYE received")]
    assert alice.ua.calls == 0


def test_bye_on_early_dialog_terminates_the_invite() -> None:
    """§15 / §15.1.2: a BYE on an early dialog gets 200 and the INVITE 487."""
    def ring(node, event, now):  # type: ignore[no-untyped-def]
        if isinstance(event, ev.IncomingCallReceived):
            node.ua.answer_call(event.call_id, now, 180)

    net, alice, bob = pair(bob_handler=ring)
    call_id = alice.ua.invite(bob_uri(), net.now, body=SDP)
    net.run(lambda: bool(alice.of_type(ev.ProvisionalResponseReceived)))
    session = alice.ua.call(call_id)
    assert session.dialog is not None and session.phase is CallPhase.CALLING
    from mobilityd.sip.ua import requests as rq
    bye = rq.in_dialog_request(session.dialog, "BYE", via="SIP/2.0/UDP 10.0.0.1:5060;"
                               "branch=z9hG4bKearlybye", cseq=2, contact=False)
    bob.ua.receive(bytes(bye), ("10.0.0.1", 5060), net.now)
    net.run()
    assert alice.of_type(ev.CallFailed) == [ev.CallFailed(call_id, 487, "Request Terminated")]
    assert bob.of_type(ev.CallEnded) == [ev.CallEnded(call_id, True, "BYE received")]
