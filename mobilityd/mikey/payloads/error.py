"""Error payload ERR (RFC 3830 §6.12)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Self

from mobilityd.mikey.constants import ErrorType, PayloadType
from mobilityd.mikey.payloads._wire import (
    Reader,
    WireCodec,
    code_point,
    read_next_payload,
    with_next_payload,
)

__all__ = ["ErrorPayload"]


@dataclass(frozen=True, slots=True)
class ErrorPayload(WireCodec):
    """ERR payload (RFC 3830 §6.12). ``reserved`` is kept so parse/encode are inverses."""

    error_no: ErrorType
    reserved: int = 0
    next_payload: PayloadType = field(default=PayloadType.LAST, kw_only=True)

    payload_type = PayloadType.ERR

    def with_next(self, next_payload: PayloadType) -> ErrorPayload:
        return with_next_payload(self, next_payload)

    def __bytes__(self) -> bytes:
        return bytes((self.next_payload, self.error_no)) + self.reserved.to_bytes(2, "big")

    @classmethod
    def read(cls, reader: Reader) -> Self:
        next_payload = read_next_payload(reader, "ERR")
        error_no = code_point(
            ErrorType, reader.u8("ERR error no"), ErrorType.UNSPECIFIED, "error number"
        )
        return cls(error_no, reader.u16("ERR reserved"), next_payload=next_payload)
