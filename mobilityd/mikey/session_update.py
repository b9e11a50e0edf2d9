"""Update messages of a Crypto Session Bundle (RFC 3830 §4.5), sans-I/O.

Used through :meth:`CryptoContext.prepare_update` / ``build_update`` / ``verify_update``.

    PSK (and PKE with a cached envelope key):  HDR, T, [IDi], [IDr], {SP}, KEMAC
    DH:                                         HDR, T, [IDi|CERTi], [IDr], {SP}, SIGNi

Same CSB ID, a new timestamp, **no RAND** (§4.5 MUST NOT). Keys: the message keys of
§4.1.4 are derived from the PSK / cached envelope key with the CSB ID and the RAND *of
the initial exchange* (RFC 3830 does not say which RAND an update uses, since it carries
none; the initial one is the only one both sides share). They are computed once per
context, so an update costs one HMAC (plus one AES-CM block run with a new TGK).

A PKE context always updates with a pre-shared key message keyed by its cached envelope
key (§4.5: "it MUST NOT be a public key message" when cached; our PKE initiator always
asks for caching for the CSB). A DH context signs its update and carries no DH values
(re-keying a DH CSB needs a new DH exchange, which is not implemented as an update), so
``new_tgk`` is refused for DH. The V flag of updates is not set: an update needs no answer.

Either side may send an update (the Responder of the initial exchange acts as the
update's Initiator when it moves); the receiver knows the sender from the context.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from mobilityd.mikey.constants import DataType, ErrorType
from mobilityd.mikey.context import CryptoContext, KeyMode, PreparedUpdate
from mobilityd.mikey.errors import MikeyError
from mobilityd.mikey.message import MikeyMessage
from mobilityd.mikey.payloads import (
    CommonHeader,
    DhPayload,
    Kemac,
    Payload,
    Rand,
    SecurityPolicy,
    SrtpCsEntry,
    Timestamp,
)
from mobilityd.mikey.protection import verify_mac
from mobilityd.mikey.session_common import (
    build_maced,
    build_signed,
    check_policies,
    check_protection_algs,
    check_timestamp,
    collect_policies,
    decrypt_kemac,
    encrypt_kemac,
    expect_data_type,
    id_payload,
    ids_in,
    key_data_for,
    key_material,
    parse,
    verify_signed,
)
from mobilityd.mikey.session_policy import Rng
from mobilityd.mikey.timestamps import timestamp_payload

__all__ = ["prepare_update", "verify_update"]


def _next_timestamp(ctx: CryptoContext, now: float) -> Timestamp:
    """T for ``now``, strictly after the last one of this CSB (§5.2: unique timestamps)."""
    ts = timestamp_payload(now)
    if ts.value <= ctx.last_timestamp:
        ts = Timestamp(ts.ts_type, ctx.last_timestamp + 1)
    return ts


def prepare_update(  # noqa: PLR0917 - called only by CryptoContext.prepare_update
    ctx: CryptoContext,
    now: float,
    new_tgk: bytes | None,
    new_cs_map: Sequence[SrtpCsEntry] | None,
    new_policies: Sequence[SecurityPolicy],
    rng: Rng | None,
) -> PreparedUpdate:
    """Build an update message from ``ctx`` (module docstring) and the sender's new context."""
    del rng  # reserved for non-cached PKE updates (new envelope key)
    if new_tgk is not None and not new_tgk:
        raise ValueError("new_tgk must not be empty")
    ts = _next_timestamp(ctx, now)
    cs_map = tuple(new_cs_map) if new_cs_map is not None else ctx.cs_map
    ids = [id_payload(ctx.local_id), id_payload(ctx.peer_id)]
    keys = ctx.secrets.message_keys
    msg: MikeyMessage
    if ctx.mode is not KeyMode.DH and keys is not None:
        header = CommonHeader(DataType.PSK_INIT, ctx.csb_id, cs_map)
        items = [key_data_for(new_tgk)] if new_tgk is not None else []
        kemac = encrypt_kemac(items, keys, ctx.csb_id, ts, ctx.policy)
        payloads: list[Payload] = [ts, *ids, *new_policies, kemac]
        msg = build_maced(header, payloads, ctx.policy.mac_alg, keys.auth_key)
    elif ctx.mode is KeyMode.DH and ctx.secrets.signing_key is not None:
        if new_tgk is not None:
            raise ValueError("a DH CSB cannot carry a new TGK in an update (RFC 3830 §4.5)")
        header = CommonHeader(DataType.DH_INIT, ctx.csb_id, cs_map)
        msg = build_signed(
            header,
            [ts, *ids, *new_policies],
            ctx.secrets.signing_key,
            ctx.policy.sig_type,
            ctx.policy.sig_hash,
        )
    else:
        raise ValueError("this context has no key to authenticate updates")
    updated = replace(
        ctx,
        tgk=new_tgk if new_tgk is not None else ctx.tgk,
        tgk_salt=None if new_tgk is not None else ctx.tgk_salt,
        tek_direct=False if new_tgk is not None else ctx.tek_direct,
        cs_map=cs_map,
        policies=collect_policies(msg, ctx.policies),
        last_timestamp=ts.value,
    )
    return PreparedUpdate(message=bytes(msg), context=updated)


def _check_update_ids(msg: MikeyMessage, ctx: CryptoContext) -> None:
    """IDs in an update, when present, must be the peer's then ours (§4.5, §3)."""
    ids = ids_in(msg)
    if ids and ids[0] != ctx.peer_id:
        raise MikeyError("update from another identity", ErrorType.AUTH_FAILURE)
    if len(ids) > 1 and ids[1] != ctx.local_id:
        raise MikeyError("update addressed to another identity", ErrorType.INVALID_ID)


def verify_update(ctx: CryptoContext, data: bytes, now: float) -> CryptoContext:
    """Verify an update from the peer (see :meth:`CryptoContext.verify_update`)."""
    msg = parse(data)
    keys = ctx.secrets.message_keys if ctx.mode is not KeyMode.DH else None
    if ctx.mode is not KeyMode.DH and keys is None:
        raise MikeyError("this CSB did not cache its envelope key", ErrorType.INVALID_DT)
    expect_data_type(msg, DataType.PSK_INIT if keys is not None else DataType.DH_INIT)
    if msg.header.csb_id != ctx.csb_id:
        raise MikeyError(
            f"update for CSB {msg.header.csb_id:#x}, this CSB is {ctx.csb_id:#x}",
            ErrorType.UNSPECIFIED,
        )
    if msg.find(Rand) is not None:
        raise MikeyError("update message carries RAND (RFC 3830 §4.5)", ErrorType.UNSPECIFIED)
    _check_update_ids(msg, ctx)
    ts, when = check_timestamp(msg, now, ctx.policy, ctx.replay_cache, ctx.peer_id)
    new_key = None
    if keys is not None:
        kemac = msg.payloads[-1] if msg.payloads else None
        if not isinstance(kemac, Kemac):
            raise MikeyError("update must end with KEMAC", ErrorType.AUTH_FAILURE)
        check_protection_algs(kemac, ctx.policy)
        verify_mac(kemac.mac_alg, keys.auth_key, msg.authenticated_bytes(), kemac.mac)
        new_key = key_material(decrypt_kemac(kemac, keys, ctx.csb_id, ts, pke=False))
    else:
        if ctx.secrets.peer_public_key is None:
            raise MikeyError("no peer key to verify the update", ErrorType.AUTH_FAILURE)
        verify_signed(msg, ctx.secrets.peer_public_key, ctx.policy.sig_hash)
        if msg.find(DhPayload) is not None:
            raise MikeyError("DH re-keying by update is not supported", ErrorType.UNSPECIFIED)
    cs_map = msg.header.cs_map or ctx.cs_map
    policies = collect_policies(msg, ctx.policies)
    check_policies(cs_map, policies)
    ctx.replay_cache.remember((ctx.peer_id, ctx.csb_id, ts.value), when, now)
    if new_key is None:
        return replace(ctx, cs_map=cs_map, policies=policies, last_timestamp=ts.value)
    return replace(
        ctx,
        tgk=new_key.key,
        tgk_salt=new_key.salt,
        tek_direct=new_key.tek_direct,
        cs_map=cs_map,
        policies=policies,
        last_timestamp=ts.value,
    )
