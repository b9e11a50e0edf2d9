"""Property of the return-routability gate over random input sequences (issue 5 step
4): a switch needs both halves -- a verified move (RFC 3830 §4.5) no older than
``update_lifetime`` and an authenticated packet (RFC 3711 §3.3/§3.4) from the new
address no older than ``proof_lifetime`` -- and untrusted input never changes where we
send. Default tier: 300 sequences; MOBILITYD_SLOW=1: 20x that."""

from __future__ import annotations

import os
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from mobilityd.media.events import Address, RemoteAddressConfirmed
from mobilityd.media.routability import ReturnRoutabilityGate

OLD, NEW, ATTACKER = ("10.2.0.2", 40000), ("10.3.0.7", 40000), ("10.66.0.6", 5004)
SOURCES: list[Address] = [OLD, ("10.2.0.2", 40001), NEW, ("10.3.0.7", 40001), ATTACKER,
                          ("fd00:2::2", 40000)]


@dataclass(frozen=True)
class Update:
    hint: Address | None
    any_source: bool


@dataclass(frozen=True)
class Media:
    source: Address
    rtcp: bool


@dataclass(frozen=True)
class Untrusted:
    pass


Step = Update | Media | Untrusted
steps = st.one_of(
    st.builds(Update, st.none(), st.just(True)),
    st.builds(Update, st.sampled_from(SOURCES), st.booleans()),
    st.builds(Media, st.sampled_from(SOURCES), st.booleans()),
    st.just(Untrusted()),
)


def examples(default: int) -> int:
    """Hypothesis examples: ``default``, or 20x that in the slow tier (MOBILITYD_SLOW=1)."""
    return default * 20 if os.environ.get("MOBILITYD_SLOW") == "1" else default


def feed(gate: ReturnRoutabilityGate, step: Step, now: float) -> list[object]:
    if isinstance(step, Update):
        return list(gate.propose(step.hint, None, any_source=step.any_source, now=now))
    if isinstance(step, Media):
        return list(gate.authenticated(step.source, rtcp=step.rtcp, now=now))
    return list(gate.untrusted(now))


@settings(max_examples=examples(300), deadline=None)
@given(sequence=st.lists(st.tuples(steps, st.floats(0, 10)), max_size=60),
       mux=st.booleans(), known_remote=st.booleans(),
       proof_lifetime=st.sampled_from([0.0, 5.0, 32.0]),
       update_lifetime=st.sampled_from([0.0, 5.0, 32.0]))
def test_switch_needs_both_halves(sequence: list[tuple[Step, float]], mux: bool,
                                  known_remote: bool, proof_lifetime: float,
                                  update_lifetime: float) -> None:
    """Every switch goes to the source of an authenticated packet seen within
    ``proof_lifetime``, with a verified move within ``update_lifetime`` since the
    previous switch (the only exception: latching the very first destination when none
    is known, RFC 4961); untrusted input and the SDP hint alone never move anything."""
    gate = ReturnRoutabilityGate(rtcp_mux=mux, proof_lifetime=proof_lifetime,
                                 update_lifetime=update_lifetime)
    if known_remote:
        gate.set_remote(OLD)
    now = 0.0
    update_at: float | None = None
    media_at: dict[tuple[Address, bool], float] = {}
    for step, delta in sequence:
        now += delta
        if isinstance(step, Update):
            update_at = now
        if isinstance(step, Media):
            media_at[(step.source, step.rtcp)] = now
        before = (gate.remote_rtp, gate.remote_rtcp)
        events = feed(gate, step, now)
        changes = [e for e in events if isinstance(e, RemoteAddressConfirmed)]
        assert len(changes) <= 1
        if isinstance(step, Untrusted):
            assert events == [] and (gate.remote_rtp, gate.remote_rtcp) == before
        if not changes:
            assert (gate.remote_rtp, gate.remote_rtcp) == before
            continue
        (change,) = changes
        assert change.previous == before[0]
        assert (change.rtp, change.rtcp) == (gate.remote_rtp, gate.remote_rtcp) != before
        proof = change.rtcp if change.confirmed_by_rtcp else change.rtp
        assert now - media_at[(proof, change.confirmed_by_rtcp)] <= proof_lifetime
        if before[0] is not None:  # not the first latch
            assert update_at is not None and now - update_at <= update_lifetime
        update_at = None  # each move needs its own verified update
