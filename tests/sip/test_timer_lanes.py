"""``TimerHeap`` (per-key FIFO lanes plus a heap) against a plain reference model.

The lanes are an ordering shortcut (mobilityd/sip/timers.py): whatever the keys, the
durations and the order of the calls - deadlines out of order within a key, a clock
stepping back, replacing and cancelling - it must answer exactly what a single sorted
table of live ``(owner, key) -> (deadline, scheduling order)`` answers.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mobilityd.sip.timers import TimerHeap, TimerName

OWNERS = [object() for _ in range(4)]
KEYS = [TimerName.A, TimerName.G, TimerName.J, "TRYING"]


class ReferenceTimers:
    """Every live timer in a dict; the answers by sorting it."""

    def __init__(self) -> None:
        self.live: dict[tuple[int, object], tuple[float, int, object, object]] = {}
        self.seq = 0

    def schedule(self, owner: object, key: object, deadline: float) -> None:
        self.seq += 1
        self.live[(id(owner), key)] = (deadline, self.seq, owner, key)

    def cancel(self, owner: object, key: object) -> None:
        self.live.pop((id(owner), key), None)

    def next_deadline(self) -> float | None:
        return min((entry[0] for entry in self.live.values()), default=None)

    def pop_due(self, now: float) -> list[tuple[object, object]]:
        due = sorted(entry for entry in self.live.values() if entry[0] <= now)
        for _deadline, _seq, owner, key in due:
            del self.live[(id(owner), key)]
        return [(owner, key) for _deadline, _seq, owner, key in due]


operation = st.one_of(
    st.tuples(st.just("schedule"), st.sampled_from(range(len(OWNERS))),
              st.sampled_from(range(len(KEYS))), st.sampled_from([0.0, 0.5, 1.0, 4.0, 32.0]),
              st.sampled_from([-1.0, 0.0, 0.0, 0.1, 0.5])),
    st.tuples(st.just("cancel"), st.sampled_from(range(len(OWNERS))),
              st.sampled_from(range(len(KEYS))), st.just(0.0), st.just(0.0)),
    st.tuples(st.just("advance"), st.just(0), st.just(0),
              st.sampled_from([0.0, 0.3, 0.5, 2.0, 40.0]), st.just(0.0)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(operation, max_size=60))
def test_lanes_answer_as_a_single_sorted_table(operations: list[tuple[str, int, int, float,
                                                                         float]]) -> None:
    timers: TimerHeap[object] = TimerHeap()
    reference = ReferenceTimers()
    now = 100.0
    for name, owner_index, key_index, amount, clock_step in operations:
        owner, key = OWNERS[owner_index], KEYS[key_index]
        if name == "schedule":
            now += clock_step  # may step back: the lane must not trust it
            timers.schedule(owner, key, now + amount)
            reference.schedule(owner, key, now + amount)
        elif name == "cancel":
            timers.cancel(owner, key)
            reference.cancel(owner, key)
        else:
            now += amount
            assert timers.pop_due(now) == reference.pop_due(now)
        assert timers.next_deadline() == reference.next_deadline()
        assert len(timers) == len(reference.live)
        assert timers.is_scheduled(owner, key) == ((id(owner), key) in reference.live)
    assert timers.pop_due(float("inf")) == reference.pop_due(float("inf"))
    assert timers.next_deadline() is None and len(timers) == 0


def test_same_key_in_order_stays_in_its_lane_and_out_of_order_goes_to_the_heap() -> None:
    timers: TimerHeap[object] = TimerHeap()
    a, b, c = object(), object(), object()
    timers.schedule(a, TimerName.J, 32.0)
    timers.schedule(b, TimerName.J, 33.0)
    timers.schedule(c, TimerName.J, 10.0)  # earlier than the lane's last: the heap
    assert timers.next_deadline() == 10.0
    assert timers.pop_due(32.5) == [(c, TimerName.J), (a, TimerName.J)]
    assert timers.pop_due(40.0) == [(b, TimerName.J)]


def test_ties_fire_in_scheduling_order_across_lanes() -> None:
    timers: TimerHeap[object] = TimerHeap()
    owner = object()
    timers.schedule(owner, TimerName.B, 32.0)
    timers.schedule(owner, TimerName.A, 32.0)
    timers.schedule(owner, TimerName.D, 31.0)
    assert timers.pop_due(32.0) == [(owner, TimerName.D), (owner, TimerName.B),
                                    (owner, TimerName.A)]


def test_earliest_since_mark_tracks_what_was_scheduled_after_the_mark() -> None:
    """``earliest_since_mark`` is what lets ``SipEndpoint`` keep an armed wake-up without
    walking the lanes again: it must see every deadline scheduled since ``mark``."""
    timers: TimerHeap[object] = TimerHeap()
    owner = object()
    assert timers.earliest_since_mark() == float("inf")
    timers.schedule(owner, TimerName.J, 32.0)
    timers.schedule(owner, TimerName.G, 0.5)
    assert timers.earliest_since_mark() == 0.5
    armed = timers.next_deadline()
    timers.mark()
    assert armed == 0.5 and timers.earliest_since_mark() == float("inf")
    timers.cancel(owner, TimerName.G)  # later only: the armed 0.5 is still early enough
    timers.schedule(owner, TimerName.L, 40.0)
    assert timers.earliest_since_mark() == 40.0 >= armed
    timers.schedule(owner, "TRYING", 0.2)  # before the armed wake-up: must be seen
    assert timers.earliest_since_mark() == 0.2 < armed
    assert timers.next_deadline() == 0.2
