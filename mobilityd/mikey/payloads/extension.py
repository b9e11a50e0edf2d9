"""General Extension payload (RFC 3830 §6.15), including "SDP IDs" (RFC 4567 §7).

The extension type is kept as a plain integer when it is not one of
:class:`GeneralExtType` (vendor and private types must pass through unharmed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Self

from mobilityd.mikey.constants import GeneralExtType, PayloadType
from mobilityd.mikey.payloads._wire import (
    ChainedPayload,
    Reader,
    read_typed_block,
    typed_block,
)

__all__ = ["GeneralExtension"]


@dataclass(frozen=True, slots=True)
class GeneralExtension(ChainedPayload):
    """General Extension payload (RFC 3830 §6.15): type, 16-bit length, data."""

    ext_type: int
    data: bytes
    next_payload: PayloadType = field(default=PayloadType.LAST, kw_only=True)

    payload_type = PayloadType.GENERAL_EXT

    def __bytes__(self) -> bytes:
        return typed_block(self.next_payload, self.ext_type, self.data, "general extension data")

    @classmethod
    def read(cls, reader: Reader) -> Self:
        next_payload, ext_type, data = read_typed_block(reader, "general extension", _ext_type)
        return cls(ext_type, data, next_payload=next_payload)


def _ext_type(raw: int) -> int:
    """A known type as its code point; unknown types are kept as numbers (§6.15)."""
    return GeneralExtType(raw) if raw in GeneralExtType._value2member_map_ else raw
