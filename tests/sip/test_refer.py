"""REFER with its implicit subscription and sipfrag NOTIFYs (RFC 3515, RFC 3420),
Referred-By (RFC 3892) and Replaces (RFC 3891), between in-memory UAs."""

from __future__ import annotations

from mobilityd.sip import events as ev
from mobilityd.sip.headers import Replaces
from mobilityd.sip.ua.memnet import MemoryNetwork, Node
from mobilityd.sip.uri import NameAddr, SipUri
from tests.sip.uafixtures import SDP, auto_answer, bob_uri, make_ua, pair

CAROL = ("10.0.0.3", 5060)


def established(net: MemoryNetwork, alice: Node, bob: Node) -> str:
    call_id = alice.ua.invite(bob_uri(), net.now, body=SDP)
    net.run(lambda: bool(bob.of_type(ev.CallEstablished)))
    return call_id


def test_refer_accepted_with_progress_notifies() -> None:
    """RFC 3515 §2.4.2-§2.4.7: 202, NOTIFY 100 Trying (active), NOTIFY 200 OK
    (terminated); Referred-By is carried to the referee (RFC 3892 §3)."""
    def referee(node, event, now):  # type: ignore[no-untyped-def]
        auto_answer(node, event, now)
        if isinstance(event, ev.ReferReceived):
            node.ua.accept_refer(event.call_id, now)

    net, alice, bob = pair(bob_handler=referee)
    call_id = established(net, alice, bob)
    carol = SipUri.parse("sip:carol@10.0.0.3")
    by = NameAddr.parse("<sip:alice@example.org>")
    alice.ua.refer(call_id, carol, net.now, referred_by=by)
    net.run(lambda: bool(alice.of_type(ev.ReferProgressNotified)))
    (received,) = bob.of_type(ev.ReferReceived)
    assert isinstance(received, ev.ReferReceived)
    assert received.refer_to.uri == carol
    assert received.referred_by is not None and received.referred_by.uri == by.uri
    assert alice.of_type(ev.ReferAnswered) == [ev.ReferAnswered(call_id, 202, "Accepted")]
    assert alice.of_type(ev.ReferProgressNotified) == [
        ev.ReferProgressNotified(call_id, 100, "Trying", False)]

    bob.ua.notify_refer_progress(call_id, 200, "OK", net.now)
    net.run(lambda: len(alice.of_type(ev.ReferProgressNotified)) == 2)
    assert alice.of_type(ev.ReferProgressNotified)[-1] == ev.ReferProgressNotified(
        call_id, 200, "OK", True)
    net.run()
    notify = [e for e in bob.of_type(ev.RequestAnswered)
              if isinstance(e, ev.RequestAnswered) and e.method == "NOTIFY"]
    assert [n.response.status for n in notify] == [200, 200]


def test_refer_refused() -> None:
    def referee(node, event, now):  # type: ignore[no-untyped-def]
        auto_answer(node, event, now)
        if isinstance(event, ev.ReferReceived):
            node.ua.refuse_refer(event.call_id, now, 603)

    net, alice, bob = pair(bob_handler=referee)
    call_id = established(net, alice, bob)
    alice.ua.refer(call_id, SipUri.parse("sip:carol@10.0.0.3"), net.now)
    net.run()
    assert alice.of_type(ev.ReferAnswered) == [ev.ReferAnswered(call_id, 603, "Decline")]
    assert not alice.of_type(ev.ReferProgressNotified)


def test_refer_to_carries_replaces_and_carol_replaces_the_call() -> None:
    """Attended transfer: REFER with Refer-To <...?Replaces=...> (RFC 3891 §6.1); the
    INVITE with Replaces matches the named dialog at the UAS (RFC 3891 §3)."""
    net, alice, bob = pair()
    call_id = established(net, alice, bob)
    dialog = bob.ua.call(call_id).dialog
    assert dialog is not None
    replaces = Replaces(call_id=call_id, to_tag=dialog.local_tag, from_tag=dialog.remote_tag)

    carol = net.attach(CAROL, make_ua("carol", CAROL, 99))
    captured: list[ev.ReferReceived] = []

    def referee(node, event, now):  # type: ignore[no-untyped-def]
        if isinstance(event, ev.ReferReceived):
            captured.append(event)
            node.ua.accept_refer(event.call_id, now)

    carol_call = carol.ua.invite(bob_uri(), net.now, body=SDP)
    net.run(lambda: bool(carol.of_type(ev.CallEstablished)))
    carol.handler = referee
    # Bob (the referrer) asks carol, in the carol-bob call, to call him with Replaces
    # naming his call with alice.
    bob.ua.refer(carol_call, SipUri.parse("sip:alice@10.0.0.1"), net.now,
                 replaces=replaces)
    net.run(lambda: bool(captured))
    refer_to = captured[0].refer_to
    assert refer_to.uri.headers.get("Replaces") is not None
    assert Replaces.parse(refer_to.uri.headers["Replaces"]) == replaces

    # Carol acts on it: INVITE bob with Replaces (the header from the Refer-To URI).
    new_call = carol.ua.invite(bob_uri(), net.now, body=SDP,
                               headers=(("Replaces", str(replaces)),))
    net.run(lambda: len(bob.of_type(ev.IncomingCallReceived)) == 3)
    incoming = bob.of_type(ev.IncomingCallReceived)[-1]
    assert isinstance(incoming, ev.IncomingCallReceived)
    assert incoming.call_id == new_call and incoming.replaces_call_id == call_id


def test_replaces_naming_no_dialog_gets_481() -> None:
    """RFC 3891 §3: no matching dialog -> 481."""
    net, alice, bob = pair()
    bogus = Replaces(call_id="nope@x", to_tag="a", from_tag="b")
    alice.ua.invite(bob_uri(), net.now, body=SDP, headers=(("Replaces", str(bogus)),))
    net.run()
    (failed,) = alice.of_type(ev.CallFailed)
    assert isinstance(failed, ev.CallFailed) and failed.status == 481
    assert not bob.of_type(ev.IncomingCallReceived)


def test_refer_without_refer_to_and_notify_with_other_event() -> None:
    """RFC 3515 §2.4.1: a REFER needs exactly one Refer-To (400); RFC 6665 §4.1.3: a
    NOTIFY for an event package we did not subscribe to gets 489."""
    from mobilityd.sip.ua import requests as rq

    net, alice, bob = pair()
    call_id = established(net, alice, bob)
    dialog = alice.ua.call(call_id).dialog
    assert dialog is not None
    statuses = []
    for method, extra in (("REFER", []), ("NOTIFY", [("Event", "presence"),
                                                      ("Subscription-State", "active")])):
        request = rq.in_dialog_request(
            dialog, method, via=f"SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK{method}",
            cseq=dialog.next_local_seq(), contact=True, extra=extra)
        bob.ua.receive(bytes(request), ("10.0.0.1", 5060), net.now)
        (out,) = bob.ua.datagrams_to_send()
        statuses.append(int(out.data.split(b" ", 2)[1]))
    assert statuses == [400, 489]
    assert not bob.of_type(ev.ReferReceived)


def test_in_dialog_options() -> None:
    """§11: OPTIONS inside the dialog is answered 200 with our capabilities."""
    net, alice, bob = pair()
    call_id = established(net, alice, bob)
    alice.ua.send_options(call_id, net.now)
    net.run()
    (answer,) = alice.of_type(ev.RequestAnswered)
    assert isinstance(answer, ev.RequestAnswered)
    assert answer.response.status == 200 and "replaces" in answer.response.supported
