"""Byte-level reading helpers shared by the payload codecs (RFC 3830 §6: network order).

Every failure raises :class:`MikeyParseError`, never ``IndexError`` or ``struct.error``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from enum import IntEnum
from typing import Any, Self, TypeVar

from mobilityd.mikey.constants import ErrorType, PayloadType
from mobilityd.mikey.errors import MikeyParseError

E = TypeVar("E", bound=IntEnum)
K = TypeVar("K")
T = TypeVar("T")


class Reader:
    """A cursor over received bytes; each read names what it reads for the error text."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos

    def at_end(self) -> bool:
        return self.pos >= len(self.data)

    def take(self, length: int, what: str) -> bytes:
        end = self.pos + length
        if end > len(self.data):
            raise MikeyParseError(
                f"truncated {what}: needs {length} bytes at offset {self.pos}, "
                f"{self.remaining} left"
            )
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def unpack(self, layout: struct.Struct, what: str) -> tuple[Any, ...]:
        """Read the fixed-size fields of ``layout`` in one step."""
        pos = self.pos
        end = pos + layout.size
        if end > len(self.data):
            raise MikeyParseError(
                f"truncated {what}: needs {layout.size} bytes at offset {pos}, "
                f"{self.remaining} left"
            )
        self.pos = end
        return layout.unpack_from(self.data, pos)

    def u8(self, what: str) -> int:
        if self.pos >= len(self.data):
            raise MikeyParseError(f"truncated {what}: needs 1 byte at offset {self.pos}")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def u16(self, what: str) -> int:
        value: int = self.unpack(_U16, what)[0]
        return value

    def u32(self, what: str) -> int:
        value: int = self.unpack(_U32, what)[0]
        return value

    def uint(self, length: int, what: str) -> int:
        return int.from_bytes(self.take(length, what), "big")


_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_NEXT_AND_BYTE = struct.Struct("!BB")
_TYPED_BLOCK_HEAD = struct.Struct("!BBH")
_PAYLOAD_TYPES: dict[int, PayloadType] = dict(PayloadType._value2member_map_)


class RepeatMemo:
    """Parsed payloads that recur byte for byte (HDR, ID, SP of one CSB), by their bytes.

    Payloads are frozen values, so equal bytes may share one parsed object; errors are
    never memoised. Bounded: when full it starts again (an attacker flooding it costs
    only speed).
    """

    __slots__ = ("limit", "values")

    def __init__(self, limit: int = 128) -> None:
        self.limit = limit
        self.values: dict[bytes, Any] = {}

    def hit(self, reader: Reader, end: int) -> Any:
        """The value parsed earlier from ``data[pos:end]`` (reader moved past it), or None."""
        data = reader.data
        if end > len(data):
            return None
        value = self.values.get(data[reader.pos : end])
        if value is not None:
            reader.pos = end
        return value

    def keep(self, reader: Reader, start: int, value: T) -> T:
        """Remember ``value``, parsed from ``data[start:reader.pos]``; returns it."""
        if len(self.values) >= self.limit:
            self.values.clear()
        self.values[reader.data[start : reader.pos]] = value
        return value


def code_point(enum_cls: type[E], value: int, error_type: ErrorType, what: str) -> E:
    """Map a received number to its code point, or reject it with ``error_type``."""
    member = enum_cls._value2member_map_.get(value)
    if member is None:
        raise MikeyParseError(f"unknown {what} {value}", error_type)
    return member  # type: ignore[return-value]  # _value2member_map_ holds enum_cls members


def check_length(value: bytes, limit: int, what: str) -> None:
    """Refuse to encode a field longer than its length field can say (local misuse)."""
    if len(value) > limit:
        raise ValueError(f"{what} is {len(value)} bytes, at most {limit} fit")


class WireCodec:
    """Mixin giving every codec ``parse(data)``: exactly one value, no trailing bytes."""

    __slots__ = ()

    @classmethod
    def read(cls, reader: Reader) -> Self:
        """Read one value at the reader's position (implemented by each codec)."""
        raise NotImplementedError

    @classmethod
    def parse(cls, data: bytes) -> Self:
        """Decode ``data``, which must hold exactly one encoded value."""
        reader = Reader(bytes(data))
        value = cls.read(reader)
        if not reader.at_end():
            raise MikeyParseError(f"{reader.remaining} trailing bytes after {cls.__name__}")
        return value


def read_next_payload(reader: Reader, what: str) -> PayloadType:
    """Read a Next payload field (RFC 3830 §6.1, Table 6.1.b)."""
    return next_payload_type(reader.u8(f"{what} next payload"))


def next_payload_type(value: int) -> PayloadType:
    """A received Next payload value as its code point (RFC 3830 Table 6.1.b)."""
    member = _PAYLOAD_TYPES.get(value)
    if member is None:
        raise MikeyParseError(f"unknown next payload type {value}", ErrorType.UNSPECIFIED)
    return member


def read_head(reader: Reader, what: str) -> tuple[PayloadType, int]:
    """The Next payload field and the one-byte field after it (a type, algorithm or length).

    Most payloads start this way (RFC 3830 §6.2, §6.6-§6.9, §6.11).
    """
    next_raw, second = reader.unpack(_NEXT_AND_BYTE, f"{what} header")
    return next_payload_type(next_raw), second


def code_points(enum_cls: type[E], error_type: ErrorType, what: str) -> Callable[[int], E]:
    """:func:`code_point` for one table, as a one-argument function."""
    members = enum_cls._value2member_map_

    def lookup(value: int) -> E:
        member = members.get(value)
        if member is None:
            raise MikeyParseError(f"unknown {what} {value}", error_type)
        return member  # type: ignore[return-value]  # members of enum_cls

    return lookup


def read_typed_block(
    reader: Reader, what: str, kind_of: Callable[[int], K]
) -> tuple[PayloadType, K, bytes]:
    """Next payload, a one-byte type, a 16-bit length and that many data bytes.

    The layout shared by ID and CERT (RFC 3830 §6.7), the start of KEMAC (§6.2) and the
    General Extension (§6.15). ``kind_of`` maps (or refuses) the type before the data is
    read.
    """
    next_raw, kind_raw, length = reader.unpack(_TYPED_BLOCK_HEAD, f"{what} header")
    next_payload = next_payload_type(next_raw)
    kind = kind_of(kind_raw)
    return next_payload, kind, reader.take(length, f"{what} data")


def typed_block(next_payload: int, kind: int, data: bytes, what: str) -> bytes:
    """Encode the layout read by :func:`read_typed_block`."""
    check_length(data, 0xFFFF, what)
    return _TYPED_BLOCK_HEAD.pack(next_payload, kind, len(data)) + data


class ChainedPayload(WireCodec):
    """Mixin for payloads with a Next payload field (RFC 3830 §6.1): ``with_next``."""

    __slots__ = ()

    def with_next(self, next_payload: PayloadType) -> Self:
        """This payload with its Next payload field set (used by the message builder)."""
        return with_next_payload(self, next_payload)


def with_next_payload(payload: T, next_payload: PayloadType) -> T:
    """``payload`` with its Next payload field set (a fast ``dataclasses.replace``).

    Payload classes are frozen slots dataclasses without ``__post_init__``, so copying
    the slots is the same as calling the constructor; an unchanged field returns
    ``payload`` itself.
    """
    if getattr(payload, "next_payload") == next_payload:  # noqa: B009 - generic T
        return payload
    copy = object.__new__(type(payload))
    for name in type(payload).__slots__:  # type: ignore[attr-defined]
        object.__setattr__(copy, name, getattr(payload, name))
    object.__setattr__(copy, "next_payload", next_payload)
    return copy
