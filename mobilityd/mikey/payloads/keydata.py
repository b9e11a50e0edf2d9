"""Key data sub-payload (RFC 3830 §6.13) and key validity data (§6.14).

Key data sub-payloads never travel in clear: they are the plaintext of the KEMAC
Encr data field (§6.2). In the public-key method that plaintext starts with the
Initiator's ID payload, followed by the key data sub-payloads (§6.2, §3.2).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Self

from mobilityd.mikey.constants import (
    KEY_TYPES_WITH_SALT,
    ErrorType,
    KeyDataType,
    KvType,
    PayloadType,
)
from mobilityd.mikey.errors import MikeyParseError
from mobilityd.mikey.payloads._wire import (
    ChainedPayload,
    Reader,
    check_length,
    code_point,
    read_head,
)
from mobilityd.mikey.payloads.identity import IdPayload

__all__ = [
    "MAX_KEY_DATA_ENTRIES",
    "KeyData",
    "KeyInterval",
    "KeySpi",
    "KeyValidity",
    "encode_key_data_chain",
    "kv_type_of",
    "parse_key_data_chain",
    "read_key_validity",
]

MAX_KEY_DATA_ENTRIES = 16
"""Hard limit on sub-payloads in one KEMAC plaintext (ours; the RFC sets none)."""


@dataclass(frozen=True, slots=True)
class KeySpi:
    """Key validity of type SPI/MKI (RFC 3830 §6.14)."""

    spi: bytes

    def __bytes__(self) -> bytes:
        check_length(self.spi, 0xFF, "SPI")
        return bytes((len(self.spi),)) + self.spi


@dataclass(frozen=True, slots=True)
class KeyInterval:
    """Key validity of type interval (RFC 3830 §6.14): Valid From / Valid To."""

    valid_from: bytes
    valid_to: bytes

    def __bytes__(self) -> bytes:
        check_length(self.valid_from, 0xFF, "Valid From")
        check_length(self.valid_to, 0xFF, "Valid To")
        return (
            bytes((len(self.valid_from),))
            + self.valid_from
            + bytes((len(self.valid_to),))
            + self.valid_to
        )


KeyValidity = KeySpi | KeyInterval | None
"""Key validity data; ``None`` is KV type NULL (no KV data on the wire)."""


def kv_type_of(kv: KeyValidity) -> KvType:
    """The KV type code (RFC 3830 §6.13, Table 6.13.b) of a key validity value."""
    if kv is None:
        return KvType.NULL
    return KvType.SPI if isinstance(kv, KeySpi) else KvType.INTERVAL


def read_key_validity(reader: Reader, kv_type: KvType) -> KeyValidity:
    """Read the KV data announced by ``kv_type`` (RFC 3830 §6.14)."""
    if kv_type == KvType.SPI:
        return KeySpi(reader.take(reader.u8("SPI length"), "SPI"))
    if kv_type == KvType.INTERVAL:
        valid_from = reader.take(reader.u8("VF length"), "Valid From")
        valid_to = reader.take(reader.u8("VT length"), "Valid To")
        return KeyInterval(valid_from, valid_to)
    return None


@dataclass(frozen=True, slots=True)
class KeyData(ChainedPayload):
    """Key data sub-payload (RFC 3830 §6.13): a TGK or TEK, optional salt, validity.

    ``salt`` is present exactly for the "+SALT" key types (Table 6.13.a).
    """

    key_type: KeyDataType
    key: bytes
    salt: bytes | None = None
    kv: KeyValidity = None
    next_payload: PayloadType = field(default=PayloadType.LAST, kw_only=True)

    payload_type = PayloadType.KEY_DATA

    def __bytes__(self) -> bytes:
        check_length(self.key, 0xFFFF, "key data")
        has_salt = self.key_type in KEY_TYPES_WITH_SALT
        if has_salt != (self.salt is not None):
            raise ValueError(f"key type {self.key_type.name} and salt presence disagree")
        out = bytes((self.next_payload, (self.key_type << 4) | kv_type_of(self.kv)))
        out += len(self.key).to_bytes(2, "big") + self.key
        if self.salt is not None:
            check_length(self.salt, 0xFFFF, "salt")
            out += len(self.salt).to_bytes(2, "big") + self.salt
        if self.kv is not None:
            out += bytes(self.kv)
        return out

    @classmethod
    def read(cls, reader: Reader) -> Self:
        next_payload, type_kv = read_head(reader, "key data")
        key_type = code_point(KeyDataType, type_kv >> 4, ErrorType.UNSPECIFIED, "key data type")
        kv_type = code_point(KvType, type_kv & 0x0F, ErrorType.UNSPECIFIED, "key validity type")
        key = reader.take(reader.u16("key data length"), "key data")
        salt = None
        if key_type in KEY_TYPES_WITH_SALT:
            salt = reader.take(reader.u16("salt length"), "salt data")
        kv = read_key_validity(reader, kv_type)
        return cls(key_type, key, salt, kv, next_payload=next_payload)


KeyChainItem = IdPayload | KeyData


def encode_key_data_chain(items: Sequence[KeyChainItem]) -> bytes:
    """Encode the KEMAC plaintext (RFC 3830 §6.2): items chained by Next payload.

    The Next payload fields are filled in; the last one is Last payload (0).
    """
    out = bytearray()
    for index, item in enumerate(items):
        following = items[index + 1].payload_type if index + 1 < len(items) else PayloadType.LAST
        out += bytes(item.with_next(following))
    return bytes(out)


def parse_key_data_chain(
    plaintext: bytes,
    *,
    first: PayloadType = PayloadType.KEY_DATA,
    allow_zero_padding: bool = False,
) -> tuple[KeyChainItem, ...]:
    """Decode a decrypted KEMAC Encr data field (RFC 3830 §6.2, §6.13).

    ``first`` is the type of the first sub-payload: KEY_DATA for the pre-shared key
    and DH methods, ID for the public-key method. Only ID and Key data sub-payloads
    may appear. An empty plaintext (update message, §4.5) gives an empty tuple.
    ``allow_zero_padding`` accepts zero bytes after the chain (AES-KW block padding).
    """
    reader = Reader(bytes(plaintext))
    items: list[KeyChainItem] = []
    next_type = first if plaintext else PayloadType.LAST
    while next_type != PayloadType.LAST:
        if len(items) >= MAX_KEY_DATA_ENTRIES:
            raise MikeyParseError(f"more than {MAX_KEY_DATA_ENTRIES} key data sub-payloads")
        item: KeyChainItem
        if next_type == PayloadType.KEY_DATA:
            item = KeyData.read(reader)
        elif next_type == PayloadType.ID:
            item = IdPayload.read(reader)
        else:
            raise MikeyParseError(f"{next_type.name} payload inside KEMAC key data")
        items.append(item)
        next_type = item.next_payload
    rest = reader.data[reader.pos :]
    if rest and not (allow_zero_padding and not any(rest)):
        raise MikeyParseError(f"{len(rest)} trailing bytes after key data sub-payloads")
    return tuple(items)
