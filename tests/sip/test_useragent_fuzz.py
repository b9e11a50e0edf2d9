"""Fuzz: no input makes an exception escape ``UserAgent.receive`` (house rule 7), and
the engine keeps working afterwards (no lost state)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mobilityd.sip import events as ev
from mobilityd.sip.ua.memnet import MemoryNetwork, Node
from tests.sip.uafixtures import SDP, bob_uri, pair

PEER = ("10.0.0.1", 5060)


def established() -> tuple[MemoryNetwork, Node, Node, str, list[bytes]]:
    """A call alice -> bob, plus every datagram alice sent (the fuzz seeds)."""
    seeds: list[bytes] = []

    def record(data: bytes, source: object, dest: object) -> bool:
        seeds.append(data)
        return False

    net, alice, bob = pair()
    net._drop = record
    call_id = alice.ua.invite(bob_uri(), net.now, body=SDP)
    net.run(lambda: bool(bob.of_type(ev.CallEstablished)))
    alice.ua.reinvite(call_id, net.now, body=SDP)
    alice.ua.send_options(call_id, net.now)
    net.run()
    return net, alice, bob, call_id, seeds


NET, ALICE, BOB, CALL_ID, SEEDS = established()


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "dup-line", "drop-line"]))
        if kind == "flip" and data:
            at = draw(st.integers(0, len(data) - 1))
            data[at] = draw(st.integers(0, 255))
        elif kind == "cut":
            data = data[: draw(st.integers(0, len(data)))]
        elif kind == "insert":
            at = draw(st.integers(0, len(data)))
            data[at:at] = draw(st.binary(max_size=12))
        else:
            lines = bytes(data).split(b"\r\n")
            if len(lines) > 2:
                index = draw(st.integers(1, len(lines) - 2))
                if kind == "dup-line":
                    lines.insert(index, lines[index])
                else:
                    del lines[index]
            data = bytearray(b"\r\n".join(lines))
    return bytes(data)


@settings(max_examples=200, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_messages_never_escape(data: bytes) -> None:
    BOB.ua.receive(data, PEER, NET.now)
    BOB.ua.datagrams_to_send()
    while BOB.ua.next_event() is not None:
        pass


@settings(max_examples=100, deadline=None, derandomize=True)
@given(st.binary(max_size=300))
def test_random_bytes_never_escape(data: bytes) -> None:
    BOB.ua.receive(data, PEER, NET.now)
    BOB.ua.datagrams_to_send()


def test_the_call_survives_the_fuzzing() -> None:
    """After all that garbage, bob's BYE still ends the call cleanly at alice."""
    test_mutated_messages_never_escape()
    test_random_bytes_never_escape()
    while BOB.ua.next_event() is not None:
        pass
    NET._drop = None
    BOB.ua.hangup(CALL_ID, NET.now)
    NET.run()
    assert ev.CallEnded(CALL_ID, True, "BYE received") in ALICE.events
