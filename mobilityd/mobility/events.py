"""Events of the mobility layer (frozen dataclasses, past-tense names).

Outputs of :mod:`mobilityd.mobility.coalesce` (which calls must move) and
:mod:`mobilityd.mobility.grace` (no address at all). Where the peer sends media after a
move is decided by the return-routability gate, :mod:`mobilityd.media.routability`.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass

from mobilityd.mobility.errors import MobilityConfigError


def check_ip(value: str, what: str) -> None:
    """Raise :class:`MobilityConfigError` unless ``value`` is an IP address."""
    if not _is_ip(value):
        raise MobilityConfigError(f"{what}: not an IP address: {value!r}")


@functools.lru_cache(maxsize=256)
def _is_ip(value: str) -> bool:
    """Cached: a move decision re-checks the call's few addresses (each a ~10 µs
    ``ipaddress`` parse) when it builds the moved :class:`CallPath` (issue 5)."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------- moving side
@dataclass(frozen=True)
class CallPathChanged:
    """The call must move: rebind to ``new_local`` and send the re-INVITE (issue 5).

    ``new_remote_media`` is set when the peer must also be reached at another of its
    addresses (IPv4 -> IPv6 change); ``None``: the peer's media address is unchanged.
    """

    call_id: str
    old_local: str
    new_local: str
    new_remote_media: str | None = None


@dataclass(frozen=True)
class CallPathLost:
    """No route toward the call's peer is left; the grace period starts."""

    call_id: str


@dataclass(frozen=True)
class CallPathRestored:
    """A lost call's old local address works again: nothing to move."""

    call_id: str
    local: str


@dataclass(frozen=True)
class GracePeriodStarted:
    """The call is kept without a path until ``expires_at`` (same clock as ``now``)."""

    call_id: str
    expires_at: float


@dataclass(frozen=True)
class GracePeriodEnded:
    """A path came back in time; the call goes on (moved if its address changed)."""

    call_id: str


@dataclass(frozen=True)
class GracePeriodExpired:
    """No path came back in time: end the call cleanly (BYE, tear down media)."""

    call_id: str


MoveEvent = CallPathChanged | CallPathLost | CallPathRestored
GraceEvent = GracePeriodStarted | GracePeriodEnded | GracePeriodExpired
