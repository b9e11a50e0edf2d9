"""Common Header payload, HDR (RFC 3830 §6.1) and its SRTP-ID CS ID map (§6.1.1).

Also reads the "empty map" CS ID map type of RFC 4563 §4 (no map info, ``#CS`` = 0).
The GENERIC-ID map of RFC 6043 is not decoded (rejected as ``UNSPECIFIED``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Self

from mobilityd.mikey.constants import (
    MIKEY_VERSION,
    CsIdMapType,
    DataType,
    ErrorType,
    PayloadType,
    PrfFunc,
)
from mobilityd.mikey.errors import MikeyParseError
from mobilityd.mikey.payloads._wire import (
    ChainedPayload,
    Reader,
    RepeatMemo,
    WireCodec,
    code_point,
    next_payload_type,
)

__all__ = ["CommonHeader", "SrtpCsEntry"]

_SRTP_ENTRY = struct.Struct("!BII")  # Policy_no, SSRC, ROC (§6.1.1)
_HDR_FIXED = struct.Struct("!BBBBIBB")  # version .. CS ID map type (§6.1)
_MAX_CS = 255  # #CS is 8 bits, §6.1
_REPEATS = RepeatMemo()  # the HDR of one CSB recurs in every message and update


@dataclass(frozen=True, slots=True)
class SrtpCsEntry(WireCodec):
    """One crypto session of the SRTP-ID map (RFC 3830 §6.1.1); CS ID = position + 1."""

    policy_no: int
    ssrc: int
    roc: int

    def __bytes__(self) -> bytes:
        return _SRTP_ENTRY.pack(self.policy_no, self.ssrc, self.roc)

    @classmethod
    def read(cls, reader: Reader) -> Self:
        return cls(*reader.unpack(_SRTP_ENTRY, "SRTP-ID CS map entry"))


@dataclass(frozen=True, slots=True)
class CommonHeader(ChainedPayload):
    """HDR (RFC 3830 §6.1): always the first payload of a MIKEY message.

    ``cs_map`` holds one :class:`SrtpCsEntry` per crypto session for map type SRTP-ID;
    it is empty for the empty map (RFC 4563). ``next_payload`` is filled in by
    :meth:`MikeyMessage.build`.
    """

    data_type: DataType
    csb_id: int
    cs_map: tuple[SrtpCsEntry, ...] = ()
    cs_id_map_type: CsIdMapType = CsIdMapType.SRTP_ID
    v_flag: bool = False
    prf_func: PrfFunc = PrfFunc.MIKEY_1
    version: int = MIKEY_VERSION
    next_payload: PayloadType = field(default=PayloadType.LAST, kw_only=True)

    def __bytes__(self) -> bytes:
        if len(self.cs_map) > _MAX_CS:
            raise ValueError(f"{len(self.cs_map)} crypto sessions, at most {_MAX_CS} fit")
        if self.cs_id_map_type != CsIdMapType.SRTP_ID and self.cs_map:
            raise ValueError("only the SRTP-ID map carries crypto session entries")
        head = _HDR_FIXED.pack(
            self.version,
            self.data_type,
            self.next_payload,
            (0x80 if self.v_flag else 0) | self.prf_func,
            self.csb_id,
            len(self.cs_map),
            self.cs_id_map_type,
        )
        pack = _SRTP_ENTRY.pack
        return head + b"".join([pack(e.policy_no, e.ssrc, e.roc) for e in self.cs_map])

    @classmethod
    def read(cls, reader: Reader) -> Self:
        start, data = reader.pos, reader.data
        if start + _HDR_FIXED.size <= len(data):
            hit: Self | None = _REPEATS.hit(reader, start + 10 + 9 * data[start + 8])
            if hit is not None:
                return hit
        return _REPEATS.keep(reader, start, cls._read(reader))

    @classmethod
    def _read(cls, reader: Reader) -> Self:
        if reader.remaining < _HDR_FIXED.size:
            cls._explain_truncated(reader)
        version, data_type_raw, next_raw, v_prf, csb_id, cs_count, map_raw = reader.unpack(
            _HDR_FIXED, "HDR"
        )
        if version != MIKEY_VERSION:
            raise MikeyParseError(f"unsupported MIKEY version {version}")
        data_type = code_point(DataType, data_type_raw, ErrorType.INVALID_DT, "data type")
        next_payload = next_payload_type(next_raw)
        prf_func = code_point(PrfFunc, v_prf & 0x7F, ErrorType.INVALID_PRF, "PRF function")
        map_type = code_point(CsIdMapType, map_raw, ErrorType.UNSPECIFIED, "CS ID map type")
        if map_type == CsIdMapType.SRTP_ID:
            data, pos = reader.data, reader.pos
            entries_end = pos + cs_count * _SRTP_ENTRY.size
            if entries_end > len(data):
                raise MikeyParseError(
                    f"truncated SRTP-ID CS map: {cs_count} entries need "
                    f"{cs_count * _SRTP_ENTRY.size} bytes at offset {pos}, {reader.remaining} left"
                )
            unpack = _SRTP_ENTRY.unpack_from
            cs_map = tuple(
                [SrtpCsEntry(*unpack(data, at)) for at in range(pos, entries_end, _SRTP_ENTRY.size)]
            )
            reader.pos = entries_end
        elif map_type == CsIdMapType.EMPTY:
            if cs_count:
                raise MikeyParseError(f"empty CS ID map with #CS = {cs_count}")
            cs_map = ()
        else:
            raise MikeyParseError(f"CS ID map type {map_type.name} is not supported")
        return cls(
            data_type, csb_id, cs_map, map_type, bool(v_prf & 0x80), prf_func, version,
            next_payload=next_payload,
        )

    @staticmethod
    def _explain_truncated(reader: Reader) -> None:
        """A header cut short: refuse the first bad field before the cut, else truncation."""
        head = reader.data[reader.pos : reader.pos + _HDR_FIXED.size]
        if head and head[0] != MIKEY_VERSION:
            raise MikeyParseError(f"unsupported MIKEY version {head[0]}")
        if len(head) > 1:
            code_point(DataType, head[1], ErrorType.INVALID_DT, "data type")
        if len(head) > 2:
            next_payload_type(head[2])
        if len(head) > 3:
            code_point(PrfFunc, head[3] & 0x7F, ErrorType.INVALID_PRF, "PRF function")
        raise MikeyParseError(
            f"truncated HDR: needs {_HDR_FIXED.size} bytes at offset {reader.pos}, "
            f"{reader.remaining} left"
        )
