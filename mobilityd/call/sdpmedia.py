"""SDP pieces of a secure audio call (RFC 8866, RFC 3264, RFC 4567, RFC 5761, RFC 5576).

Our offers and answers carry one audio stream of G.711 (RFC 3551 §4.5.14: PCMU 0,
PCMA 8) in the account's codec preference order (``[media] codecs``) with its
``a=ptime`` (RFC 8866 §6.4, ``[media] ptime_ms``, 20 ms by default), ``a=rtcp``
(RFC 3605) or ``a=rtcp-mux`` (RFC 5761 §5.1.1), the sender's SSRC (``a=ssrc``,
RFC 5576 §4.1) and, for ``RTP/SAVP`` (RFC 3711 §12), the ``a=key-mgmt:mikey``
attribute (RFC 4567 §3.1) at session level (the default: tshark decodes it there) or
media level.

A MIKEY error sent inside SIP (thesis §11.4) travels as an SDP body without media
whose session-level ``a=key-mgmt:mikey`` carries the error message (RFC 3830 §5.1.2)
-- :func:`error_body` / :func:`read_error_body`; the same body type (application/sdp)
serves a 488 response and a BYE.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass

from mobilityd.mikey.errors import MikeyError
from mobilityd.mikey.sdp import decode_key_mgmt, encode_key_mgmt
from mobilityd.sip.errors import SipError
from mobilityd.sip.sdp import Attribute, Connection, Media, Origin, SessionDescription, Timing

__all__ = [
    "CODEC_PAYLOAD_TYPES",
    "DEFAULT_CODECS",
    "G711_NAMES",
    "PLAIN_PROTO",
    "PTIME_RANGE_MS",
    "SECURE_PROTO",
    "KeyMgmtLevel",
    "MediaPort",
    "addr_type",
    "audio_media",
    "error_body",
    "mikey_values",
    "payload_types_for",
    "ptime_of",
    "read_error_body",
    "ssrc_of",
]

SECURE_PROTO = "RTP/SAVP"  # RFC 3711 §12
PLAIN_PROTO = "RTP/AVP"  # RFC 3551
G711_NAMES = {0: "PCMU", 8: "PCMA"}  # RFC 3551 §6 Table 4
#: the codecs we implement, by the encoding name ``[media] codecs`` uses (RFC 3551 §6)
CODEC_PAYLOAD_TYPES = {name: pt for pt, name in G711_NAMES.items()}
DEFAULT_CODECS = ("PCMU", "PCMA")
PTIME_MS = 20
#: packet times we send and accept in ``a=ptime`` (RFC 8866 §6.4), the config's bounds
PTIME_RANGE_MS = range(10, 121)
MIKEY = "mikey"


class KeyMgmtLevel(enum.StrEnum):
    """Where our offers put ``a=key-mgmt`` (RFC 4567 §3.1)."""

    SESSION = "session"
    MEDIA = "media"


@dataclass(frozen=True)
class MediaPort:
    """A local stream address: RTP port and RTCP port (None: RTCP muxed, RFC 5761)."""

    ip: str
    rtp_port: int
    rtcp_port: int | None


def addr_type(ip: str) -> str:
    """``IP4`` or ``IP6`` (RFC 8866 §5.7)."""
    return "IP6" if ipaddress.ip_address(ip).version == 6 else "IP4"


def connection(ip: str) -> Connection:
    return Connection("IN", addr_type(ip), ip)


def origin(session_id: int, version: int, ip: str) -> Origin:
    """``o=`` with our numeric session id (RFC 8866 §5.2)."""
    return Origin("-", str(session_id), version, "IN", addr_type(ip), ip)


def audio_media(
    proto: str,
    port: MediaPort,
    payload_types: tuple[int, ...],
    *,
    ssrc: int | None,
    rtcp_mux: bool,
    key_mgmt: str | None = None,
    ptime_ms: int = PTIME_MS,
) -> Media:
    """One ``m=audio`` line with its attributes (see the module docstring); ``ptime_ms``
    is the packet time we want to receive (``a=ptime``, RFC 8866 §6.4)."""
    attributes = [Attribute("rtpmap", f"{pt} {G711_NAMES[pt]}/8000") for pt in payload_types]
    attributes.append(Attribute("ptime", str(ptime_ms)))
    if port.rtcp_port is not None:
        attributes.append(Attribute("rtcp", str(port.rtcp_port)))
    if rtcp_mux:
        attributes.append(Attribute("rtcp-mux"))
    if ssrc is not None:
        attributes.append(Attribute("ssrc", f"{ssrc} cname:mobilityd"))
    attributes.append(Attribute("sendrecv"))
    if key_mgmt is not None:
        attributes.append(Attribute("key-mgmt", key_mgmt))
    return Media("audio", port.rtp_port, proto, [str(pt) for pt in payload_types],
                 attributes=attributes)


def session(
    session_id: int, ip: str, media: list[Media], attributes: list[Attribute] | None = None
) -> SessionDescription:
    return SessionDescription(
        origin=origin(session_id, 0, ip), connection=connection(ip), timings=[Timing()],
        attributes=list(attributes or []), media=media,
    )


def payload_types_for(codecs: tuple[str, ...]) -> tuple[int, ...]:
    """The static payload types of ``codecs`` (names, preference order; RFC 3551 §6).

    Raises ValueError naming a codec we do not implement (the configuration refuses it
    first: ``[media] codecs``)."""
    unknown = [c for c in codecs if c.upper() not in CODEC_PAYLOAD_TYPES]
    if unknown or not codecs:
        raise ValueError(f"codecs {list(codecs)!r}: only {sorted(CODEC_PAYLOAD_TYPES)} are "
                         f"implemented, at least one")
    return tuple(dict.fromkeys(CODEC_PAYLOAD_TYPES[c.upper()] for c in codecs))


def ptime_of(media: Media) -> int | None:
    """The stream's ``a=ptime`` in whole milliseconds (RFC 8866 §6.4), if present and
    within :data:`PTIME_RANGE_MS`; a fractional value is rounded down (RFC 8866 §6.4
    allows decimals), anything else is ignored (the receiver did not say)."""
    value = media.get("ptime")
    if value is None:
        return None
    try:
        ms = int(float(value.strip()))
    except (ValueError, OverflowError):  # not a number, nan, inf
        return None
    return ms if ms in PTIME_RANGE_MS else None


def mikey_values(attributes: list[Attribute]) -> list[str]:
    """The ``key-mgmt`` values of protocol ``mikey`` among ``attributes`` (RFC 4567 §3.1)."""
    return [
        a.value for a in attributes
        if a.name == "key-mgmt" and a.value is not None
        and a.value.lstrip(" ").split(" ", 1)[0].lower() == MIKEY
    ]


def key_mgmt_ids(attributes: list[Attribute]) -> list[str]:
    """Protocol ids of every ``key-mgmt`` at one level, in order (RFC 4567 §4.1.4)."""
    return [
        a.value.lstrip(" ").split(" ", 1)[0].lower() for a in attributes
        if a.name == "key-mgmt" and a.value is not None
    ]


def ssrc_of(media: Media) -> int | None:
    """The first ``a=ssrc`` id of a stream (RFC 5576 §4.1), if any and valid."""
    for value in media.values("ssrc"):
        head = value.split(" ", 1)[0]
        if head.isdigit() and int(head) < 2**32:
            return int(head)
    return None


def error_body(error_message: bytes, ip: str) -> bytes:
    """An SDP without media carrying a MIKEY error message (thesis §11.4)."""
    sd = session(0, ip, [], [Attribute("key-mgmt", encode_key_mgmt(error_message))])
    return bytes(sd)


def read_error_body(body: bytes) -> bytes | None:
    """The MIKEY message of an :func:`error_body` (None when there is none or it is
    not SDP / not base64)."""
    try:
        sd = SessionDescription.parse(body)
        values = mikey_values(sd.attributes)
        return decode_key_mgmt(values[0]) if values else None
    except (MikeyError, SipError, ValueError):
        return None
