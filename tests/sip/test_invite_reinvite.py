"""re-INVITE and target refresh between two in-memory UAs (RFC 3261 §12.2, §14)."""

from __future__ import annotations

from mobilityd.sip import events as ev
from mobilityd.sip.ua.memnet import MemoryNetwork, Node
from mobilityd.sip.ua.session import CallPhase
from tests.sip.uafixtures import SDP, bob_uri, pair

NEW_ALICE = ("10.9.0.7", 5062)


def established(net: MemoryNetwork, alice: Node, bob: Node) -> str:
    call_id = alice.ua.invite(bob_uri(), net.now, body=SDP)
    net.run(lambda: bool(bob.of_type(ev.CallEstablished)))
    return call_id


def test_reinvite_with_new_contact_moves_the_peer_remote_target() -> None:
    """§12.2.1.1 + §12.2.2: after our rebind, the re-INVITE's Contact becomes the
    peer's remote target - its next request (BYE) reaches the new address."""
    net, alice, bob = pair()
    call_id = established(net, alice, bob)
    alice.ua.set_local_address(*NEW_ALICE)
    net.move(alice, NEW_ALICE)
    alice.ua.reinvite(call_id, net.now, body=SDP + b"a=moved\r\n")
    net.run(lambda: bool(alice.of_type(ev.ReinviteAccepted)))
    (received,) = bob.of_type(ev.ReinviteReceived)
    assert isinstance(received, ev.ReinviteReceived)
    assert received.new_remote_target is not None
    assert (received.new_remote_target.host, received.new_remote_target.port) == NEW_ALICE
    (refreshed,) = bob.of_type(ev.RemoteTargetRefreshed)
    assert isinstance(refreshed, ev.RemoteTargetRefreshed)
    assert refreshed.old.host == "10.0.0.1" and refreshed.new.host == NEW_ALICE[0]
    dialog = bob.ua.call(call_id).dialog
    assert dialog is not None and dialog.remote_target == refreshed.new

    bob.ua.hangup(call_id, net.now)
    net.run()
    assert alice.of_type(ev.CallEnded) == [ev.CallEnded(call_id, True, "BYE received")]


def test_the_ack_of_a_reinvite_is_reported_once() -> None:
    """§13.3.1.4 / §14.1: the ACK of our 2xx to the peer's re-INVITE ends that INVITE
    transaction, so a re-INVITE of ours may go from then on; it is reported as
    ``ReinviteConfirmed`` (once; the initial INVITE's ACK is ``CallEstablished``)."""
    net, alice, bob = pair()
    call_id = established(net, alice, bob)
    assert not bob.of_type(ev.ReinviteConfirmed)
    alice.ua.reinvite(call_id, net.now, body=SDP + b"a=moved\r\n")
    net.run(lambda: bool(bob.of_type(ev.ReinviteConfirmed)))
    net.run()
    (confirmed,) = bob.of_type(ev.ReinviteConfirmed)
    assert isinstance(confirmed, ev.ReinviteConfirmed)
    assert confirmed.call_id == call_id and confirmed.ack.method == "ACK"
    assert alice.of_type(ev.ReinviteAccepted)
    assert not alice.of_type(ev.ReinviteConfirmed)


def test_refused_reinvite_leaves_the_dialog_as_it_was() -> None:
    """The application refuses the move (e.g. MIKEY did not verify): 488, the remote
    target and route set stay; the call goes on."""
    def refuse(node, event, now):  # type: ignore[no-untyped-def]
        if isinstance(event, ev.IncomingCallReceived):
            node.ua.answer_call(event.call_id, now, 200, body=SDP)
        elif isinstance(event, ev.ReinviteReceived):
            node.ua.refuse_reinvite(event.call_id, now, 488)

    net, alice, bob = pair(bob_handler=refuse)
    call_id = established(net, alice, bob)
    dialog = bob.ua.call(call_id).dialog
    assert dialog is not None
    before = (dialog.remote_target, list(dialog.route_set), dialog.state,
              dialog.local_seq, dialog.local_target)
    alice.ua.set_local_address(*NEW_ALICE)
    alice.ua.reinvite(call_id, net.now, body=SDP)
    net.run(lambda: bool(alice.of_type(ev.ReinviteFailed)))
    net.advance(1.0)
    assert alice.of_type(ev.ReinviteFailed) == [
        ev.ReinviteFailed(call_id, 488, "Not Acceptable Here")]
    after = (dialog.remote_target, list(dialog.route_set), dialog.state, dialog.local_seq,
             dialog.local_target)
    assert after == before
    assert not bob.of_type(ev.RemoteTargetRefreshed)
    assert bob.ua.call(call_id).phase is CallPhase.ESTABLISHED
    # The call still works: BYE from alice (the non-2xx ACK went inside its transaction).
    alice.ua.hangup(call_id, net.now)
    net.run()
    assert bob.of_type(ev.CallEnded) == [ev.CallEnded(call_id, True, "BYE received")]


def test_decision_can_wait_while_the_peer_retransmits() -> None:
    """The re-INVITE stays pending (100 Trying absorbs retransmissions) until the
    application decides; only then the remote target changes."""
    pending: list[str] = []

    def later(node, event, now):  # type: ignore[no-untyped-def]
        if isinstance(event, ev.IncomingCallReceived):
            node.ua.answer_call(event.call_id, now, 200, body=SDP)
        elif isinstance(event, ev.ReinviteReceived):
            pending.append(event.call_id)

    net, alice, bob = pair(bob_handler=later)
    call_id = established(net, alice, bob)
    alice.ua.set_local_address(*NEW_ALICE)
    net.move(alice, NEW_ALICE)
    alice.ua.reinvite(call_id, net.now, body=SDP)
    net.advance(5.0)  # bob's application is slow (MIKEY verification...)
    dialog = bob.ua.call(call_id).dialog
    assert dialog is not None and dialog.remote_target.host == "10.0.0.1"
    assert len(bob.of_type(ev.ReinviteReceived)) == 1  # retransmissions absorbed
    bob.ua.accept_reinvite(call_id, net.now, body=SDP)
    net.run(lambda: bool(alice.of_type(ev.ReinviteAccepted)))
    assert dialog.remote_target.host == NEW_ALICE[0]


def test_uas_moves_and_the_caller_follows() -> None:
    """The callee re-INVITEs with a new Contact: the caller's remote target follows."""
    net, alice, bob = pair(alice_handler=lambda node, event, now: (
        node.ua.accept_reinvite(event.call_id, now, body=SDP)
        if isinstance(event, ev.ReinviteReceived) else None))
    call_id = established(net, alice, bob)
    bob.ua.set_local_address("10.5.5.5", 5080)
    net.move(bob, ("10.5.5.5", 5080))
    bob.ua.reinvite(call_id, net.now, body=SDP)
    net.run(lambda: bool(bob.of_type(ev.ReinviteAccepted)))
    dialog = alice.ua.call(call_id).dialog
    assert dialog is not None and dialog.remote_target.host == "10.5.5.5"
    alice.ua.hangup(call_id, net.now)
    net.run()
    assert bob.of_type(ev.CallEnded) == [ev.CallEnded(call_id, True, "BYE received")]


def test_target_refresh_by_2xx_contact() -> None:
    """§12.2.1.2: the Contact of a 2xx to our re-INVITE updates our remote target."""
    net, alice, bob = pair()
    call_id = established(net, alice, bob)
    bob.ua.set_local_address("10.6.6.6", 5060)  # bob answers with a new Contact
    net.attach(("10.6.6.6", 5060), bob.ua)
    alice.ua.reinvite(call_id, net.now, body=SDP)
    net.run(lambda: bool(alice.of_type(ev.ReinviteAccepted)))
    (refreshed,) = alice.of_type(ev.RemoteTargetRefreshed)
    assert isinstance(refreshed, ev.RemoteTargetRefreshed)
    assert refreshed.new.host == "10.6.6.6"


def test_glare_both_sides_491_then_both_applied() -> None:
    """§14.1/§14.2: crossing re-INVITEs are both answered 491; the Call-ID owner
    (alice) retries after 2.1-4 s, bob after 0-2 s, and both end up accepted."""
    def accept(node, event, now):  # type: ignore[no-untyped-def]
        if isinstance(event, ev.IncomingCallReceived):
            node.ua.answer_call(event.call_id, now, 200, body=SDP)
        elif isinstance(event, ev.ReinviteReceived):
            node.ua.accept_reinvite(event.call_id, now, body=SDP)

    net, alice, bob = pair(alice_handler=accept, bob_handler=accept)
    call_id = established(net, alice, bob)
    start = net.now
    alice.ua.reinvite(call_id, net.now, body=SDP + b"a=alice\r\n")
    bob.ua.reinvite(call_id, net.now, body=SDP + b"a=bob\r\n")
    net.run(lambda: bool(alice.of_type(ev.ReinviteAccepted))
            and bool(bob.of_type(ev.ReinviteAccepted)))
    (a_fail,) = alice.of_type(ev.ReinviteFailed)
    (b_fail,) = bob.of_type(ev.ReinviteFailed)
    assert isinstance(a_fail, ev.ReinviteFailed) and isinstance(b_fail, ev.ReinviteFailed)
    assert a_fail.status == b_fail.status == 491
    assert a_fail.retry_at is not None and b_fail.retry_at is not None
    assert 2.1 <= a_fail.retry_at - start <= 4.1
    assert 0.0 <= b_fail.retry_at - start <= 2.1
    bodies_at_bob = [e.request.body for e in bob.of_type(ev.ReinviteReceived)
                     if isinstance(e, ev.ReinviteReceived)]
    bodies_at_alice = [e.request.body for e in alice.of_type(ev.ReinviteReceived)
                       if isinstance(e, ev.ReinviteReceived)]
    assert bodies_at_bob[-1].endswith(b"a=alice\r\n")
    assert bodies_at_alice[-1].endswith(b"a=bob\r\n")
    assert alice.ua.call(call_id).phase is CallPhase.ESTABLISHED


def test_lower_cseq_gets_500() -> None:
    """§12.2.2: a request with a lower CSeq than the last one is answered 500."""
    net, alice, bob = pair()
    call_id = established(net, alice, bob)
    alice.ua.send_options(call_id, net.now)
    net.run()
    dialog = alice.ua.call(call_id).dialog
    assert dialog is not None and dialog.local_seq is not None
    dialog.local_seq -= 2  # simulate a confused peer re-using an old number
    alice.ua.send_options(call_id, net.now)
    net.run()
    answers = [e.response.status for e in alice.of_type(ev.RequestAnswered)
               if isinstance(e, ev.RequestAnswered)]
    assert answers == [200, 500]


def test_update_is_a_target_refresh_too() -> None:
    """RFC 3311 §5.2 + RFC 3261 §12.2.2: an UPDATE with a new Contact moves the
    remote target once accepted; no ACK, no 2xx retransmission."""
    net, alice, bob = pair()
    call_id = established(net, alice, bob)
    alice.ua.set_local_address(*NEW_ALICE)
    net.move(alice, NEW_ALICE)
    alice.ua.update(call_id, net.now, body=SDP)
    net.run(lambda: bool(alice.of_type(ev.ReinviteAccepted)))
    (received,) = bob.of_type(ev.ReinviteReceived)
    assert isinstance(received, ev.ReinviteReceived) and received.request.method == "UPDATE"
    dialog = bob.ua.call(call_id).dialog
    assert dialog is not None and dialog.remote_target.host == NEW_ALICE[0]
    assert bob.ua.call(call_id).unacked is None
    net.run()
    assert bob.ua.transactions == 0 and alice.ua.transactions == 0


def test_cancelled_reinvite_voids_the_decision() -> None:
    """§9.2: a CANCEL of a pending re-INVITE gets 487 for it; the dialog is unchanged."""
    def undecided(node, event, now):  # type: ignore[no-untyped-def]
        if isinstance(event, ev.IncomingCallReceived):
            node.ua.answer_call(event.call_id, now, 200, body=SDP)

    net, alice, bob = pair(bob_handler=undecided)
    call_id = established(net, alice, bob)
    alice.ua.set_local_address(*NEW_ALICE)
    net.move(alice, NEW_ALICE)
    alice.ua.reinvite(call_id, net.now, body=SDP)
    net.advance(1.0)  # bob's 100 Trying arrived: a CANCEL may be sent (§9.1)
    session = alice.ua.call(call_id)
    assert session.outgoing_reinvite is not None
    # The UA API cancels initial INVITEs only; cancel the re-INVITE by hand (§9.1).
    from mobilityd.sip.ua.requests import cancel_for
    cancel = cancel_for(session.outgoing_reinvite.request)
    bob.ua.receive(bytes(cancel), NEW_ALICE, net.now)
    net.run(lambda: bool(alice.of_type(ev.ReinviteFailed)))
    assert bob.of_type(ev.ReinviteCancelled) == [ev.ReinviteCancelled(call_id)]
    assert alice.of_type(ev.ReinviteFailed)[0] == ev.ReinviteFailed(
        call_id, 487, "Request Terminated")
    dialog = bob.ua.call(call_id).dialog
    assert dialog is not None and dialog.remote_target.host == "10.0.0.1"
