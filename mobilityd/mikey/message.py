"""A whole MIKEY message: Common Header plus a chain of payloads (RFC 3830 §5.2, §5.3, §6).

Only what the RFC fixes is assumed about order: HDR comes first (§6.1), SIGN, which
has no Next payload field, comes last (§6.5), and every other payload names the type
of the one after it. Which payloads a given data type must carry is checked by the
key-agreement sessions, not here.

Limits (ours, the RFC sets none): :data:`MAX_MESSAGE_SIZE` bytes, :data:`MAX_PAYLOADS`
payloads after the header, :data:`~mobilityd.mikey.payloads.keydata.MAX_KEY_DATA_ENTRIES`
key data sub-payloads per KEMAC.

Error types chosen for malformed input (RFC 3830 §6.12 has no "invalid payload"
number): structural faults give ``UNSPECIFIED``; an unknown code point gives the
number of its table when there is one (data type ``INVALID_DT``, PRF ``INVALID_PRF``,
encryption ``INVALID_EA``, MAC ``INVALID_MAC``, DH group ``INVALID_DH``, hash
``INVALID_HA``, ID ``INVALID_ID``, certificate ``INVALID_CERT``, protocol
``INVALID_SP``, SRTP parameter ``INVALID_SPPAR``, timestamp ``INVALID_TS``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TypeVar, overload

from mobilityd.mikey.constants import ErrorType, PayloadType
from mobilityd.mikey.errors import MikeyError, MikeyParseError
from mobilityd.mikey.payloads import (
    PAYLOAD_CLASSES,
    CommonHeader,
    Kemac,
    Payload,
    SecurityPolicy,
    Signature,
    Verification,
)
from mobilityd.mikey.payloads._wire import Reader

__all__ = ["MAX_MESSAGE_SIZE", "MAX_PAYLOADS", "MikeyMessage", "encode_message"]

MAX_MESSAGE_SIZE = 64 * 1024
"""Largest message accepted or built, in bytes."""

MAX_PAYLOADS = 64
"""Most payloads accepted after the Common Header."""

P = TypeVar("P", bound=Payload)

_LAST = PayloadType.LAST

_SP_ENCODED: dict[int, tuple[SecurityPolicy, bytes]] = {}
_SP_ENCODED_MAX = 64


def _encoded_policy(payload: SecurityPolicy) -> bytes:
    """``bytes(payload)`` of an SP payload (long, usually a shared constant), memoised.

    Keyed by object identity; the entry keeps the object alive, so an identity is never
    reused while cached, and payloads are frozen, so their encoding cannot change.
    """
    hit = _SP_ENCODED.get(id(payload))
    if hit is not None and hit[0] is payload:
        return hit[1]
    encoded = bytes(payload)
    if len(_SP_ENCODED) >= _SP_ENCODED_MAX:
        _SP_ENCODED.clear()
    _SP_ENCODED[id(payload)] = (payload, encoded)
    return encoded


def encode_message(header: CommonHeader, payloads: Sequence[Payload]) -> bytes:
    """The encoding of a message, every Next payload field set (RFC 3830 §5.2, §6.1).

    The one message builder: each payload's own ``__bytes__``, with its first byte (the
    Next payload field of every payload but SIGN, §6.1) and HDR's third byte written
    from the payload that follows. SIGN, which has no Next payload field, must be last
    (§6.5). ``bytes(MikeyMessage.build(header, payloads))`` is this value.
    """
    count = len(payloads)
    out = bytearray(bytes(header))
    out[2] = payloads[0].payload_type if count else _LAST
    last = count - 1
    for index, payload in enumerate(payloads):
        encoded = (
            _encoded_policy(payload) if type(payload) is SecurityPolicy else bytes(payload)
        )
        if type(payload) is Signature:
            if index != last:
                raise ValueError("the SIGN payload must be the last payload (RFC 3830 §6.5)")
            out += encoded
            continue
        out.append(payloads[index + 1].payload_type if index < last else _LAST)
        out += memoryview(encoded)[1:]
    if len(out) > MAX_MESSAGE_SIZE:
        raise ValueError(f"message of {len(out)} bytes exceeds {MAX_MESSAGE_SIZE}")
    return bytes(out)


@dataclass(frozen=True)
class MikeyMessage:
    """A MIKEY message: ``header`` and ``payloads`` in wire order.

    ``MikeyMessage.parse(bytes(msg)) == msg`` and ``bytes(MikeyMessage.parse(b)) == b``
    for every message the codec accepts. Build new messages with :meth:`build`,
    which fills in every Next payload field.
    """

    header: CommonHeader
    payloads: tuple[Payload, ...] = ()

    def __post_init__(self) -> None:
        types = [p.payload_type for p in self.payloads]
        chain = [self.header.next_payload, *(p.next_payload for p in self.payloads)]
        if chain != [*types, PayloadType.LAST]:
            raise ValueError("Next payload fields do not match the payloads; use build()")

    @classmethod
    def build(cls, header: CommonHeader, payloads: Iterable[Payload]) -> MikeyMessage:
        """Assemble a message, setting every Next payload field (RFC 3830 §5.2)."""
        items = list(payloads)
        wire = encode_message(header, items)
        following = [p.payload_type for p in items[1:]] + [PayloadType.LAST]
        chained = tuple(p.with_next(nxt) for p, nxt in zip(items, following, strict=False))
        first = items[0].payload_type if items else PayloadType.LAST
        message = cls(header.with_next(first), chained)
        message.__dict__["wire"] = wire
        return message

    @classmethod
    def parse(cls, data: bytes) -> MikeyMessage:
        """Decode one MIKEY message (RFC 3830 §5.3); raises :class:`MikeyError` only."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise MikeyParseError(f"expected bytes, got {type(data).__name__}")
        data = bytes(data)
        if len(data) > MAX_MESSAGE_SIZE:
            raise MikeyParseError(f"message of {len(data)} bytes exceeds {MAX_MESSAGE_SIZE}")
        reader = Reader(data)
        header = CommonHeader.read(reader)
        payloads: list[Payload] = []
        next_type = header.next_payload
        while next_type != PayloadType.LAST:
            if len(payloads) >= MAX_PAYLOADS:
                raise MikeyParseError(f"more than {MAX_PAYLOADS} payloads")
            payload_class = PAYLOAD_CLASSES.get(next_type)
            if payload_class is None:
                raise MikeyParseError(f"payload type {next_type.name} not allowed here")
            payload = payload_class.read(reader)
            payloads.append(payload)
            next_type = payload.next_payload
        if not reader.at_end():
            raise MikeyParseError(f"{reader.remaining} trailing bytes after the last payload")
        # The chain is consistent by construction (each type came from the field before
        # it), so __post_init__'s check is skipped; the encoding is the input.
        message = object.__new__(cls)
        message.__dict__.update(header=header, payloads=tuple(payloads), wire=data)
        return message

    @cached_property
    def wire(self) -> bytes:
        """The encoded message (computed once)."""
        return bytes(self.header) + b"".join(bytes(p) for p in self.payloads)

    def __bytes__(self) -> bytes:
        return self.wire

    @overload
    def find(self, kind: PayloadType) -> Payload | None: ...
    @overload
    def find(self, kind: type[P]) -> P | None: ...
    def find(self, kind: PayloadType | type[P]) -> Payload | None:
        """The first payload of a type (``PayloadType.RAND`` or the class ``Rand``)."""
        for payload in self.find_all(kind):
            return payload
        return None

    @overload
    def find_all(self, kind: PayloadType) -> list[Payload]: ...
    @overload
    def find_all(self, kind: type[P]) -> list[P]: ...
    def find_all(self, kind: PayloadType | type[P]) -> list[Payload] | list[P]:
        """All payloads of a type, in wire order."""
        if isinstance(kind, PayloadType):
            return [p for p in self.payloads if p.payload_type == kind]
        matches: list[P] = [p for p in self.payloads if isinstance(p, kind)]
        return matches

    def require(self, kind: type[P]) -> P:
        """The first payload of a class, or :class:`MikeyError` (UNSPECIFIED) if missing."""
        payload = self.find(kind)
        if payload is None:
            raise MikeyParseError(f"missing {kind.payload_type.name} payload")
        return payload

    @property
    def auth_field(self) -> bytes:
        """The MAC, verification MAC or signature closing the message (RFC 3830 §5.2)."""
        last = self.payloads[-1] if self.payloads else None
        if isinstance(last, Kemac):
            return last.mac
        if isinstance(last, Verification):
            return last.ver_data
        if isinstance(last, Signature):
            return last.signature
        raise MikeyError("message does not end with KEMAC, V or SIGN", ErrorType.AUTH_FAILURE)

    def authenticated_bytes(self) -> bytes:
        """The bytes a MAC or signature covers (RFC 3830 §5.2, §6.2, §6.5, §6.9).

        The entire message except the MAC / Ver data / Signature field of the last
        payload; for SIGN that includes its S type and Signature len. (The verification
        message appends Identity_i || Identity_r || T itself; the public-key KEMAC MAC
        covers only the KEMAC: see :meth:`Kemac.pke_mac_input`.)
        """
        field_len = len(self.auth_field)
        return self.wire[: len(self.wire) - field_len]

    def with_auth_field(self, value: bytes) -> MikeyMessage:
        """This message with the closing MAC / Ver data / Signature replaced by ``value``.

        For SIGN the length may change (it is part of the covered bytes, so sign with
        a placeholder of the final length).
        """
        *rest, last = self.payloads
        replaced: Payload
        if isinstance(last, Kemac | Verification):
            replaced = last.with_mac(value)
        elif isinstance(last, Signature):
            replaced = last.with_signature(value)
        else:
            raise ValueError("message does not end with KEMAC, V or SIGN")
        return MikeyMessage(self.header, (*rest, replaced))
