"""Grace period without an address, driven by events and a hand-advanced clock."""

from __future__ import annotations

import pytest

from mobilityd.mobility.errors import MobilityConfigError, UnexpectedEventError, UnknownCallError
from mobilityd.mobility.events import (
    CallPathChanged,
    CallPathLost,
    CallPathRestored,
    GracePeriodEnded,
    GracePeriodExpired,
    GracePeriodStarted,
)
from mobilityd.mobility.grace import TRANSITIONS, GraceInput, GracePeriods, GraceState


def engine(grace: float = 30.0) -> GracePeriods:
    g = GracePeriods(grace_period=grace)
    g.add_call("c1")
    return g


def test_default_is_30_seconds() -> None:
    assert GracePeriods().grace_period == 30.0


def test_table_is_complete() -> None:
    assert set(TRANSITIONS) == {(s, i) for s in GraceState for i in GraceInput}


def test_address_back_in_time_moves_on() -> None:
    g = engine()
    assert g.handle_event(CallPathLost("c1"), 10.0) == [GracePeriodStarted("c1", 40.0)]
    assert g.get_timer() == 40.0
    assert g.handle_timer(39.9) == []
    assert g.handle_event(CallPathChanged("c1", "10.2.0.2", "10.3.0.7"), 39.9) == [
        GracePeriodEnded("c1")]
    assert g.get_timer() is None
    assert g.state("c1") is GraceState.CARRIED


def test_same_address_back_in_time() -> None:
    g = engine()
    g.handle_event(CallPathLost("c1"), 0.0)
    assert g.handle_event(CallPathRestored("c1", "10.2.0.2"), 1.0) == [GracePeriodEnded("c1")]


def test_lost_for_longer_ends_the_call_once() -> None:
    g = engine(grace=5.0)
    g.handle_event(CallPathLost("c1"), 0.0)
    g.handle_event(CallPathLost("c1"), 3.0)  # does not restart the clock
    assert g.get_timer() == 5.0
    assert g.handle_timer(5.0) == [GracePeriodExpired("c1")]
    assert g.handle_timer(6.0) == []
    assert g.get_timer() is None
    # an address coming back later does not resurrect the call
    assert g.handle_event(CallPathRestored("c1", "10.2.0.2"), 7.0) == []
    assert g.state("c1") is GraceState.ENDED


def test_several_calls_have_their_own_deadlines() -> None:
    g = engine(grace=10.0)
    g.add_call("c2")
    g.handle_event(CallPathLost("c1"), 0.0)
    g.handle_event(CallPathLost("c2"), 4.0)
    assert g.handle_timer(10.0) == [GracePeriodExpired("c1")]
    assert g.get_timer() == 14.0


def test_misuse_is_typed() -> None:
    g = engine()
    with pytest.raises(UnknownCallError):
        g.handle_event(CallPathLost("nope"), 0.0)
    with pytest.raises(UnknownCallError):
        g.remove_call("nope")
    with pytest.raises(MobilityConfigError):
        GracePeriods(grace_period=0)
    with pytest.raises(UnexpectedEventError):
        g.handle_event(GracePeriodEnded("c1"), 0.0)  # type: ignore[arg-type]
