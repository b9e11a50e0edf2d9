"""Decision table and move coalescing, fed route answers and a hand-advanced clock."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mobilityd.mobility.coalesce import MoveCoalescer
from mobilityd.mobility.decision import CallPath, CallRoutes, Verdict, judge
from mobilityd.mobility.errors import MobilityConfigError, UnknownCallError
from mobilityd.mobility.events import CallPathChanged, CallPathLost, CallPathRestored

WLAN, ETH, NEW_WLAN = "10.2.0.2", "10.4.0.2", "10.3.0.7"
ALICE = "10.1.0.2"


def examples(default: int) -> int:
    """Hypothesis examples: ``default``, or 20x that in the slow tier (MOBILITYD_SLOW=1)."""
    return default * 20 if os.environ.get("MOBILITYD_SLOW") == "1" else default


def via(source: str | None) -> CallRoutes:
    return CallRoutes(media_source=source, signalling_source=source)


@pytest.mark.parametrize(
    ("local", "lost", "chosen", "usable", "verdict"),
    [
        (WLAN, False, None, set(), Verdict.LOSE),
        (WLAN, True, None, set(), Verdict.STAY),
        (WLAN, False, WLAN, {WLAN}, Verdict.STAY),
        (WLAN, True, WLAN, {WLAN}, Verdict.RESTORE),
        (WLAN, True, ETH, {ETH}, Verdict.MOVE_FORCED),
        (WLAN, False, ETH, {ETH}, Verdict.MOVE_FORCED),
        (WLAN, False, ETH, {WLAN, ETH}, Verdict.MOVE_OPTIONAL),
        # the kernel answered with a source that is not usable (a stale route between
        # RTM_DELADDR and the FIB flush picking the address of a down link)
        (WLAN, False, ETH, set(), Verdict.LOSE),
        (WLAN, True, ETH, set(), Verdict.STAY),
        (WLAN, False, ETH, {WLAN}, Verdict.STAY),
        (WLAN, True, ETH, {WLAN}, Verdict.STAY),
    ],
)
def test_judge_table(local: str, lost: bool, chosen: str | None, usable: set[str],
                     verdict: Verdict) -> None:
    assert judge(local, lost, via(chosen), usable) is verdict


def test_address_deleted_while_a_stale_route_still_answers_loses_the_call() -> None:
    """RTM_DELADDR arrives before the kernel flushes the routes through that link; a
    lookup in between names the address of a down link: the call is lost, not moved
    there (the flaky test_address_lost_and_back_within_grace of an earlier session)."""
    c = engine()
    assert c.evaluate(0.0, {"c1": via(ETH)}, set()) == [CallPathLost("c1")]
    assert c.evaluate(0.001, {"c1": via(None)}, set()) == []  # the flush
    assert c.evaluate(0.5, {"c1": via(NEW_WLAN)}, {NEW_WLAN}) == [
        CallPathChanged("c1", WLAN, NEW_WLAN)]


def engine(hold_down: float = 1.0) -> MoveCoalescer:
    coalescer = MoveCoalescer(hold_down=hold_down)
    coalescer.add_call(CallPath("c1", WLAN, ALICE, ALICE))
    return coalescer


def test_roam_to_new_subnet_acts_at_once() -> None:
    """Address deleted, then a new one with its default route: lost, then moved."""
    c = engine()
    assert c.evaluate(0.0, {"c1": via(None)}, set()) == [CallPathLost("c1")]
    # the new address exists but its default route is not there yet: still lost
    assert c.evaluate(0.001, {"c1": via(None)}, {NEW_WLAN}) == []
    # default route added: the move happens on this very evaluation, no delay
    assert c.evaluate(0.002, {"c1": via(NEW_WLAN)}, {NEW_WLAN}) == [
        CallPathChanged("c1", WLAN, NEW_WLAN)]
    assert c.calls()[0].local == NEW_WLAN
    assert not c.is_lost("c1")


def test_extra_address_or_renew_changes_nothing() -> None:
    c = engine()
    # an extra IPv6 address appears; the kernel still picks the same source
    assert c.evaluate(0.0, {"c1": via(WLAN)}, {WLAN, "fd00:2::9"}) == []
    assert c.evaluate(0.5, {"c1": via(WLAN)}, {WLAN}) == []
    assert c.get_timer() is None


def test_first_optional_move_is_immediate() -> None:
    """Wi-Fi -> Ethernet, make-before-break: both up, the kernel now prefers eth."""
    c = engine()
    assert c.evaluate(5.0, {"c1": via(ETH)}, {WLAN, ETH}) == [
        CallPathChanged("c1", WLAN, ETH)]


def test_flapping_link_costs_one_move_per_hold_down() -> None:
    c = engine(hold_down=2.0)
    # eth comes up: first real change acts at once
    assert c.evaluate(0.0, {"c1": via(ETH)}, {WLAN, ETH}) == [CallPathChanged("c1", WLAN, ETH)]
    # eth goes down: the call's address is gone, forced move back, at once
    assert c.evaluate(0.1, {"c1": via(WLAN)}, {WLAN}) == [CallPathChanged("c1", ETH, WLAN)]
    # eth up again 0.2 s later: optional, held until 0.1 + 2.0
    assert c.evaluate(0.2, {"c1": via(ETH)}, {WLAN, ETH}) == []
    assert c.get_timer() == pytest.approx(2.1)
    # and down again: nothing to do, nothing held any more
    assert c.evaluate(0.3, {"c1": via(WLAN)}, {WLAN}) == []
    assert c.get_timer() is None
    # up again, stays up: held, then acted on when the timer fires
    assert c.evaluate(0.4, {"c1": via(ETH)}, {WLAN, ETH}) == []
    assert c.handle_timer(1.0) == []
    assert c.handle_timer(2.1) == ["c1"]
    assert c.get_timer() is None
    assert c.evaluate(2.1, {"c1": via(ETH)}, {WLAN, ETH}) == [CallPathChanged("c1", WLAN, ETH)]


def test_link_flap_on_the_only_link_does_not_move() -> None:
    c = engine()
    assert c.evaluate(0.0, {"c1": via(None)}, set()) == [CallPathLost("c1")]
    assert c.evaluate(0.3, {"c1": via(WLAN)}, {WLAN}) == [CallPathRestored("c1", WLAN)]
    assert c.calls()[0].local == WLAN


def test_only_calls_whose_source_changed_move() -> None:
    c = engine()
    c.add_call(CallPath("c2", ETH, "10.9.0.5", ALICE))
    events = c.evaluate(0.0, {"c1": via(WLAN), "c2": via(WLAN)}, {WLAN})
    assert events == [CallPathChanged("c2", ETH, WLAN)]


def test_ipv4_to_ipv6_move() -> None:
    c = MoveCoalescer()
    c.add_call(CallPath("c1", WLAN, "fd00:1::2", "fd00:1::2"))
    assert c.evaluate(0.0, {"c1": via("fd00:2::2")}, {"fd00:2::2"}) == [
        CallPathChanged("c1", WLAN, "fd00:2::2")]


def test_misuse_is_a_typed_error() -> None:
    c = engine()
    with pytest.raises(UnknownCallError):
        c.evaluate(0.0, {"nope": via(WLAN)}, {WLAN})
    with pytest.raises(UnknownCallError):
        c.remove_call("nope")
    with pytest.raises(MobilityConfigError):
        MoveCoalescer(hold_down=-1)
    with pytest.raises(MobilityConfigError):
        CallPath("c1", "not-an-ip", ALICE, ALICE)


ADDRESSES = [WLAN, ETH, NEW_WLAN]


@settings(max_examples=examples(200), deadline=None)
@given(st.lists(st.tuples(st.floats(0, 0.5), st.sampled_from([*ADDRESSES, None]),
                          st.sets(st.sampled_from(ADDRESSES))), max_size=40))
def test_optional_moves_respect_hold_down(
        steps: list[tuple[float, str | None, set[str]]]) -> None:
    """Property: two moves of one call closer than hold_down are never both optional;
    the local address always follows the emitted CallPathChanged events."""
    hold_down = 1.0
    c = engine(hold_down)
    now, local, last_move = 0.0, WLAN, None
    for delta, chosen, usable in steps:
        now += delta
        usable_now = usable | ({chosen} if chosen else set())
        was_lost = c.is_lost("c1")
        for event in c.evaluate(now, {"c1": via(chosen)}, usable_now):
            if isinstance(event, CallPathChanged):
                assert event.old_local == local and event.new_local == chosen
                optional = local in usable_now and not was_lost
                if optional and last_move is not None:
                    assert now - last_move >= hold_down
                local, last_move = event.new_local, now
        assert c.calls()[0].local == local


def test_ipv4_to_ipv6_with_the_peers_alternate_address() -> None:
    """Bob loses IPv4 entirely; Alice is also reachable at her IPv6 address."""
    c = MoveCoalescer()
    c.add_call(CallPath("c1", WLAN, ALICE, ALICE, remote_media_alternates=("fd00:1::2",)))
    routes = CallRoutes("fd00:2::2", None, media_remote="fd00:1::2")
    assert c.evaluate(0.0, {"c1": routes}, {"fd00:2::2"}) == [
        CallPathChanged("c1", WLAN, "fd00:2::2", new_remote_media="fd00:1::2")]
    moved = c.calls()[0]
    assert (moved.local, moved.remote_media, moved.remote_media_alternates) == (
        "fd00:2::2", "fd00:1::2", (ALICE,))
    # the same answer again changes nothing
    assert c.evaluate(0.1, {"c1": routes}, {"fd00:2::2"}) == []


def test_same_local_other_remote_is_a_move() -> None:
    assert judge(WLAN, False, CallRoutes(WLAN, None, media_remote="10.9.9.9"), {WLAN},
                 remote=ALICE) is Verdict.MOVE_OPTIONAL
    assert judge(WLAN, False, CallRoutes(WLAN, None, media_remote=ALICE), {WLAN},
                 remote=ALICE) is Verdict.STAY


@settings(max_examples=examples(200), deadline=None)
@given(st.lists(st.tuples(st.floats(0, 0.5), st.sampled_from([*ADDRESSES, None]),
                          st.sets(st.sampled_from(ADDRESSES))), max_size=40))
def test_a_call_never_moves_to_an_unusable_source(
        steps: list[tuple[float, str | None, set[str]]]) -> None:
    """Property: whatever the kernel answers, a move only ever goes to a usable address."""
    c = engine(0.0)
    now = 0.0
    for delta, chosen, usable in steps:
        now += delta
        for event in c.evaluate(now, {"c1": via(chosen)}, usable):
            if isinstance(event, CallPathChanged):
                assert event.new_local in usable
