"""Public-key encryption method (RFC 3830 §3.2), sans-I/O.

    I_MESSAGE = HDR, T, RAND, [IDi|CERTi], [IDr], {SP}, KEMAC, [CHASH], PKE, SIGNi
    R_MESSAGE = HDR, T, [IDr], V

The envelope key (32 random bytes) goes to the Responder in PKE, RSA-encrypted with
its public key (§4.2.5, PKCS#1 v1.5 by default); KEMAC = E(encr_key, IDi || {TGK}) || MAC
with keys derived from the envelope key (§4.1.4), the MAC covering the KEMAC payload
alone with its Next payload set to zero (§5.2, §6.2); SIGNi covers the whole message.

We send IDi *and* CERTi (the notation's "|" reads as "at least one"; sending both
keeps IDi and IDr distinguishable), IDr, CHASH of the Responder's certificate, and ask
for the envelope key to be cached for this CSB (C = 2, ``cache=`` to change), so that
updates (§4.5) are cheap pre-shared key messages keyed by it. The encrypted IDi "MUST
always be verified to be equal with the expected IDi" (§3.2): it must equal the
cleartext/signalled IDi, which the Initiator's certificate must name in its
subjectAltName.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from mobilityd.mikey.certs import (
    cert_hash,
    certificate_der,
    check_cert_hash,
    verify_peer_certificate,
)
from mobilityd.mikey.constants import (
    CacheType,
    CertType,
    DataType,
    ErrorType,
    HashFunc,
)
from mobilityd.mikey.context import ContextSecrets, CryptoContext, KeyMode
from mobilityd.mikey.errors import MikeyError
from mobilityd.mikey.message import MikeyMessage
from mobilityd.mikey.payloads import (
    CertHash,
    CertPayload,
    CommonHeader,
    GeneralExtension,
    IdPayload,
    Kemac,
    Payload,
    Pke,
    Rand,
    SecurityPolicy,
    SrtpCsEntry,
    Timestamp,
)
from mobilityd.mikey.pke import ENVELOPE_KEY_LEN, decrypt_envelope_key, encrypt_envelope_key
from mobilityd.mikey.protection import compute_mac, verify_mac
from mobilityd.mikey.replay import ReplayCache
from mobilityd.mikey.session_common import (
    answer_prefix,
    build_signed,
    check_policies,
    check_protection_algs,
    check_timestamp,
    collect_policies,
    decrypt_kemac,
    encrypt_kemac,
    expect_data_type,
    id_payload,
    identities,
    key_data_for,
    key_material,
    parse,
    policies_by_number,
    require_rand,
    verification_answer,
    verify_signed,
    verify_verification,
)
from mobilityd.mikey.session_policy import PkCredentials, Rng, SessionPolicy
from mobilityd.mikey.session_psk import (
    InitiatorState,
    check_response_header,
    initial_values,
    message_keys_for,
    verify_expected_reply,
)
from mobilityd.mikey.timestamps import timestamp_payload

__all__ = ["PkeInitiator", "peer_certificate", "respond_pke"]


@dataclass
class PkeInitiator:
    """Initiator of the public-key method (RFC 3830 §3.2).

    ``peer_certificate`` is the Responder's certificate, obtained beforehand (§4.3.1);
    it is verified against our CA at :meth:`start` time.
    """

    credentials: PkCredentials
    local_id: bytes
    peer_id: bytes
    peer_certificate: x509.Certificate = field(repr=False)
    cs_map: Sequence[SrtpCsEntry]
    policies: Sequence[SecurityPolicy] = (SecurityPolicy.srtp_defaults(0),)
    policy: SessionPolicy = field(default_factory=SessionPolicy)
    replay_cache: ReplayCache | None = None
    want_verification: bool = True
    existing: CryptoContext | None = None
    #: General Extension payloads to authenticate, e.g. RFC 4567 §4.1.4 "SDP IDs".
    extensions: Sequence[GeneralExtension] = ()
    cache: CacheType = CacheType.CACHE_FOR_CSB
    state: InitiatorState = InitiatorState.IDLE
    _pending: CryptoContext | None = field(default=None, repr=False)
    _ts: Timestamp | None = field(default=None, repr=False)
    _reply_prefix: bytes = field(default=b"", repr=False)
    _auth_key: bytes = field(default=b"", repr=False)

    def start(self, now: float, rng: Rng) -> bytes:
        """Build the I_MESSAGE (§3.2)."""
        if self.state is not InitiatorState.IDLE:
            raise RuntimeError("exchange already started")
        peer_der = certificate_der(self.peer_certificate)
        peer = verify_peer_certificate(
            peer_der, self.credentials.ca, now, self.peer_id.decode("utf-8", "replace")
        )
        values = initial_values(rng, self.policy, self.existing)
        env_key = rng(ENVELOPE_KEY_LEN)
        keys = message_keys_for(env_key, values.csb_id, values.rand)
        ts = timestamp_payload(now)
        cs_map = tuple(self.cs_map)
        header = CommonHeader(
            DataType.PK_INIT, values.csb_id, cs_map, v_flag=self.want_verification
        )
        kemac = encrypt_kemac(
            [id_payload(self.local_id), key_data_for(values.tgk, values.tgk_salt)],
            keys,
            values.csb_id,
            ts,
            self.policy,
        )
        kemac = kemac.with_mac(compute_mac(kemac.mac_alg, keys.auth_key, kemac.pke_mac_input()))
        pke = Pke(
            self.cache,
            encrypt_envelope_key(peer.public_key, env_key, self.policy.envelope_padding),
        )
        payloads: list[Payload] = [
            ts,
            Rand(values.rand),
            id_payload(self.local_id),
            CertPayload(CertType.X509V3_SIGN, self.credentials.certificate_der),
            id_payload(self.peer_id),
            *self.extensions,
            *self.policies,
            kemac,
            CertHash(HashFunc.SHA1, cert_hash(peer_der)),
            pke,
        ]
        wire = build_signed(
            header,
            payloads,
            self.credentials.private_key,
            self.policy.sig_type,
            self.policy.sig_hash,
        )
        self._ts = ts
        self._auth_key = keys.auth_key
        self._reply_prefix = answer_prefix(
            DataType.PK_RESP, values.csb_id, cs_map, ts, self.peer_id, self.policy.mac_alg
        )
        self._pending = CryptoContext(
            mode=KeyMode.PKE,
            csb_id=values.csb_id,
            tgk=values.tgk,
            rand=values.rand,
            cs_map=cs_map,
            policies=policies_by_number(self.policies),
            local_id=self.local_id,
            peer_id=self.peer_id,
            is_initiator=True,
            secrets=ContextSecrets(
                message_keys=keys if self.cache != CacheType.NO_CACHE else None,
                signing_key=self.credentials.private_key,
                peer_public_key=peer.public_key,
            ),
            replay_cache=self.replay_cache or ReplayCache(window=self.policy.clock_skew),
            policy=self.policy,
            tgk_salt=values.tgk_salt,
            last_timestamp=ts.value,
        )
        self.state = InitiatorState.WAITING if self.want_verification else InitiatorState.DONE
        return wire

    @property
    def context(self) -> CryptoContext | None:
        """The context once the exchange is complete (at once without the V flag)."""
        return self._pending if self.state is InitiatorState.DONE else None

    def receive_response(self, data: bytes, now: float) -> CryptoContext:
        """Verify the R_MESSAGE (§3.2: V computed as in the pre-shared key method)."""
        del now
        pending, ts = self._pending, self._ts
        if self.state is not InitiatorState.WAITING or pending is None or ts is None:
            raise MikeyError("no response expected", ErrorType.UNSPECIFIED)
        ids = (self.local_id, self.peer_id)
        auth_key = self._auth_key
        if not verify_expected_reply(data, self._reply_prefix, auth_key, ids, ts, self.policy):
            msg = parse(data)
            check_response_header(msg, pending.csb_id, ts, DataType.PK_RESP)
            verify_verification(msg, auth_key, ids, ts, self.policy)
        self.state = InitiatorState.DONE
        return pending


def peer_certificate(
    msg: MikeyMessage, ca: x509.Certificate, now: float, claimed_id: bytes | None
) -> tuple[rsa.RSAPublicKey, bytes]:
    """Verify the signer's CERT payload: its key and the identity it authenticates."""
    certs = [c for c in msg.find_all(CertPayload) if c.cert_type != CertType.X509V3_URL]
    if not certs:
        raise MikeyError("no certificate for the signer", ErrorType.INVALID_CERT)
    claimed = claimed_id.decode("utf-8", "replace") if claimed_id is not None else None
    verified = verify_peer_certificate(certs[0].data, ca, now, claimed)
    identity = claimed_id if claimed_id is not None else verified.sip_uris[0].encode()
    return verified.public_key, identity


def respond_pke(  # noqa: PLR0917
    msg: MikeyMessage,
    now: float,
    pk: PkCredentials,
    local_id: bytes,
    peer_id: bytes | None,
    policy: SessionPolicy,
    replay: ReplayCache,
) -> tuple[CryptoContext, bytes | None]:
    """Responder side of §3.2 (checks in §5.3 order: T/replay, signature, then keys)."""
    expect_data_type(msg, DataType.PK_INIT)
    rand = require_rand(msg, policy)
    id_i, id_r = identities(msg, local_id, peer_id)
    public_key, id_i = peer_certificate(msg, pk.ca, now, id_i)
    ts, when = check_timestamp(msg, now, policy, replay, id_i)
    verify_signed(msg, public_key, policy.sig_hash)
    chash = msg.find(CertHash)
    if chash is not None:
        check_cert_hash(pk.certificate_der, chash.hash_func, chash.digest)
    envelope = msg.find(Pke)
    kemac = msg.find(Kemac)
    if envelope is None or kemac is None:
        raise MikeyError("public-key message without PKE or KEMAC", ErrorType.UNSPECIFIED)
    check_protection_algs(kemac, policy)
    env_key = decrypt_envelope_key(pk.private_key, envelope.data, policy.envelope_padding)
    keys = message_keys_for(env_key, msg.header.csb_id, rand)
    verify_mac(kemac.mac_alg, keys.auth_key, kemac.pke_mac_input(), kemac.mac)
    items = decrypt_kemac(kemac, keys, msg.header.csb_id, ts, pke=True)
    if not items or not isinstance(items[0], IdPayload) or items[0].data != id_i:
        raise MikeyError("encrypted IDi differs from the expected IDi", ErrorType.AUTH_FAILURE)
    material = key_material(items[1:])
    if material is None:
        raise MikeyError("initial message carries no TGK", ErrorType.UNSPECIFIED)
    policies = collect_policies(msg)
    check_policies(msg.header.cs_map, policies)
    replay.remember((id_i, msg.header.csb_id, ts.value), when, now)
    cached = envelope.cache != CacheType.NO_CACHE
    context = CryptoContext(
        mode=KeyMode.PKE,
        csb_id=msg.header.csb_id,
        tgk=material.key,
        rand=rand,
        cs_map=msg.header.cs_map,
        policies=policies,
        local_id=local_id,
        peer_id=id_i,
        is_initiator=False,
        secrets=ContextSecrets(
            message_keys=keys if cached else None,
            signing_key=pk.private_key,
            peer_public_key=public_key,
        ),
        replay_cache=replay,
        policy=policy,
        tgk_salt=material.salt,
        tek_direct=material.tek_direct,
        last_timestamp=ts.value,
    )
    if not msg.header.v_flag:
        return context, None
    covered = answer_prefix(
        DataType.PK_RESP, msg.header.csb_id, msg.header.cs_map, ts, id_r, policy.mac_alg
    )
    return context, verification_answer(covered, policy.mac_alg, keys.auth_key, id_i, id_r, ts)
