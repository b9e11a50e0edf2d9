"""DH data payload (RFC 3830 §6.4): group, public value, optional key validity."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Self

from mobilityd.mikey.constants import DH_VALUE_LENGTHS, DhGroup, ErrorType, KvType, PayloadType
from mobilityd.mikey.errors import MikeyParseError
from mobilityd.mikey.payloads._wire import (
    ChainedPayload,
    Reader,
    code_point,
    read_head,
)
from mobilityd.mikey.payloads.keydata import KeyValidity, kv_type_of, read_key_validity

__all__ = ["DhPayload"]


@dataclass(frozen=True, slots=True)
class DhPayload(ChainedPayload):
    """DH payload (RFC 3830 §6.4). ``value`` has the length implied by ``group``.

    The 4 reserved bits before KV must be zero: a message with them set is rejected,
    so that parse and encode stay exact inverses.
    """

    group: DhGroup
    value: bytes
    kv: KeyValidity = None
    next_payload: PayloadType = field(default=PayloadType.LAST, kw_only=True)

    payload_type = PayloadType.DH

    def __bytes__(self) -> bytes:
        expected = DH_VALUE_LENGTHS[self.group]
        if len(self.value) != expected:
            raise ValueError(f"{self.group.name} DH value must be {expected} bytes")
        out = bytes((self.next_payload, self.group)) + self.value + bytes((kv_type_of(self.kv),))
        return out + (bytes(self.kv) if self.kv is not None else b"")

    @classmethod
    def read(cls, reader: Reader) -> Self:
        next_payload, raw_group = read_head(reader, "DH")
        group = code_point(DhGroup, raw_group, ErrorType.INVALID_DH, "DH group")
        value = reader.take(DH_VALUE_LENGTHS[group], "DH value")
        reserved_kv = reader.u8("DH reserved/KV")
        if reserved_kv >> 4:
            raise MikeyParseError("DH payload reserved bits are not zero")
        kv_type = code_point(KvType, reserved_kv & 0x0F, ErrorType.UNSPECIFIED, "key validity type")
        return cls(group, value, read_key_validity(reader, kv_type), next_payload=next_payload)
