"""Building blocks shared by the MIKEY exchanges and update messages (RFC 3830 §3, §5).

Choices where RFC 3830 is ambiguous (also in ``docs/mikey.md``):

* **ID payload order.** ``[IDi],[IDr]`` cannot be told apart when only one is present.
  We always send both (IDi first). When parsing an Initiator's message, the first ID
  payload is IDi and the second IDr; a lone ID payload is taken as IDi.
* **Verification MAC input** (§5.2): the R_MESSAGE without the Ver data field, then
  ``Identity_i || Identity_r || T`` where the identities are the ID *data* (the URI
  bytes, without payload header) and T is the Initiator's TS *value* (8 bytes for
  NTP, 4 for COUNTER). When an ID payload was left out, the identity known from the
  signalling (our configuration) is used.
* **Several Key data sub-payloads**: the first TGK/TEK is the CSB's key (it serves all
  crypto sessions); extra entries are ignored.
* **SP payloads**: a crypto session whose policy number has no SP uses the SRTP
  defaults (§6.10.1). Parameters we cannot honour give ``INVALID_SPPAR``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TypeVar

from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from mobilityd.mikey.constants import (
    MAC_LENGTHS,
    DataType,
    EncrAlg,
    ErrorType,
    IdType,
    KeyDataType,
    MacAlg,
    SignatureType,
    SrtpAuthAlg,
    SrtpEncrAlg,
    SrtpParam,
)
from mobilityd.mikey.errors import MikeyError
from mobilityd.mikey.keys import MessageKeys
from mobilityd.mikey.message import MikeyMessage, encode_message
from mobilityd.mikey.payloads import (
    CommonHeader,
    IdPayload,
    Kemac,
    KeyData,
    Payload,
    Rand,
    SecurityPolicy,
    Signature,
    SrtpCsEntry,
    Timestamp,
    Verification,
    encode_key_data_chain,
    parse_key_data_chain,
)
from mobilityd.mikey.protection import compute_mac, decrypt_key_data, encrypt_key_data, verify_mac
from mobilityd.mikey.replay import ReplayCache
from mobilityd.mikey.session_policy import SessionPolicy
from mobilityd.mikey.signature import SignatureHash, sign_data, verify_signature
from mobilityd.mikey.timestamps import check_freshness

__all__ = [
    "KeyMaterial",
    "answer_prefix",
    "build_maced",
    "build_signed",
    "build_verification",
    "check_policies",
    "check_protection_algs",
    "check_timestamp",
    "collect_policies",
    "decrypt_kemac",
    "decrypt_key_chain",
    "encrypt_kemac",
    "expect_data_type",
    "first_of",
    "id_payload",
    "identities",
    "ids_in",
    "key_data_for",
    "key_material",
    "parse",
    "policies_by_number",
    "require_rand",
    "verification_answer",
    "verification_prefix",
    "verify_signed",
    "verify_verification",
]

P = TypeVar("P", bound=Payload)

_MAC_PLACEHOLDER = {MacAlg.NULL: b"", MacAlg.HMAC_SHA1_160: bytes(20)}


def parse(data: bytes) -> MikeyMessage:
    """Parse a message; only :class:`MikeyError` escapes (RFC 3830 §5.3)."""
    return MikeyMessage.parse(data)


def expect_data_type(msg: MikeyMessage, *allowed: DataType) -> None:
    if msg.header.data_type not in allowed:
        names = "/".join(t.name for t in allowed)
        raise MikeyError(
            f"data type {msg.header.data_type.name} where {names} was expected",
            ErrorType.INVALID_DT,
        )


def id_payload(uri: bytes) -> IdPayload:
    """An ID payload of type URI (RFC 3830 §6.7, Table 6.7.a)."""
    return IdPayload(IdType.URI, uri)


def ids_in(msg: MikeyMessage) -> list[bytes]:
    """The data of the message's top-level ID payloads, in wire order."""
    return [p.data for p in msg.payloads if type(p) is IdPayload]


def first_of(msg: MikeyMessage, kind: type[P]) -> P | None:
    """The first payload of exactly class ``kind`` (a cheaper ``msg.find``)."""
    for payload in msg.payloads:
        if type(payload) is kind:
            return payload
    return None


def identities(
    msg: MikeyMessage, local_id: bytes, known_peer: bytes | None
) -> tuple[bytes, bytes]:
    """``(IDi, IDr)`` of an Initiator's message (ID order: module docstring).

    ``known_peer`` is the Initiator's identity when the signalling already told us.
    An Initiator we cannot identify is ``INVALID_ID``; an ID payload contradicting the
    signalling is ``AUTH_FAILURE``; a message addressed to someone else ``INVALID_ID``.
    """
    ids = ids_in(msg)
    if len(ids) >= 2:
        id_i, id_r = ids[0], ids[1]
    elif len(ids) == 1 and ids[0] == local_id:
        if known_peer is None:
            raise MikeyError("the Initiator is not identified", ErrorType.INVALID_ID)
        id_i, id_r = known_peer, ids[0]
    elif len(ids) == 1:
        id_i, id_r = ids[0], local_id
    elif known_peer is not None:
        id_i, id_r = known_peer, local_id
    else:
        raise MikeyError("the Initiator is not identified", ErrorType.INVALID_ID)
    if known_peer is not None and id_i != known_peer:
        raise MikeyError("IDi contradicts the identity from signalling", ErrorType.AUTH_FAILURE)
    if id_r != local_id:
        raise MikeyError("message addressed to another responder", ErrorType.INVALID_ID)
    return id_i, id_r


def check_timestamp(
    msg: MikeyMessage,
    now: float,
    policy: SessionPolicy,
    replay: ReplayCache,
    peer_id: bytes,
) -> tuple[Timestamp, float]:
    """§5.3 step one: T within the skew and not in the replay cache (not yet recorded)."""
    ts = first_of(msg, Timestamp)
    if ts is None:
        raise MikeyError("message has no timestamp", ErrorType.INVALID_TS)
    when = check_freshness(ts, now, policy.clock_skew)
    replay.check((peer_id, msg.header.csb_id, ts.value), when, now)
    return ts, when


def check_protection_algs(kemac: Kemac, policy: SessionPolicy) -> None:
    """NULL encryption / MAC only when the policy allows it (§4.2.3, §4.2.4)."""
    if policy.allow_null:
        return
    if kemac.encr_alg == EncrAlg.NULL:
        raise MikeyError("NULL encryption refused by policy", ErrorType.INVALID_EA)
    if kemac.mac_alg == MacAlg.NULL:
        raise MikeyError("NULL MAC refused by policy", ErrorType.INVALID_MAC)


def encrypt_kemac(
    items: Sequence[KeyData | IdPayload],
    keys: MessageKeys,
    csb_id: int,
    ts: Timestamp,
    policy: SessionPolicy,
) -> Kemac:
    """A KEMAC whose MAC is a placeholder of the right length (filled by the caller)."""
    plain = encode_key_data_chain(items) if items else b""
    encr = encrypt_key_data(policy.encr_alg, keys, csb_id, ts.value_bytes, plain) if plain else b""
    return Kemac(policy.encr_alg, encr, policy.mac_alg, _MAC_PLACEHOLDER[policy.mac_alg])


def decrypt_kemac(
    kemac: Kemac, keys: MessageKeys, csb_id: int, ts: Timestamp, *, pke: bool
) -> tuple[KeyData | IdPayload, ...]:
    """Decrypt and parse the KEMAC plaintext (§6.2): ID first in the public-key method."""
    return decrypt_key_chain(
        kemac.encr_alg, kemac.encr_data, keys, csb_id, ts.value_bytes, pke=pke
    )


def decrypt_key_chain(
    encr_alg: EncrAlg | int,
    encr_data: bytes,
    keys: MessageKeys,
    csb_id: int,
    ts_bytes: bytes,
    *,
    pke: bool,
) -> tuple[KeyData | IdPayload, ...]:
    """:func:`decrypt_kemac` from the raw KEMAC fields."""
    if not encr_data:
        return ()
    plain = decrypt_key_data(encr_alg, keys, csb_id, ts_bytes, encr_data)
    first = IdPayload.payload_type if pke else KeyData.payload_type
    try:
        return parse_key_data_chain(
            plain, first=first, allow_zero_padding=encr_alg == EncrAlg.AES_KW_128
        )
    except MikeyError as exc:
        # Authenticated but undecodable: the keys or the sender are wrong.
        raise MikeyError(f"KEMAC plaintext: {exc.message}", exc.error_type) from None


class KeyMaterial:
    """The TGK (or TEK) and optional salt carried in a KEMAC (§6.13)."""

    __slots__ = ("key", "salt", "tek_direct")

    def __init__(self, key: bytes, salt: bytes | None, tek_direct: bool) -> None:
        self.key = key
        self.salt = salt
        self.tek_direct = tek_direct


def key_material(items: Iterable[KeyData | IdPayload]) -> KeyMaterial | None:
    """The first TGK/TEK of the key data chain (see the module docstring), if any."""
    for item in items:
        if isinstance(item, KeyData):
            if item.key_type not in (
                KeyDataType.TGK,
                KeyDataType.TGK_SALT,
                KeyDataType.TEK,
                KeyDataType.TEK_SALT,
            ):
                raise MikeyError(f"key data type {item.key_type.name} unsupported")
            if not item.key:
                raise MikeyError("empty key in key data sub-payload")
            tek = item.key_type in (KeyDataType.TEK, KeyDataType.TEK_SALT)
            return KeyMaterial(item.key, item.salt, tek)
    return None


def key_data_for(tgk: bytes, salt: bytes | None = None) -> KeyData:
    """A TGK (or TGK+SALT) Key data sub-payload (§6.13)."""
    if salt is None:
        return KeyData(KeyDataType.TGK, tgk)
    return KeyData(KeyDataType.TGK_SALT, tgk, salt)


def build_maced(
    header: CommonHeader, payloads: Sequence[Payload], mac_alg: MacAlg,
    auth_key: bytes | MessageKeys,
) -> bytes:
    """Encode a message closed by KEMAC whose MAC covers the whole message (§5.2, §6.2).

    The last payload must be a KEMAC with a placeholder MAC of the right length.
    """
    wire = encode_message(header, payloads)
    covered = wire[: len(wire) - MAC_LENGTHS[mac_alg]]
    return covered + compute_mac(mac_alg, auth_key, covered)


def verification_input(msg: MikeyMessage, id_i: bytes, id_r: bytes, ts: Timestamp) -> bytes:
    """§5.2: the message without the Ver data || Identity_i || Identity_r || T value."""
    return msg.authenticated_bytes() + id_i + id_r + ts.value_bytes


def build_verification(
    header: CommonHeader,
    payloads: Sequence[Payload],
    mac_alg: MacAlg,
    auth_key: bytes,
    *,
    ids: tuple[bytes, bytes],
    ts: Timestamp,
) -> bytes:
    """Encode a message closed by V (§6.9), its MAC as :func:`verification_input`."""
    covered = verification_prefix(header, payloads, mac_alg)
    return covered + compute_mac(mac_alg, auth_key, covered + ids[0] + ids[1] + ts.value_bytes)


def verification_prefix(
    header: CommonHeader, payloads: Sequence[Payload], mac_alg: MacAlg
) -> bytes:
    """The bytes of a V-closed message before its Ver data field."""
    v = Verification(mac_alg, _MAC_PLACEHOLDER[mac_alg])
    wire = encode_message(header, [*payloads, v])
    return wire[: len(wire) - MAC_LENGTHS[mac_alg]]


def answer_prefix(  # noqa: PLR0917
    data_type: DataType,
    csb_id: int,
    cs_map: Sequence[SrtpCsEntry],
    ts: Timestamp,
    id_r: bytes,
    mac_alg: MacAlg,
) -> bytes:
    """``HDR, T, IDr, V`` up to the Ver data: the R_MESSAGE of §3.1 / §3.2 before its MAC.

    The Initiator computes it when sending (to recognise the expected answer by its
    bytes), the Responder when answering.
    """
    header = CommonHeader(data_type, csb_id, tuple(cs_map))
    return verification_prefix(header, [ts, id_payload(id_r)], mac_alg)


def verification_answer(  # noqa: PLR0917
    prefix: bytes, mac_alg: MacAlg, auth_key: bytes, id_i: bytes, id_r: bytes, ts: Timestamp
) -> bytes:
    """``prefix`` closed by its Ver data, the MAC of :func:`verification_input` (§5.2)."""
    return prefix + compute_mac(mac_alg, auth_key, prefix + id_i + id_r + ts.value_bytes)


def verify_verification(
    msg: MikeyMessage,
    auth_key: bytes,
    ids: tuple[bytes, bytes],
    ts: Timestamp,
    policy: SessionPolicy,
) -> None:
    """Check the V payload closing ``msg`` (§5.2, §6.9); ``AUTH_FAILURE`` if wrong."""
    last = msg.payloads[-1] if msg.payloads else None
    if not isinstance(last, Verification):
        raise MikeyError("response does not end with a V payload", ErrorType.AUTH_FAILURE)
    if last.auth_alg == MacAlg.NULL and not policy.allow_null:
        raise MikeyError("NULL verification MAC refused by policy", ErrorType.INVALID_MAC)
    verify_mac(last.auth_alg, auth_key, verification_input(msg, ids[0], ids[1], ts), last.ver_data)


def build_signed(
    header: CommonHeader,
    payloads: Sequence[Payload],
    signing_key: rsa.RSAPrivateKey,
    sig_type: SignatureType,
    sig_hash: SignatureHash,
) -> bytes:
    """Encode a message closed by SIGN over all but the Signature field (§5.2, §6.5)."""
    sig_len = (signing_key.key_size + 7) // 8
    wire = encode_message(header, [*payloads, Signature(sig_type, bytes(sig_len))])
    covered = wire[: len(wire) - sig_len]
    return covered + sign_data(signing_key, sig_type, covered, sig_hash)


def verify_signed(
    msg: MikeyMessage, public_key: PublicKeyTypes, sig_hash: SignatureHash
) -> None:
    """Check the SIGN payload closing ``msg`` (§5.3); ``AUTH_FAILURE`` if wrong."""
    last = msg.payloads[-1] if msg.payloads else None
    if not isinstance(last, Signature):
        raise MikeyError("message does not end with SIGN", ErrorType.AUTH_FAILURE)
    verify_signature(
        public_key,
        last.sig_type,
        msg.authenticated_bytes(),
        last.signature,
        sig_hash,
    )


def policies_by_number(policies: Iterable[SecurityPolicy]) -> dict[int, SecurityPolicy]:
    """SP payloads keyed by policy number (a later one wins)."""
    return {sp.policy_no: sp for sp in policies}


def collect_policies(
    msg: MikeyMessage, base: Mapping[int, SecurityPolicy] | None = None
) -> dict[int, SecurityPolicy]:
    """SP payloads by policy number; later ones (and the message's) override ``base``."""
    policies = dict(base or {})
    for sp in msg.payloads:
        if type(sp) is SecurityPolicy:
            policies[sp.policy_no] = sp
    return policies


def check_policies(
    cs_map: Sequence[SrtpCsEntry], policies: Mapping[int, SecurityPolicy]
) -> None:
    """Every SRTP parameter referenced by the CS map must be one we can run (§5.1.1)."""
    checked: set[int] = set()
    for entry in cs_map:
        sp = policies.get(entry.policy_no)
        if sp is None or entry.policy_no in checked:
            continue
        checked.add(entry.policy_no)
        if _POLICIES_OK.get(id(sp)) is sp:
            continue
        for param in sp.params:
            allowed = _SUPPORTED.get(param.param_type)
            if allowed is not None and int.from_bytes(param.value, "big") not in allowed:
                raise MikeyError(
                    f"SRTP policy {sp.policy_no}: {param.param_type.name}="
                    f"{param.value.hex()} not supported",
                    ErrorType.INVALID_SPPAR,
                )
        if len(_POLICIES_OK) >= _POLICIES_OK_MAX:
            _POLICIES_OK.clear()
        _POLICIES_OK[id(sp)] = sp


_POLICIES_OK: dict[int, SecurityPolicy] = {}
"""SP payloads already found acceptable, by identity (kept alive, so ids stay unique)."""
_POLICIES_OK_MAX = 64

_SUPPORTED: dict[SrtpParam, frozenset[int]] = {
    SrtpParam.ENCR_ALG: frozenset({SrtpEncrAlg.NULL, SrtpEncrAlg.AES_CM}),
    SrtpParam.AUTH_ALG: frozenset({SrtpAuthAlg.NULL, SrtpAuthAlg.HMAC_SHA1}),
    SrtpParam.SESSION_ENCR_KEY_LEN: frozenset({16}),
    SrtpParam.SESSION_SALT_KEY_LEN: frozenset({14}),
    SrtpParam.SESSION_AUTH_KEY_LEN: frozenset({20}),
    SrtpParam.AUTH_TAG_LEN: frozenset({4, 10}),
    SrtpParam.KEY_DERIVATION_RATE: frozenset({0}),
    SrtpParam.SRTP_PREFIX_LEN: frozenset({0}),
}



def require_rand(msg: MikeyMessage, policy: SessionPolicy) -> bytes:
    """The RAND of an initial message (§3: always in the first message, §6.11)."""
    rand = first_of(msg, Rand)
    if rand is None:
        raise MikeyError("initial message without RAND")
    if len(rand.rand) < policy.min_rand_len:
        raise MikeyError(f"RAND of {len(rand.rand)} bytes is too short")
    return rand.rand
