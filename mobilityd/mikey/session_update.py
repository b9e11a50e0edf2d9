"""Update messages of a Crypto Session Bundle (RFC 3830 §4.5), sans-I/O.

Used through :meth:`CryptoContext.prepare_update` / ``build_update`` / ``verify_update``.

    PSK (and PKE with a cached envelope key):  HDR, T, [IDi], [IDr], {SP}, KEMAC
    DH:                                         HDR, T, [IDi|CERTi], [IDr], {SP}, SIGNi

Same CSB ID, a new timestamp, **no RAND** (§4.5 MUST NOT). Keys: the message keys of
§4.1.4 are derived from the PSK / cached envelope key with the CSB ID and the RAND *of
the initial exchange* (RFC 3830 does not say which RAND an update uses, since it carries
none; the initial one is the only one both sides share). They are computed once per
context, so an update costs one HMAC (plus one AES-CM run when it carries a new TGK).
We always send IDi and IDr; a received update may omit them.

A PKE context whose envelope key is cached (our PKE initiator asks for that by default)
updates with a pre-shared key message keyed by it (§4.5: "it MUST NOT be a public key
message"); without a cached key it sends a signed public-key update with a new envelope
key from ``rng`` (:mod:`session_update_pke`). A DH context signs its update;
``new_tgk`` is refused for DH, whose new TGK comes from new DH values instead
(``dh_rekey``: DHi in the update, DHr and DHi in the signed answer, §4.5 Figure 4.1).
With ``want_verification`` the V flag is set and the peer answers like the R_MESSAGE
of the method (``HDR, T, IDr, V`` or, for DH, a signed ``HDR, T, IDr, IDi, SIGNr``
without DH values, as Figure 4.1 requires when DHi is absent).

Either side may send an update (the Responder of the initial exchange acts as the
update's Initiator when it moves); the receiver knows the sender from the context.

Every update is built by the one message builder and read by the one parser
(:mod:`mobilityd.mikey.message`).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum

from mobilityd.mikey.constants import (
    DataType,
    DhGroup,
    ErrorType,
    PayloadType,
    TsType,
)
from mobilityd.mikey.context import CryptoContext, KeyMode, PreparedUpdate
from mobilityd.mikey.dh import (
    DhKeyPair,
    DhKeyPool,
    check_group,
    compute_tgk,
    generate_key_pair,
)
from mobilityd.mikey.errors import MikeyError
from mobilityd.mikey.events import UpdateAccepted
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
    KeyMaterial,
    build_maced,
    build_signed,
    build_verification,
    check_policies,
    check_protection_algs,
    check_timestamp,
    collect_policies,
    decrypt_key_chain,
    encrypt_kemac,
    expect_data_type,
    first_of,
    id_payload,
    ids_in,
    key_data_for,
    key_material,
    parse,
    verify_signed,
    verify_verification,
)
from mobilityd.mikey.session_dh import responder_value
from mobilityd.mikey.session_policy import Rng
from mobilityd.mikey.session_psk import check_response_header
from mobilityd.mikey.session_update_pke import build_pke_update, verify_pke_update
from mobilityd.mikey.timestamps import timestamp_payload

_LAST = PayloadType.LAST

__all__ = ["prepare_update", "receive_update", "verify_update", "verify_update_reply"]


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
    want_verification: bool = False,
    *,
    dh_rekey: bool = False,
    dh_pool: DhKeyPool | None = None,
) -> PreparedUpdate:
    """Build an update message from ``ctx`` (module docstring) and the sender's new context."""
    if new_tgk is not None and not new_tgk:
        raise ValueError("new_tgk must not be empty")
    ts = _next_timestamp(ctx, now)
    cs_map = tuple(new_cs_map) if new_cs_map is not None else ctx.cs_map
    keys = ctx.secrets.message_keys
    reply_auth_key = keys.auth_key if keys is not None else None
    dh_pair: DhKeyPair | None = None
    if dh_rekey and ctx.mode is not KeyMode.DH:
        raise ValueError("dh_rekey applies to DH contexts only")
    if ctx.mode is KeyMode.PKE and keys is None:
        wire, reply_auth_key = build_pke_update(
            ctx, ts, cs_map, new_tgk, new_policies, rng, want_verification
        )
    elif ctx.mode is not KeyMode.DH and keys is not None:
        header = CommonHeader(DataType.PSK_INIT, ctx.csb_id, cs_map, v_flag=want_verification)
        items = [key_data_for(new_tgk)] if new_tgk is not None else []
        kemac = encrypt_kemac(items, keys, ctx.csb_id, ts, ctx.policy)
        ids = [id_payload(ctx.local_id), id_payload(ctx.peer_id)]
        payloads: list[Payload] = [ts, *ids, *new_policies, kemac]
        wire = build_maced(header, payloads, ctx.policy.mac_alg, keys)
    elif ctx.mode is KeyMode.DH and ctx.secrets.signing_key is not None:
        if new_tgk is not None:
            raise ValueError("a DH CSB gets a new TGK by dh_rekey, not new_tgk (§4.5)")
        dh_payloads: list[Payload] = []
        if dh_rekey:
            dh_pair = _new_pair(dh_pool, rng)
            dh_payloads.append(DhPayload(dh_pair.group, dh_pair.public_value))
            want_verification = True  # DHi always gets DHr back (§4.5 Figure 4.1)
        header = CommonHeader(DataType.DH_INIT, ctx.csb_id, cs_map, v_flag=want_verification)
        ids = [id_payload(ctx.local_id), id_payload(ctx.peer_id)]
        wire = build_signed(
            header,
            [ts, *ids, *new_policies, *dh_payloads],
            ctx.secrets.signing_key,
            ctx.policy.sig_type,
            ctx.policy.sig_hash,
        )
    else:
        raise ValueError("this context has no key to authenticate updates")
    policies = ctx.policies
    if new_policies:
        policies = {**ctx.policies, **{sp.policy_no: sp for sp in new_policies}}
    updated = ctx.evolve(
        tgk=new_tgk if new_tgk is not None else ctx.tgk,
        tgk_salt=None if new_tgk is not None else ctx.tgk_salt,
        tek_direct=False if new_tgk is not None else ctx.tek_direct,
        cs_map=cs_map,
        policies=policies,
        last_timestamp=ts.value,
    )
    return PreparedUpdate(
        message=wire,
        context=updated,
        ts=ts.value,
        wants_reply=want_verification,
        reply_auth_key=reply_auth_key,
        dh_pair=dh_pair,
    )


def _new_pair(pool: DhKeyPool | None, rng: Rng | None) -> DhKeyPair:
    """A key pair from ``pool`` (precomputed) or generated from ``rng`` (OAKLEY 5)."""
    if pool is not None and (len(pool) or rng is not None):
        return pool.take(rng or _no_rng)
    if rng is None:
        raise ValueError("a DH re-keying needs rng or a key pool")
    return generate_key_pair(DhGroup.OAKLEY_5, rng)


def _no_rng(n: int) -> bytes:
    raise ValueError("empty DH key pool and no rng")


def _accept(
    ctx: CryptoContext,
    new_key: KeyMaterial | None,
    cs_map: tuple[SrtpCsEntry, ...],
    policies: dict[int, SecurityPolicy] | None,
    ts_value: int,
) -> CryptoContext:
    changes: dict[str, object] = {"cs_map": cs_map, "last_timestamp": ts_value}
    if policies is not None:
        changes["policies"] = policies
    if new_key is not None:
        changes.update(tgk=new_key.key, tgk_salt=new_key.salt, tek_direct=new_key.tek_direct)
    return ctx.evolve(**changes)


def _check_update_ids(msg: MikeyMessage, ctx: CryptoContext) -> None:
    """IDs in an update, when present, must be the peer's then ours (§4.5, §3)."""
    ids = ids_in(msg)
    if ids and ids[0] != ctx.peer_id:
        raise MikeyError("update from another identity", ErrorType.AUTH_FAILURE)
    if len(ids) > 1 and ids[1] != ctx.local_id:
        raise MikeyError("update addressed to another identity", ErrorType.INVALID_ID)


class _UpdateKind(Enum):
    """How updates of a CSB are authenticated (module docstring)."""

    PSK = "psk"  # PSK, or PKE with a cached envelope key: MAC
    PKE = "pke"  # PKE without a cached envelope key: signature + new envelope key
    DH = "dh"  # signature


def _kind(ctx: CryptoContext) -> _UpdateKind:
    if ctx.mode is KeyMode.DH:
        return _UpdateKind.DH
    return _UpdateKind.PSK if ctx.secrets.message_keys is not None else _UpdateKind.PKE


_INIT_TYPE = {
    _UpdateKind.PSK: DataType.PSK_INIT,
    _UpdateKind.PKE: DataType.PK_INIT,
    _UpdateKind.DH: DataType.DH_INIT,
}
_RESP_TYPE = {
    _UpdateKind.PSK: DataType.PSK_RESP,
    _UpdateKind.PKE: DataType.PK_RESP,
    _UpdateKind.DH: DataType.DH_RESP,
}


def verify_update(ctx: CryptoContext, data: bytes, now: float) -> CryptoContext:
    """Verify an update from the peer (see :meth:`CryptoContext.verify_update`)."""
    return _verify(ctx, data, now)[0]


class _DhRekey:
    """The receiving side of a DH re-keying update (§4.5): our new pair and the DH values."""

    def __init__(self, pool: DhKeyPool | None, rng: Rng | None) -> None:
        self.pool, self.rng = pool, rng
        self.answer: tuple[DhKeyPair, DhPayload] | None = None

    def respond(self, ctx: CryptoContext, dh_values: list[DhPayload]) -> KeyMaterial:
        if len(dh_values) != 1:
            raise MikeyError("update must carry exactly one DHi", ErrorType.INVALID_DH)
        dh_i = dh_values[0]
        group = check_group(dh_i.group, ctx.policy.dh_policy)
        pool = self.pool if self.pool is not None and self.pool.group == group else None
        if pool is not None and (len(pool) or self.rng is not None):
            pair = pool.take(self.rng or _no_rng)
        elif self.rng is not None:
            pair = generate_key_pair(group, self.rng)
        else:
            raise MikeyError("no DH key pair available for re-keying", ErrorType.INVALID_DH)
        tgk = compute_tgk(pair, dh_i.value)
        self.answer = (pair, dh_i)
        return KeyMaterial(tgk, None, False)


def _verify(
    ctx: CryptoContext, data: bytes, now: float, rekey: _DhRekey | None = None
) -> tuple[CryptoContext, bytes | None]:
    """The updated context and the auth key for a verification answer (None: signed)."""
    kind = _kind(ctx)
    keys = ctx.secrets.message_keys
    msg = parse(data)
    expect_data_type(msg, _INIT_TYPE[kind])
    if msg.header.csb_id != ctx.csb_id:
        raise MikeyError(
            f"update for CSB {msg.header.csb_id:#x}, this CSB is {ctx.csb_id:#x}",
            ErrorType.UNSPECIFIED,
        )
    if first_of(msg, Rand) is not None:
        raise MikeyError("update message carries RAND (RFC 3830 §4.5)", ErrorType.UNSPECIFIED)
    _check_update_ids(msg, ctx)
    ts, when = check_timestamp(msg, now, ctx.policy, ctx.replay_cache, ctx.peer_id)
    new_key: KeyMaterial | None = None
    reply_key: bytes | None = None
    if kind is _UpdateKind.PSK and keys is not None:
        kemac = msg.payloads[-1] if msg.payloads else None
        if not isinstance(kemac, Kemac):
            raise MikeyError("update must end with KEMAC", ErrorType.AUTH_FAILURE)
        check_protection_algs(kemac, ctx.policy)
        verify_mac(kemac.mac_alg, keys, msg.authenticated_bytes(), kemac.mac)
        new_key = key_material(
            decrypt_key_chain(
                kemac.encr_alg, kemac.encr_data, keys, ctx.csb_id, ts.value_bytes, pke=False
            )
        )
        reply_key = keys.auth_key
    elif kind is _UpdateKind.PKE:
        new_key, reply_key = verify_pke_update(ctx, msg, ts)
    else:
        if ctx.secrets.peer_public_key is None:
            raise MikeyError("no peer key to verify the update", ErrorType.AUTH_FAILURE)
        verify_signed(msg, ctx.secrets.peer_public_key, ctx.policy.sig_hash)
        dh_values = [p for p in msg.payloads if type(p) is DhPayload]
        if dh_values:
            if rekey is None:
                raise MikeyError(
                    "a DH re-keying update needs an answer: use receive_update",
                    ErrorType.UNSPECIFIED,
                )
            new_key = rekey.respond(ctx, dh_values)
    cs_map = msg.header.cs_map or ctx.cs_map
    policies = collect_policies(msg, ctx.policies)
    check_policies(cs_map, policies)
    ctx.replay_cache.remember((ctx.peer_id, ctx.csb_id, ts.value), when, now)
    return _accept(ctx, new_key, cs_map, policies, ts.value), reply_key


def receive_update(
    ctx: CryptoContext,
    data: bytes,
    now: float,
    rng: Rng | None = None,
    dh_pool: DhKeyPool | None = None,
) -> UpdateAccepted:
    """Verify an update and, if it asks for one, build the answer (§4.5 Figure 4.1)."""
    rekey = _DhRekey(dh_pool, rng) if ctx.mode is KeyMode.DH else None
    updated, reply_key = _verify(ctx, data, now, rekey)
    dh_answer = rekey.answer if rekey is not None else None
    if not data[3] & 0x80 and dh_answer is None:
        return UpdateAccepted(previous=ctx, context=updated, reply=None)
    msg = parse(data)  # authenticated already: this only recovers T as sent
    ts = msg.require(Timestamp)
    kind = _kind(ctx)
    if reply_key is not None:
        header = CommonHeader(_RESP_TYPE[kind], ctx.csb_id, updated.cs_map)
        reply = build_verification(
            header,
            [ts, id_payload(ctx.local_id)],
            ctx.policy.mac_alg,
            reply_key,
            ids=(ctx.peer_id, ctx.local_id),  # the update's Initiator is the peer
            ts=ts,
        )
    else:
        assert ctx.secrets.signing_key is not None
        header = CommonHeader(DataType.DH_RESP, ctx.csb_id, updated.cs_map)
        payloads: list[Payload] = [ts, id_payload(ctx.local_id), id_payload(ctx.peer_id)]
        if dh_answer is not None:
            pair, dh_i = dh_answer
            payloads += [DhPayload(pair.group, pair.public_value), dh_i.with_next(_LAST)]
        reply = build_signed(
            header,
            payloads,
            ctx.secrets.signing_key,
            ctx.policy.sig_type,
            ctx.policy.sig_hash,
        )
    return UpdateAccepted(previous=ctx, context=updated, reply=reply)


def verify_update_reply(prepared: PreparedUpdate, data: bytes) -> CryptoContext:
    """Check the answer to an update we sent with the V flag (§4.5, §5.2)."""
    ctx = prepared.context
    if not prepared.wants_reply:
        raise MikeyError("this update asked for no answer", ErrorType.UNSPECIFIED)
    msg = parse(data)
    kind = _kind(ctx)
    sent = Timestamp(TsType.NTP_UTC, prepared.ts)
    check_response_header(msg, ctx.csb_id, sent, _RESP_TYPE[kind])
    if kind is not _UpdateKind.DH:
        if prepared.reply_auth_key is None:
            raise MikeyError("no key to check the answer", ErrorType.AUTH_FAILURE)
        ids = (ctx.local_id, ctx.peer_id)
        verify_verification(msg, prepared.reply_auth_key, ids, sent, ctx.policy)
    else:
        if ctx.secrets.peer_public_key is None:
            raise MikeyError("no peer key to verify the answer", ErrorType.AUTH_FAILURE)
        verify_signed(msg, ctx.secrets.peer_public_key, ctx.policy.sig_hash)
        if prepared.dh_pair is not None:
            dh_r = responder_value(msg, prepared.dh_pair)
            return ctx.evolve(tgk=compute_tgk(prepared.dh_pair, dh_r), tgk_salt=None,
                              tek_direct=False)
        if first_of(msg, DhPayload) is not None:
            raise MikeyError("DH values in an answer to a plain update", ErrorType.INVALID_DH)
    return ctx
