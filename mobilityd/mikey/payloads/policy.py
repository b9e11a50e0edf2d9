"""Security Policy payload SP (RFC 3830 §6.10) with the SRTP parameter set (§6.10.1)."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum
from functools import lru_cache
from typing import Self

from mobilityd.mikey.constants import (
    ErrorType,
    FecOrder,
    OnOff,
    PayloadType,
    ProtType,
    SrtpAuthAlg,
    SrtpEncrAlg,
    SrtpParam,
    SrtpPrf,
)
from mobilityd.mikey.errors import MikeyParseError
from mobilityd.mikey.payloads._wire import (
    ChainedPayload,
    Reader,
    RepeatMemo,
    check_length,
    code_point,
    next_payload_type,
)

__all__ = ["SRTP_DEFAULTS", "PolicyParam", "SecurityPolicy"]

_REPEATS = RepeatMemo(64)  # SP payloads usually recur byte for byte
_SP_HEAD = struct.Struct("!BBBH")  # Next payload, Policy no, Prot type, length (§6.10)

_ENUMERATED_VALUES: dict[SrtpParam, type[IntEnum]] = {
    SrtpParam.ENCR_ALG: SrtpEncrAlg,
    SrtpParam.AUTH_ALG: SrtpAuthAlg,
    SrtpParam.SRTP_PRF: SrtpPrf,
    SrtpParam.SRTP_ENCRYPTION: OnOff,
    SrtpParam.SRTCP_ENCRYPTION: OnOff,
    SrtpParam.FEC_ORDER: FecOrder,
    SrtpParam.SRTP_AUTHENTICATION: OnOff,
}
"""Parameters whose one-byte value is a code point (RFC 3830 Tables 6.10.1.b-e)."""

SRTP_DEFAULTS: tuple[tuple[SrtpParam, int], ...] = (
    (SrtpParam.ENCR_ALG, SrtpEncrAlg.AES_CM),
    (SrtpParam.SESSION_ENCR_KEY_LEN, 16),
    (SrtpParam.AUTH_ALG, SrtpAuthAlg.HMAC_SHA1),
    (SrtpParam.SESSION_AUTH_KEY_LEN, 20),
    (SrtpParam.SESSION_SALT_KEY_LEN, 14),
    (SrtpParam.SRTP_PRF, SrtpPrf.AES_CM),
    (SrtpParam.KEY_DERIVATION_RATE, 0),
    (SrtpParam.SRTP_ENCRYPTION, OnOff.ON),
    (SrtpParam.SRTCP_ENCRYPTION, OnOff.ON),
    (SrtpParam.FEC_ORDER, FecOrder.FEC_SRTP),
    (SrtpParam.SRTP_AUTHENTICATION, OnOff.ON),
    (SrtpParam.AUTH_TAG_LEN, 10),
    (SrtpParam.SRTP_PREFIX_LEN, 0),
)
"""The SRTP default transform of RFC 3711 §5 / §8.2 written as §6.10.1 parameters."""


@dataclass(frozen=True, slots=True)
class PolicyParam:
    """One Type/Length/Value policy parameter (RFC 3830 §6.10)."""

    param_type: SrtpParam
    value: bytes

    @property
    def int_value(self) -> int:
        return int.from_bytes(self.value, "big")

    def __bytes__(self) -> bytes:
        check_length(self.value, 0xFF, "policy parameter value")
        return bytes((self.param_type, len(self.value))) + self.value


_CACHED_BODY_MAX = 128  # typical SRTP policies are 39 bytes and repeat in every message


def _parse_srtp_params(body: bytes) -> tuple[PolicyParam, ...]:
    """Decode the Type/Length/Value list of an SRTP policy (RFC 3830 §6.10, §6.10.1).

    Short bodies are memoised (values are immutable, errors are not cached).
    """
    if len(body) <= _CACHED_BODY_MAX:
        return _parse_srtp_params_cached(body)
    return _parse_srtp_params_uncached(body)


def _parse_srtp_params_uncached(body: bytes) -> tuple[PolicyParam, ...]:
    params: list[PolicyParam] = []
    pos, end = 0, len(body)
    while pos < end:
        if pos + 2 > end:
            raise MikeyParseError(f"truncated SP parameter header at offset {pos}")
        param_type = code_point(
            SrtpParam, body[pos], ErrorType.INVALID_SPPAR, "SRTP policy parameter"
        )
        value_end = pos + 2 + body[pos + 1]
        if value_end > end:
            raise MikeyParseError(f"truncated SP parameter {param_type.name} value")
        value = body[pos + 2 : value_end]
        value_enum = _ENUMERATED_VALUES.get(param_type)
        if value_enum is not None and (
            len(value) != 1 or value[0] not in value_enum._value2member_map_
        ):
            raise MikeyParseError(
                f"SRTP policy parameter {param_type.name} has unsupported value {value.hex()}",
                ErrorType.INVALID_SPPAR,
            )
        params.append(PolicyParam(param_type, value))
        pos = value_end
    return tuple(params)


_parse_srtp_params_cached = lru_cache(maxsize=64)(_parse_srtp_params_uncached)


@dataclass(frozen=True, slots=True)
class SecurityPolicy(ChainedPayload):
    """SP payload (RFC 3830 §6.10): policy number, protocol type, parameters in wire order.

    A parameter that is absent takes the SRTP default (§6.10.1).
    """

    policy_no: int
    prot_type: ProtType
    params: tuple[PolicyParam, ...]
    next_payload: PayloadType = field(default=PayloadType.LAST, kw_only=True)

    payload_type = PayloadType.SP

    @classmethod
    def srtp_defaults(cls, policy_no: int = 0) -> SecurityPolicy:
        """An SRTP policy listing every §6.10.1 parameter with the SRTP default value."""
        params = tuple(PolicyParam(ptype, bytes((value,))) for ptype, value in SRTP_DEFAULTS)
        return cls(policy_no, ProtType.SRTP, params)

    def get(self, param_type: SrtpParam) -> bytes | None:
        """The value of the first parameter of this type, or ``None`` if absent."""
        for param in self.params:
            if param.param_type == param_type:
                return param.value
        return None

    def get_int(self, param_type: SrtpParam) -> int | None:
        """The value of a parameter as an unsigned integer, or ``None`` if absent."""
        value = self.get(param_type)
        return None if value is None else int.from_bytes(value, "big")

    def __bytes__(self) -> bytes:
        body = b"".join([bytes((p.param_type, len(p.value))) + p.value for p in self.params])
        if any(len(p.value) > 0xFF for p in self.params):
            raise ValueError("policy parameter value longer than 255 bytes")
        check_length(body, 0xFFFF, "policy parameters")
        return (
            bytes((self.next_payload, self.policy_no, self.prot_type))
            + len(body).to_bytes(2, "big")
            + body
        )

    @classmethod
    def read(cls, reader: Reader) -> Self:
        start, data = reader.pos, reader.data
        if start + _SP_HEAD.size <= len(data):
            end = start + _SP_HEAD.size + (data[start + 3] << 8 | data[start + 4])
            hit: Self | None = _REPEATS.hit(reader, end)
            if hit is not None:
                return hit
        return _REPEATS.keep(reader, start, cls._read(reader))

    @classmethod
    def _read(cls, reader: Reader) -> Self:
        next_raw, policy_no, prot_raw, length = reader.unpack(_SP_HEAD, "SP header")
        next_payload = next_payload_type(next_raw)
        prot_type = code_point(ProtType, prot_raw, ErrorType.INVALID_SP, "security protocol")
        body = reader.take(length, "SP policy params")
        return cls(policy_no, prot_type, _parse_srtp_params(body), next_payload=next_payload)
