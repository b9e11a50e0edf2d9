"""The peer side of a move, sans-I/O (issue 5 step 3): verify first, then change.

A re-INVITE (or UPDATE) that moves a secure call is accepted only when its SDP offer
carries an RFC 3830 §4.5 update message for the call's CSB that verifies
(``CryptoContext.verify_update``: same CSB ID, no RAND, fresh timestamp, not in the
replay cache, the peer's identity, KEMAC MAC or signature, §5.3) and changes no key
(a move keeps TGK and crypto sessions). Only then is the dialog's remote target
allowed to move (the UA changes it on accept, RFC 3261 §12.2.2) and the media path
check armed (:mod:`mobilityd.media.routability`): where we *send* media changes on the
first authenticated packet from the new source, never to the SDP ``c=`` address,
which the MIKEY MAC does not cover.

Anything else raises :class:`MoveRefused`, which carries the SIP answer (488 Not
Acceptable Here with a ``Warning: 399``, RFC 4567 §4.1.2) and, when MIKEY has one, the
§5.1.2 error message for the answer's ``a=key-mgmt``. The dialog, the context and the
media stay exactly as they were. Nothing here reads the clock: ``now`` comes in.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

# CryptoContext imports its update code lazily (import cycle); loading it here keeps
# its import (~7-10 ms CPU) out of the first move's critical path (issue 5 media gap)
import mobilityd.mikey.session_update  # noqa: F401
from mobilityd.media.endpoint import MediaEndpoint
from mobilityd.media.errors import MediaLocalError
from mobilityd.mikey.constants import ErrorType
from mobilityd.mikey.context import CryptoContext
from mobilityd.mikey.errors import MikeyError
from mobilityd.mikey.sdp import decode_key_mgmt, encode_key_mgmt
from mobilityd.mikey.session import error_response
from mobilityd.mobility.errors import MobilityError
from mobilityd.mobility.move import without_key_mgmt
from mobilityd.sip.errors import SipError, StatusCode
from mobilityd.sip.sdp import Attribute, SessionDescription

__all__ = ["MoveRefused", "VerifiedMove", "probe_verified_move", "refusal_body", "verify_move"]

Address = tuple[str, int]


class MoveRefused(MobilityError):
    """A move we refuse, and what to answer (the remote party is at fault).

    ``status``/``reason``: the SIP final response (RFC 3261 §21.4.26 488).
    ``mikey_error``: the RFC 3830 §6.12 error type when MIKEY processing failed.
    ``error_message``: the §5.1.2 MIKEY error message to carry back, or None when MIKEY
    says none may be sent (replays and unparseable input, §5.3) or there was no MIKEY.
    """

    def __init__(self, reason: str, *, status: int = StatusCode.NOT_ACCEPTABLE_HERE,
                 mikey_error: ErrorType | None = None,
                 error_message: bytes | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.mikey_error = mikey_error
        self.error_message = error_message

    @property
    def warning(self) -> str:
        """The ``Warning`` header value (RFC 3261 §20.43, code 399)."""
        text = self.reason.replace("\\", "").replace('"', "'")
        return f'399 mobilityd "{text}"'


@dataclass(frozen=True)
class VerifiedMove:
    """A move that verified: the updated context and the offer it came in.

    ``media_hint`` is the offer's RTP address -- a hint only: media is sent to the
    first authenticated new source (:meth:`MediaEndpoint.propose_remote` with
    ``any_source``), never blindly to this address.
    """

    context: CryptoContext
    sdp: SessionDescription
    media_hint: Address | None
    #: the offer's RTCP address (RFC 3605 ``a=rtcp``, or the RTP port with RFC 5761
    #: ``a=rtcp-mux``); None: next to ``media_hint`` (RFC 3550 §11). A hint as well:
    #: only probed (:meth:`MediaEndpoint.probe`), never sent the stream
    rtcp_hint: Address | None = None


def _parse_offer(body: bytes) -> SessionDescription:
    if not body:
        raise MoveRefused("re-INVITE without an SDP offer moves nothing secure")
    try:
        return SessionDescription.parse(body)
    except SipError as exc:
        raise MoveRefused(f"bad SDP offer: {exc}", status=exc.status) from exc


def _mikey_update(sdp: SessionDescription) -> bytes:
    """The one MIKEY message of the offer (RFC 4567 §3.1: session or media level)."""
    try:
        values = [k for k in sdp.key_mgmt if k.protocol == "mikey"]
        for media in sdp.media:
            values += [k for k in media.key_mgmt if k.protocol == "mikey"]
    except SipError as exc:
        raise MoveRefused(f"bad key-mgmt attribute: {exc}") from exc
    if not values:
        raise MoveRefused("offer without a MIKEY update (RFC 3830 §4.5): not moving the call",
                          mikey_error=ErrorType.AUTH_FAILURE)
    if len({v.data for v in values}) != 1:
        raise MoveRefused("offer with more than one MIKEY message",
                          mikey_error=ErrorType.UNSPECIFIED)
    try:
        return decode_key_mgmt(f"mikey {values[0].data}")
    except MikeyError as exc:
        raise MoveRefused(str(exc), mikey_error=exc.error_type) from exc


def _check_version(offer: SessionDescription, previous: SessionDescription | None) -> None:
    """RFC 3264 §8: same ``o=`` session, a changed offer has a higher version."""
    if previous is None:
        return
    old, new = previous.origin, offer.origin
    if (new.username, new.sess_id) != (old.username, old.sess_id):
        raise MoveRefused("o= names another session than the dialog's (RFC 3264 §8)")
    if new.sess_version <= old.sess_version:
        raise MoveRefused("o= version not incremented for a changed offer (RFC 3264 §8)")


def _media_hints(sdp: SessionDescription) -> tuple[Address | None, Address | None]:
    """RTP and RTCP address of the first active stream (RFC 8866 §5.7 ``c=``, ``m=``
    port; RFC 3605 §2.1 ``a=rtcp`` with its optional address; RFC 5761 §5.1.1
    ``a=rtcp-mux``: RTCP on the RTP port); (None, None) when there is none."""
    for index, media in enumerate(sdp.media):
        connection = sdp.connection_of(index)
        if media.is_rejected or connection is None:
            continue
        rtp = (connection.address, media.port)
        if media.rtcp_mux:
            return rtp, rtp
        try:
            rtcp = media.rtcp
        except SipError:
            return rtp, None  # an unreadable a=rtcp: RTCP next to RTP
        if rtcp is None:
            return rtp, None
        host = rtcp.connection.address if rtcp.connection is not None else rtp[0]
        return rtp, (host, rtcp.port)
    return None, None


def verify_move(
    body: bytes,
    context: CryptoContext,
    now: float,
    *,
    previous: SessionDescription | None = None,
) -> VerifiedMove:
    """Verify a move offer against the call's ``context`` (module doc); raises
    :class:`MoveRefused` and changes nothing when it does not verify.

    ``previous`` is the peer's last SDP in the dialog (checks ``o=``, RFC 3264 §8);
    ``now`` is Unix time (the MIKEY timestamp check, RFC 3830 §5.4).
    """
    offer = _parse_offer(body)
    _check_version(offer, previous)
    update = _mikey_update(offer)
    try:
        updated = context.verify_update(update, now)
    except MikeyError as exc:
        raise MoveRefused(
            f"MIKEY update rejected: {exc}", mikey_error=exc.error_type,
            error_message=error_response(update, exc, now),
        ) from exc
    if updated.tgk != context.tgk or [e.ssrc for e in updated.cs_map] != [
            e.ssrc for e in context.cs_map]:
        raise MoveRefused("the update changes keys or crypto sessions: not a move",
                          mikey_error=ErrorType.UNSPECIFIED)
    return VerifiedMove(updated, offer, *_media_hints(offer))


def probe_verified_move(media: MediaEndpoint, verified: VerifiedMove) -> bool:
    """After a verified move, probe the addresses its SDP names
    (:meth:`MediaEndpoint.probe`: an SRTCP report, bounded re-sends, never the stream).

    Why: when both ends move at the same instant, each announces its new address to
    the other's *old* one, where nobody listens any more; each gate then waits for an
    authenticated packet from the other's new address, which the other never sends
    (it waits the same way). The probe is the packet that breaks the wait: from our
    current address, authenticated (RFC 3711 §3.4), to where the verified update says
    the peer is. The peer's gate holds our verified update and accepts it as proof
    (issue 5 step 4); its media then arrives at our current address and confirms our
    gate. Security: the SDP is not covered by the MIKEY MAC (RFC 3830 §4.5 covers the
    MIKEY message only), so an on-path attacker rewriting ``c=`` gets a few SRTCP
    reports per verified update at the address it chose -- nothing to decrypt, no
    amplification -- and never the stream. A hint that is not an IP literal (or of the
    other IP version) is not probed. Returns whether a probe went out."""
    if verified.media_hint is None:
        return False
    try:
        return media.probe(verified.media_hint, verified.rtcp_hint)
    except MediaLocalError:
        return False  # e.g. c= names a host name: nothing to probe, nothing changes


def refusal_body(local: SessionDescription, refused: MoveRefused) -> bytes:
    """The answer body of a refusal: our unchanged SDP whose ``key-mgmt`` carries the
    MIKEY error message (RFC 4567 §4.1.2), or empty when there is none to send."""
    if refused.error_message is None:
        return b""
    attributes = [*without_key_mgmt(local.attributes),
                  Attribute("key-mgmt", encode_key_mgmt(refused.error_message))]
    media = [replace(m, attributes=without_key_mgmt(m.attributes)) for m in local.media]
    return bytes(replace(local, attributes=attributes, media=media))
