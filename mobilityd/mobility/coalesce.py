"""Coalescing network changes into call moves, with no delay in front of a move (sans-I/O).

Goals (issue 5): a flapping link, a DHCP renew or an extra IPv6 address that changes
nothing for a call must not cause re-INVITEs, yet the first real change acts at once --
no fixed debounce delay (strongSwan waits 100 ms; we do not).

How:

* no-op kernel notifications never get here (:class:`mobilityd.net.state.NetworkState`
  deduplicates them); every remaining network event triggers an :meth:`evaluate` with
  fresh route answers, and :func:`mobilityd.mobility.decision.judge` keeps every call
  whose chosen source did not change;
* a *forced* move (the call's address is gone or the call had no path) and a lost
  path act immediately, always;
* an *optional* move (the old address still works, a better one appeared) acts
  immediately unless the call moved less than ``hold_down`` seconds ago; then it is
  held until that instant and re-checked (:meth:`get_timer` / :meth:`handle_timer`).
  A link that flaps up/down/up therefore costs at most one optional move per
  ``hold_down`` per call, and none if it settles back to the address in use.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass

from mobilityd.mobility.decision import CallPath, CallRoutes, Verdict, judge
from mobilityd.mobility.errors import MobilityConfigError, UnknownCallError
from mobilityd.mobility.events import CallPathChanged, CallPathLost, CallPathRestored, MoveEvent

DEFAULT_HOLD_DOWN = 1.0


@dataclass
class _CallState:
    path: CallPath
    lost: bool = False
    last_move_at: float | None = None
    held_until: float | None = None


class MoveCoalescer:
    """Decides, per call, when a route change becomes a move."""

    def __init__(self, *, hold_down: float = DEFAULT_HOLD_DOWN) -> None:
        if not hold_down >= 0:
            raise MobilityConfigError(f"hold_down must be >= 0 s, got {hold_down!r}")
        self.hold_down = hold_down
        self._calls: dict[str, _CallState] = {}

    # ------------------------------------------------------------ calls
    def add_call(self, path: CallPath) -> None:
        """Track a call (replaces a call with the same id)."""
        self._calls[path.call_id] = _CallState(path)

    def remove_call(self, call_id: str) -> None:
        if self._calls.pop(call_id, None) is None:
            raise UnknownCallError(call_id)

    def calls(self) -> list[CallPath]:
        """The calls with their current local address (after the moves emitted)."""
        return [state.path for state in self._calls.values()]

    def is_lost(self, call_id: str) -> bool:
        state = self._calls.get(call_id)
        if state is None:
            raise UnknownCallError(call_id)
        return state.lost

    # ------------------------------------------------------------ decisions
    def evaluate(self, now: float, routes: Mapping[str, CallRoutes],
                 usable: Set[str]) -> list[MoveEvent]:
        """Apply fresh route answers (one per call) at ``now``; return the decisions.

        ``usable`` is the set of usable local addresses on links that are up
        (:meth:`NetworkState.usable_addresses`). Calls missing from ``routes`` are left
        as they are; an id in ``routes`` that is not tracked is an error.
        """
        for call_id in routes:
            if call_id not in self._calls:
                raise UnknownCallError(call_id)
        events: list[MoveEvent] = []
        for call_id, state in self._calls.items():
            answer = routes.get(call_id)
            if answer is not None:
                events.extend(self._apply(now, state, answer, usable))
        return events

    def _apply(self, now: float, state: _CallState, routes: CallRoutes,
               usable: Set[str]) -> list[MoveEvent]:
        path = state.path
        verdict = judge(path.local, state.lost, routes, usable, path.remote_media)
        if verdict is Verdict.MOVE_OPTIONAL and state.last_move_at is not None:
            ready_at = state.last_move_at + self.hold_down
            if now < ready_at:
                state.held_until = ready_at
                return []
        state.held_until = None
        if verdict is Verdict.LOSE:
            state.lost = True
            return [CallPathLost(path.call_id)]
        if verdict is Verdict.RESTORE:
            state.lost = False
            return [CallPathRestored(path.call_id, path.local)]
        if verdict in (Verdict.MOVE_FORCED, Verdict.MOVE_OPTIONAL):
            new_local = routes.media_source
            assert new_local is not None  # judge() only moves toward an address
            remote = routes.media_remote or path.remote_media
            state.path = path.moved(new_local, remote)
            state.lost = False
            state.last_move_at = now
            return [CallPathChanged(path.call_id, path.local, new_local,
                                    remote if remote != path.remote_media else None)]
        return []

    # ------------------------------------------------------------ timer
    def get_timer(self) -> float | None:
        """When a held-back move must be re-checked (``None``: nothing held)."""
        held = [s.held_until for s in self._calls.values() if s.held_until is not None]
        return min(held) if held else None

    def handle_timer(self, now: float) -> list[str]:
        """Ids of the calls whose hold-down ended: look their routes up again and
        :meth:`evaluate` them."""
        due = [cid for cid, s in self._calls.items()
               if s.held_until is not None and s.held_until <= now]
        for call_id in due:
            self._calls[call_id].held_until = None
        return due
