"""Common Header payload, HDR (RFC 3830 §6.1) and its SRTP-ID CS ID map (§6.1.1).

Also reads the "empty map" CS ID map type of RFC 4563 §4 (no map info, ``#CS`` = 0).
The GENERIC-ID map of RFC 6043 is not decoded (rejected as ``UNSPECIFIED``).
"""

from __future__ import annotations

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
from mobilityd.mikey.payloads._wire import Reader, WireCodec, code_point, with_next_payload

__all__ = ["CommonHeader", "SrtpCsEntry"]

_SRTP_ENTRY_LEN = 9  # Policy_no (1) + SSRC (4) + ROC (4), §6.1.1
_MAX_CS = 255  # #CS is 8 bits, §6.1


@dataclass(frozen=True, slots=True)
class SrtpCsEntry(WireCodec):
    """One crypto session of the SRTP-ID map (RFC 3830 §6.1.1); CS ID = position + 1."""

    policy_no: int
    ssrc: int
    roc: int

    def __bytes__(self) -> bytes:
        return bytes((self.policy_no,)) + self.ssrc.to_bytes(4, "big") + self.roc.to_bytes(4, "big")

    @classmethod
    def read(cls, reader: Reader) -> Self:
        raw = reader.take(_SRTP_ENTRY_LEN, "SRTP-ID CS map entry")
        return cls(raw[0], int.from_bytes(raw[1:5], "big"), int.from_bytes(raw[5:9], "big"))


@dataclass(frozen=True, slots=True)
class CommonHeader(WireCodec):
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

    def with_next(self, next_payload: PayloadType) -> CommonHeader:
        """This header with its Next payload field set (used by the message builder)."""
        return with_next_payload(self, next_payload)

    def __bytes__(self) -> bytes:
        if len(self.cs_map) > _MAX_CS:
            raise ValueError(f"{len(self.cs_map)} crypto sessions, at most {_MAX_CS} fit")
        if self.cs_id_map_type != CsIdMapType.SRTP_ID and self.cs_map:
            raise ValueError("only the SRTP-ID map carries crypto session entries")
        head = bytes(
            (
                self.version,
                self.data_type,
                self.next_payload,
                (0x80 if self.v_flag else 0) | self.prf_func,
            )
        )
        return (
            head
            + self.csb_id.to_bytes(4, "big")
            + bytes((len(self.cs_map), self.cs_id_map_type))
            + b"".join(bytes(entry) for entry in self.cs_map)
        )

    @classmethod
    def read(cls, reader: Reader) -> Self:
        version = reader.u8("HDR version")
        if version != MIKEY_VERSION:
            raise MikeyParseError(f"unsupported MIKEY version {version}")
        data_type = code_point(
            DataType, reader.u8("HDR data type"), ErrorType.INVALID_DT, "data type"
        )
        next_payload = code_point(
            PayloadType, reader.u8("HDR next payload"), ErrorType.UNSPECIFIED, "next payload type"
        )
        v_prf = reader.u8("HDR V/PRF")
        prf_func = code_point(PrfFunc, v_prf & 0x7F, ErrorType.INVALID_PRF, "PRF function")
        csb_id = reader.u32("HDR CSB ID")
        cs_count = reader.u8("HDR #CS")
        map_type = code_point(
            CsIdMapType, reader.u8("HDR CS ID map type"), ErrorType.UNSPECIFIED, "CS ID map type"
        )
        if map_type == CsIdMapType.SRTP_ID:
            cs_map = tuple(SrtpCsEntry.read(reader) for _ in range(cs_count))
        elif map_type == CsIdMapType.EMPTY:
            if cs_count:
                raise MikeyParseError(f"empty CS ID map with #CS = {cs_count}")
            cs_map = ()
        else:
            raise MikeyParseError(f"CS ID map type {map_type.name} is not supported")
        return cls(
            data_type=data_type,
            csb_id=csb_id,
            cs_map=cs_map,
            cs_id_map_type=map_type,
            v_flag=bool(v_prf & 0x80),
            prf_func=prf_func,
            version=version,
            next_payload=next_payload,
        )
