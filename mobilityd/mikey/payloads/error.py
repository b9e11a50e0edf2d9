"""Error payload ERR (RFC 3830 §6.12)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Self

from mobilityd.mikey.constants import ErrorType, PayloadType
from mobilityd.mikey.payloads._wire import (
    ChainedPayload,
    Reader,
    code_point,
    read_head,
)

__all__ = ["ErrorPayload"]


@dataclass(frozen=True, slots=True)
class ErrorPayload(ChainedPayload):
    """ERR payload (RFC 3830 §6.12). ``reserved`` is kept so parse/encode are inverses."""

    error_no: ErrorType
    reserved: int = 0
    next_payload: PayloadType = field(default=PayloadType.LAST, kw_only=True)

    payload_type = PayloadType.ERR

    def __bytes__(self) -> bytes:
        return bytes((self.next_payload, self.error_no)) + self.reserved.to_bytes(2, "big")

    @classmethod
    def read(cls, reader: Reader) -> Self:
        next_payload, raw_error = read_head(reader, "ERR")
        error_no = code_point(ErrorType, raw_error, ErrorType.UNSPECIFIED, "error number")
        return cls(error_no, reader.u16("ERR reserved"), next_payload=next_payload)
