"""MIKEY in SDP: the ``a=key-mgmt`` attribute (RFC 4567 §3.1, §7) and the "SDP IDs"
General Extension that authenticates the offered protocol list (RFC 4567 §4.1.4, §7).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Sequence

from mobilityd.mikey.constants import ErrorType, GeneralExtType, KeyMgmtProtocol
from mobilityd.mikey.errors import MikeyError
from mobilityd.mikey.message import MAX_MESSAGE_SIZE, MikeyMessage
from mobilityd.mikey.payloads import GeneralExtension

__all__ = [
    "check_sdp_ids",
    "decode_key_mgmt",
    "encode_key_mgmt",
    "key_mgmt_protocols",
    "read_sdp_ids",
    "sdp_ids_extension",
]

_KMPID = re.compile(r"[A-Za-z0-9]+")  # RFC 4567 §3: KMPID = 1*(ALPHA / DIGIT)
_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_MAX_ENCODED = (MAX_MESSAGE_SIZE + 2) // 3 * 4
_ATTRIBUTE = "a=key-mgmt:"


def encode_key_mgmt(msg_bytes: bytes) -> str:
    """The ``key-mgmt`` attribute value for a MIKEY message: ``mikey <base64>`` (§3.1)."""
    return f"{KeyMgmtProtocol.MIKEY} {base64.b64encode(bytes(msg_bytes)).decode('ascii')}"


def _split_value(value: str) -> tuple[str, str]:
    """Split ``key-mgmt-att-value = 0*1SP prtcl-id SP keymgmt-data`` (RFC 4567 §3.1)."""
    text = value.strip("\r\n")
    if text.startswith(_ATTRIBUTE):
        text = text[len(_ATTRIBUTE) :]
    if text.startswith(" "):
        text = text[1:]
    protocol, sep, data = text.partition(" ")
    if not sep or not _KMPID.fullmatch(protocol):
        raise MikeyError(
            f"malformed key-mgmt attribute value {value[:40]!r}", ErrorType.UNSPECIFIED
        )
    return protocol, data


def decode_key_mgmt(value: str) -> bytes:
    """The MIKEY message bytes of a ``key-mgmt`` value ``mikey <base64>`` (RFC 4567 §3.1, §7).

    Also accepts the whole ``a=key-mgmt:mikey ...`` line. Another protocol id, bad or
    unpadded base64, or an oversized value raise :class:`MikeyError` (UNSPECIFIED).
    """
    if not isinstance(value, str):
        raise MikeyError("key-mgmt value must be text", ErrorType.UNSPECIFIED)
    protocol, data = _split_value(value)
    if protocol != KeyMgmtProtocol.MIKEY:
        raise MikeyError(f"key-mgmt protocol {protocol!r} is not mikey", ErrorType.UNSPECIFIED)
    if len(data) > _MAX_ENCODED:
        raise MikeyError(f"key-mgmt data of {len(data)} characters is too long")
    if not data or not _BASE64.fullmatch(data):
        raise MikeyError("key-mgmt data is not valid base64 (RFC 4566 grammar)")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:  # pragma: no cover - the regex rules it out
        raise MikeyError(f"key-mgmt data is not valid base64: {exc}") from exc


def key_mgmt_protocols(sdp: str) -> list[str]:
    """The protocol ids of the ``a=key-mgmt`` lines of an SDP, in order (RFC 4567 §4.1.4).

    ``";".join(...)`` of the result is the ``prtcl-list`` to authenticate.
    """
    protocols = []
    for line in sdp.splitlines():
        if line.startswith(_ATTRIBUTE):
            protocols.append(_split_value(line)[0])
    return protocols


def sdp_ids_extension(protocol_ids: Iterable[str]) -> GeneralExtension:
    """A General Extension "SDP IDs" carrying ``prtcl-list`` (RFC 4567 §4.1.4, §7)."""
    ids = list(protocol_ids)
    if not ids or not all(_KMPID.fullmatch(pid) for pid in ids):
        raise ValueError(f"invalid key-management protocol id list {ids!r}")
    return GeneralExtension(GeneralExtType.SDP_IDS, ";".join(ids).encode("ascii"))


def read_sdp_ids(extension: GeneralExtension) -> list[str]:
    """The protocol ids of an "SDP IDs" extension (RFC 4567 §4.1.4: KMPID *(";" KMPID))."""
    if extension.ext_type != GeneralExtType.SDP_IDS:
        raise MikeyError(f"general extension type {extension.ext_type} is not SDP IDs")
    try:
        text = extension.data.decode("ascii")
    except UnicodeDecodeError:
        raise MikeyError("SDP IDs extension is not ASCII") from None
    ids = text.split(";")
    if not all(_KMPID.fullmatch(pid) for pid in ids):
        raise MikeyError(f"malformed SDP IDs list {text[:40]!r}")
    return ids


def check_sdp_ids(message: MikeyMessage, offered: Sequence[str]) -> None:
    """Match the authenticated SDP IDs of ``message`` with the offer (RFC 4567 §7).

    Call after the MAC or signature verified. A missing extension or a different list
    (a bidding-down attempt) raises :class:`MikeyError` with ``AUTH_FAILURE``.
    """
    extensions = [
        ext for ext in message.find_all(GeneralExtension) if ext.ext_type == GeneralExtType.SDP_IDS
    ]
    if not extensions:
        raise MikeyError("no SDP IDs extension to authenticate the offer", ErrorType.AUTH_FAILURE)
    received = read_sdp_ids(extensions[0])
    if received != list(offered):
        raise MikeyError(
            f"offered key-mgmt protocols {';'.join(offered)!r} differ from the authenticated "
            f"list {';'.join(received)!r}",
            ErrorType.AUTH_FAILURE,
        )
