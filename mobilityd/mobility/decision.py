"""Which calls must move, given address events and what the kernel's routes say (sans-I/O).

For each call the adapter asks the kernel (:mod:`mobilityd.net.route`, RTM_GETROUTE with
preferences on top) which source it would use toward the call's remote media and remote
signalling addresses, and hands the answers here as :class:`CallRoutes`. The verdict
compares that with the address the call uses now:

=====================  ==========================  =========================
kernel's choice        call's current address      verdict
=====================  ==========================  =========================
none (no route)        carried                     ``LOSE``
none                   already lost                ``STAY``
same address           carried                     ``STAY``
same address           lost                        ``RESTORE``
another address        lost, or no longer usable   ``MOVE_FORCED``
another address        still usable                ``MOVE_OPTIONAL``
=====================  ==========================  =========================

So an event that does not change any call's chosen source (an extra IPv6 address, a
renewed lease) never moves a call. ``MOVE_OPTIONAL`` (a better path while the old one
still works, make-before-break) may be held back by the coalescer; the others act at once.

The chosen local address is the source toward the remote *media* address: media is
what a move must keep flowing (:func:`chosen_source`). The signalling answer is carried
for the adapter (the SIP transport rebinds toward its own next hop) but does not decide:
a call whose media peer is unreachable is lost even if its proxy is reachable.
"""

from __future__ import annotations

import enum
from collections.abc import Set
from dataclasses import dataclass

from mobilityd.mobility.events import check_ip


@dataclass(frozen=True)
class CallPath:
    """A call as the mobility layer sees it: its local address and its peer's."""

    call_id: str
    local: str
    remote_media: str
    remote_signalling: str

    def __post_init__(self) -> None:
        check_ip(self.local, f"call {self.call_id} local address")
        check_ip(self.remote_media, f"call {self.call_id} remote media address")
        check_ip(self.remote_signalling, f"call {self.call_id} remote signalling address")


@dataclass(frozen=True)
class CallRoutes:
    """The kernel's source address toward the call's remote media / signalling."""

    media_source: str | None
    signalling_source: str | None = None


class Verdict(enum.Enum):
    STAY = "stay"
    LOSE = "lose"
    RESTORE = "restore"
    MOVE_FORCED = "move now"
    MOVE_OPTIONAL = "move (may be held back)"


def chosen_source(routes: CallRoutes) -> str | None:
    """The local address the call should use: the source toward its media peer."""
    return routes.media_source


def judge(local: str, lost: bool, routes: CallRoutes, usable: Set[str]) -> Verdict:
    """The verdict for one call (table in the module docstring)."""
    chosen = chosen_source(routes)
    if chosen is None:
        return Verdict.STAY if lost else Verdict.LOSE
    if chosen == local:
        return Verdict.RESTORE if lost else Verdict.STAY
    if lost or local not in usable:
        return Verdict.MOVE_FORCED
    return Verdict.MOVE_OPTIONAL
