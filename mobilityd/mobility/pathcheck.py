"""Media return-routability on the peer side (sans-I/O, table-driven).

Issue 5 step 4, the QUIC path-validation idea applied to media, for the reason MOBIKE
gives for its return routability check (RFC 4555 §3.7; the threat is §5.3, a stream
redirected at a third party): the peer of a moving call starts sending its stream to a
new address only once it has **both**

* a verified MIKEY update for the call (RFC 3830 §4.5: MAC or signature, fresh
  timestamp, replay cache, same CSB ID), and
* one SRTP or SRTCP packet *from that address* that passed authentication
  (RFC 3711 §3.3 / §3.4),

in either order. The new destination is the authenticated packet's source, never an
address taken from the SDP (the MIKEY MAC does not cover the ``c=`` line, so an
on-path attacker can rewrite it): a verified peer cannot aim the stream at a third
party, and an unauthenticated packet or an unverified update changes nothing.

Limit, stated plainly: this proves that authenticated media *comes from* the new
address, not (as MOBIKE's COOKIE2 exchange or QUIC's PATH_CHALLENGE do) that the mover
*receives* there. An off-path attacker cannot forge it (SRTP authentication and replay
list, RFC 3711 §3.3); an on-path attacker who relays a captured packet from its own
address before the original arrives, or a key holder able to spoof source addresses,
could.

One engine per media component and direction (RTP, and RTCP when not multiplexed,
RFC 5761), each learning its own source, which symmetric RTP makes the address the
peer receives on (RFC 4961 §3). Each half of the proof is remembered for
``proof_lifetime`` seconds (default 32 s = 64*T1, the life of the re-INVITE
transaction, RFC 3261 §17.1.1.2) and each switch consumes the verified update: the
next move needs a new one.
"""

from __future__ import annotations

import enum

from mobilityd.mobility.errors import MobilityConfigError, UnexpectedEventError
from mobilityd.mobility.events import (
    Endpoint,
    MediaDestinationChanged,
    MikeyUpdateRejected,
    MikeyUpdateVerified,
    PathCheckInput,
    SrtpPacketAuthenticated,
    SrtpPacketRejected,
)

DEFAULT_PROOF_LIFETIME = 32.0


class PathState(enum.Enum):
    IDLE = "idle"  # no half of the proof
    UPDATE_SEEN = "verified update, waiting for media from a new address"
    MEDIA_SEEN = "authenticated media from a new address, waiting for the update"


class PathInput(enum.Enum):
    UPDATE_VERIFIED = "verified MIKEY update"
    MEDIA_FROM_NEW_ADDRESS = "authenticated packet from another address"
    MEDIA_FROM_DESTINATION = "authenticated packet from the current destination"
    UNTRUSTED = "unauthenticated packet or unverified update"


class PathAction(enum.Enum):
    NONE = "none"
    REMEMBER_SOURCE = "remember the packet's source"
    SWITCH_TO_PACKET_SOURCE = "switch to the packet's source"
    SWITCH_TO_REMEMBERED = "switch to the remembered source"


S, In, A = PathState, PathInput, PathAction
TRANSITIONS: dict[tuple[PathState, PathInput], tuple[PathState, PathAction]] = {
    (S.IDLE, In.UPDATE_VERIFIED): (S.UPDATE_SEEN, A.NONE),
    (S.IDLE, In.MEDIA_FROM_NEW_ADDRESS): (S.MEDIA_SEEN, A.REMEMBER_SOURCE),
    (S.IDLE, In.MEDIA_FROM_DESTINATION): (S.IDLE, A.NONE),
    (S.IDLE, In.UNTRUSTED): (S.IDLE, A.NONE),
    (S.UPDATE_SEEN, In.UPDATE_VERIFIED): (S.UPDATE_SEEN, A.NONE),
    (S.UPDATE_SEEN, In.MEDIA_FROM_NEW_ADDRESS): (S.IDLE, A.SWITCH_TO_PACKET_SOURCE),
    (S.UPDATE_SEEN, In.MEDIA_FROM_DESTINATION): (S.UPDATE_SEEN, A.NONE),
    (S.UPDATE_SEEN, In.UNTRUSTED): (S.UPDATE_SEEN, A.NONE),
    (S.MEDIA_SEEN, In.UPDATE_VERIFIED): (S.IDLE, A.SWITCH_TO_REMEMBERED),
    # the latest authenticated source wins (the mover may have moved twice)
    (S.MEDIA_SEEN, In.MEDIA_FROM_NEW_ADDRESS): (S.MEDIA_SEEN, A.REMEMBER_SOURCE),
    # late packets from the old path (reordering) do not undo the new one
    (S.MEDIA_SEEN, In.MEDIA_FROM_DESTINATION): (S.MEDIA_SEEN, A.NONE),
    (S.MEDIA_SEEN, In.UNTRUSTED): (S.MEDIA_SEEN, A.NONE),
}
del S, In, A


class MediaPathCheck:
    """Where one media component is sent; changes only with a complete proof."""

    def __init__(self, destination: Endpoint, *,
                 proof_lifetime: float = DEFAULT_PROOF_LIFETIME) -> None:
        if not proof_lifetime > 0:
            raise MobilityConfigError(f"proof lifetime must be > 0 s, got {proof_lifetime!r}")
        self.proof_lifetime = proof_lifetime
        self._destination = destination
        self._state = PathState.IDLE
        self._since = 0.0
        self._remembered: Endpoint | None = None
        self.untrusted_inputs = 0

    @property
    def destination(self) -> Endpoint:
        return self._destination

    @property
    def state(self) -> PathState:
        return self._state

    def handle_event(self, event: PathCheckInput, now: float) -> list[MediaDestinationChanged]:
        """Feed one input at ``now``; returns the destination change, if any."""
        if self._state is not PathState.IDLE and now - self._since > self.proof_lifetime:
            self._state, self._remembered = PathState.IDLE, None  # half a proof went stale
        what = self._classify(event)
        if what is PathInput.UNTRUSTED:
            self.untrusted_inputs += 1
        next_state, action = TRANSITIONS[(self._state, what)]
        fresh_half = action is PathAction.REMEMBER_SOURCE or what is PathInput.UPDATE_VERIFIED
        if next_state is not self._state or fresh_half:
            self._since = now
        self._state = next_state
        if action is PathAction.REMEMBER_SOURCE:
            assert isinstance(event, SrtpPacketAuthenticated)
            self._remembered = event.source
            return []
        if action is PathAction.SWITCH_TO_PACKET_SOURCE:
            assert isinstance(event, SrtpPacketAuthenticated)
            return self._switch(event.source)
        if action is PathAction.SWITCH_TO_REMEMBERED:
            assert self._remembered is not None
            return self._switch(self._remembered)
        return []

    def _classify(self, event: PathCheckInput) -> PathInput:
        if isinstance(event, MikeyUpdateVerified):
            return PathInput.UPDATE_VERIFIED
        if isinstance(event, SrtpPacketAuthenticated):
            if event.source == self._destination:
                return PathInput.MEDIA_FROM_DESTINATION
            return PathInput.MEDIA_FROM_NEW_ADDRESS
        if isinstance(event, MikeyUpdateRejected | SrtpPacketRejected):
            return PathInput.UNTRUSTED
        raise UnexpectedEventError(f"path check does not take {type(event).__name__}")

    def _switch(self, new: Endpoint) -> list[MediaDestinationChanged]:
        old, self._destination, self._remembered = self._destination, new, None
        return [MediaDestinationChanged(old, new)]
