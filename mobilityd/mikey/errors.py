"""Typed MIKEY errors carrying the RFC 3830 §6.12 error number to answer with.

Only :class:`MikeyError` (and its subclasses) ever escapes parsing or verification.
``error_type`` is the value to put in the ERR payload of the answer (RFC 3830 §5.1.2).
"""

from __future__ import annotations

from mobilityd.mikey.constants import ErrorType

__all__ = ["MikeyError", "MikeyParseError"]


class MikeyError(Exception):
    """A MIKEY message was rejected; ``error_type`` is the RFC 3830 §6.12 answer."""

    def __init__(self, message: str, error_type: ErrorType = ErrorType.UNSPECIFIED) -> None:
        super().__init__(message)
        self.error_type: ErrorType = ErrorType(error_type)
        self.message: str = message

    def __str__(self) -> str:
        return f"{self.message} (MIKEY error {self.error_type.value} {self.error_type.name})"

    def __reduce__(self) -> tuple[type[MikeyError], tuple[str, ErrorType]]:
        return (type(self), (self.message, self.error_type))


class MikeyParseError(MikeyError):
    """The bytes are not a well-formed MIKEY message (RFC 3830 §5.3, §6).

    Structural faults (truncation, bad lengths, unknown payload types, trailing
    bytes, limits exceeded) carry ``UNSPECIFIED`` (RFC 3830 defines no dedicated
    "invalid payload" code); an unknown code point whose table has its own error
    number carries that number (e.g. an unknown data type ``INVALID_DT``, an unknown
    DH group ``INVALID_DH``).
    """
