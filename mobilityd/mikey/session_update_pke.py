"""Public-key update messages when the envelope key was not cached (RFC 3830 §4.5).

    I_MESSAGE = HDR, T, [IDi|CERTi], [IDr], {SP}, [KEMAC], [CHASH], PKE, SIGNi

§4.5: "If the public key message is used, but the envelope key is not cached, the
Initiator MUST provide a new encrypted envelope key that can be used in the verification
message." A new envelope key (from the injected rng) goes in PKE, encrypted to the peer's
key from its verified certificate; the KEMAC still carries the encrypted IDi (§6.2:
"for an update message, the ID is still sent encrypted") and, optionally, a new TGK. The
message keys come from the new envelope key with the CSB ID and the initial RAND; the
whole message is signed. We send no CERT or CHASH: the peer has our certificate from the
initial exchange (§4.5: static payloads may be left out).
"""

from __future__ import annotations

from collections.abc import Sequence

from mobilityd.mikey.constants import CacheType, DataType, ErrorType
from mobilityd.mikey.context import CryptoContext
from mobilityd.mikey.errors import MikeyError
from mobilityd.mikey.message import MikeyMessage
from mobilityd.mikey.payloads import (
    CommonHeader,
    IdPayload,
    Kemac,
    Payload,
    Pke,
    SecurityPolicy,
    SrtpCsEntry,
    Timestamp,
)
from mobilityd.mikey.pke import ENVELOPE_KEY_LEN, decrypt_envelope_key, encrypt_envelope_key
from mobilityd.mikey.protection import compute_mac, verify_mac
from mobilityd.mikey.session_common import (
    KeyMaterial,
    build_signed,
    check_protection_algs,
    decrypt_kemac,
    encrypt_kemac,
    first_of,
    id_payload,
    key_data_for,
    key_material,
    verify_signed,
)
from mobilityd.mikey.session_policy import Rng
from mobilityd.mikey.session_psk import message_keys_for

__all__ = ["build_pke_update", "verify_pke_update"]


def build_pke_update(  # noqa: PLR0917
    ctx: CryptoContext,
    ts: Timestamp,
    cs_map: Sequence[SrtpCsEntry],
    new_tgk: bytes | None,
    new_policies: Sequence[SecurityPolicy],
    rng: Rng | None,
    v_flag: bool,
) -> tuple[bytes, bytes]:
    """The update message and the auth key of its (optional) verification answer."""
    signing_key, peer_key = ctx.secrets.signing_key, ctx.secrets.peer_public_key
    if signing_key is None or peer_key is None:
        raise ValueError("this context has no key to authenticate updates")
    if rng is None:
        raise ValueError("a public-key update needs rng for its new envelope key (§4.5)")
    env_key = rng(ENVELOPE_KEY_LEN)
    keys = message_keys_for(env_key, ctx.csb_id, ctx.rand)
    items: list[IdPayload | object] = [id_payload(ctx.local_id)]
    if new_tgk is not None:
        items.append(key_data_for(new_tgk))
    kemac = encrypt_kemac(items, keys, ctx.csb_id, ts, ctx.policy)  # type: ignore[arg-type]
    kemac = kemac.with_mac(compute_mac(kemac.mac_alg, keys.auth_key, kemac.pke_mac_input()))
    pke = Pke(CacheType.NO_CACHE, encrypt_envelope_key(peer_key, env_key,
                                                       ctx.policy.envelope_padding))
    payloads: list[Payload] = [
        ts, id_payload(ctx.local_id), id_payload(ctx.peer_id), *new_policies, kemac, pke
    ]
    header = CommonHeader(DataType.PK_INIT, ctx.csb_id, tuple(cs_map), v_flag=v_flag)
    wire = build_signed(header, payloads, signing_key, ctx.policy.sig_type, ctx.policy.sig_hash)
    return wire, keys.auth_key


def verify_pke_update(
    ctx: CryptoContext, msg: MikeyMessage, ts: Timestamp
) -> tuple[KeyMaterial | None, bytes]:
    """Signature, envelope, KEMAC MAC and encrypted IDi of a public-key update.

    Returns the new key (if any) and the auth key for a verification answer.
    """
    signing_key, peer_key = ctx.secrets.signing_key, ctx.secrets.peer_public_key
    if signing_key is None or peer_key is None:
        raise MikeyError("no keys to verify a public-key update", ErrorType.AUTH_FAILURE)
    verify_signed(msg, peer_key, ctx.policy.sig_hash)
    envelope = first_of(msg, Pke)
    kemac = first_of(msg, Kemac)
    if envelope is None or kemac is None:
        raise MikeyError("public-key update without PKE or KEMAC", ErrorType.UNSPECIFIED)
    check_protection_algs(kemac, ctx.policy)
    env_key = decrypt_envelope_key(signing_key, envelope.data, ctx.policy.envelope_padding)
    keys = message_keys_for(env_key, ctx.csb_id, ctx.rand)
    verify_mac(kemac.mac_alg, keys.auth_key, kemac.pke_mac_input(), kemac.mac)
    items = decrypt_kemac(kemac, keys, ctx.csb_id, ts, pke=True)
    if not items or not isinstance(items[0], IdPayload) or items[0].data != ctx.peer_id:
        raise MikeyError("encrypted IDi differs from the peer", ErrorType.AUTH_FAILURE)
    return key_material(items[1:]), keys.auth_key
