"""Bad input never escapes as anything but NegotiationError (style rule 7): mutated
offers into the Answerer, mutated answers into the Offerer (hypothesis; the slow tier
runs many more examples)."""

from __future__ import annotations

import contextlib
import os
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mobilityd.call.errors import NegotiationError
from mobilityd.call.identity import sip_identity
from mobilityd.call.keying import KeyingConfig, KeyMethod, PeerKeying
from mobilityd.call.negotiation import Answerer, CallSecurity, Offerer
from mobilityd.call.sdpmedia import MediaPort
from tests.call.credentials import NOW, PSK

ALICE, BOB = sip_identity("sip:alice@a.test"), sip_identity("sip:bob@b.test")
EXAMPLES = 2000 if os.environ.get("MOBILITYD_SLOW") == "1" else 150
PORTS = [MediaPort("10.1.0.2", 40000, 40001), MediaPort("10.1.0.2", 40002, 40003)]


def _offerer() -> tuple[Offerer, bytes]:
    offerer = Offerer(ALICE, BOB, CallSecurity.PREFERRED,
                      KeyingConfig(peers={BOB: PeerKeying(KeyMethod.PSK, PSK)}))
    return offerer, offerer.make_offer(PORTS, NOW, random.Random(1).randbytes)


def _answer() -> bytes:
    _, offer = _offerer()
    answerer = Answerer(BOB, CallSecurity.REQUIRED,
                        KeyingConfig(peers={ALICE: PeerKeying(KeyMethod.PSK, PSK)}))
    plan = answerer.receive_offer(offer, ALICE, NOW, random.Random(2).randbytes)
    return answerer.build_answer(plan, MediaPort("10.2.0.2", 50000, 50001), 3)


OFFER = _offerer()[1]
ANSWER = _answer()


def mutate(data: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    out = bytearray(data)
    for position, value in edits:
        out[position % len(out)] = value
    return bytes(out[:cut] if cut is not None else out)


edits = st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=6)
cuts = st.none() | st.integers(0, 2000)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edits, cuts)
def test_mutated_offers_raise_only_negotiation_error(
        changes: list[tuple[int, int]], cut: int | None) -> None:
    answerer = Answerer(BOB, CallSecurity.PREFERRED,
                        KeyingConfig(peers={ALICE: PeerKeying(KeyMethod.PSK, PSK)}))
    try:
        answerer.receive_offer(mutate(OFFER, changes, cut), ALICE, NOW,
                               random.Random(3).randbytes)
    except NegotiationError as exc:
        assert 400 <= exc.status < 700


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edits, cuts)
def test_mutated_answers_raise_only_negotiation_error(
        changes: list[tuple[int, int]], cut: int | None) -> None:
    offerer, _ = _offerer()
    with contextlib.suppress(NegotiationError):
        offerer.receive_answer(mutate(ANSWER, changes, cut), NOW)


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.binary(max_size=600))
def test_random_bodies_raise_only_negotiation_error(body: bytes) -> None:
    answerer = Answerer(BOB, CallSecurity.PREFERRED,
                        KeyingConfig(peers={ALICE: PeerKeying(KeyMethod.PSK, PSK)}))
    with contextlib.suppress(NegotiationError):
        answerer.receive_offer(body, ALICE, NOW, random.Random(3).randbytes)
