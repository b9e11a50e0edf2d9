"""Byte-level reading helpers shared by the payload codecs (RFC 3830 §6: network order).

Every failure raises :class:`MikeyParseError`, never ``IndexError`` or ``struct.error``.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Self, TypeVar

from mobilityd.mikey.constants import ErrorType, PayloadType
from mobilityd.mikey.errors import MikeyParseError

E = TypeVar("E", bound=IntEnum)


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

    def u8(self, what: str) -> int:
        if self.pos >= len(self.data):
            raise MikeyParseError(f"truncated {what}: needs 1 byte at offset {self.pos}")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def u16(self, what: str) -> int:
        return int.from_bytes(self.take(2, what), "big")

    def u32(self, what: str) -> int:
        return int.from_bytes(self.take(4, what), "big")

    def uint(self, length: int, what: str) -> int:
        return int.from_bytes(self.take(length, what), "big")


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
    return code_point(
        PayloadType, reader.u8(f"{what} next payload"), ErrorType.UNSPECIFIED, "next payload type"
    )


T = TypeVar("T")


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
