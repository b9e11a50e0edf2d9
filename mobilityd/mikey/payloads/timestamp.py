"""Timestamp payload T (RFC 3830 §6.6): NTP-UTC, NTP (64 bits) or COUNTER (32 bits)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Self

from mobilityd.mikey.constants import TS_VALUE_LENGTHS, ErrorType, PayloadType, TsType
from mobilityd.mikey.payloads._wire import (
    ChainedPayload,
    Reader,
    code_point,
    read_head,
)

__all__ = ["Timestamp"]


@dataclass(frozen=True, slots=True)
class Timestamp(ChainedPayload):
    """T payload (RFC 3830 §6.6); ``value`` is the TS value as an unsigned integer."""

    ts_type: TsType
    value: int
    next_payload: PayloadType = field(default=PayloadType.LAST, kw_only=True)

    payload_type = PayloadType.T

    @property
    def value_bytes(self) -> bytes:
        """The TS value field as on the wire (8 or 4 bytes)."""
        return self.value.to_bytes(TS_VALUE_LENGTHS[self.ts_type], "big")

    def __bytes__(self) -> bytes:
        return bytes((self.next_payload, self.ts_type)) + self.value_bytes

    @classmethod
    def read(cls, reader: Reader) -> Self:
        next_payload, raw_type = read_head(reader, "T")
        ts_type = code_point(TsType, raw_type, ErrorType.INVALID_TS, "timestamp type")
        value = reader.uint(TS_VALUE_LENGTHS[ts_type], "TS value")
        return cls(ts_type, value, next_payload=next_payload)
