"""One call move, the moving side, sans-I/O (issue 5 steps 1-2).

After the call's sockets are rebound to a new local address, the peer is told with a
re-INVITE whose SDP offer (RFC 3264 §8) has

* ``o=`` with the same session id and the version one higher (RFC 3264 §8, RFC 8866
  §5.2), its address the new one;
* ``c=`` (session and/or media level, RFC 8866 §5.7), the ``m=`` ports and ``a=rtcp``
  (RFC 3605 §2.1) naming the new media transport addresses;
* ``a=key-mgmt:mikey`` (RFC 4567 §3.1) carrying an **RFC 3830 §4.5 update message**:
  same CSB ID, a new timestamp, no RAND and no new TGK -- PSK contexts (and PKE
  contexts with a cached envelope key) authenticate it with the KEMAC MAC, DH
  contexts sign it (``CryptoContext.build_update``).

The keys do not change, so neither side re-creates an SRTP session: SSRCs, sequence
numbers and ROCs keep counting. Nothing here reads a clock or a random source: ``now``
and ``rng`` come from the caller.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass, replace

# CryptoContext imports its update code lazily (import cycle); loading it here keeps
# its import (~7-10 ms CPU) out of the first move's critical path (issue 5 media gap)
import mobilityd.mikey.session_update  # noqa: F401
from mobilityd.mikey.context import CryptoContext, PreparedUpdate
from mobilityd.mikey.errors import MikeyError
from mobilityd.mikey.sdp import encode_key_mgmt
from mobilityd.mikey.session import Rng
from mobilityd.mobility.errors import MobilityError
from mobilityd.sip.sdp import Attribute, Connection, Media, SessionDescription

__all__ = ["PREPARED_UPDATE_MAX_AGE", "MediaAddress", "MoveOffer", "MoveUsageError",
           "UpdateInAdvance", "addrtype_of", "move_offer", "relocated_sdp",
           "without_key_mgmt"]

_KEY_MGMT = "key-mgmt"


class MoveUsageError(MobilityError, ValueError):
    """Local misuse: an offer without media, an address that is not an IP, a port out
    of range (our caller's fault; nothing is sent)."""


@functools.lru_cache(maxsize=256)
def addrtype_of(host: str) -> str:
    """The SDP ``addrtype`` of an IP literal: ``IP4`` or ``IP6`` (RFC 8866 §5.7).

    Cached: each move asks it for the same few addresses (an ``ipaddress`` parse is
    ~10 µs of the re-INVITE's critical path); errors are not cached."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError as exc:
        raise MoveUsageError(f"not an IP address: {host!r}") from exc
    return "IP6" if address.version == 6 else "IP4"


@dataclass(frozen=True)
class MediaAddress:
    """Where our media now lives: host, RTP port and (unless muxed) the RTCP port."""

    host: str
    rtp_port: int
    rtcp_port: int | None = None

    def __post_init__(self) -> None:
        addrtype_of(self.host)
        for port in (self.rtp_port, self.rtcp_port):
            if port is not None and not 0 < port < 65536:
                raise MoveUsageError(f"port out of range: {port}")


@dataclass(frozen=True)
class MoveOffer:
    """The re-INVITE offer of one move and what it carries.

    ``update`` is the MIKEY update message inside ``sdp``; ``context`` is our context
    after sending it (same TGK, CSB ID and keys; its timestamp state moved on).
    """

    sdp: SessionDescription
    update: bytes
    context: CryptoContext

    @property
    def body(self) -> bytes:
        return bytes(self.sdp)

    content_type = "application/sdp"


def without_key_mgmt(attributes: list[Attribute]) -> list[Attribute]:
    """``attributes`` without any ``a=key-mgmt`` (RFC 4567 §3.1)."""
    return [a for a in attributes if a.name != _KEY_MGMT]


def _moved_media(media: Media, new: MediaAddress, connection: Connection,
                 key_mgmt: Attribute | None) -> Media:
    connections = [connection] if media.connections else []
    rtcp = Attribute("rtcp", f"{new.rtcp_port} {connection}")
    attributes = [
        rtcp if a.name == "rtcp" and new.rtcp_port is not None else a
        for a in without_key_mgmt(media.attributes)
    ]
    if key_mgmt is not None:
        attributes.append(key_mgmt)
    return replace(media, port=new.rtp_port, connections=connections, attributes=attributes)


def relocated_sdp(
    previous: SessionDescription, new: MediaAddress, key_mgmt: Attribute | None = None
) -> SessionDescription:
    """``previous`` with ``o=`` version + 1 and every live stream at ``new`` (RFC 3264
    §8); ``key_mgmt`` replaces the previous ``a=key-mgmt`` (dropped when None), at the
    level where the previous one was (session level when it had none, RFC 4567 §3.1)."""
    live = [m for m in previous.media if not m.is_rejected]
    if not live:
        raise MoveUsageError("the previous SDP has no active media stream to move")
    session_level = bool(previous.key_mgmt) or not any(m.key_mgmt for m in previous.media)
    addrtype = addrtype_of(new.host)
    connection = Connection("IN", addrtype, new.host)
    media = [
        m if m.is_rejected
        else _moved_media(m, new, connection, None if session_level else key_mgmt)
        for m in previous.media
    ]
    session_attributes = without_key_mgmt(previous.attributes)
    if session_level and key_mgmt is not None:
        session_attributes.append(key_mgmt)
    origin = replace(previous.origin, sess_version=previous.origin.sess_version + 1,
                     addrtype=addrtype, address=new.host)
    has_session_connection = previous.connection is not None or not all(
        m.connections for m in live)
    return replace(
        previous,
        origin=origin,
        connection=connection if has_session_connection else None,
        attributes=session_attributes,
        media=media,
    )


#: Oldest a prepared update may be when a move sends it (Unix seconds of its
#: timestamp): far inside the peer's allowed clock skew (RFC 3830 §5.4; 600 s by
#: default here, a local policy elsewhere), leaving room for a peer with a tighter one
#: and for the two clocks' difference. Refreshed once half this old.
PREPARED_UPDATE_MAX_AGE = 60.0


class UpdateInAdvance:
    """The next move's RFC 3830 §4.5 update message, built before a move needs it.

    Building the update is the largest single step of the moving side before its
    re-INVITE leaves: the KEMAC MAC for PSK, an RSA signature for DH-SIGN contexts.
    Measured here once per move, after 20 ms of relaying audio (cold, the way a move
    runs): 0.47 ms for PSK, 1.8 ms for DH-SIGN, against 0.2 ms for the rest of the
    offer. The message names no address (MIKEY covers the CSB, timestamp and keys; the
    SDP carries the addresses), so it can be built while nothing moves and sent by
    whichever move comes next, with the addresses of that move.

    It is sent only if it still fits: built from the very context the call has now
    (any update sent or verified since gives the call a new context object, and with
    it a later timestamp state and a replay cache this one does not have), and at most
    :data:`PREPARED_UPDATE_MAX_AGE` old (its timestamp must be fresh at the peer).
    Otherwise the move builds its update as before. Each prepared update is handed out
    once; one that is never sent is simply dropped (nothing was sent, so nothing can be
    replayed). Sans-I/O: ``now`` (Unix seconds, the MIKEY clock) and ``rng`` come in.
    """

    def __init__(self, max_age: float = PREPARED_UPDATE_MAX_AGE) -> None:
        if max_age <= 0:
            raise MoveUsageError(f"max_age must be positive, not {max_age!r}")
        self.max_age = max_age
        self._source: CryptoContext | None = None
        self._prepared: PreparedUpdate | None = None
        self._built_at = 0.0
        self._failure: str | None = None

    def is_ready(self, context: CryptoContext, now: float) -> bool:
        """A prepared update for ``context`` that is less than half ``max_age`` old."""
        return (self._prepared is not None and self._source is context
                and 0.0 <= now - self._built_at <= self.max_age / 2)

    def prepare(self, context: CryptoContext, now: float, rng: Rng | None = None) -> None:
        """Build the update for ``context`` now (replacing any earlier one)."""
        self._prepared = context.prepare_update(now, rng=rng)
        self._source, self._built_at = context, now

    def keep_ready(self, context: CryptoContext, now: float,
                   rng: Rng | None = None) -> str | None:
        """:meth:`prepare` unless :meth:`is_ready` (what the periodic check runs).

        A failure to build (a MIKEY error, e.g. a key that cannot sign) is no error of
        the check: the move then builds its update itself and reports what is wrong.
        Returns the failure's text the first time it occurs, for the caller to log
        once; None when built, already ready, or failing as before."""
        if self.is_ready(context, now):
            return None
        try:
            self.prepare(context, now, rng)
        except (MikeyError, ValueError) as exc:
            new = str(exc) != self._failure
            self._failure = str(exc)
            return self._failure if new else None
        self._failure = None
        return None

    def take(self, context: CryptoContext, now: float) -> PreparedUpdate | None:
        """The prepared update if it fits ``context`` and ``now`` (class doc), once."""
        prepared, source, built_at = self._prepared, self._source, self._built_at
        self._prepared = self._source = None
        if prepared is None or source is not context:
            return None
        if not 0.0 <= now - built_at <= self.max_age:
            return None
        return prepared


def move_offer(
    previous: SessionDescription,
    context: CryptoContext,
    new: MediaAddress,
    now: float,
    rng: Rng | None = None,
    *,
    prepared: PreparedUpdate | None = None,
) -> MoveOffer:
    """The re-INVITE offer announcing that our media moved to ``new`` (module doc).

    ``previous`` is the last SDP we sent in this dialog; rejected streams (port 0,
    RFC 3264 §8.2) stay rejected. The update message goes where the previous offer had
    its ``key-mgmt`` (session level when it had none, RFC 4567 §3.1). ``prepared``: an
    update built ahead from ``context`` (:meth:`UpdateInAdvance.take`); without one it is
    built here for ``now``.
    """
    if not any(not m.is_rejected for m in previous.media):
        raise MoveUsageError("the previous SDP has no active media stream to move")
    if prepared is None:
        prepared = context.prepare_update(now, rng=rng)
    key_mgmt = Attribute(_KEY_MGMT, encode_key_mgmt(prepared.message))
    sdp = relocated_sdp(previous, new, key_mgmt)
    return MoveOffer(sdp, prepared.message, prepared.context)
