"""MIKEY payload codecs (RFC 3830 §6), one module per payload family.

Every payload is a frozen dataclass with ``parse(data)`` / ``read(reader)`` and
``__bytes__``; its ``next_payload`` field is the wire field, filled in by
:meth:`mobilityd.mikey.message.MikeyMessage.build`.
"""

from __future__ import annotations

from mobilityd.mikey.constants import PayloadType
from mobilityd.mikey.payloads._wire import Reader
from mobilityd.mikey.payloads.auth import Signature, Verification
from mobilityd.mikey.payloads.dh import DhPayload
from mobilityd.mikey.payloads.error import ErrorPayload
from mobilityd.mikey.payloads.extension import GeneralExtension
from mobilityd.mikey.payloads.header import CommonHeader, SrtpCsEntry
from mobilityd.mikey.payloads.identity import CertHash, CertPayload, IdPayload
from mobilityd.mikey.payloads.kemac import Kemac, Pke
from mobilityd.mikey.payloads.keydata import (
    KeyData,
    KeyInterval,
    KeySpi,
    KeyValidity,
    encode_key_data_chain,
    parse_key_data_chain,
)
from mobilityd.mikey.payloads.policy import PolicyParam, SecurityPolicy
from mobilityd.mikey.payloads.rand import Rand
from mobilityd.mikey.payloads.timestamp import Timestamp

__all__ = [
    "PAYLOAD_CLASSES",
    "CertHash",
    "CertPayload",
    "CommonHeader",
    "DhPayload",
    "ErrorPayload",
    "GeneralExtension",
    "IdPayload",
    "Kemac",
    "KeyData",
    "KeyInterval",
    "KeySpi",
    "KeyValidity",
    "Payload",
    "Pke",
    "PolicyParam",
    "Rand",
    "Reader",
    "SecurityPolicy",
    "Signature",
    "SrtpCsEntry",
    "Timestamp",
    "Verification",
    "encode_key_data_chain",
    "parse_key_data_chain",
]

Payload = (
    Kemac
    | Pke
    | DhPayload
    | Signature
    | Timestamp
    | IdPayload
    | CertPayload
    | CertHash
    | Verification
    | SecurityPolicy
    | Rand
    | ErrorPayload
    | GeneralExtension
)
"""Any payload that may follow the Common Header in a message."""

PAYLOAD_CLASSES: dict[PayloadType, type[Payload]] = {
    PayloadType.KEMAC: Kemac,
    PayloadType.PKE: Pke,
    PayloadType.DH: DhPayload,
    PayloadType.SIGN: Signature,
    PayloadType.T: Timestamp,
    PayloadType.ID: IdPayload,
    PayloadType.CERT: CertPayload,
    PayloadType.CHASH: CertHash,
    PayloadType.V: Verification,
    PayloadType.SP: SecurityPolicy,
    PayloadType.RAND: Rand,
    PayloadType.ERR: ErrorPayload,
    PayloadType.GENERAL_EXT: GeneralExtension,
}
"""Decoder for each payload type allowed in the top-level chain (RFC 3830 Table 6.1.b)."""
