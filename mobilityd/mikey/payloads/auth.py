"""Payloads that close a message: SIGN (RFC 3830 §6.5) and the Ver msg payload V (§6.9)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Self

from mobilityd.mikey.constants import MAC_LENGTHS, ErrorType, MacAlg, PayloadType, SignatureType
from mobilityd.mikey.payloads._wire import (
    ChainedPayload,
    Reader,
    WireCodec,
    check_length,
    code_point,
    read_head,
)

__all__ = ["Signature", "Verification"]


@dataclass(frozen=True, slots=True)
class Signature(WireCodec):
    """SIGN payload (RFC 3830 §6.5): always last, it has no Next payload field.

    The signature covers the whole message except the Signature field itself (§5.2),
    i.e. including the S type / Signature len bytes.
    """

    sig_type: SignatureType
    signature: bytes

    payload_type = PayloadType.SIGN
    next_payload = PayloadType.LAST

    def with_next(self, next_payload: PayloadType) -> Signature:
        if next_payload != PayloadType.LAST:
            raise ValueError("the SIGN payload must be the last payload (RFC 3830 §6.5)")
        return self

    def with_signature(self, signature: bytes) -> Signature:
        return replace(self, signature=signature)

    def __bytes__(self) -> bytes:
        check_length(self.signature, 0x0FFF, "signature")
        return ((self.sig_type << 12) | len(self.signature)).to_bytes(2, "big") + self.signature

    @classmethod
    def read(cls, reader: Reader) -> Self:
        type_len = reader.u16("SIGN type/length")
        sig_type = code_point(
            SignatureType, type_len >> 12, ErrorType.UNSPECIFIED, "signature type"
        )
        return cls(sig_type, reader.take(type_len & 0x0FFF, "signature"))


@dataclass(frozen=True, slots=True)
class Verification(ChainedPayload):
    """V payload (RFC 3830 §6.9): the verification MAC; length fixed by ``auth_alg``."""

    auth_alg: MacAlg
    ver_data: bytes
    next_payload: PayloadType = field(default=PayloadType.LAST, kw_only=True)

    payload_type = PayloadType.V

    def with_mac(self, ver_data: bytes) -> Verification:
        return replace(self, ver_data=ver_data)

    def __bytes__(self) -> bytes:
        if len(self.ver_data) != MAC_LENGTHS[self.auth_alg]:
            raise ValueError(f"{self.auth_alg.name} MAC must be {MAC_LENGTHS[self.auth_alg]} bytes")
        return bytes((self.next_payload, self.auth_alg)) + self.ver_data

    @classmethod
    def read(cls, reader: Reader) -> Self:
        next_payload, raw_alg = read_head(reader, "V")
        auth_alg = code_point(MacAlg, raw_alg, ErrorType.INVALID_MAC, "MAC algorithm")
        return cls(
            auth_alg, reader.take(MAC_LENGTHS[auth_alg], "V ver data"), next_payload=next_payload
        )
