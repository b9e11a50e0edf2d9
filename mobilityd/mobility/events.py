"""Events of the mobility layer (frozen dataclasses, past-tense names).

Outputs of :mod:`mobilityd.mobility.coalesce` (which calls must move),
:mod:`mobilityd.mobility.grace` (no address at all) and
:mod:`mobilityd.mobility.pathcheck` (where the peer sends media), and the inputs the
path check takes from the MIKEY and SRTP layers.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from mobilityd.mobility.errors import MobilityConfigError


def check_ip(value: str, what: str) -> None:
    """Raise :class:`MobilityConfigError` unless ``value`` is an IP address."""
    try:
        ipaddress.ip_address(value)
    except ValueError as exc:
        raise MobilityConfigError(f"{what}: not an IP address: {value!r}") from exc


@dataclass(frozen=True)
class Endpoint:
    """A transport address (IP, port) a media stream is sent to or comes from."""

    host: str
    port: int

    def __post_init__(self) -> None:
        check_ip(self.host, "endpoint host")
        if not 0 < self.port < 65536:
            raise MobilityConfigError(f"endpoint port out of range: {self.port}")

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


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


# ---------------------------------------------------------------- peer side
@dataclass(frozen=True)
class MikeyUpdateVerified:
    """A MIKEY update (RFC 3830 §4.5) for this call verified: MAC/signature, fresh
    timestamp, not a replay, same CSB ID."""


@dataclass(frozen=True)
class MikeyUpdateRejected:
    """A MIKEY update failed verification (or a move came without one)."""

    reason: str


@dataclass(frozen=True)
class SrtpPacketAuthenticated:
    """An SRTP or SRTCP packet from ``source`` passed authentication (RFC 3711 §3.3/3.4)."""

    source: Endpoint


@dataclass(frozen=True)
class SrtpPacketRejected:
    """A packet from ``source`` failed SRTP/SRTCP authentication or replay checks."""

    source: Endpoint


@dataclass(frozen=True)
class MediaDestinationChanged:
    """Send this stream to ``new`` from now on (return routability proven)."""

    old: Endpoint
    new: Endpoint


MoveEvent = CallPathChanged | CallPathLost | CallPathRestored
GraceEvent = GracePeriodStarted | GracePeriodEnded | GracePeriodExpired
PathCheckInput = (
    MikeyUpdateVerified | MikeyUpdateRejected | SrtpPacketAuthenticated | SrtpPacketRejected
)
