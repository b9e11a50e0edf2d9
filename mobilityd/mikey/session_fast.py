"""Hot paths of the MIKEY engine: message encoding and update messages (RFC 3830 §4.5).

Nothing here changes what is accepted; it only avoids work:

* :func:`encode_message` encodes HDR and payloads once, writing each Next payload field
  (the first byte of every payload but SIGN, the third of HDR, §6.1) instead of
  copying payload objects; it produces exactly ``bytes(MikeyMessage.build(...))``.
* :class:`UpdateTemplate` holds the constant parts of a PSK-style update of one CSB
  (ID payloads, lengths), so building one is a few concatenations and one HMAC, and
  :meth:`UpdateTemplate.match` recognises the common update layout
  ``HDR, T, IDi, IDr, KEMAC`` without the general parser. Anything else — and every
  malformed message — goes through the general path, which gives the typed error.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from mobilityd.mikey.constants import (
    MAC_LENGTHS,
    MIKEY_VERSION,
    CsIdMapType,
    DataType,
    EncrAlg,
    IdType,
    MacAlg,
    PayloadType,
    TsType,
)
from mobilityd.mikey.errors import MikeyError
from mobilityd.mikey.message import MAX_MESSAGE_SIZE, MAX_PAYLOADS, MikeyMessage
from mobilityd.mikey.payloads import (
    PAYLOAD_CLASSES,
    CommonHeader,
    Payload,
    SecurityPolicy,
    Signature,
    SrtpCsEntry,
)
from mobilityd.mikey.payloads._wire import Reader

__all__ = [
    "MatchedUpdate",
    "UpdateTemplate",
    "encode_message",
    "parse_message",
    "reply_prefix",
]

_LAST = PayloadType.LAST


_SP_CACHE: dict[int, tuple[SecurityPolicy, bytes]] = {}
_SP_CACHE_MAX = 64


def _encoded(payload: Payload) -> bytes:
    """``bytes(payload)``; SP payloads (long, usually shared constants) are memoised.

    The cache is keyed by object identity and keeps the object alive, so an identity is
    never reused while cached; payloads are frozen, so their encoding cannot change.
    """
    if type(payload) is not SecurityPolicy:
        return bytes(payload)
    hit = _SP_CACHE.get(id(payload))
    if hit is not None and hit[0] is payload:
        return hit[1]
    encoded = bytes(payload)
    if len(_SP_CACHE) >= _SP_CACHE_MAX:
        _SP_CACHE.clear()
    _SP_CACHE[id(payload)] = (payload, encoded)
    return encoded


def encode_message(header: CommonHeader, payloads: Sequence[Payload]) -> bytes:
    """``bytes(MikeyMessage.build(header, payloads))`` without copying payload objects."""
    count = len(payloads)
    out = bytearray(bytes(header))
    out[2] = payloads[0].payload_type if count else _LAST
    for index, payload in enumerate(payloads):
        encoded = _encoded(payload)
        if type(payload) is Signature:
            if index != count - 1:
                raise ValueError("the SIGN payload must be the last payload (RFC 3830 §6.5)")
            out += encoded
            continue
        out.append(payloads[index + 1].payload_type if index + 1 < count else _LAST)
        out += encoded[1:]
    if len(out) > MAX_MESSAGE_SIZE:
        raise ValueError(f"message of {len(out)} bytes exceeds {MAX_MESSAGE_SIZE}")
    return bytes(out)


_SP_PARSED: dict[bytes, SecurityPolicy] = {}
_SP_HEAD = 5  # Next payload, Policy no, Prot type, Policy param length (16 bits), §6.10


def parse_message(data: bytes) -> MikeyMessage:
    """``MikeyMessage.parse(data)`` with SP payloads memoised by their raw bytes.

    The SRTP policy list is the costliest payload to decode and is usually the same in
    every message; a parsed SP is immutable, so identical bytes may share one object.
    The payload chain is walked with the codec's own payload readers; on any error the
    codec's ``MikeyMessage.parse`` runs instead, so errors are exactly the codec's.
    """
    if not isinstance(data, bytes) or len(data) > MAX_MESSAGE_SIZE:
        return MikeyMessage.parse(data)
    try:
        reader = Reader(data)
        header = CommonHeader.read(reader)
        payloads: list[Payload] = []
        next_type = header.next_payload
        while next_type != _LAST:
            if len(payloads) >= MAX_PAYLOADS:
                return MikeyMessage.parse(data)
            payload: Payload
            if next_type == PayloadType.SP:
                payload = _read_policy(reader)
            else:
                payload_class = PAYLOAD_CLASSES.get(next_type)
                if payload_class is None:
                    return MikeyMessage.parse(data)
                payload = payload_class.read(reader)
            payloads.append(payload)
            next_type = payload.next_payload
        if not reader.at_end():
            return MikeyMessage.parse(data)
        message = MikeyMessage(header, tuple(payloads))
    except (MikeyError, ValueError):
        return MikeyMessage.parse(data)
    message.__dict__["wire"] = data
    return message


def _read_policy(reader: Reader) -> SecurityPolicy:
    start = reader.pos
    data = reader.data
    if start + _SP_HEAD <= len(data):
        end = start + _SP_HEAD + int.from_bytes(data[start + 3 : start + 5], "big")
        raw = data[start:end]
        cached = _SP_PARSED.get(raw) if end <= len(data) else None
        if cached is not None:
            reader.pos = end
            return cached
    policy = SecurityPolicy.read(reader)
    if len(_SP_PARSED) >= _SP_CACHE_MAX:
        _SP_PARSED.clear()
    _SP_PARSED[data[start : reader.pos]] = policy
    return policy


def encode_cs_map(cs_map: Sequence[SrtpCsEntry]) -> bytes:
    """``#CS || map type || entries`` of an SRTP-ID map (§6.1, §6.1.1)."""
    return bytes((len(cs_map), CsIdMapType.SRTP_ID)) + b"".join(
        struct.pack("!BII", e.policy_no, e.ssrc, e.roc) for e in cs_map
    )


def reply_prefix(  # noqa: PLR0917
    data_type: DataType,
    csb_id: int,
    cs_map: Sequence[SrtpCsEntry],
    ts_type: TsType,
    ts_value_bytes: bytes,
    id_r: bytes,
    mac_alg: MacAlg,
) -> bytes:
    """``HDR, T, IDr, V`` up to the Ver data: the R_MESSAGE of §3.1/§3.2 before its MAC.

    Equal to ``session_common.verification_prefix`` for that payload list (tested).
    """
    return (
        bytes((MIKEY_VERSION, data_type, PayloadType.T, 0))
        + csb_id.to_bytes(4, "big")
        + encode_cs_map(cs_map)
        + bytes((PayloadType.ID, ts_type))
        + ts_value_bytes
        + bytes((PayloadType.V, IdType.URI))
        + len(id_r).to_bytes(2, "big")
        + id_r
        + bytes((_LAST, mac_alg))
    )


@dataclass(frozen=True, slots=True)
class MatchedUpdate:
    """The fields of an update recognised by :meth:`UpdateTemplate.match`."""

    cs_map: tuple[SrtpCsEntry, ...]
    ts_value: int
    ts_bytes: bytes
    encr_alg: int
    encr_data: bytes
    mac_alg: int
    mac: bytes
    mac_input: bytes


@dataclass(frozen=True, slots=True)
class UpdateTemplate:
    """Constant parts of the PSK-style updates one side sends or receives (§4.5).

    ``ids`` is the encoded ``IDi, IDr`` pair (Next payload of IDr = KEMAC) for the
    direction this template describes.
    """

    csb_id: int
    ids: bytes

    @classmethod
    def for_direction(cls, csb_id: int, id_i: bytes, id_r: bytes) -> UpdateTemplate:
        id_i_payload = bytes((PayloadType.ID, IdType.URI)) + len(id_i).to_bytes(2, "big") + id_i
        id_r_payload = (
            bytes((PayloadType.KEMAC, IdType.URI)) + len(id_r).to_bytes(2, "big") + id_r
        )
        return cls(csb_id, id_i_payload + id_r_payload)

    def head(self, cs_map: Sequence[SrtpCsEntry], ts_value: int, v_flag: bool = False) -> bytes:
        """HDR, T (NTP-UTC), IDi, IDr — everything before the KEMAC payload."""
        return (
            bytes((MIKEY_VERSION, DataType.PSK_INIT, PayloadType.T, 0x80 if v_flag else 0))
            + self.csb_id.to_bytes(4, "big")
            + encode_cs_map(cs_map)
            + bytes((PayloadType.ID, TsType.NTP_UTC))
            + ts_value.to_bytes(8, "big")
            + self.ids
        )

    def match(self, data: bytes) -> MatchedUpdate | None:
        """Recognise ``HDR, T(NTP-UTC/NTP), IDi, IDr, KEMAC`` of this CSB, or None.

        Only the layout is checked here (the caller still checks time, replay and MAC);
        None sends the message to the general parser.
        """
        if len(data) < 10 or len(data) > MAX_MESSAGE_SIZE:
            return None
        if data[0] != MIKEY_VERSION or data[1] != DataType.PSK_INIT or data[2] != PayloadType.T:
            return None
        if data[3] & 0x7F or int.from_bytes(data[4:8], "big") != self.csb_id:
            return None
        count, map_type = data[8], data[9]
        pos = 10 + 9 * count
        if map_type != CsIdMapType.SRTP_ID or len(data) < pos + 10:
            return None
        cs_map = tuple(
            SrtpCsEntry(*struct.unpack_from("!BII", data, 10 + 9 * i)) for i in range(count)
        )
        if data[pos] != PayloadType.ID or data[pos + 1] not in (TsType.NTP_UTC, TsType.NTP):
            return None
        ts_bytes = data[pos + 2 : pos + 10]
        pos += 10
        end_ids = pos + len(self.ids)
        if data[pos:end_ids] != self.ids or len(data) < end_ids + 4:
            return None
        if data[end_ids] != _LAST or data[end_ids + 1] not in EncrAlg._value2member_map_:
            return None
        encr_len = int.from_bytes(data[end_ids + 2 : end_ids + 4], "big")
        mac_at = end_ids + 4 + encr_len
        if len(data) <= mac_at or data[mac_at] not in MacAlg._value2member_map_:
            return None
        mac_len = MAC_LENGTHS[MacAlg(data[mac_at])]
        if len(data) != mac_at + 1 + mac_len:
            return None
        return MatchedUpdate(
            cs_map=cs_map,
            ts_value=int.from_bytes(ts_bytes, "big"),
            ts_bytes=ts_bytes,
            encr_alg=data[end_ids + 1],
            encr_data=data[end_ids + 4 : mac_at],
            mac_alg=data[mac_at],
            mac=data[mac_at + 1 :],
            mac_input=data[: mac_at + 1],
        )
