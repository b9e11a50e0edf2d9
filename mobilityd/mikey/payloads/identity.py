"""ID and CERT payloads (RFC 3830 §6.7) and the Cert hash payload CHASH (§6.8)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Self

from mobilityd.mikey.constants import (
    HASH_LENGTHS,
    CertType,
    ErrorType,
    HashFunc,
    IdType,
    PayloadType,
)
from mobilityd.mikey.payloads._wire import (
    Reader,
    WireCodec,
    check_length,
    code_point,
    read_next_payload,
    with_next_payload,
)

__all__ = ["CertHash", "CertPayload", "IdPayload"]


@dataclass(frozen=True, slots=True)
class IdPayload(WireCodec):
    """ID payload (RFC 3830 §6.7): an NAI or URI identity, e.g. ``sip:alice@example.com``."""

    id_type: IdType
    data: bytes
    next_payload: PayloadType = field(default=PayloadType.LAST, kw_only=True)

    payload_type = PayloadType.ID

    def with_next(self, next_payload: PayloadType) -> IdPayload:
        return with_next_payload(self, next_payload)

    def __bytes__(self) -> bytes:
        check_length(self.data, 0xFFFF, "ID data")
        return (
            bytes((self.next_payload, self.id_type)) + len(self.data).to_bytes(2, "big") + self.data
        )

    @classmethod
    def read(cls, reader: Reader) -> Self:
        next_payload = read_next_payload(reader, "ID")
        id_type = code_point(IdType, reader.u8("ID type"), ErrorType.INVALID_ID, "ID type")
        data = reader.take(reader.u16("ID length"), "ID data")
        return cls(id_type, data, next_payload=next_payload)


@dataclass(frozen=True, slots=True)
class CertPayload(WireCodec):
    """CERT payload (RFC 3830 §6.7): one DER X.509v3 certificate (or a URL to one)."""

    cert_type: CertType
    data: bytes
    next_payload: PayloadType = field(default=PayloadType.LAST, kw_only=True)

    payload_type = PayloadType.CERT

    def with_next(self, next_payload: PayloadType) -> CertPayload:
        return with_next_payload(self, next_payload)

    def __bytes__(self) -> bytes:
        check_length(self.data, 0xFFFF, "certificate data")
        return (
            bytes((self.next_payload, self.cert_type))
            + len(self.data).to_bytes(2, "big")
            + self.data
        )

    @classmethod
    def read(cls, reader: Reader) -> Self:
        next_payload = read_next_payload(reader, "CERT")
        cert_type = code_point(
            CertType, reader.u8("Cert type"), ErrorType.INVALID_CERT, "certificate type"
        )
        data = reader.take(reader.u16("Cert length"), "certificate data")
        return cls(cert_type, data, next_payload=next_payload)


@dataclass(frozen=True, slots=True)
class CertHash(WireCodec):
    """CHASH payload (RFC 3830 §6.8): hash of the certificate used; length from the function."""

    hash_func: HashFunc
    digest: bytes
    next_payload: PayloadType = field(default=PayloadType.LAST, kw_only=True)

    payload_type = PayloadType.CHASH

    def with_next(self, next_payload: PayloadType) -> CertHash:
        return with_next_payload(self, next_payload)

    def __bytes__(self) -> bytes:
        if len(self.digest) != HASH_LENGTHS[self.hash_func]:
            raise ValueError(
                f"{self.hash_func.name} digest must be {HASH_LENGTHS[self.hash_func]} bytes"
            )
        return bytes((self.next_payload, self.hash_func)) + self.digest

    @classmethod
    def read(cls, reader: Reader) -> Self:
        next_payload = read_next_payload(reader, "CHASH")
        hash_func = code_point(
            HashFunc, reader.u8("CHASH hash func"), ErrorType.INVALID_HA, "hash function"
        )
        digest = reader.take(HASH_LENGTHS[hash_func], "CHASH hash")
        return cls(hash_func, digest, next_payload=next_payload)
