"""Grace period without any address (sans-I/O, table-driven).

Issue 5: when no path is left the call is kept for a configurable grace period
(default 30 s); if an address comes back in time the call goes on (and moves if its
address changed), otherwise it is ended cleanly. The whole behaviour is the table
:data:`TRANSITIONS`; the engine only looks things up in it and keeps the deadlines.

Inputs are the coalescer's events (:class:`CallPathLost`, :class:`CallPathRestored`,
:class:`CallPathChanged`) and the timer; outputs are :class:`GracePeriodStarted`,
:class:`GracePeriodEnded` and :class:`GracePeriodExpired` (the adapter then sends BYE,
RFC 3261 §15.1.1, and tears the media down).
"""

from __future__ import annotations

import enum

from mobilityd.mobility.errors import MobilityConfigError, UnexpectedEventError, UnknownCallError
from mobilityd.mobility.events import (
    CallPathChanged,
    CallPathLost,
    CallPathRestored,
    GraceEvent,
    GracePeriodEnded,
    GracePeriodExpired,
    GracePeriodStarted,
    MoveEvent,
)

DEFAULT_GRACE_PERIOD = 30.0


class GraceState(enum.Enum):
    CARRIED = "carried"  # the call has a path
    WAITING = "waiting"  # no path, grace period running
    ENDED = "ended"  # grace period ran out; the call is over


class GraceInput(enum.Enum):
    PATH_LOST = "path lost"
    PATH_BACK = "path restored or moved"
    TIMER = "grace period over"


class GraceAction(enum.Enum):
    NONE = "none"
    START = "start"
    END_GRACE = "end grace"
    EXPIRE = "expire"


TRANSITIONS: dict[tuple[GraceState, GraceInput], tuple[GraceState, GraceAction]] = {
    (GraceState.CARRIED, GraceInput.PATH_LOST): (GraceState.WAITING, GraceAction.START),
    (GraceState.CARRIED, GraceInput.PATH_BACK): (GraceState.CARRIED, GraceAction.NONE),
    (GraceState.CARRIED, GraceInput.TIMER): (GraceState.CARRIED, GraceAction.NONE),
    # a second loss does not restart the clock
    (GraceState.WAITING, GraceInput.PATH_LOST): (GraceState.WAITING, GraceAction.NONE),
    (GraceState.WAITING, GraceInput.PATH_BACK): (GraceState.CARRIED, GraceAction.END_GRACE),
    (GraceState.WAITING, GraceInput.TIMER): (GraceState.ENDED, GraceAction.EXPIRE),
    # an address coming back after the end does not resurrect the call
    (GraceState.ENDED, GraceInput.PATH_LOST): (GraceState.ENDED, GraceAction.NONE),
    (GraceState.ENDED, GraceInput.PATH_BACK): (GraceState.ENDED, GraceAction.NONE),
    (GraceState.ENDED, GraceInput.TIMER): (GraceState.ENDED, GraceAction.NONE),
}


def _input_of(event: MoveEvent) -> GraceInput:
    if isinstance(event, CallPathLost):
        return GraceInput.PATH_LOST
    if isinstance(event, CallPathRestored | CallPathChanged):
        return GraceInput.PATH_BACK
    raise UnexpectedEventError(f"grace period engine does not take {type(event).__name__}")


class GracePeriods:
    """Grace-period state of every call."""

    def __init__(self, *, grace_period: float = DEFAULT_GRACE_PERIOD) -> None:
        if not grace_period > 0:
            raise MobilityConfigError(f"grace period must be > 0 s, got {grace_period!r}")
        self.grace_period = grace_period
        self._state: dict[str, GraceState] = {}
        self._deadline: dict[str, float] = {}

    def add_call(self, call_id: str) -> None:
        self._state[call_id] = GraceState.CARRIED

    def remove_call(self, call_id: str) -> None:
        if self._state.pop(call_id, None) is None:
            raise UnknownCallError(call_id)
        self._deadline.pop(call_id, None)

    def state(self, call_id: str) -> GraceState:
        try:
            return self._state[call_id]
        except KeyError:
            raise UnknownCallError(call_id) from None

    def handle_event(self, event: MoveEvent, now: float) -> list[GraceEvent]:
        """Feed one coalescer event at ``now``."""
        return self._step(event.call_id, _input_of(event), now)

    def get_timer(self) -> float | None:
        """The earliest grace deadline (``None``: no call is waiting)."""
        return min(self._deadline.values()) if self._deadline else None

    def handle_timer(self, now: float) -> list[GraceEvent]:
        """Expire every call whose deadline is at or before ``now``."""
        events: list[GraceEvent] = []
        for call_id in [c for c, d in self._deadline.items() if d <= now]:
            events.extend(self._step(call_id, GraceInput.TIMER, now))
        return events

    def _step(self, call_id: str, what: GraceInput, now: float) -> list[GraceEvent]:
        state = self.state(call_id)
        next_state, action = TRANSITIONS[(state, what)]
        self._state[call_id] = next_state
        if action is GraceAction.START:
            self._deadline[call_id] = now + self.grace_period
            return [GracePeriodStarted(call_id, self._deadline[call_id])]
        if action is GraceAction.END_GRACE:
            del self._deadline[call_id]
            return [GracePeriodEnded(call_id)]
        if action is GraceAction.EXPIRE:
            del self._deadline[call_id]
            return [GracePeriodExpired(call_id)]
        return []
