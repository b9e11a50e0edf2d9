"""Key data transport payload KEMAC (RFC 3830 §6.2) and envelope data payload PKE (§6.3)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Self

from mobilityd.mikey.constants import (
    MAC_LENGTHS,
    CacheType,
    EncrAlg,
    ErrorType,
    MacAlg,
    PayloadType,
)
from mobilityd.mikey.payloads._wire import (
    ChainedPayload,
    Reader,
    check_length,
    code_point,
    code_points,
    read_next_payload,
    read_typed_block,
    typed_block,
)

__all__ = ["Kemac", "Pke"]

_ENCR_ALG = code_points(EncrAlg, ErrorType.INVALID_EA, "encryption algorithm")
_MAC_ALG = code_points(MacAlg, ErrorType.INVALID_MAC, "MAC algorithm")


@dataclass(frozen=True, slots=True)
class Kemac(ChainedPayload):
    """KEMAC (RFC 3830 §6.2): encrypted key data sub-payloads and the MAC.

    ``encr_data`` is the ciphertext as carried on the wire (its plaintext is a chain of
    key data sub-payloads, see :func:`parse_key_data_chain`); it is empty in an update
    message without new keys (§4.5). ``mac`` has the length fixed by ``mac_alg``.
    """

    encr_alg: EncrAlg
    encr_data: bytes
    mac_alg: MacAlg
    mac: bytes
    next_payload: PayloadType = field(default=PayloadType.LAST, kw_only=True)

    payload_type = PayloadType.KEMAC

    def with_mac(self, mac: bytes) -> Kemac:
        """This payload with the MAC field replaced (same length)."""
        return replace(self, mac=mac)

    def pke_mac_input(self) -> bytes:
        """Bytes the MAC covers in the public-key method (RFC 3830 §5.2, §6.2).

        The KEMAC payload alone, Next payload set to zero, without the MAC field.
        """
        encoded = bytes(self.with_next(PayloadType.LAST))
        return encoded[: len(encoded) - len(self.mac)]

    def __bytes__(self) -> bytes:
        if len(self.mac) != MAC_LENGTHS[self.mac_alg]:
            raise ValueError(f"{self.mac_alg.name} MAC must be {MAC_LENGTHS[self.mac_alg]} bytes")
        encr = typed_block(self.next_payload, self.encr_alg, self.encr_data, "KEMAC Encr data")
        return encr + bytes((self.mac_alg,)) + self.mac

    @classmethod
    def read(cls, reader: Reader) -> Self:
        next_payload, encr_alg, encr_data = read_typed_block(reader, "KEMAC encr", _ENCR_ALG)
        mac_alg = _MAC_ALG(reader.u8("KEMAC MAC alg"))
        mac = reader.take(MAC_LENGTHS[mac_alg], "KEMAC MAC")
        return cls(encr_alg, encr_data, mac_alg, mac, next_payload=next_payload)


@dataclass(frozen=True, slots=True)
class Pke(ChainedPayload):
    """PKE envelope data (RFC 3830 §6.3): the envelope key encrypted to the responder."""

    cache: CacheType
    data: bytes
    next_payload: PayloadType = field(default=PayloadType.LAST, kw_only=True)

    payload_type = PayloadType.PKE

    def __bytes__(self) -> bytes:
        check_length(self.data, 0x3FFF, "PKE data")
        return (
            bytes((self.next_payload,))
            + ((self.cache << 14) | len(self.data)).to_bytes(2, "big")
            + self.data
        )

    @classmethod
    def read(cls, reader: Reader) -> Self:
        next_payload = read_next_payload(reader, "PKE")
        c_len = reader.u16("PKE C/data length")
        cache = code_point(CacheType, c_len >> 14, ErrorType.UNSPECIFIED, "envelope cache type")
        data = reader.take(c_len & 0x3FFF, "PKE data")
        return cls(cache, data, next_payload=next_payload)
