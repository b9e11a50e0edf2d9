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
    ChainedPayload,
    Reader,
    RepeatMemo,
    code_point,
    code_points,
    read_head,
    read_typed_block,
    typed_block,
)

__all__ = ["CertHash", "CertPayload", "IdPayload"]

_REPEATS = RepeatMemo()  # the IDs of one CSB recur in every message and update
_ID_TYPE = code_points(IdType, ErrorType.INVALID_ID, "ID type")
_CERT_TYPE = code_points(CertType, ErrorType.INVALID_CERT, "certificate type")


@dataclass(frozen=True, slots=True)
class IdPayload(ChainedPayload):
    """ID payload (RFC 3830 §6.7): an NAI or URI identity, e.g. ``sip:alice@example.com``."""

    id_type: IdType
    data: bytes
    next_payload: PayloadType = field(default=PayloadType.LAST, kw_only=True)

    payload_type = PayloadType.ID

    def __bytes__(self) -> bytes:
        return typed_block(self.next_payload, self.id_type, self.data, "ID data")

    @classmethod
    def read(cls, reader: Reader) -> Self:
        start, wire = reader.pos, reader.data
        if start + 4 <= len(wire):
            end = start + 4 + (wire[start + 2] << 8 | wire[start + 3])
            hit: Self | None = _REPEATS.hit(reader, end)
            if hit is not None:
                return hit
        next_payload, id_type, data = read_typed_block(reader, "ID", _ID_TYPE)
        return _REPEATS.keep(reader, start, cls(id_type, data, next_payload=next_payload))


@dataclass(frozen=True, slots=True)
class CertPayload(ChainedPayload):
    """CERT payload (RFC 3830 §6.7): one DER X.509v3 certificate (or a URL to one)."""

    cert_type: CertType
    data: bytes
    next_payload: PayloadType = field(default=PayloadType.LAST, kw_only=True)

    payload_type = PayloadType.CERT

    def __bytes__(self) -> bytes:
        return typed_block(self.next_payload, self.cert_type, self.data, "certificate data")

    @classmethod
    def read(cls, reader: Reader) -> Self:
        next_payload, cert_type, data = read_typed_block(reader, "CERT", _CERT_TYPE)
        return cls(cert_type, data, next_payload=next_payload)


@dataclass(frozen=True, slots=True)
class CertHash(ChainedPayload):
    """CHASH payload (RFC 3830 §6.8): hash of the certificate used; length from the function."""

    hash_func: HashFunc
    digest: bytes
    next_payload: PayloadType = field(default=PayloadType.LAST, kw_only=True)

    payload_type = PayloadType.CHASH

    def __bytes__(self) -> bytes:
        if len(self.digest) != HASH_LENGTHS[self.hash_func]:
            raise ValueError(
                f"{self.hash_func.name} digest must be {HASH_LENGTHS[self.hash_func]} bytes"
            )
        return bytes((self.next_payload, self.hash_func)) + self.digest

    @classmethod
    def read(cls, reader: Reader) -> Self:
        next_payload, raw_func = read_head(reader, "CHASH")
        hash_func = code_point(HashFunc, raw_func, ErrorType.INVALID_HA, "hash function")
        digest = reader.take(HASH_LENGTHS[hash_func], "CHASH hash")
        return cls(hash_func, digest, next_payload=next_payload)
