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
another, not usable    still usable, carried       ``STAY``
another, not usable    gone, or already lost       as "none"
same address           carried                     ``STAY``
same address           lost                        ``RESTORE``
another address        lost, or no longer usable   ``MOVE_FORCED``
another address        still usable                ``MOVE_OPTIONAL``
=====================  ==========================  =========================

"Another, not usable": the kernel may answer with a source we cannot use. Between
RTM_DELADDR and the routing-table flush that follows it (the kernel notifies the
deletion first, ``__inet_del_ifa``), a lookup still finds the old route through the
link that just lost its only IPv4 address and picks a source from another link -- even
one that is down (seen here: ``10.1.0.2 via 10.2.0.1 dev b0 src 10.4.0.2`` with b1
down). Moving a call there would send from a dead address; it is a lost path, and the
flush's own notification re-evaluates. The call's current address is exempt (the
kernel may keep using, e.g., a deprecated address when it is the only one).

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
    """A call as the mobility layer sees it: its local address and its peer's.

    ``remote_media_alternates`` are other addresses of the same peer's media (e.g. its
    IPv6 address while the call runs over IPv4), tried in order when ``remote_media``
    has no route: this is how a call survives an IPv4 -> IPv6 change (issue 5).
    """

    call_id: str
    local: str
    remote_media: str
    remote_signalling: str
    remote_media_alternates: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_ip(self.local, f"call {self.call_id} local address")
        check_ip(self.remote_media, f"call {self.call_id} remote media address")
        check_ip(self.remote_signalling, f"call {self.call_id} remote signalling address")
        for alternate in self.remote_media_alternates:
            check_ip(alternate, f"call {self.call_id} alternate remote media address")

    def remote_candidates(self) -> tuple[str, ...]:
        """The peer's media addresses in the order to try: current one first."""
        return (self.remote_media, *self.remote_media_alternates)

    def moved(self, local: str, remote_media: str) -> CallPath:
        """This call after a move to ``local`` -> ``remote_media``."""
        others = tuple(a for a in self.remote_candidates() if a != remote_media)
        return CallPath(self.call_id, local, remote_media, self.remote_signalling, others)


@dataclass(frozen=True)
class CallRoutes:
    """The kernel's answers for one call.

    ``media_source``: source address toward the peer's media; ``media_remote``: which
    of the peer's addresses that answer is for (``None``: the call's current
    ``remote_media``); ``signalling_source``: source toward the remote signalling.
    """

    media_source: str | None
    signalling_source: str | None = None
    media_remote: str | None = None


class Verdict(enum.Enum):
    STAY = "stay"
    LOSE = "lose"
    RESTORE = "restore"
    MOVE_FORCED = "move now"
    MOVE_OPTIONAL = "move (may be held back)"


def chosen_source(routes: CallRoutes) -> str | None:
    """The local address the call should use: the source toward its media peer."""
    return routes.media_source


def judge(local: str, lost: bool, routes: CallRoutes, usable: Set[str],
          remote: str | None = None) -> Verdict:
    """The verdict for one call (table in the module docstring).

    ``remote`` is the call's current remote media address; an answer for another of
    the peer's addresses (``routes.media_remote``) is a different path even from the
    same local address.
    """
    chosen = chosen_source(routes)
    if chosen is not None and chosen != local and chosen not in usable:
        # a stale or dead route's answer (module doc): no usable new path
        if not lost and local in usable:
            return Verdict.STAY
        chosen = None
    if chosen is None:
        return Verdict.STAY if lost else Verdict.LOSE
    same_remote = routes.media_remote is None or routes.media_remote == remote
    if chosen == local and same_remote:
        return Verdict.RESTORE if lost else Verdict.STAY
    if lost or local not in usable:
        return Verdict.MOVE_FORCED
    return Verdict.MOVE_OPTIONAL
