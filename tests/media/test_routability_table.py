"""The return-routability gate's table, fed events alone with a hand-advanced clock:
only a verified move plus authenticated media from the new address moves the stream,
in either order, each half fresh (issue 5 step 4; the idea of RFC 4555 §3.5/§3.7
against the threat of §5.3; RFC 3711 §3.3 authentication, RFC 3830 §4.5 update)."""

from __future__ import annotations

import math

import pytest

from mobilityd.media.errors import MediaLocalError
from mobilityd.media.events import (
    RemoteAddressConfirmed,
    RemoteAddressProposed,
    UnconfirmedSourceSeen,
)
from mobilityd.media.routability import (
    TRANSITIONS,
    GateAction,
    GateInput,
    GateState,
    ReturnRoutabilityGate,
)

OLD, NEW, ATTACKER = ("10.2.0.2", 40000), ("10.3.0.7", 40000), ("10.66.0.6", 5004)
THIRD = ("fd00:2::2", 40000)


def gate(**lifetimes: float) -> ReturnRoutabilityGate:
    g = ReturnRoutabilityGate(rtcp_mux=True, **lifetimes)
    g.set_remote(OLD)
    return g


def confirmed(events: object) -> list[RemoteAddressConfirmed]:
    assert isinstance(events, list)
    return [e for e in events if isinstance(e, RemoteAddressConfirmed)]


def test_table_is_complete_and_unreachable_rows_change_nothing() -> None:
    assert set(TRANSITIONS) == {(s, i) for s in GateState for i in GateInput}
    switches = {A for _, A in TRANSITIONS.values()} & {
        GateAction.SWITCH_TO_PACKET_SOURCE, GateAction.SWITCH_TO_REMEMBERED}
    assert switches  # and only these two rows (plus the first latch) ever switch:
    assert {key for key, (_, action) in TRANSITIONS.items() if action in switches} == {
        (GateState.UPDATE_SEEN, GateInput.MEDIA_FROM_CANDIDATE),
        (GateState.MEDIA_SEEN, GateInput.UPDATE_ACCEPTING_REMEMBERED)}
    for state in GateState:
        assert TRANSITIONS[(state, GateInput.UNTRUSTED)] == (state, GateAction.NONE)
        assert TRANSITIONS[(state, GateInput.MEDIA_FROM_DESTINATION)] == (
            state, GateAction.NONE)


def test_update_then_media() -> None:
    g = gate()
    assert g.propose(None, None, any_source=True, now=0.0) == [
        RemoteAddressProposed(None, None)]
    assert g.state is GateState.UPDATE_SEEN
    assert g.authenticated(OLD, rtcp=False, now=0.01) == []
    assert g.authenticated(NEW, rtcp=False, now=0.02) == [
        RemoteAddressConfirmed(OLD, NEW, NEW, False, 0.02)]
    assert (g.remote_rtp, g.state) == (NEW, GateState.IDLE)


def test_media_then_update() -> None:
    """The mover sends from the new address at once, so media usually comes first."""
    g = gate()
    assert g.authenticated(NEW, rtcp=False, now=0.0) == [UnconfirmedSourceSeen(NEW, False)]
    assert g.authenticated(OLD, rtcp=False, now=0.01) == []  # late packet, old path
    assert g.remote_rtp == OLD and g.state is GateState.MEDIA_SEEN
    assert confirmed(g.propose(None, None, any_source=True, now=0.05)) == [
        RemoteAddressConfirmed(OLD, NEW, NEW, False, 0.05)]
    assert (g.remote_rtp, g.state) == (NEW, GateState.IDLE)


def test_rewritten_sdp_cannot_redirect() -> None:
    """A genuine update whose c= was rewritten to the attacker: with ``any_source`` the
    stream goes where authenticated media comes from; forged media from the attacker is
    untrusted and moves nothing."""
    g = gate()
    g.propose(ATTACKER, None, any_source=True, now=0.0)
    assert g.untrusted(0.01) == []  # the attacker's forged packet
    assert g.remote_rtp == OLD
    assert confirmed(g.authenticated(NEW, rtcp=False, now=0.02)) == [
        RemoteAddressConfirmed(OLD, NEW, NEW, False, 0.02)]


def test_rewritten_specific_address_needs_media_from_it() -> None:
    """Without ``any_source`` the proposed address is accepted only once authenticated
    media comes from it; media from elsewhere (even the real mover) is reported only."""
    g = gate()
    g.propose(ATTACKER, None, any_source=False, now=0.0)
    for t in range(50):
        assert g.authenticated(NEW, rtcp=False, now=0.02 * t) in (
            [], [UnconfirmedSourceSeen(NEW, False)])
        g.untrusted(0.02 * t)
    assert g.remote_rtp == OLD and g.proposal is not None


@pytest.mark.parametrize("held", ["media", "update", "nothing"])
def test_untrusted_inputs_never_switch(held: str) -> None:
    g = gate()
    if held == "media":
        g.authenticated(NEW, rtcp=False, now=0.0)
    elif held == "update":
        g.propose(NEW, None, any_source=False, now=0.0)
    state = g.state
    for _ in range(3):
        assert g.untrusted(0.1) == []
    assert (g.remote_rtp, g.state, g.untrusted_inputs) == (OLD, state, 3)


def test_authenticated_media_alone_never_switches() -> None:
    g = gate()
    for t in range(100):
        assert not confirmed(g.authenticated(NEW, rtcp=t % 2 == 1, now=t * 0.02))
    assert g.remote_rtp == OLD and g.unconfirmed_packets == 100


def test_each_move_needs_its_own_update() -> None:
    g = gate()
    g.propose(None, None, any_source=True, now=0.0)
    g.authenticated(NEW, rtcp=False, now=0.1)
    assert g.authenticated(THIRD, rtcp=False, now=0.2) == [UnconfirmedSourceSeen(THIRD, False)]
    assert g.remote_rtp == NEW
    assert confirmed(g.propose(None, None, any_source=True, now=0.3)) == [
        RemoteAddressConfirmed(NEW, THIRD, THIRD, False, 0.3)]


def test_half_a_proof_goes_stale() -> None:
    g = gate(update_lifetime=32.0)
    g.propose(None, None, any_source=True, now=0.0)
    assert not confirmed(g.authenticated(NEW, rtcp=False, now=40.0))
    assert g.state is GateState.MEDIA_SEEN and g.remote_rtp == OLD and g.proposal is None
    g2 = gate(proof_lifetime=32.0)
    g2.authenticated(NEW, rtcp=False, now=0.0)
    assert g2.propose(None, None, any_source=True, now=33.0) == [
        RemoteAddressProposed(None, None)]
    assert g2.state is GateState.UPDATE_SEEN and g2.remote_rtp == OLD


def test_untrusted_input_still_ages_the_held_half() -> None:
    g = gate(update_lifetime=1.0)
    g.propose(None, None, any_source=True, now=0.0)
    assert g.untrusted(2.0) == [] and g.state is GateState.IDLE and g.proposal is None


def test_latest_authenticated_source_wins() -> None:
    g = gate()
    g.authenticated(("10.3.0.7", 40002), rtcp=False, now=0.0)
    g.authenticated(NEW, rtcp=False, now=0.1)
    assert confirmed(g.propose(None, None, any_source=True, now=0.2)) == [
        RemoteAddressConfirmed(OLD, NEW, NEW, False, 0.2)]


def test_newer_update_replaces_held_one() -> None:
    """A transfer answer replaces a pending roaming move: the old device's late packet
    cannot take the media back (RFC 3830 §4.5 update of the new device)."""
    g = gate()
    g.propose(None, None, any_source=True, now=0.0)
    g.propose(THIRD, None, any_source=False, now=0.1)
    assert not confirmed(g.authenticated(NEW, rtcp=False, now=0.2))
    assert confirmed(g.authenticated(THIRD, rtcp=False, now=0.3))[0].rtp == THIRD


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf, "32", True])
def test_misuse_is_typed(bad: object) -> None:
    with pytest.raises(MediaLocalError):
        ReturnRoutabilityGate(rtcp_mux=True, proof_lifetime=bad)  # type: ignore[arg-type]
    with pytest.raises(MediaLocalError):
        ReturnRoutabilityGate(rtcp_mux=True, update_lifetime=bad)  # type: ignore[arg-type]
    with pytest.raises(MediaLocalError):
        gate().proof_lifetime = bad  # type: ignore[assignment]


@pytest.mark.parametrize("address", [("10.0.0.1", 0), ("10.0.0.1", 65536),
                                     ("host.example", 5004), "10.0.0.1:5004",
                                     ("10.0.0.1", "5004"), ("10.0.0.1", 5004, 0, 0)])
def test_bad_addresses_are_typed_and_change_nothing(address: object) -> None:
    g = gate()
    with pytest.raises(MediaLocalError):
        g.set_remote(address)  # type: ignore[arg-type]
    with pytest.raises(MediaLocalError):
        g.propose(address, None, any_source=False, now=0.0)  # type: ignore[arg-type]
    with pytest.raises(MediaLocalError):
        g.authenticated(address, rtcp=False, now=0.0)  # type: ignore[arg-type]
    assert (g.remote_rtp, g.state, g.proposal) == (OLD, GateState.IDLE, None)


@pytest.mark.parametrize("now", [math.nan, math.inf, "1.0", None])
def test_bad_clock_is_typed_and_changes_nothing(now: object) -> None:
    g = gate()
    g.propose(None, None, any_source=True, now=0.0)
    with pytest.raises(MediaLocalError):
        g.authenticated(NEW, rtcp=False, now=now)  # type: ignore[arg-type]
    with pytest.raises(MediaLocalError):
        g.propose(NEW, None, any_source=False, now=now)  # type: ignore[arg-type]
    with pytest.raises(MediaLocalError):
        g.untrusted(now)  # type: ignore[arg-type]
    assert (g.remote_rtp, g.state, g.untrusted_inputs) == (OLD, GateState.UPDATE_SEEN, 0)
    assert g.proposal is not None and g.proposal.any_source
