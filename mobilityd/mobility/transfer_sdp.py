"""SDP of a transfer INVITE and its answer (thesis §15.1; RFC 4567 §3.1 key-mgmt), pure.

The correspondent's INVITE to the transfer target carries the SDP of the ongoing
session -- its own media address, payload type, RTCP and SSRC unchanged -- with the
transfer's MIKEY I_MESSAGE in the audio stream's ``a=key-mgmt`` (RFC 4567 §3.1). The
target answers with its own address and SSRC and the MIKEY V/signed response.
:func:`read_transfer_sdp` extracts what either side needs; anything unusable is a
:class:`~mobilityd.mobility.transfer.errors.TransferRefusedError` with the SIP answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mobilityd.call import sdpmedia as sm
from mobilityd.mikey.errors import MikeyError
from mobilityd.mikey.sdp import decode_key_mgmt, encode_key_mgmt
from mobilityd.mobility.transfer.errors import TransferRefusedError
from mobilityd.sip.errors import SipError
from mobilityd.sip.sdp import SessionDescription

__all__ = ["TransferSdp", "build_transfer_sdp", "read_transfer_sdp"]

Address = tuple[str, int]


@dataclass(frozen=True, slots=True)
class TransferSdp:
    """The audio stream of a transfer offer or answer."""

    remote_rtp: Address
    remote_rtcp: Address
    rtcp_mux: bool
    payload_type: int
    proto: str
    ssrc: int | None
    mikey: bytes = field(repr=False)


def build_transfer_sdp(
    *, session_id: int, port: sm.MediaPort, payload_type: int, proto: str, ssrc: int,
    rtcp_mux: bool, mikey: bytes,
) -> bytes:
    """One audio stream at ``port`` with ``mikey`` in its ``a=key-mgmt`` (RFC 4567 §3.1)."""
    media = sm.audio_media(proto, port, (payload_type,), ssrc=ssrc, rtcp_mux=rtcp_mux,
                           key_mgmt=encode_key_mgmt(mikey))
    return bytes(sm.session(session_id, port.ip, [media]))


def read_transfer_sdp(body: bytes) -> TransferSdp:
    """The first audio stream with a MIKEY key-mgmt (media or session level)."""
    try:
        sd = SessionDescription.parse(body)
    except SipError as exc:
        raise TransferRefusedError(f"transfer SDP: {exc.reason}", 488,
                                   "Not Acceptable Here") from exc
    for index, media in enumerate(sd.media):
        values = sm.mikey_values(media.attributes) or sm.mikey_values(sd.attributes)
        if media.media != "audio" or media.port == 0 or not values:
            continue
        conn = sd.connection_of(index)
        if conn is None or not media.fmts or not media.fmts[0].isdigit():
            break
        try:
            mikey = decode_key_mgmt(values[0])
        except MikeyError as exc:
            raise TransferRefusedError(f"transfer SDP key-mgmt: {exc}", 488,
                                       "Not Acceptable Here") from exc
        rtp = (conn.address, media.port)
        try:
            rtcp_attr = media.rtcp
        except SipError as exc:
            raise TransferRefusedError(exc.reason, 488, "Not Acceptable Here") from exc
        if media.rtcp_mux:
            rtcp = rtp
        elif rtcp_attr is None:
            rtcp = (conn.address, media.port + 1)
        else:
            address = rtcp_attr.connection.address if rtcp_attr.connection else conn.address
            rtcp = (address, rtcp_attr.port)
        return TransferSdp(rtp, rtcp, media.rtcp_mux, int(media.fmts[0]), media.proto,
                           sm.ssrc_of(media), mikey)
    raise TransferRefusedError("transfer SDP has no audio stream keyed by MIKEY", 488,
                               "Not Acceptable Here")
