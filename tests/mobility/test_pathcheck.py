"""Media return-routability (peer side): only a verified update plus authenticated media
from the new address moves the stream, in either order (issue 5 step 4; the idea of
RFC 4555 §3.7 against the threat of §5.3)."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mobilityd.mobility.errors import MobilityConfigError, UnexpectedEventError
from mobilityd.mobility.events import (
    Endpoint,
    MediaDestinationChanged,
    MikeyUpdateRejected,
    MikeyUpdateVerified,
    PathCheckInput,
    SrtpPacketAuthenticated,
    SrtpPacketRejected,
)
from mobilityd.mobility.pathcheck import TRANSITIONS, MediaPathCheck, PathInput, PathState

OLD = Endpoint("10.2.0.2", 40000)
NEW = Endpoint("10.3.0.7", 40000)
ATTACKER = Endpoint("10.66.0.6", 5004)
UPDATE = MikeyUpdateVerified()


def test_table_is_complete() -> None:
    assert set(TRANSITIONS) == {(s, i) for s in PathState for i in PathInput}


def test_update_then_media() -> None:
    check = MediaPathCheck(OLD)
    assert check.handle_event(UPDATE, 0.0) == []
    assert check.handle_event(SrtpPacketAuthenticated(OLD), 0.01) == []
    assert check.handle_event(SrtpPacketAuthenticated(NEW), 0.02) == [
        MediaDestinationChanged(OLD, NEW)]
    assert check.destination == NEW
    assert check.state is PathState.IDLE


def test_media_then_update() -> None:
    """The mover sends from the new address at once, so media usually comes first."""
    check = MediaPathCheck(OLD)
    assert check.handle_event(SrtpPacketAuthenticated(NEW), 0.0) == []
    assert check.handle_event(SrtpPacketAuthenticated(OLD), 0.01) == []  # late old packet
    assert check.destination == OLD
    assert check.handle_event(UPDATE, 0.05) == [MediaDestinationChanged(OLD, NEW)]


def test_rewritten_sdp_cannot_redirect() -> None:
    """A genuine update whose c= was rewritten: the destination is where authenticated
    media comes from, never an SDP address (the engine never even sees it)."""
    check = MediaPathCheck(OLD)
    check.handle_event(UPDATE, 0.0)
    check.handle_event(SrtpPacketRejected(ATTACKER), 0.01)  # forged media from attacker
    assert check.destination == OLD
    assert check.handle_event(SrtpPacketAuthenticated(NEW), 0.02) == [
        MediaDestinationChanged(OLD, NEW)]


@pytest.mark.parametrize("untrusted", [MikeyUpdateRejected("bad MAC"),
                                       MikeyUpdateRejected("replayed"),
                                       SrtpPacketRejected(NEW)])
def test_untrusted_inputs_never_switch(untrusted: PathCheckInput) -> None:
    check = MediaPathCheck(OLD)
    check.handle_event(SrtpPacketAuthenticated(NEW), 0.0)
    for _ in range(3):
        assert check.handle_event(untrusted, 0.1) == []
    assert check.destination == OLD
    assert check.untrusted_inputs == 3


def test_authenticated_media_alone_never_switches() -> None:
    check = MediaPathCheck(OLD)
    for t in range(100):
        assert check.handle_event(SrtpPacketAuthenticated(NEW), t * 0.02) == []
    assert check.destination == OLD


def test_each_move_needs_its_own_update() -> None:
    check = MediaPathCheck(OLD)
    check.handle_event(UPDATE, 0.0)
    check.handle_event(SrtpPacketAuthenticated(NEW), 0.1)
    third = Endpoint("fd00:2::2", 40000)
    assert check.handle_event(SrtpPacketAuthenticated(third), 0.2) == []
    assert check.destination == NEW
    assert check.handle_event(UPDATE, 0.3) == [MediaDestinationChanged(NEW, third)]


def test_half_a_proof_goes_stale() -> None:
    check = MediaPathCheck(OLD, proof_lifetime=32.0)
    check.handle_event(UPDATE, 0.0)
    assert check.handle_event(SrtpPacketAuthenticated(NEW), 40.0) == []
    assert check.state is PathState.MEDIA_SEEN
    assert check.destination == OLD
    check2 = MediaPathCheck(OLD)
    check2.handle_event(SrtpPacketAuthenticated(NEW), 0.0)
    assert check2.handle_event(UPDATE, 33.0) == []


def test_latest_authenticated_source_wins() -> None:
    check = MediaPathCheck(OLD)
    check.handle_event(SrtpPacketAuthenticated(Endpoint("10.3.0.7", 40002)), 0.0)
    check.handle_event(SrtpPacketAuthenticated(NEW), 0.1)
    assert check.handle_event(UPDATE, 0.2) == [MediaDestinationChanged(OLD, NEW)]


def test_misuse_is_typed() -> None:
    with pytest.raises(MobilityConfigError):
        MediaPathCheck(OLD, proof_lifetime=0)
    with pytest.raises(MobilityConfigError):
        Endpoint("10.0.0.1", 0)
    with pytest.raises(MobilityConfigError):
        Endpoint("host.example", 5004)
    with pytest.raises(UnexpectedEventError):
        MediaPathCheck(OLD).handle_event("packet", 0.0)  # type: ignore[arg-type]


SOURCES = [OLD, NEW, ATTACKER, Endpoint("fd00:2::2", 40000)]
inputs = st.one_of(
    st.just(UPDATE),
    st.builds(MikeyUpdateRejected, st.just("bad")),
    st.builds(SrtpPacketAuthenticated, st.sampled_from(SOURCES)),
    st.builds(SrtpPacketRejected, st.sampled_from(SOURCES)),
)


def examples(default: int) -> int:
    """Hypothesis examples: ``default``, or 20x that in the slow tier (MOBILITYD_SLOW=1)."""
    return default * 20 if os.environ.get("MOBILITYD_SLOW") == "1" else default


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(st.tuples(inputs, st.floats(0, 10)), max_size=60))
def test_switch_needs_both_halves(seq: list[tuple[PathCheckInput, float]]) -> None:
    """Property: every switch goes to a source that sent authenticated media within the
    proof lifetime, with a verified update since the previous switch; untrusted
    inputs alone never change anything."""
    check = MediaPathCheck(OLD)
    now = 0.0
    update_at: float | None = None
    media_at: dict[Endpoint, float] = {}
    for event, delta in seq:
        now += delta
        if isinstance(event, MikeyUpdateVerified):
            update_at = now
        if isinstance(event, SrtpPacketAuthenticated):
            media_at[event.source] = now
        before = check.destination
        for change in check.handle_event(event, now):
            assert change.old == before
            assert change.new != before
            assert update_at is not None and now - update_at <= check.proof_lifetime
            assert now - media_at[change.new] <= check.proof_lifetime
            update_at = None
        if isinstance(event, MikeyUpdateRejected | SrtpPacketRejected):
            assert check.destination == before
