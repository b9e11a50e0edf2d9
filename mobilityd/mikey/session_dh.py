"""Diffie-Hellman method, DH-SIGN (RFC 3830 §3.3), sans-I/O.

    I_MESSAGE = HDR, T, RAND, [IDi|CERTi], [IDr], {SP}, DHi, SIGNi
    R_MESSAGE = HDR, T, [IDr|CERTr], IDi, DHr, DHi, SIGNr

TGK = g^(xi*xr) (see :mod:`mobilityd.mikey.dh`). Both messages are signed over their
whole content. We send IDi and CERTi (IDr, CERTr in the answer) so identities stay
unambiguous. The two DH payloads of the R_MESSAGE are told apart by value, not by
position (the thesis, §9.4, met an implementation that swapped them): exactly one must
equal our DHi, the other is DHr, and both must be of our group.

The Responder takes its key pair from a :class:`~mobilityd.mikey.dh.DhKeyPool` when it
has one (precomputation, the thesis's remedy for DH call-setup delay), else generates one
from the injected ``rng``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from mobilityd.mikey.constants import CertType, DataType, DhGroup, ErrorType
from mobilityd.mikey.context import ContextSecrets, CryptoContext, KeyMode
from mobilityd.mikey.dh import DhKeyPair, DhKeyPool, check_group, compute_tgk, generate_key_pair
from mobilityd.mikey.errors import MikeyError
from mobilityd.mikey.message import MikeyMessage
from mobilityd.mikey.payloads import (
    CertPayload,
    CommonHeader,
    DhPayload,
    GeneralExtension,
    Payload,
    Rand,
    SecurityPolicy,
    SrtpCsEntry,
    Timestamp,
)
from mobilityd.mikey.replay import ReplayCache
from mobilityd.mikey.session_common import (
    build_signed,
    check_policies,
    check_timestamp,
    collect_policies,
    expect_data_type,
    id_payload,
    identities,
    ids_in,
    parse,
    policies_by_number,
    require_rand,
    verify_signed,
)
from mobilityd.mikey.session_pke import peer_certificate
from mobilityd.mikey.session_policy import PkCredentials, Rng, SessionPolicy
from mobilityd.mikey.session_psk import InitiatorState, check_response_header
from mobilityd.mikey.timestamps import timestamp_payload

__all__ = ["DhInitiator", "respond_dh", "responder_value"]


@dataclass
class DhInitiator:
    """Initiator of DH-SIGN (RFC 3830 §3.3). ``peer_id``: the Responder we expect."""

    credentials: PkCredentials
    local_id: bytes
    peer_id: bytes
    cs_map: Sequence[SrtpCsEntry]
    policies: Sequence[SecurityPolicy] = (SecurityPolicy.srtp_defaults(0),)
    policy: SessionPolicy = field(default_factory=SessionPolicy)
    replay_cache: ReplayCache | None = None
    group: DhGroup = DhGroup.OAKLEY_5
    key_pool: DhKeyPool | None = None
    #: General Extension payloads to authenticate, e.g. RFC 4567 §4.1.4 "SDP IDs".
    extensions: Sequence[GeneralExtension] = ()
    state: InitiatorState = InitiatorState.IDLE
    _pair: DhKeyPair | None = field(default=None, repr=False)
    _ts: Timestamp | None = field(default=None, repr=False)
    _csb_id: int = 0
    _rand: bytes = b""
    _cs_map: tuple[SrtpCsEntry, ...] = ()
    _policies: dict[int, SecurityPolicy] = field(default_factory=dict)

    def start(self, now: float, rng: Rng) -> bytes:
        """Build the I_MESSAGE (§3.3)."""
        if self.state is not InitiatorState.IDLE:
            raise RuntimeError("exchange already started")
        check_group(self.group, self.policy.dh_policy)
        pool = self.key_pool
        pair = pool.take(rng) if pool is not None and pool.group == self.group else None
        self._pair = pair or generate_key_pair(self.group, rng)
        self._csb_id = int.from_bytes(rng(4), "big")
        self._rand = rng(self.policy.rand_len)
        self._ts = timestamp_payload(now)
        self._cs_map = tuple(self.cs_map)
        header = CommonHeader(DataType.DH_INIT, self._csb_id, self._cs_map)
        payloads: list[Payload] = [
            self._ts,
            Rand(self._rand),
            id_payload(self.local_id),
            CertPayload(CertType.X509V3_SIGN, self.credentials.certificate_der),
            id_payload(self.peer_id),
            *self.extensions,
            *self.policies,
            DhPayload(self.group, self._pair.public_value),
        ]
        wire = build_signed(
            header, payloads, self.credentials.private_key, self.policy.sig_type,
            self.policy.sig_hash,
        )
        self._policies = policies_by_number(self.policies)
        self.state = InitiatorState.WAITING
        return wire

    @property
    def context(self) -> CryptoContext | None:
        """Never ready before the R_MESSAGE: DH always has an answer."""
        return None

    def receive_response(self, data: bytes, now: float) -> CryptoContext:
        """Verify the R_MESSAGE (§3.3) and derive the TGK; a bad one changes nothing."""
        pair, ts = self._pair, self._ts
        if self.state is not InitiatorState.WAITING or pair is None or ts is None:
            raise MikeyError("no response expected", ErrorType.UNSPECIFIED)
        msg = parse(data)
        check_response_header(msg, self._csb_id, ts, DataType.DH_RESP)
        if self.local_id not in ids_in(msg):
            raise MikeyError("response does not name us as IDi", ErrorType.AUTH_FAILURE)
        public_key, _ = peer_certificate(msg, self.credentials.ca, now, self.peer_id)
        verify_signed(msg, public_key, self.policy.sig_hash)
        dh_r = responder_value(msg, pair)
        tgk = compute_tgk(pair, dh_r)
        self.state = InitiatorState.DONE
        return CryptoContext(
            mode=KeyMode.DH,
            csb_id=self._csb_id,
            tgk=tgk,
            rand=self._rand,
            cs_map=self._cs_map,
            policies=self._policies,
            local_id=self.local_id,
            peer_id=self.peer_id,
            is_initiator=True,
            secrets=ContextSecrets(
                signing_key=self.credentials.private_key, peer_public_key=public_key
            ),
            replay_cache=self.replay_cache or ReplayCache(window=self.policy.clock_skew),
            policy=self.policy,
            last_timestamp=ts.value,
        )


def responder_value(msg: MikeyMessage, pair: DhKeyPair) -> bytes:
    """DHr: of the two DH payloads, the one that is not our DHi (order-independent)."""
    values = msg.find_all(DhPayload)
    if len(values) != 2 or any(v.group != pair.group for v in values):
        raise MikeyError("response must carry DHr and DHi of our group", ErrorType.INVALID_DH)
    others = [v.value for v in values if v.value != pair.public_value]
    if len(others) != 1:
        raise MikeyError("response does not echo our DHi", ErrorType.AUTH_FAILURE)
    return others[0]


def respond_dh(  # noqa: PLR0917
    msg: MikeyMessage,
    now: float,
    pk: PkCredentials,
    local_id: bytes,
    peer_id: bytes | None,
    policy: SessionPolicy,
    replay: ReplayCache,
    pool: DhKeyPool | None,
    rng: Rng | None,
) -> tuple[CryptoContext, bytes]:
    """Responder side of §3.3: verify SIGNi, answer with DHr, DHi and SIGNr."""
    expect_data_type(msg, DataType.DH_INIT)
    rand = require_rand(msg, policy)
    id_i, id_r = identities(msg, local_id, peer_id)
    public_key, id_i = peer_certificate(msg, pk.ca, now, id_i)
    ts, when = check_timestamp(msg, now, policy, replay, id_i)
    verify_signed(msg, public_key, policy.sig_hash)
    dh_values = msg.find_all(DhPayload)
    if len(dh_values) != 1:
        raise MikeyError("I_MESSAGE must carry exactly one DH payload", ErrorType.INVALID_DH)
    dh_i = dh_values[0]
    group = check_group(dh_i.group, policy.dh_policy)
    if pool is not None and pool.group == group:
        pair = pool.take(rng or _no_rng)  # an empty pool generates from rng (counted miss)
    elif rng is not None:
        pair = generate_key_pair(group, rng)
    else:
        raise MikeyError(f"no DH key pair available for {group.name}", ErrorType.INVALID_DH)
    tgk = compute_tgk(pair, dh_i.value)
    policies = collect_policies(msg)
    check_policies(msg.header.cs_map, policies)
    replay.remember((id_i, msg.header.csb_id, ts.value), when, now)
    context = CryptoContext(
        mode=KeyMode.DH,
        csb_id=msg.header.csb_id,
        tgk=tgk,
        rand=rand,
        cs_map=msg.header.cs_map,
        policies=policies,
        local_id=local_id,
        peer_id=id_i,
        is_initiator=False,
        secrets=ContextSecrets(signing_key=pk.private_key, peer_public_key=public_key),
        replay_cache=replay,
        policy=policy,
        last_timestamp=ts.value,
    )
    header = CommonHeader(DataType.DH_RESP, msg.header.csb_id, msg.header.cs_map)
    payloads: list[Payload] = [
        ts,
        id_payload(id_r),
        CertPayload(CertType.X509V3_SIGN, pk.certificate_der),
        id_payload(id_i),
        DhPayload(group, pair.public_value),
        DhPayload(group, dh_i.value),
    ]
    reply = build_signed(header, payloads, pk.private_key, policy.sig_type, policy.sig_hash)
    return context, reply


def _no_rng(n: int) -> bytes:
    raise MikeyError("DH key pool is empty and no randomness was given", ErrorType.INVALID_DH)
