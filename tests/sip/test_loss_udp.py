"""Every transaction completes over a lossy UDP network (RFC 3261 §17: retransmission
by timers A, E, G and by the TU for 2xx, §13.3.1.4), with a seeded 20 % loss."""

from __future__ import annotations

import pytest

from mobilityd.sip import events as ev
from mobilityd.sip.ua.memnet import Node
from tests.sip.uafixtures import SDP, bob_uri, pair

CALLS = 40


def caller(node: Node, event: ev.Event, now: float) -> None:
    """Alice: re-INVITE once established, hang up once the re-INVITE is accepted."""
    if isinstance(event, ev.CallEstablished):
        node.ua.reinvite(event.call_id, now, body=SDP + b"a=second\r\n")
    elif isinstance(event, ev.ReinviteAccepted):
        node.ua.hangup(event.call_id, now)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_twenty_percent_loss_every_call_completes(seed: int) -> None:
    sent_by_bob: list[bytes] = []

    def record(data: bytes, source: object, destination: object) -> bool:
        if source == ("10.0.0.2", 5060):
            sent_by_bob.append(data.split(b"\r\n", 1)[0])
        return False

    net, alice, bob = pair(loss=0.2, seed=seed, alice_handler=caller)
    net._drop = record  # observe everything bob sends (loss is applied after)
    call_ids = [alice.ua.invite(bob_uri(), net.now + i * 0.05, body=SDP)
                for i in range(CALLS)]
    net.run(max_time=400.0)
    assert net.dropped > 0.15 * (alice.sent + bob.sent)

    established = {e.call_id for e in alice.of_type(ev.CallEstablished)
                   if isinstance(e, ev.CallEstablished)}
    assert established == set(call_ids)
    accepted = {e.call_id for e in alice.of_type(ev.ReinviteAccepted)
                if isinstance(e, ev.ReinviteAccepted)}
    assert accepted == set(call_ids)
    byes = {e.call_id: e.response.status for e in alice.of_type(ev.RequestAnswered)
            if isinstance(e, ev.RequestAnswered) and e.method == "BYE"}
    assert byes == dict.fromkeys(call_ids, 200)
    ended_at_bob = {e.call_id for e in bob.of_type(ev.CallEnded)
                    if isinstance(e, ev.CallEnded) and e.by_peer}
    assert ended_at_bob == set(call_ids)
    assert not alice.of_type(ev.CallFailed) and not alice.of_type(ev.RequestFailed)
    # Retransmitted INVITEs and BYEs were absorbed, never answered 481 (§17.2.3).
    assert not [line for line in sent_by_bob if b" 481 " in line]
    # And everything was cleaned up afterwards.
    assert alice.ua.calls == bob.ua.calls == 0
    assert alice.ua.transactions == bob.ua.transactions == 0


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(10, 20))
def test_twenty_percent_loss_many_calls(seed: int) -> None:
    """The exhaustive tier: 300 overlapping calls per seed, same guarantees."""
    net, alice, bob = pair(loss=0.2, seed=seed, alice_handler=caller)
    call_ids = [alice.ua.invite(bob_uri(), net.now + i * 0.01, body=SDP) for i in range(300)]
    net.run(max_time=600.0)
    byes = {e.call_id: e.response.status for e in alice.of_type(ev.RequestAnswered)
            if isinstance(e, ev.RequestAnswered) and e.method == "BYE"}
    assert byes == dict.fromkeys(call_ids, 200)
    assert not alice.of_type(ev.CallFailed) and not alice.of_type(ev.RequestFailed)
    assert alice.ua.calls == bob.ua.calls == 0
    assert alice.ua.transactions == bob.ua.transactions == 0
