"""General Extension payload (RFC 3830 §6.15), including "SDP IDs" (RFC 4567 §7).

The extension type is kept as a plain integer when it is not one of
:class:`GeneralExtType` (vendor and private types must pass through unharmed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Self

from mobilityd.mikey.constants import GeneralExtType, PayloadType
from mobilityd.mikey.payloads._wire import (
    Reader,
    WireCodec,
    check_length,
    read_next_payload,
    with_next_payload,
)

__all__ = ["GeneralExtension"]


@dataclass(frozen=True, slots=True)
class GeneralExtension(WireCodec):
    """General Extension payload (RFC 3830 §6.15): type, 16-bit length, data."""

    ext_type: int
    data: bytes
    next_payload: PayloadType = field(default=PayloadType.LAST, kw_only=True)

    payload_type = PayloadType.GENERAL_EXT

    def with_next(self, next_payload: PayloadType) -> GeneralExtension:
        return with_next_payload(self, next_payload)

    def __bytes__(self) -> bytes:
        check_length(self.data, 0xFFFF, "general extension data")
        return (
            bytes((self.next_payload, self.ext_type))
            + len(self.data).to_bytes(2, "big")
            + self.data
        )

    @classmethod
    def read(cls, reader: Reader) -> Self:
        next_payload = read_next_payload(reader, "general extension")
        raw_type = reader.u8("general extension type")
        ext_type: int = (
            GeneralExtType(raw_type) if raw_type in GeneralExtType._value2member_map_ else raw_type
        )
        data = reader.take(reader.u16("general extension length"), "general extension data")
        return cls(ext_type, data, next_payload=next_payload)
