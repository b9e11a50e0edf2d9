"""Return routability for the remote media address, sans-I/O, table-driven (issue 5
step 4).

Where we send RTP/RTCP moves to a new address only once we hold **both** halves of a
proof, in either order, neither gone stale:

* a verified move -- a MIKEY update that passed verification (RFC 3830 §4.5: MAC or
  signature, fresh timestamp, replay cache, same CSB ID) -- fed as :meth:`propose`,
  held for ``update_lifetime``, and
* one packet *from the new address* that passed SRTP or SRTCP authentication
  (RFC 3711 §3.3, §3.4) -- fed as :meth:`authenticated`, remembered for
  ``proof_lifetime`` as proof for a later move.

The idea is QUIC's path validation and MOBIKE's return-routability check (RFC 4555
§3.5, §3.7) applied to media, against the threat of RFC 4555 §5.3 (a stream redirected
at a third party). Input that failed authentication or verification (:meth:`untrusted`)
is counted and changes nothing; an authenticated packet from an address no verified
move accepts is reported once (:class:`UnconfirmedSourceSeen`) and changes nothing;
each switch consumes the verified move, so the next move needs a new one. The MIKEY MAC
does not cover the SDP ``c=`` line, so with ``any_source`` the proposed address is only
a hint and the authenticated packet's source decides; a specific proposed address is
accepted only when authenticated media actually comes from it.

Both ends moving at the same instant: each gate holds the other's verified move and
waits for a packet from the other's new address, while each side still sends to the
other's old one. The gate is not relaxed for that (a held move never redirects by
itself); the endpoint *probes* the verified move's addresses instead
(:meth:`MediaEndpoint.probe`, an SRTCP report), which is the authenticated packet the
other gate waits for (see :mod:`mobilityd.media.endpoint`).

Limit, stated plainly: this proves that authenticated media *comes from* the new
address, not (as MOBIKE's COOKIE2 or QUIC's PATH_CHALLENGE do) that the mover
*receives* there. An off-path attacker cannot forge it (SRTP authentication and replay
list, RFC 3711 §3.3.2); an on-path attacker relaying a captured packet from its own
address before the original arrives, or a key holder spoofing source addresses, could.

The state machine is :data:`TRANSITIONS`, one row per (state, input); the gate only
classifies inputs and carries out actions. ``now`` is any monotonic clock in seconds,
always given by the caller.
"""

from __future__ import annotations

import enum
import functools
import ipaddress
import math
from dataclasses import dataclass

from mobilityd.media.errors import MediaLocalError
from mobilityd.media.events import (
    Address,
    MediaEvent,
    RemoteAddressConfirmed,
    RemoteAddressProposed,
    UnconfirmedSourceSeen,
)

#: How long each half of the proof counts by default: 64*T1 = 32 s, the life of the
#: re-INVITE transaction that carries the MIKEY update (RFC 3261 §17.1.1.2).
DEFAULT_PROOF_LIFETIME = 32.0
DEFAULT_UPDATE_LIFETIME = 32.0
#: Distinct unconfirmed sources reported between two switches (a flood of authenticated
#: packets from many addresses cannot flood whoever listens; counting stays exact).
UNCONFIRMED_REPORT_LIMIT = 16


class GateState(enum.Enum):
    IDLE = "no half of the proof held"
    UPDATE_SEEN = "verified move held, waiting for authenticated media from its candidate"
    MEDIA_SEEN = "authenticated media from a new address held, waiting for a verified move"


class GateInput(enum.Enum):
    UPDATE_VERIFIED = "verified move that does not accept the remembered source"
    UPDATE_ACCEPTING_REMEMBERED = "verified move that accepts the remembered source"
    MEDIA_FROM_CANDIDATE = "authenticated packet from an address the held move accepts"
    MEDIA_FROM_OTHER_ADDRESS = "authenticated packet from an address nothing accepts"
    MEDIA_WITHOUT_DESTINATION = "authenticated packet while no destination is known"
    MEDIA_FROM_DESTINATION = "authenticated packet from where we already send"
    UNTRUSTED = "packet that failed authentication, or update that failed verification"
    PROOF_EXPIRED = "the held half went stale (update_lifetime / proof_lifetime)"


class GateAction(enum.Enum):
    NONE = "change nothing"
    HOLD_UPDATE = "hold the move (replacing any held one), forget remembered media"
    REMEMBER_SOURCE = "remember the packet's source (the latest one wins)"
    REPORT_SOURCE = "report the packet's source, hold nothing new"
    SWITCH_TO_PACKET_SOURCE = "send to the packet's source (or the move's addresses)"
    SWITCH_TO_REMEMBERED = "send to the remembered source"
    LATCH_PACKET_SOURCE = "first destination: the first authenticated source (RFC 4961)"
    FORGET_HALF = "drop the held half"


S, In, A = GateState, GateInput, GateAction
#: (state, input) -> (next state, action). Rows marked "cannot occur" are unreachable by
#: construction (only UPDATE_SEEN holds a move, only MEDIA_SEEN remembers a source, only
#: a held half expires); they change nothing, so even a classification bug cannot move
#: the stream.
TRANSITIONS: dict[tuple[GateState, GateInput], tuple[GateState, GateAction]] = {
    (S.IDLE, In.UPDATE_VERIFIED): (S.UPDATE_SEEN, A.HOLD_UPDATE),
    (S.IDLE, In.UPDATE_ACCEPTING_REMEMBERED): (S.IDLE, A.NONE),  # cannot occur
    (S.IDLE, In.MEDIA_FROM_CANDIDATE): (S.IDLE, A.NONE),  # cannot occur
    (S.IDLE, In.MEDIA_FROM_OTHER_ADDRESS): (S.MEDIA_SEEN, A.REMEMBER_SOURCE),
    (S.IDLE, In.MEDIA_WITHOUT_DESTINATION): (S.IDLE, A.LATCH_PACKET_SOURCE),
    (S.IDLE, In.MEDIA_FROM_DESTINATION): (S.IDLE, A.NONE),
    (S.IDLE, In.UNTRUSTED): (S.IDLE, A.NONE),
    (S.IDLE, In.PROOF_EXPIRED): (S.IDLE, A.NONE),  # cannot occur
    # a newer verified move replaces the held one (e.g. a transfer answer)
    (S.UPDATE_SEEN, In.UPDATE_VERIFIED): (S.UPDATE_SEEN, A.HOLD_UPDATE),
    (S.UPDATE_SEEN, In.UPDATE_ACCEPTING_REMEMBERED): (S.UPDATE_SEEN, A.NONE),  # cannot occur
    (S.UPDATE_SEEN, In.MEDIA_FROM_CANDIDATE): (S.IDLE, A.SWITCH_TO_PACKET_SOURCE),
    (S.UPDATE_SEEN, In.MEDIA_FROM_OTHER_ADDRESS): (S.UPDATE_SEEN, A.REPORT_SOURCE),
    # a verified move names where the peer is: no latching onto another source
    (S.UPDATE_SEEN, In.MEDIA_WITHOUT_DESTINATION): (S.UPDATE_SEEN, A.REPORT_SOURCE),
    (S.UPDATE_SEEN, In.MEDIA_FROM_DESTINATION): (S.UPDATE_SEEN, A.NONE),
    (S.UPDATE_SEEN, In.UNTRUSTED): (S.UPDATE_SEEN, A.NONE),
    (S.UPDATE_SEEN, In.PROOF_EXPIRED): (S.IDLE, A.FORGET_HALF),
    (S.MEDIA_SEEN, In.UPDATE_VERIFIED): (S.UPDATE_SEEN, A.HOLD_UPDATE),
    (S.MEDIA_SEEN, In.UPDATE_ACCEPTING_REMEMBERED): (S.IDLE, A.SWITCH_TO_REMEMBERED),
    (S.MEDIA_SEEN, In.MEDIA_FROM_CANDIDATE): (S.MEDIA_SEEN, A.NONE),  # cannot occur
    # the latest authenticated source wins (the mover may have moved twice)
    (S.MEDIA_SEEN, In.MEDIA_FROM_OTHER_ADDRESS): (S.MEDIA_SEEN, A.REMEMBER_SOURCE),
    (S.MEDIA_SEEN, In.MEDIA_WITHOUT_DESTINATION): (S.MEDIA_SEEN, A.NONE),  # cannot occur
    # late packets from the old path (reordering) do not undo the remembered one
    (S.MEDIA_SEEN, In.MEDIA_FROM_DESTINATION): (S.MEDIA_SEEN, A.NONE),
    (S.MEDIA_SEEN, In.UNTRUSTED): (S.MEDIA_SEEN, A.NONE),
    (S.MEDIA_SEEN, In.PROOF_EXPIRED): (S.IDLE, A.FORGET_HALF),
}
del S, In, A


@dataclass(frozen=True, slots=True)
class Proposal:
    """A verified move: ``rtp``/``rtcp`` where signalling says the peer now is; with
    ``any_source`` any new authenticated source is accepted and the address is a hint."""

    rtp: Address | None
    rtcp: Address | None
    any_source: bool

    def accepts(self, source: Address, *, rtcp: bool, destination: tuple[Address | None, ...]
                ) -> bool:
        if source == (self.rtcp if rtcp else self.rtp):
            return True
        return self.any_source and source not in destination


@dataclass(frozen=True, slots=True)
class _Packet:
    source: Address
    rtcp: bool


@functools.lru_cache(maxsize=256)
def _is_ip_literal(host: str) -> bool:
    """Cached: a packet source is checked on every packet from a new address."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def check_address(address: Address, what: str) -> Address:
    """Raise :class:`MediaLocalError` unless ``address`` is (IP literal, port 1..65535)."""
    if not (isinstance(address, tuple) and len(address) == 2
            and isinstance(address[0], str) and isinstance(address[1], int)):
        raise MediaLocalError(f"{what}: not an (IP, port) pair: {address!r}")
    if not _is_ip_literal(address[0]):
        raise MediaLocalError(f"{what}: not an IP address: {address[0]!r}")
    if not 0 < address[1] < 65536:
        raise MediaLocalError(f"{what}: port out of range: {address[1]}")
    return address


def _check_lifetime(seconds: float, what: str) -> float:
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) \
            or not math.isfinite(seconds) or seconds < 0:
        raise MediaLocalError(f"{what} must be a finite number >= 0 s: {seconds!r}")
    return float(seconds)


class ReturnRoutabilityGate:
    """Decides the remote RTP/RTCP addresses of one call (see the module docstring)."""

    def __init__(self, *, rtcp_mux: bool, proof_lifetime: float = DEFAULT_PROOF_LIFETIME,
                 update_lifetime: float = DEFAULT_UPDATE_LIFETIME) -> None:
        self.rtcp_mux = rtcp_mux
        self.proof_lifetime = proof_lifetime
        self.update_lifetime = update_lifetime
        self.remote_rtp: Address | None = None
        self.remote_rtcp: Address | None = None
        self.proposal: Proposal | None = None
        self.unconfirmed_packets = 0
        self.untrusted_inputs = 0
        self._state = GateState.IDLE
        self._since = 0.0  # when the held half arrived
        self._remembered: _Packet | None = None
        self._reported: set[Address] = set()

    @property
    def state(self) -> GateState:
        return self._state

    @property
    def proof_lifetime(self) -> float:
        """Seconds authenticated media from a new address counts as proof for a later
        move (0: only a move at the same ``now``)."""
        return self._proof_lifetime

    @proof_lifetime.setter
    def proof_lifetime(self, seconds: float) -> None:
        self._proof_lifetime = _check_lifetime(seconds, "proof lifetime")

    @property
    def update_lifetime(self) -> float:
        """Seconds a verified move waits for authenticated media from its candidate."""
        return self._update_lifetime

    @update_lifetime.setter
    def update_lifetime(self, seconds: float) -> None:
        self._update_lifetime = _check_lifetime(seconds, "update lifetime")

    def default_rtcp(self, rtp: Address) -> Address:
        """RTCP next to RTP: same port with RFC 5761 mux, else port + 1 (RFC 3550 §11)."""
        return rtp if self.rtcp_mux else (rtp[0], rtp[1] + 1)

    def set_remote(self, rtp: Address, rtcp: Address | None = None) -> None:
        """Set the remote from the offer/answer itself (signalling-trusted, as trusted as
        the MIKEY exchange that keyed the call); a held half is kept."""
        self.remote_rtp = check_address(rtp, "remote RTP")
        self.remote_rtcp = (check_address(rtcp, "remote RTCP") if rtcp is not None
                            else self.default_rtcp(rtp))

    # -- inputs --------------------------------------------------------------------------

    def propose(
        self, rtp: Address | None, rtcp: Address | None, *, any_source: bool, now: float
    ) -> list[MediaEvent]:
        """A verified move (RFC 3830 §4.5): wait for (or use a remembered) authenticated
        packet from the candidate; with ``any_source`` the candidate is any new
        authenticated source and ``rtp``/``rtcp`` are only a hint."""
        if rtp is None and not any_source:
            raise MediaLocalError("propose needs an address or any_source=True")
        if rtp is not None:
            check_address(rtp, "proposed RTP")
        if rtcp is not None:
            check_address(rtcp, "proposed RTCP")
        self._expire(now)
        rtcp_address = rtcp or (self.default_rtcp(rtp) if rtp is not None else None)
        proposal = Proposal(rtp, rtcp_address, any_source)
        events: list[MediaEvent] = [RemoteAddressProposed(rtp, rtcp_address)]
        remembered = self._remembered
        accepting = remembered is not None and proposal.accepts(
            remembered.source, rtcp=remembered.rtcp, destination=self._destination())
        what = GateInput.UPDATE_ACCEPTING_REMEMBERED if accepting else GateInput.UPDATE_VERIFIED
        return events + self._step(what, None, proposal, now)

    def authenticated(self, source: Address, *, rtcp: bool, now: float) -> list[MediaEvent]:
        """An SRTP (``rtcp`` False) or SRTCP packet from ``source`` passed authentication
        (RFC 3711 §3.3, §3.4). Never feed a packet that failed: use :meth:`untrusted`."""
        check_address(source, "packet source")
        self._expire(now)
        proposal = self.proposal
        if source == (self.remote_rtcp if rtcp else self.remote_rtp):
            what = GateInput.MEDIA_FROM_DESTINATION
        elif proposal is not None and proposal.accepts(
                source, rtcp=rtcp, destination=self._destination()):
            what = GateInput.MEDIA_FROM_CANDIDATE
        elif self.remote_rtp is None:
            what = GateInput.MEDIA_WITHOUT_DESTINATION
        else:
            what = GateInput.MEDIA_FROM_OTHER_ADDRESS
        return self._step(what, _Packet(source, rtcp), None, now)

    def untrusted(self, now: float) -> list[MediaEvent]:
        """A packet failed SRTP/SRTCP authentication or replay checks (RFC 3711 §3.3), or
        a MIKEY update failed verification (RFC 3830 §5.1): counted, changes nothing."""
        self._expire(now)
        return self._step(GateInput.UNTRUSTED, None, None, now)

    # -- machinery -----------------------------------------------------------------------

    def _destination(self) -> tuple[Address | None, ...]:
        return (self.remote_rtp, self.remote_rtcp)

    def _expire(self, now: float) -> None:
        """Drop the held half once stale; every input calls this first."""
        if isinstance(now, bool) or not isinstance(now, int | float) or not math.isfinite(now):
            raise MediaLocalError(f"now must be a finite number of seconds: {now!r}")
        if self._state is GateState.IDLE:
            return
        held_for = self._update_lifetime if self._state is GateState.UPDATE_SEEN \
            else self._proof_lifetime
        if now - self._since > held_for:
            self._step(GateInput.PROOF_EXPIRED, None, None, now)

    def _step(self, what: GateInput, packet: _Packet | None, proposal: Proposal | None,
              now: float) -> list[MediaEvent]:
        self._state, action = TRANSITIONS[(self._state, what)]
        if what is GateInput.UNTRUSTED:
            self.untrusted_inputs += 1
        if action is GateAction.HOLD_UPDATE:
            self.proposal, self._remembered, self._since = proposal, None, now
        elif action is GateAction.FORGET_HALF:
            self.proposal = self._remembered = None
        elif action is GateAction.SWITCH_TO_REMEMBERED:
            assert self._remembered is not None and proposal is not None
            return [self._switch(self._remembered, proposal, now)]
        elif packet is not None:
            return self._packet_action(action, packet, now)
        return []

    def _packet_action(self, action: GateAction, packet: _Packet, now: float
                       ) -> list[MediaEvent]:
        if action is GateAction.SWITCH_TO_PACKET_SOURCE:
            return [self._switch(packet, self.proposal, now)]
        if action is GateAction.LATCH_PACKET_SOURCE:
            return [self._switch(packet, None, now)]
        if action is GateAction.NONE:
            return []
        self.unconfirmed_packets += 1
        if action is GateAction.REMEMBER_SOURCE:
            self._remembered, self._since = packet, now
        if packet.source in self._reported or len(self._reported) >= UNCONFIRMED_REPORT_LIMIT:
            return []
        self._reported.add(packet.source)
        return [UnconfirmedSourceSeen(packet.source, packet.rtcp)]

    def _switch(self, packet: _Packet, proposal: Proposal | None, now: float
                ) -> RemoteAddressConfirmed:
        """Send to the authenticated source; a specific move it matched gives both
        addresses, otherwise the other component is derived (RFC 5761, RFC 3550 §11)."""
        source = packet.source
        if (proposal is not None and proposal.rtp is not None and proposal.rtcp is not None
                and source == (proposal.rtcp if packet.rtcp else proposal.rtp)):
            rtp, rtcp_address = proposal.rtp, proposal.rtcp
        elif packet.rtcp:
            rtcp_address = source
            rtp = source if self.rtcp_mux else (source[0], source[1] - 1)
        else:
            rtp, rtcp_address = source, self.default_rtcp(source)
        previous = self.remote_rtp
        self.remote_rtp, self.remote_rtcp = rtp, rtcp_address
        self.proposal = self._remembered = None
        self._reported.clear()
        return RemoteAddressConfirmed(previous, rtp, rtcp_address, packet.rtcp, now)
