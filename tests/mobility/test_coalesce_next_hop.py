"""An optional move waits for its new next hop's neighbour entry, a forced one never
does (issue 5; ARP RFC 826, neighbor discovery RFC 4861 §7.2 / §7.3.2). Sans-I/O: route
answers and neighbour reports fed by hand, the clock advanced by hand."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mobilityd.mobility.coalesce import (
    MoveCoalescer,
    MovedBeforeNextHopResolved,
    NextHopResolutionStarted,
)
from mobilityd.mobility.decision import CallPath, CallRoutes, NextHop
from mobilityd.mobility.errors import MobilityConfigError
from mobilityd.mobility.events import CallPathChanged, CallPathLost

WLAN, ETH, ALICE = "10.2.0.2", "10.4.0.2", "10.1.0.2"
ETH_GW, ETH_LINK = "10.4.0.1", 3
CAP = 0.2


def engine(cap: float = CAP, hold_down: float = 1.0) -> MoveCoalescer:
    coalescer = MoveCoalescer(hold_down=hold_down, resolve_next_hop=cap)
    coalescer.add_call(CallPath("c1", WLAN, ALICE, ALICE))
    return coalescer


def via_eth(resolved: bool, gateway: str = ETH_GW) -> CallRoutes:
    return CallRoutes(ETH, ETH, None, NextHop(gateway, ETH_LINK, resolved))


def via_wlan() -> CallRoutes:
    return CallRoutes(WLAN, WLAN)


MOVED = [CallPathChanged("c1", WLAN, ETH)]


def test_optional_move_waits_for_the_neighbour_report() -> None:
    c = engine()
    assert c.evaluate(0.0, {"c1": via_eth(False)}, {WLAN, ETH}) == []
    assert c.next_hop_notices() == [NextHopResolutionStarted("c1", ETH_GW, ETH_LINK)]
    assert c.waiting_for_next_hop() == [(ETH_GW, ETH_LINK)]
    assert c.get_timer() == pytest.approx(CAP)
    # another batch during the wait (e.g. the IPv6 route): same wait, no new request
    assert c.evaluate(0.05, {"c1": via_eth(False)}, {WLAN, ETH}) == []
    assert c.next_hop_notices() == []
    assert c.get_timer() == pytest.approx(CAP)
    # the kernel reports the gateway REACHABLE: the waiting call is re-evaluated
    assert c.handle_next_hop_resolved("10.9.9.9", ETH_LINK) == []
    assert c.handle_next_hop_resolved(ETH_GW, ETH_LINK) == ["c1"]
    assert c.evaluate(0.08, {"c1": via_eth(True)}, {WLAN, ETH}) == MOVED
    assert c.next_hop_notices() == []
    assert c.get_timer() is None
    assert c.waiting_for_next_hop() == []
    assert c.calls()[0].local == ETH


def test_optional_move_to_a_resolved_next_hop_acts_at_once() -> None:
    """REACHABLE / STALE / DELAY / PROBE entries send at once (RFC 4861 §7.3.2)."""
    c = engine()
    assert c.evaluate(0.0, {"c1": via_eth(True)}, {WLAN, ETH}) == MOVED
    assert c.next_hop_notices() == []


def test_optional_move_goes_ahead_at_the_cap() -> None:
    c = engine()
    assert c.evaluate(0.0, {"c1": via_eth(False)}, {WLAN, ETH}) == []
    c.next_hop_notices()
    assert c.handle_timer(CAP - 0.001) == []
    assert c.handle_timer(CAP) == ["c1"]
    assert c.get_timer() is None  # no busy loop if the re-evaluation is skipped
    assert c.evaluate(CAP, {"c1": via_eth(False)}, {WLAN, ETH}) == MOVED
    assert c.next_hop_notices() == [MovedBeforeNextHopResolved("c1", ETH_GW, ETH_LINK)]


def test_forced_move_never_waits() -> None:
    """The current address is gone: move on the very evaluation (issue 5)."""
    c = engine()
    assert c.evaluate(0.0, {"c1": via_eth(False)}, {ETH}) == MOVED
    assert c.next_hop_notices() == []
    assert c.get_timer() is None


def test_forced_move_during_a_wait_acts_at_once() -> None:
    """Waiting for eth's gateway, then wlan's address goes: move now, no more wait."""
    c = engine()
    assert c.evaluate(0.0, {"c1": via_eth(False)}, {WLAN, ETH}) == []
    assert c.evaluate(0.01, {"c1": via_eth(False)}, {ETH}) == MOVED
    assert c.get_timer() is None
    assert c.waiting_for_next_hop() == []


def test_link_flapping_during_the_wait() -> None:
    """eth goes down during the wait (the kernel answers wlan again): the wait ends,
    nothing moves; eth back: a fresh wait with a fresh cap."""
    c = engine()
    assert c.evaluate(0.0, {"c1": via_eth(False)}, {WLAN, ETH}) == []
    c.next_hop_notices()
    assert c.evaluate(0.05, {"c1": via_wlan()}, {WLAN}) == []
    assert c.get_timer() is None
    assert c.handle_next_hop_resolved(ETH_GW, ETH_LINK) == []  # a late report: nothing
    assert c.evaluate(0.15, {"c1": via_eth(False)}, {WLAN, ETH}) == []
    assert c.next_hop_notices() == [NextHopResolutionStarted("c1", ETH_GW, ETH_LINK)]
    assert c.get_timer() == pytest.approx(0.15 + CAP)
    assert c.handle_timer(0.25) == []  # the first wait's cap is not this one's
    assert c.evaluate(0.2, {"c1": via_eth(True)}, {WLAN, ETH}) == MOVED


def test_another_next_hop_restarts_the_wait() -> None:
    c = engine()
    assert c.evaluate(0.0, {"c1": via_eth(False)}, {WLAN, ETH}) == []
    c.next_hop_notices()
    assert c.evaluate(0.1, {"c1": via_eth(False, "10.4.0.254")}, {WLAN, ETH}) == []
    assert c.next_hop_notices() == [NextHopResolutionStarted("c1", "10.4.0.254", ETH_LINK)]
    assert c.get_timer() == pytest.approx(0.1 + CAP)


def test_losing_the_path_during_the_wait_is_immediate() -> None:
    c = engine()
    assert c.evaluate(0.0, {"c1": via_eth(False)}, {WLAN, ETH}) == []
    assert c.evaluate(0.01, {"c1": CallRoutes(None)}, set()) == [CallPathLost("c1")]
    assert c.get_timer() is None


def test_zero_cap_never_waits() -> None:
    c = engine(cap=0.0)
    assert c.evaluate(0.0, {"c1": via_eth(False)}, {WLAN, ETH}) == MOVED
    assert c.next_hop_notices() == []


def test_hold_down_comes_before_the_wait() -> None:
    """A call that just moved is held by hold-down first; the next-hop wait starts when
    the hold-down ends."""
    c = engine()
    c.add_call(CallPath("c1", ETH, ALICE, ALICE))
    assert c.evaluate(0.0, {"c1": CallRoutes(WLAN, WLAN)}, {WLAN}) == [
        CallPathChanged("c1", ETH, WLAN)]
    assert c.evaluate(0.1, {"c1": via_eth(False)}, {WLAN, ETH}) == []
    assert c.next_hop_notices() == []
    assert c.get_timer() == pytest.approx(1.0)
    assert c.handle_timer(1.0) == ["c1"]
    assert c.evaluate(1.0, {"c1": via_eth(False)}, {WLAN, ETH}) == []
    assert c.next_hop_notices() == [NextHopResolutionStarted("c1", ETH_GW, ETH_LINK)]


def test_bad_cap_is_a_typed_error() -> None:
    with pytest.raises(MobilityConfigError):
        MoveCoalescer(resolve_next_hop=-0.1)
    with pytest.raises(MobilityConfigError):
        NextHop("not-an-ip", 1, False)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["eth", "eth-ok", "wlan", "none", "timer",
                                           "report"]),
                          st.floats(min_value=0.0, max_value=0.3)), max_size=25))
def test_any_sequence_moves_within_the_cap(steps: list[tuple[str, float]]) -> None:
    """Whatever arrives, a wait never outlives its cap: once the cap has passed and the
    timer fired, the next evaluation toward eth moves; the timer never lies in the past
    after handle_timer."""
    c = engine()
    now = 0.0
    for kind, advance in steps:
        now += advance
        if kind == "timer":
            c.handle_timer(now)
            timer = c.get_timer()
            assert timer is None or timer > now
        elif kind == "report":
            c.handle_next_hop_resolved(ETH_GW, ETH_LINK)
        else:
            routes = {"eth": via_eth(False), "eth-ok": via_eth(True), "wlan": via_wlan(),
                      "none": CallRoutes(None)}[kind]
            usable = {"none": set[str]()}.get(kind, {WLAN, ETH})
            c.evaluate(now, {"c1": routes}, usable)
        c.next_hop_notices()
    if c.calls()[0].local == WLAN and not c.is_lost("c1"):
        later = now + 1.0 + CAP  # past any hold-down and cap
        moves = c.evaluate(later, {"c1": via_eth(False)}, {WLAN, ETH})
        c.handle_timer(later + CAP)
        moves += c.evaluate(later + CAP, {"c1": via_eth(False)}, {WLAN, ETH})
        assert moves == MOVED
