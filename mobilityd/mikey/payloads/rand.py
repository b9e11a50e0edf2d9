"""RAND payload (RFC 3830 §6.11): the per-CSB random string (SHOULD be >= 16 bytes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Self

from mobilityd.mikey.constants import PayloadType
from mobilityd.mikey.payloads._wire import (
    ChainedPayload,
    Reader,
    check_length,
    read_head,
)

__all__ = ["Rand"]


@dataclass(frozen=True, slots=True)
class Rand(ChainedPayload):
    """RAND payload (RFC 3830 §6.11); length 0-255 bytes (8-bit length field)."""

    rand: bytes
    next_payload: PayloadType = field(default=PayloadType.LAST, kw_only=True)

    payload_type = PayloadType.RAND

    def __bytes__(self) -> bytes:
        check_length(self.rand, 0xFF, "RAND")
        return bytes((self.next_payload, len(self.rand))) + self.rand

    @classmethod
    def read(cls, reader: Reader) -> Self:
        next_payload, length = read_head(reader, "RAND")
        return cls(reader.take(length, "RAND"), next_payload=next_payload)
