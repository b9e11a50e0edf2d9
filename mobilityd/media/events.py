"""Events of the media layer (frozen dataclasses, past-tense names)."""

from __future__ import annotations

from dataclasses import dataclass

Address = tuple[str, int]


@dataclass(frozen=True, slots=True)
class FirstPacketReceived:
    """The first authenticated RTP packet of ``ssrc`` arrived, from ``source``."""

    ssrc: int
    source: Address
    at: float


@dataclass(frozen=True, slots=True)
class RemoteAddressProposed:
    """Signalling proposed a new remote media address; not used until confirmed."""

    rtp: Address | None
    rtcp: Address | None


@dataclass(frozen=True, slots=True)
class RemoteAddressConfirmed:
    """An authenticated packet came from the candidate: we now send there
    (return routability, issue 5 step 4)."""

    previous: Address | None
    rtp: Address
    rtcp: Address
    confirmed_by_rtcp: bool
    at: float


@dataclass(frozen=True, slots=True)
class AuthFailureCounted:
    """A packet failed SRTP/SRTCP authentication or replay checks and was dropped."""

    source: Address
    rtcp: bool
    reason: str
    total: int


@dataclass(frozen=True, slots=True)
class UnconfirmedSourceSeen:
    """An authenticated packet came from an address that is neither the remote nor an
    accepted candidate; it was delivered but where we send did not change."""

    source: Address
    rtcp: bool


@dataclass(frozen=True, slots=True)
class LocalAddressChanged:
    """The endpoint's sockets were rebound (same SRTP sessions, same SSRCs)."""

    previous_rtp: Address
    rtp: Address
    rtcp: Address


MediaEvent = (
    FirstPacketReceived
    | RemoteAddressProposed
    | RemoteAddressConfirmed
    | AuthFailureCounted
    | UnconfirmedSourceSeen
    | LocalAddressChanged
)
