"""Return routability for the remote media address, sans-I/O (issue 5 step 4).

Where we send RTP/RTCP changes only when, after signalling proposed a move (a verified
MIKEY update, RFC 3830 §4.5), one packet from the candidate passed SRTP or SRTCP
authentication (RFC 3711 §3.3, §3.4) -- in either order within ``proof_lifetime``.
Unauthenticated packets are never fed in here, so they never move anything; an
authenticated packet from an unproposed address is reported but changes nothing; each
proposal is consumed by one confirmation. The idea is QUIC's path validation and
MOBIKE's return-routability check (RFC 4555 §3.5) applied to media.

The caller feeds ``propose(...)`` and ``authenticated(source, rtcp, now)`` and gets
events back; ``now`` is any monotonic clock in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from mobilityd.media.errors import MediaLocalError
from mobilityd.media.events import (
    Address,
    MediaEvent,
    RemoteAddressConfirmed,
    RemoteAddressProposed,
    UnconfirmedSourceSeen,
)

#: How long an authenticated packet from a new address counts as proof for a later
#: proposal: 64*T1 = 32 s, the life of the re-INVITE transaction (RFC 3261 §17.1.1.2).
DEFAULT_PROOF_LIFETIME = 32.0
_UNCONFIRMED_REPORT_LIMIT = 16


@dataclass(frozen=True, slots=True)
class Proposal:
    """A move signalling asked for: ``rtp``/``rtcp`` hint, or ``any_source``."""

    rtp: Address | None
    rtcp: Address | None
    any_source: bool


class ReturnRoutabilityGate:
    """Decides the remote RTP/RTCP addresses of one call."""

    def __init__(self, *, rtcp_mux: bool, proof_lifetime: float = DEFAULT_PROOF_LIFETIME) -> None:
        self.rtcp_mux = rtcp_mux
        self.proof_lifetime = proof_lifetime
        self.remote_rtp: Address | None = None
        self.remote_rtcp: Address | None = None
        self.proposal: Proposal | None = None
        self.unconfirmed_packets = 0
        self._recent: tuple[Address, bool, float] | None = None
        self._reported: set[Address] = set()

    def default_rtcp(self, rtp: Address) -> Address:
        """RTCP next to RTP: same port with RFC 5761 mux, else port + 1 (RFC 3550 §11)."""
        return rtp if self.rtcp_mux else (rtp[0], rtp[1] + 1)

    def set_remote(self, rtp: Address, rtcp: Address | None = None) -> None:
        """Set the remote from the offer/answer itself (signalling-trusted)."""
        self.remote_rtp = rtp
        self.remote_rtcp = rtcp or self.default_rtcp(rtp)

    def propose(
        self, rtp: Address | None, rtcp: Address | None, *, any_source: bool, now: float
    ) -> list[MediaEvent]:
        """A verified move: wait for (or use a recent) authenticated packet from the
        candidate; with ``any_source`` the candidate is any new authenticated source."""
        if rtp is None and not any_source:
            raise MediaLocalError("propose needs an address or any_source=True")
        rtcp_address = rtcp or (self.default_rtcp(rtp) if rtp is not None else None)
        self.proposal = Proposal(rtp, rtcp_address, any_source)
        events: list[MediaEvent] = [RemoteAddressProposed(rtp, rtcp_address)]
        recent = self._recent
        if recent is not None and now - recent[2] <= self.proof_lifetime:
            events += self._match(recent[0], recent[1], now)
        return events

    def authenticated(self, source: Address, *, rtcp: bool, now: float) -> list[MediaEvent]:
        """An SRTP (``rtcp`` False) or SRTCP packet from ``source`` authenticated."""
        if source == (self.remote_rtcp if rtcp else self.remote_rtp):
            return []
        if self.remote_rtp is None and self.proposal is None:
            # Nothing known yet: latch onto the first authenticated source (RFC 4961).
            return [self._confirm(source, rtcp, None, now)]
        events = self._match(source, rtcp, now)
        if events:
            return events
        self.unconfirmed_packets += 1
        self._recent = (source, rtcp, now)
        if source not in self._reported and len(self._reported) < _UNCONFIRMED_REPORT_LIMIT:
            self._reported.add(source)
            return [UnconfirmedSourceSeen(source, rtcp)]
        return []

    def _match(self, source: Address, rtcp: bool, now: float) -> list[MediaEvent]:
        proposal = self.proposal
        if proposal is None:
            return []
        if source == (proposal.rtcp if rtcp else proposal.rtp):
            return [self._confirm(source, rtcp, proposal, now)]
        if proposal.any_source and source not in (self.remote_rtp, self.remote_rtcp):
            return [self._confirm(source, rtcp, None, now)]
        return []

    def _confirm(
        self, source: Address, rtcp: bool, proposal: Proposal | None, now: float
    ) -> RemoteAddressConfirmed:
        if proposal is not None and proposal.rtp is not None and proposal.rtcp is not None:
            rtp, rtcp_address = proposal.rtp, proposal.rtcp
        elif rtcp:
            rtcp_address = source
            rtp = source if self.rtcp_mux else (source[0], source[1] - 1)
        else:
            rtp, rtcp_address = source, self.default_rtcp(source)
        previous = self.remote_rtp
        self.remote_rtp, self.remote_rtcp = rtp, rtcp_address
        self.proposal = None
        self._recent = None
        self._reported.clear()
        return RemoteAddressConfirmed(previous, rtp, rtcp_address, rtcp, now)
